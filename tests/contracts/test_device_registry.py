"""DeviceRegistry: owners register their devices' micro-wallets, and rotate their sealing
keys, with the device's consent (each consent usable once)."""

from __future__ import annotations

import pytest
from eth_abi import encode as abi_encode
from web3 import Web3

from offchain.chain.accounts import new_wallet, recover_signer
from offchain.protocol.terms import ETHER, ZERO_ADDRESS
from offchain.protocol.types import DeviceInfo, DeviceStatus
from tests.contracts.helpers import reverts_with


# ---------------------------------------------------------------- registerDevice


def test_register_device_records_owner_status_key_and_time(fs, actors):
    device = actors.devices[0]
    receipt = fs.devices.register_device(actors.owner, device)
    block_time = fs.chain.w3.eth.get_block(receipt.block_number)["timestamp"]

    assert fs.devices.owner_of(device.address) == actors.owner.address
    assert fs.devices.is_active(device.address) is True
    assert fs.devices.info(device.address) == DeviceInfo(
        actors.owner.address, DeviceStatus.ACTIVE, block_time, device.public_key
    )
    assert fs.devices.status(device.address) is DeviceStatus.ACTIVE
    assert fs.devices.public_key(device.address) == device.public_key
    assert fs.devices.devices_of(actors.owner.address) == [device.address]


def test_devices_of_lists_every_device_of_an_owner_in_registration_order(fs, actors):
    mine = actors.devices[:3]
    for device in mine:
        fs.devices.register_device(actors.owner, device)
    fs.devices.register_device(actors.other_owner, actors.devices[3])

    assert fs.devices.devices_of(actors.owner.address) == [d.address for d in mine]
    assert fs.devices.devices_of(actors.other_owner.address) == [
        actors.devices[3].address
    ]
    assert fs.devices.devices_of(actors.stranger.address) == []


def test_unknown_device_has_no_owner_and_is_not_active(fs, actors):
    device = actors.devices[0].address
    assert fs.devices.owner_of(device) == ZERO_ADDRESS
    assert fs.devices.is_active(device) is False
    assert fs.devices.info(device) == DeviceInfo(
        ZERO_ADDRESS, DeviceStatus.UNKNOWN, 0, b""
    )


def test_consent_digest_is_bound_to_owner_device_and_key(fs, actors):
    owner, other, device = (
        actors.owner.address,
        actors.other_owner.address,
        actors.devices[0],
    )
    base = fs.devices.consent_digest(owner, device.address, device.public_key)
    assert base != fs.devices.consent_digest(other, device.address, device.public_key)
    assert base != fs.devices.consent_digest(
        owner, actors.devices[1].address, device.public_key
    )
    assert base != fs.devices.consent_digest(
        owner, device.address, actors.devices[1].public_key
    )


def test_register_zero_address_reverts_with_DeviceRegistryZeroAddress(fs, actors):
    with reverts_with("DeviceRegistryZeroAddress"):
        fs.devices.register(actors.owner, ZERO_ADDRESS, b"\x01" * 64, b"\x00" * 65)


def test_register_without_public_key_reverts_with_DeviceRegistryEmptyPublicKey(
    fs, actors
):
    device = actors.devices[0]
    digest = fs.devices.consent_digest(actors.owner.address, device.address, b"")
    with reverts_with("DeviceRegistryEmptyPublicKey", device.address):
        fs.devices.register(
            actors.owner, device.address, b"", device.sign_digest(digest)
        )


@pytest.mark.parametrize("second_owner", ["owner", "other_owner"])
def test_register_twice_reverts_with_DeviceRegistryAlreadyRegistered(
    fs, actors, second_owner
):
    device = actors.devices[0]
    fs.devices.register_device(actors.owner, device)
    with reverts_with(
        "DeviceRegistryAlreadyRegistered", device.address, actors.owner.address
    ):
        fs.devices.register_device(getattr(actors, second_owner), device)


def test_register_revoked_device_again_reverts_with_DeviceRegistryAlreadyRegistered(
    fs, actors
):
    device = actors.devices[0]
    fs.devices.register_device(actors.owner, device)
    fs.devices.revoke(actors.owner, device.address)
    with reverts_with(
        "DeviceRegistryAlreadyRegistered", device.address, actors.owner.address
    ):
        fs.devices.register_device(actors.owner, device)


def test_consent_signed_by_another_key_reverts_with_DeviceRegistryInvalidConsent(
    fs, actors
):
    device, impostor = actors.devices[0], actors.devices[1]
    digest = fs.devices.consent_digest(
        actors.owner.address, device.address, device.public_key
    )
    consent = impostor.sign_digest(digest)
    with reverts_with("DeviceRegistryInvalidConsent", device.address, impostor.address):
        fs.devices.register(actors.owner, device.address, device.public_key, consent)
    assert fs.devices.is_active(device.address) is False


def test_consent_is_bound_to_the_owner_it_was_given_to(fs, actors):
    # The device consented to other_owner; owner replays the signature for itself.
    device = actors.devices[0]
    given_to_other = fs.devices.consent_digest(
        actors.other_owner.address, device.address, device.public_key
    )
    consent = device.sign_digest(given_to_other)
    digest_for_owner = fs.devices.consent_digest(
        actors.owner.address, device.address, device.public_key
    )
    signer = recover_signer(digest_for_owner, consent)
    assert signer != device.address
    with reverts_with("DeviceRegistryInvalidConsent", device.address, signer):
        fs.devices.register(actors.owner, device.address, device.public_key, consent)
    # The owner it was given to can use it.
    fs.devices.register(actors.other_owner, device.address, device.public_key, consent)
    assert fs.devices.owner_of(device.address) == actors.other_owner.address


def test_consent_is_bound_to_the_public_key(fs, actors):
    device = actors.devices[0]
    digest = fs.devices.consent_digest(
        actors.owner.address, device.address, device.public_key
    )
    consent = device.sign_digest(digest)
    other_key = actors.devices[1].public_key
    signer = recover_signer(
        fs.devices.consent_digest(actors.owner.address, device.address, other_key),
        consent,
    )
    with reverts_with("DeviceRegistryInvalidConsent", device.address, signer):
        fs.devices.register(actors.owner, device.address, other_key, consent)


@pytest.mark.parametrize(
    "consent",
    [b"", b"\x01" * 64, b"\x00" * 65],
    ids=["empty", "64-bytes", "zero-65-bytes"],
)
def test_malformed_consent_reverts_with_DeviceRegistryInvalidConsent_from_zero(
    fs, actors, consent
):
    device = actors.devices[0]
    with reverts_with("DeviceRegistryInvalidConsent", device.address, ZERO_ADDRESS):
        fs.devices.register(actors.owner, device.address, device.public_key, consent)


def test_a_device_may_register_itself(fs, actors):
    device = new_wallet()
    fs.chain.fund(device.address, ETHER)
    fs.devices.register_device(device, device)
    assert fs.devices.owner_of(device.address) == device.address


# ---------------------------------------------------------------- revokeDevice


def test_revoke_device_deactivates_it_but_keeps_its_record(fs, actors):
    device = actors.devices[0]
    fs.devices.register_device(actors.owner, device)
    fs.devices.revoke(actors.owner, device.address)

    assert fs.devices.is_active(device.address) is False
    assert fs.devices.owner_of(device.address) == actors.owner.address
    info = fs.devices.info(device.address)
    assert (info.owner, info.status, info.public_key) == (
        actors.owner.address,
        DeviceStatus.REVOKED,
        device.public_key,
    )
    assert fs.devices.devices_of(actors.owner.address) == [device.address]


def test_revoke_leaves_the_owners_other_devices_active(fs, actors):
    first, second = actors.devices[:2]
    fs.devices.register_device(actors.owner, first)
    fs.devices.register_device(actors.owner, second)
    fs.devices.revoke(actors.owner, first.address)
    assert fs.devices.is_active(second.address) is True


def test_revoke_unknown_device_reverts_with_DeviceRegistryUnknownDevice(fs, actors):
    device = actors.devices[0].address
    with reverts_with("DeviceRegistryUnknownDevice", device):
        fs.devices.revoke(actors.owner, device)


@pytest.mark.parametrize("caller", ["other_owner", "stranger", "device"])
def test_revoke_by_non_owner_reverts_with_DeviceRegistryNotDeviceOwner(
    fs, actors, caller
):
    device = actors.devices[0]
    fs.devices.register_device(actors.owner, device)
    wallet = device if caller == "device" else getattr(actors, caller)
    with reverts_with(
        "DeviceRegistryNotDeviceOwner",
        device.address,
        actors.owner.address,
        wallet.address,
    ):
        fs.devices.revoke(wallet, device.address)
    assert fs.devices.is_active(device.address) is True


def test_revoke_twice_reverts_with_DeviceRegistryDeviceRevoked(fs, actors):
    device = actors.devices[0]
    fs.devices.register_device(actors.owner, device)
    fs.devices.revoke(actors.owner, device.address)
    with reverts_with("DeviceRegistryDeviceRevoked", device.address):
        fs.devices.revoke(actors.owner, device.address)


def test_revoke_of_revoked_device_by_non_owner_reports_not_owner_first(fs, actors):
    device = actors.devices[0]
    fs.devices.register_device(actors.owner, device)
    fs.devices.revoke(actors.owner, device.address)
    with reverts_with(
        "DeviceRegistryNotDeviceOwner",
        device.address,
        actors.owner.address,
        actors.stranger.address,
    ):
        fs.devices.revoke(actors.stranger, device.address)


# ---------------------------------------------------------------- consent nonces


def test_nonce_starts_at_zero_and_counts_every_used_consent(fs, actors):
    device = actors.devices[0]
    nonce = lambda: fs.devices.nonce_of(device.address)
    assert nonce() == 0
    fs.devices.register_device(actors.owner, device)
    assert nonce() == 1
    fs.devices.rotate_key(actors.owner, device, b"\x07" * 64)
    fs.devices.rotate_key(actors.owner, device, b"\x08" * 64)
    assert nonce() == 3
    assert fs.devices.nonce_of(actors.devices[1].address) == 0


def test_consent_digest_covers_the_devices_nonce(fs, actors):
    device = actors.devices[0]
    args = (actors.owner.address, device.address, device.public_key)
    before = fs.devices.consent_digest(*args)
    fs.devices.register_device(actors.owner, device)
    after = fs.devices.consent_digest(*args)
    assert before != after
    expected = Web3.keccak(
        abi_encode(
            ["bytes32", "uint256", "address", "address", "address", "bytes32", "uint256"],
            [
                Web3.keccak(text="fedshare.DeviceRegistry.consent.v1"),
                fs.chain.chain_id,
                fs.devices.address,
                actors.owner.address,
                device.address,
                Web3.keccak(device.public_key),
                1,
            ],
        )
    )
    assert after == bytes(expected)


def test_failed_registration_does_not_use_the_nonce(fs, actors):
    device, impostor = actors.devices[0], actors.devices[1]
    digest = fs.devices.consent_digest(
        actors.owner.address, device.address, device.public_key
    )
    consent = impostor.sign_digest(digest)
    with reverts_with("DeviceRegistryInvalidConsent", device.address, impostor.address):
        fs.devices.register(actors.owner, device.address, device.public_key, consent)
    assert fs.devices.nonce_of(device.address) == 0
    fs.devices.register(
        actors.owner, device.address, device.public_key, device.sign_digest(digest)
    )


# ---------------------------------------------------------------- rotateKey


def rotate_raw(fs, caller, device: str, public_key: bytes, consent: bytes):
    return fs.chain.transact(
        caller, fs.devices.functions.rotateKey(device, public_key, consent)
    )


NEW_KEY = b"\x04" + b"\x5a" * 64


@pytest.fixture
def registered_device(fs, actors):
    device = actors.devices[0]
    fs.devices.register_device(actors.owner, device)
    return device


def test_rotate_key_replaces_the_key_and_keeps_the_record(fs, actors, registered_device):
    device = registered_device
    registered_at = fs.devices.info(device.address).registered_at
    receipt = fs.devices.rotate_key(actors.owner, device, NEW_KEY)
    assert fs.devices.info(device.address) == DeviceInfo(
        actors.owner.address, DeviceStatus.ACTIVE, registered_at, NEW_KEY
    )
    assert fs.devices.public_key(device.address) == NEW_KEY
    assert fs.devices.devices_of(actors.owner.address) == [device.address]
    (event,) = fs.devices.receipt_events("DeviceKeyRotated", receipt)
    assert dict(event.args) == {
        "device": device.address,
        "owner": actors.owner.address,
        "publicKey": NEW_KEY,
    }


def test_register_emits_DeviceRegistered(fs, actors):
    device = actors.devices[0]
    receipt = fs.devices.register_device(actors.owner, device)
    (event,) = fs.devices.receipt_events("DeviceRegistered", receipt)
    assert dict(event.args) == {
        "device": device.address,
        "owner": actors.owner.address,
        "publicKey": device.public_key,
    }


def test_revoke_emits_DeviceRevoked(fs, actors, registered_device):
    receipt = fs.devices.revoke(actors.owner, registered_device.address)
    (event,) = fs.devices.receipt_events("DeviceRevoked", receipt)
    assert dict(event.args) == {
        "device": registered_device.address,
        "owner": actors.owner.address,
    }


def test_rotating_back_to_an_earlier_key_needs_a_fresh_consent(
    fs, actors, registered_device
):
    device = registered_device
    fs.devices.rotate_key(actors.owner, device, NEW_KEY)
    fs.devices.rotate_key(actors.owner, device, device.public_key)
    assert fs.devices.public_key(device.address) == device.public_key


def test_replaying_a_rotation_consent_reverts_with_InvalidConsent(
    fs, actors, registered_device
):
    device = registered_device
    digest = fs.devices.consent_digest(actors.owner.address, device.address, NEW_KEY)
    consent = device.sign_digest(digest)
    rotate_raw(fs, actors.owner, device.address, NEW_KEY, consent)
    # Back to the old key.
    fs.devices.rotate_key(actors.owner, device, device.public_key)
    # The owner replays the old signature to force NEW_KEY again.
    fresh = fs.devices.consent_digest(actors.owner.address, device.address, NEW_KEY)
    assert fresh != digest
    signer = recover_signer(fresh, consent)
    assert signer != device.address
    with reverts_with("DeviceRegistryInvalidConsent", device.address, signer):
        rotate_raw(fs, actors.owner, device.address, NEW_KEY, consent)
    assert fs.devices.public_key(device.address) == device.public_key


def test_replaying_the_registration_consent_for_a_rotation_reverts_with_InvalidConsent(
    fs, actors
):
    device = actors.devices[0]
    digest = fs.devices.consent_digest(
        actors.owner.address, device.address, device.public_key
    )
    consent = device.sign_digest(digest)
    fs.devices.register(actors.owner, device.address, device.public_key, consent)
    signer = recover_signer(
        fs.devices.consent_digest(
            actors.owner.address, device.address, device.public_key
        ),
        consent,
    )
    with reverts_with("DeviceRegistryInvalidConsent", device.address, signer):
        rotate_raw(fs, actors.owner, device.address, device.public_key, consent)


def test_a_consent_signed_before_another_rotation_is_spent(
    fs, actors, registered_device
):
    # The device signed two consents at the same nonce: only the first used counts.
    device = registered_device
    first = device.sign_digest(
        fs.devices.consent_digest(actors.owner.address, device.address, NEW_KEY)
    )
    other_key = b"\x04" + b"\x6b" * 64
    second = device.sign_digest(
        fs.devices.consent_digest(actors.owner.address, device.address, other_key)
    )
    rotate_raw(fs, actors.owner, device.address, other_key, second)
    signer = recover_signer(
        fs.devices.consent_digest(actors.owner.address, device.address, NEW_KEY), first
    )
    with reverts_with("DeviceRegistryInvalidConsent", device.address, signer):
        rotate_raw(fs, actors.owner, device.address, NEW_KEY, first)


def test_rotation_consent_signed_by_another_key_reverts_with_InvalidConsent(
    fs, actors, registered_device
):
    device, impostor = registered_device, actors.devices[1]
    digest = fs.devices.consent_digest(actors.owner.address, device.address, NEW_KEY)
    with reverts_with("DeviceRegistryInvalidConsent", device.address, impostor.address):
        rotate_raw(fs, actors.owner, device.address, NEW_KEY, impostor.sign_digest(digest))
    # ... signed by the owner itself neither.
    with reverts_with(
        "DeviceRegistryInvalidConsent", device.address, actors.owner.address
    ):
        rotate_raw(
            fs, actors.owner, device.address, NEW_KEY, actors.owner.sign_digest(digest)
        )


def test_rotation_consent_is_bound_to_the_new_key(fs, actors, registered_device):
    device = registered_device
    consent = device.sign_digest(
        fs.devices.consent_digest(actors.owner.address, device.address, NEW_KEY)
    )
    other_key = b"\x04" + b"\x6b" * 64
    signer = recover_signer(
        fs.devices.consent_digest(actors.owner.address, device.address, other_key),
        consent,
    )
    with reverts_with("DeviceRegistryInvalidConsent", device.address, signer):
        rotate_raw(fs, actors.owner, device.address, other_key, consent)


@pytest.mark.parametrize(
    "consent", [b"", b"\x01" * 64, b"\x00" * 65], ids=["empty", "64-bytes", "zero-65-bytes"]
)
def test_malformed_rotation_consent_reverts_with_InvalidConsent_from_zero(
    fs, actors, registered_device, consent
):
    device = registered_device
    with reverts_with("DeviceRegistryInvalidConsent", device.address, ZERO_ADDRESS):
        rotate_raw(fs, actors.owner, device.address, NEW_KEY, consent)


def test_rotate_to_an_empty_key_reverts_with_EmptyPublicKey(
    fs, actors, registered_device
):
    device = registered_device
    digest = fs.devices.consent_digest(actors.owner.address, device.address, b"")
    with reverts_with("DeviceRegistryEmptyPublicKey", device.address):
        rotate_raw(fs, actors.owner, device.address, b"", device.sign_digest(digest))


def test_rotate_unknown_device_reverts_with_UnknownDevice(fs, actors):
    device = actors.devices[0]
    with reverts_with("DeviceRegistryUnknownDevice", device.address):
        fs.devices.rotate_key(actors.owner, device, NEW_KEY)


@pytest.mark.parametrize("caller", ["other_owner", "stranger", "device"])
def test_rotate_by_non_owner_reverts_with_NotDeviceOwner(
    fs, actors, registered_device, caller
):
    device = registered_device
    wallet = device if caller == "device" else getattr(actors, caller)
    with reverts_with(
        "DeviceRegistryNotDeviceOwner", device.address, actors.owner.address, wallet.address
    ):
        fs.devices.rotate_key(wallet, device, NEW_KEY)
    assert fs.devices.public_key(device.address) == device.public_key


def test_rotate_revoked_device_reverts_with_DeviceRevoked(fs, actors, registered_device):
    device = registered_device
    fs.devices.revoke(actors.owner, device.address)
    with reverts_with("DeviceRegistryDeviceRevoked", device.address):
        fs.devices.rotate_key(actors.owner, device, NEW_KEY)


def test_rotate_key_checks_ownership_before_the_key(fs, actors, registered_device):
    with reverts_with("DeviceRegistryNotDeviceOwner", caller=actors.stranger.address):
        rotate_raw(fs, actors.stranger, registered_device.address, b"", b"")
