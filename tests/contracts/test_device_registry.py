"""DeviceRegistry: owners register their devices' micro-wallets with the device's consent."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from offchain.chain.accounts import new_wallet
from tests.contracts.helpers import ZERO_ADDRESS, reverts_with

DEVICE_UNKNOWN, DEVICE_ACTIVE, DEVICE_REVOKED = 0, 1, 2


def consent_digest(fs, owner: str, device: str, public_key: bytes) -> bytes:
    return bytes(
        fs.chain.call(fs.devices.functions.consentDigest(owner, device, public_key))
    )


def register_raw(fs, caller, device: str, public_key: bytes, consent: bytes):
    return fs.chain.transact(
        caller, fs.devices.functions.registerDevice(device, public_key, consent)
    )


def recovered_signer(digest: bytes, signature: bytes) -> str:
    return Account.recover_message(
        encode_defunct(primitive=digest), signature=signature
    )


# ---------------------------------------------------------------- registerDevice


def test_register_device_records_owner_status_key_and_time(fs, actors):
    device = actors.devices[0]
    receipt = fs.register_device(actors.owner, device)
    block_time = fs.chain.w3.eth.get_block(receipt.block_number)["timestamp"]

    assert fs.device_owner(device.address) == actors.owner.address
    assert fs.device_active(device.address) is True
    owner, status, registered_at, public_key = fs.chain.call(
        fs.devices.functions.deviceOf(device.address)
    )
    assert owner == actors.owner.address
    assert status == DEVICE_ACTIVE
    assert registered_at == block_time
    assert bytes(public_key) == device.public_key
    assert fs.device_public_key(device.address) == device.public_key
    assert fs.devices_of(actors.owner.address) == [device.address]


def test_devices_of_lists_every_device_of_an_owner_in_registration_order(fs, actors):
    mine = actors.devices[:3]
    for device in mine:
        fs.register_device(actors.owner, device)
    fs.register_device(actors.other_owner, actors.devices[3])

    assert fs.devices_of(actors.owner.address) == [d.address for d in mine]
    assert fs.devices_of(actors.other_owner.address) == [actors.devices[3].address]
    assert fs.devices_of(actors.stranger.address) == []


def test_unknown_device_has_no_owner_and_is_not_active(fs, actors):
    device = actors.devices[0].address
    assert fs.device_owner(device) == ZERO_ADDRESS
    assert fs.device_active(device) is False
    owner, status, registered_at, public_key = fs.chain.call(
        fs.devices.functions.deviceOf(device)
    )
    assert (owner, status, registered_at, bytes(public_key)) == (
        ZERO_ADDRESS,
        DEVICE_UNKNOWN,
        0,
        b"",
    )


def test_consent_digest_is_bound_to_owner_device_and_key(fs, actors):
    owner, other, device = (
        actors.owner.address,
        actors.other_owner.address,
        actors.devices[0],
    )
    base = consent_digest(fs, owner, device.address, device.public_key)
    assert base != consent_digest(fs, other, device.address, device.public_key)
    assert base != consent_digest(
        fs, owner, actors.devices[1].address, device.public_key
    )
    assert base != consent_digest(
        fs, owner, device.address, actors.devices[1].public_key
    )


def test_register_zero_address_reverts_with_DeviceRegistryZeroAddress(fs, actors):
    with reverts_with("DeviceRegistryZeroAddress"):
        register_raw(fs, actors.owner, ZERO_ADDRESS, b"\x01" * 64, b"\x00" * 65)


def test_register_without_public_key_reverts_with_DeviceRegistryEmptyPublicKey(
    fs, actors
):
    device = actors.devices[0]
    digest = consent_digest(fs, actors.owner.address, device.address, b"")
    with reverts_with("DeviceRegistryEmptyPublicKey", device.address):
        register_raw(fs, actors.owner, device.address, b"", device.sign_digest(digest))


@pytest.mark.parametrize("second_owner", ["owner", "other_owner"])
def test_register_twice_reverts_with_DeviceRegistryAlreadyRegistered(
    fs, actors, second_owner
):
    device = actors.devices[0]
    fs.register_device(actors.owner, device)
    with reverts_with(
        "DeviceRegistryAlreadyRegistered", device.address, actors.owner.address
    ):
        fs.register_device(getattr(actors, second_owner), device)


def test_register_revoked_device_again_reverts_with_DeviceRegistryAlreadyRegistered(
    fs, actors
):
    device = actors.devices[0]
    fs.register_device(actors.owner, device)
    fs.revoke_device(actors.owner, device.address)
    with reverts_with(
        "DeviceRegistryAlreadyRegistered", device.address, actors.owner.address
    ):
        fs.register_device(actors.owner, device)


def test_consent_signed_by_another_key_reverts_with_DeviceRegistryInvalidConsent(
    fs, actors
):
    device, impostor = actors.devices[0], actors.devices[1]
    digest = consent_digest(fs, actors.owner.address, device.address, device.public_key)
    consent = impostor.sign_digest(digest)
    with reverts_with("DeviceRegistryInvalidConsent", device.address, impostor.address):
        register_raw(fs, actors.owner, device.address, device.public_key, consent)
    assert fs.device_active(device.address) is False


def test_consent_is_bound_to_the_owner_it_was_given_to(fs, actors):
    # The device consented to other_owner; owner replays the signature for itself.
    device = actors.devices[0]
    given_to_other = consent_digest(
        fs, actors.other_owner.address, device.address, device.public_key
    )
    consent = device.sign_digest(given_to_other)
    digest_for_owner = consent_digest(
        fs, actors.owner.address, device.address, device.public_key
    )
    signer = recovered_signer(digest_for_owner, consent)
    assert signer != device.address
    with reverts_with("DeviceRegistryInvalidConsent", device.address, signer):
        register_raw(fs, actors.owner, device.address, device.public_key, consent)
    # The owner it was given to can use it.
    register_raw(fs, actors.other_owner, device.address, device.public_key, consent)
    assert fs.device_owner(device.address) == actors.other_owner.address


def test_consent_is_bound_to_the_public_key(fs, actors):
    device = actors.devices[0]
    digest = consent_digest(fs, actors.owner.address, device.address, device.public_key)
    consent = device.sign_digest(digest)
    other_key = actors.devices[1].public_key
    signer = recovered_signer(
        consent_digest(fs, actors.owner.address, device.address, other_key), consent
    )
    with reverts_with("DeviceRegistryInvalidConsent", device.address, signer):
        register_raw(fs, actors.owner, device.address, other_key, consent)


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
        register_raw(fs, actors.owner, device.address, device.public_key, consent)


def test_a_device_may_register_itself(fs, actors):
    device = new_wallet()
    fs.chain.fund(device.address, 10**18)
    fs.register_device(device, device)
    assert fs.device_owner(device.address) == device.address


# ---------------------------------------------------------------- revokeDevice


def test_revoke_device_deactivates_it_but_keeps_its_record(fs, actors):
    device = actors.devices[0]
    fs.register_device(actors.owner, device)
    fs.revoke_device(actors.owner, device.address)

    assert fs.device_active(device.address) is False
    assert fs.device_owner(device.address) == actors.owner.address
    owner, status, _, public_key = fs.chain.call(
        fs.devices.functions.deviceOf(device.address)
    )
    assert (owner, status, bytes(public_key)) == (
        actors.owner.address,
        DEVICE_REVOKED,
        device.public_key,
    )
    assert fs.devices_of(actors.owner.address) == [device.address]


def test_revoke_leaves_the_owners_other_devices_active(fs, actors):
    first, second = actors.devices[:2]
    fs.register_device(actors.owner, first)
    fs.register_device(actors.owner, second)
    fs.revoke_device(actors.owner, first.address)
    assert fs.device_active(second.address) is True


def test_revoke_unknown_device_reverts_with_DeviceRegistryUnknownDevice(fs, actors):
    device = actors.devices[0].address
    with reverts_with("DeviceRegistryUnknownDevice", device):
        fs.revoke_device(actors.owner, device)


@pytest.mark.parametrize("caller", ["other_owner", "stranger", "device"])
def test_revoke_by_non_owner_reverts_with_DeviceRegistryNotDeviceOwner(
    fs, actors, caller
):
    device = actors.devices[0]
    fs.register_device(actors.owner, device)
    wallet = device if caller == "device" else getattr(actors, caller)
    with reverts_with(
        "DeviceRegistryNotDeviceOwner",
        device.address,
        actors.owner.address,
        wallet.address,
    ):
        fs.revoke_device(wallet, device.address)
    assert fs.device_active(device.address) is True


def test_revoke_twice_reverts_with_DeviceRegistryDeviceRevoked(fs, actors):
    device = actors.devices[0]
    fs.register_device(actors.owner, device)
    fs.revoke_device(actors.owner, device.address)
    with reverts_with("DeviceRegistryDeviceRevoked", device.address):
        fs.revoke_device(actors.owner, device.address)


def test_revoke_of_revoked_device_by_non_owner_reports_not_owner_first(fs, actors):
    device = actors.devices[0]
    fs.register_device(actors.owner, device)
    fs.revoke_device(actors.owner, device.address)
    with reverts_with(
        "DeviceRegistryNotDeviceOwner",
        device.address,
        actors.owner.address,
        actors.stranger.address,
    ):
        fs.revoke_device(actors.stranger, device.address)
