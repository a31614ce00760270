"""RewardVault: creditors credit device balances; devices withdraw, owners claim."""

from __future__ import annotations

import pytest

from offchain.chain.accounts import new_wallet
from offchain.protocol.terms import ETHER, ZERO_ADDRESS
from tests.contracts.helpers import (
    CREDITOR_ROLE,
    ContractWallet,
    addresses,
    assert_solvent,
    gas_cost,
    reverts_with,
    selector,
)

DEFAULT_ADMIN_ROLE = b"\0" * 32

# Devices 0-3 belong to `owner`, 4-5 to `other_owner` (registered once for the module).
pytestmark = pytest.mark.usefixtures("registered")


def credit(fs, creditor, devices, amounts, value=None):
    return fs.chain.transact(
        creditor,
        fs.vault.functions.credit(list(devices), list(amounts)),
        value=sum(amounts) if value is None else value,
    )


# ---------------------------------------------------------------- roles


def test_deployer_is_admin_and_task_registry_is_the_creditor(fs, actors):
    has_role = lambda role, who: fs.chain.view(fs.vault.functions.hasRole(role, who))
    assert has_role(DEFAULT_ADMIN_ROLE, actors.deployer.address)
    assert has_role(CREDITOR_ROLE, fs.tasks.address)
    assert not has_role(CREDITOR_ROLE, actors.deployer.address)
    assert bytes(fs.chain.view(fs.vault.functions.CREDITOR_ROLE())) == CREDITOR_ROLE


@pytest.mark.parametrize("caller", ["stranger", "deployer", "owner"])
def test_credit_without_creditor_role_reverts_with_AccessControlUnauthorizedAccount(
    fs, actors, caller
):
    wallet = getattr(actors, caller)
    with reverts_with(
        "AccessControlUnauthorizedAccount", wallet.address, CREDITOR_ROLE
    ):
        credit(fs, wallet, [actors.devices[0].address], [ETHER])


def test_granting_creditor_role_requires_the_admin(fs, actors):
    with reverts_with(
        "AccessControlUnauthorizedAccount", actors.stranger.address, DEFAULT_ADMIN_ROLE
    ):
        fs.chain.transact(
            actors.stranger,
            fs.vault.functions.grantRole(CREDITOR_ROLE, actors.stranger.address),
        )


# ---------------------------------------------------------------- credit


def test_credit_adds_to_balances_and_total_owed(fs, actors, creditor):
    a, b = addresses(actors.devices[:2])
    credit(fs, creditor, [a, b, a], [3, 5, 7])
    assert fs.vault.balance_of(a) == 10
    assert fs.vault.balance_of(b) == 5
    assert fs.vault.total_owed() == 15
    assert fs.chain.balance(fs.vault.address) == 15
    assert_solvent(fs, [a, b])


def test_credit_of_unregistered_addresses_is_allowed(fs, actors, creditor):
    credit(fs, creditor, [actors.stranger.address], [ETHER])
    assert fs.vault.balance_of(actors.stranger.address) == ETHER


def test_credit_of_nothing_is_a_no_op(fs, actors, creditor):
    credit(fs, creditor, [], [])
    assert fs.vault.total_owed() == 0


def test_credit_emits_one_event_per_device(fs, actors, creditor):
    a, b = addresses(actors.devices[:2])
    receipt = credit(fs, creditor, [a, b], [1, 2])
    events = fs.vault.receipt_events("RewardCredited", receipt)
    assert [(e.args.device, e.args.payer, e.args.amount) for e in events] == [
        (a, creditor.address, 1),
        (b, creditor.address, 2),
    ]


@pytest.mark.parametrize("n_devices, n_amounts", [(2, 1), (1, 2), (0, 1)])
def test_credit_with_lists_of_different_length_reverts_with_RewardVaultLengthMismatch(
    fs, actors, creditor, n_devices, n_amounts
):
    devices = addresses(actors.devices[:n_devices])
    with reverts_with("RewardVaultLengthMismatch", n_devices, n_amounts):
        credit(fs, creditor, devices, [1] * n_amounts, value=n_amounts)


@pytest.mark.parametrize("sent", [0, 9, 11])
def test_credit_with_wrong_value_reverts_with_RewardVaultValueMismatch(
    fs, actors, creditor, sent
):
    devices = addresses(actors.devices[:2])
    with reverts_with("RewardVaultValueMismatch", 10, sent):
        credit(fs, creditor, devices, [4, 6], value=sent)


@pytest.mark.parametrize("position", [0, 1])
def test_credit_to_zero_address_reverts_with_RewardVaultZeroAddress(
    fs, actors, creditor, position
):
    devices = [actors.devices[0].address] * 2
    devices[position] = ZERO_ADDRESS
    with reverts_with("RewardVaultZeroAddress"):
        credit(fs, creditor, devices, [1, 2])
    assert fs.vault.total_owed() == 0


# ---------------------------------------------------------------- withdraw


def test_withdraw_pays_the_device_its_whole_balance(fs, actors, creditor):
    device = actors.devices[0]
    other = actors.devices[1].address
    credit(fs, creditor, [device.address, other], [2 * ETHER, ETHER])
    before = fs.chain.balance(device.address)

    receipt = fs.vault.withdraw(device)

    assert fs.chain.balance(device.address) == before + 2 * ETHER - gas_cost(receipt)
    assert fs.vault.balance_of(device.address) == 0
    assert fs.vault.total_owed() == ETHER
    assert fs.chain.balance(fs.vault.address) == ETHER
    (event,) = fs.vault.receipt_events("RewardWithdrawn", receipt)
    assert (event.args.device, event.args.to, event.args.amount) == (
        device.address,
        device.address,
        2 * ETHER,
    )
    assert_solvent(fs, [device.address, other])


def test_withdraw_returns_the_amount(fs, actors, creditor):
    device = actors.devices[0]
    credit(fs, creditor, [device.address], [123])
    assert fs.vault.functions.withdraw().call({"from": device.address}) == 123


def test_withdraw_with_nothing_owed_reverts_with_RewardVaultNothingToWithdraw(
    fs, actors
):
    device = actors.devices[0]
    with reverts_with("RewardVaultNothingToWithdraw", device.address):
        fs.vault.withdraw(device)


def test_withdraw_twice_reverts_with_RewardVaultNothingToWithdraw(fs, actors, creditor):
    device = actors.devices[0]
    credit(fs, creditor, [device.address], [ETHER])
    fs.vault.withdraw(device)
    with reverts_with("RewardVaultNothingToWithdraw", device.address):
        fs.vault.withdraw(device)


# ---------------------------------------------------------------- claim


def test_owner_claims_several_devices_in_one_call(fs, actors, registered, creditor):
    mine = addresses(registered[:3])
    theirs = registered[4].address
    credit(fs, creditor, mine + [theirs], [ETHER, 2 * ETHER, 3 * ETHER, 5 * ETHER])
    before = fs.chain.balance(actors.owner.address)

    receipt = fs.vault.claim(actors.owner, mine)

    assert fs.chain.balance(actors.owner.address) == before + 6 * ETHER - gas_cost(
        receipt
    )
    assert [fs.vault.balance_of(d) for d in mine] == [0, 0, 0]
    assert fs.vault.balance_of(theirs) == 5 * ETHER
    assert fs.vault.total_owed() == 5 * ETHER
    events = fs.vault.receipt_events("RewardWithdrawn", receipt)
    assert [(e.args.device, e.args.to, e.args.amount) for e in events] == [
        (mine[0], actors.owner.address, ETHER),
        (mine[1], actors.owner.address, 2 * ETHER),
        (mine[2], actors.owner.address, 3 * ETHER),
    ]
    assert_solvent(fs, mine + [theirs])


def test_claim_skips_devices_with_nothing_owed(fs, actors, registered, creditor):
    mine = addresses(registered[:3])
    credit(fs, creditor, [mine[1]], [ETHER])
    before = fs.chain.balance(actors.owner.address)
    receipt = fs.vault.claim(actors.owner, mine)
    assert fs.chain.balance(actors.owner.address) == before + ETHER - gas_cost(receipt)


def test_claim_listing_a_device_twice_pays_it_once(fs, actors, registered, creditor):
    device = registered[0].address
    credit(fs, creditor, [device], [ETHER])
    before = fs.chain.balance(actors.owner.address)
    receipt = fs.vault.claim(actors.owner, [device, device])
    assert fs.chain.balance(actors.owner.address) == before + ETHER - gas_cost(receipt)
    assert fs.vault.total_owed() == 0


@pytest.mark.parametrize("devices", [[], [0], [0, 1]], ids=["no-devices", "one", "two"])
def test_claim_with_nothing_owed_reverts_with_RewardVaultNothingToWithdraw(
    fs, actors, registered, devices
):
    with reverts_with("RewardVaultNothingToWithdraw", actors.owner.address):
        fs.vault.claim(actors.owner, [registered[i].address for i in devices])


def test_claim_of_another_owners_device_reverts_with_RewardVaultNotDeviceOwner(
    fs, actors, registered, creditor
):
    mine, theirs = registered[0].address, registered[4].address
    credit(fs, creditor, [mine, theirs], [ETHER, ETHER])
    with reverts_with(
        "RewardVaultNotDeviceOwner",
        theirs,
        actors.other_owner.address,
        actors.owner.address,
    ):
        fs.vault.claim(actors.owner, [mine, theirs])
    assert fs.vault.balance_of(mine) == ETHER  # nothing moved


def test_claim_of_unregistered_address_reverts_with_RewardVaultNotDeviceOwner(
    fs, actors, creditor
):
    device = actors.stranger.address
    credit(fs, creditor, [device], [ETHER])
    with reverts_with(
        "RewardVaultNotDeviceOwner", device, ZERO_ADDRESS, actors.owner.address
    ):
        fs.vault.claim(actors.owner, [device])


def test_device_cannot_claim_for_itself_through_claim(fs, actors, registered, creditor):
    device = registered[0]
    credit(fs, creditor, [device.address], [ETHER])
    with reverts_with(
        "RewardVaultNotDeviceOwner",
        device.address,
        actors.owner.address,
        device.address,
    ):
        fs.vault.claim(device, [device.address])


def test_revoked_devices_reward_stays_claimable_by_its_owner(
    fs, actors, registered, creditor
):
    device = registered[0].address
    credit(fs, creditor, [device], [ETHER])
    fs.devices.revoke(actors.owner, device)
    before = fs.chain.balance(actors.owner.address)
    receipt = fs.vault.claim(actors.owner, [device])
    assert fs.chain.balance(actors.owner.address) == before + ETHER - gas_cost(receipt)
    assert fs.vault.balance_of(device) == 0


def test_revoked_device_can_still_withdraw_itself(fs, actors, registered, creditor):
    device = registered[0]
    credit(fs, creditor, [device.address], [ETHER])
    fs.devices.revoke(actors.owner, device.address)
    fs.vault.withdraw(device)
    assert fs.vault.balance_of(device.address) == 0


def test_withdrawn_balance_cannot_be_claimed_again(fs, actors, registered, creditor):
    device = registered[0]
    credit(fs, creditor, [device.address], [ETHER])
    fs.vault.withdraw(device)
    with reverts_with("RewardVaultNothingToWithdraw", actors.owner.address):
        fs.vault.claim(actors.owner, [device.address])


# ---------------------------------------------------------------- contract recipients

REENTRANT_CALL = selector("ReentrancyGuardReentrantCall()")


def register_to_contract(fs, owner: ContractWallet):
    """A fresh device registered (with its consent) to the contract wallet `owner`."""
    device = new_wallet()
    consent = fs.devices.sign_consent(owner.address, device)
    owner.call(
        fs.devices, "registerDevice", device.address, device.public_key, consent
    )
    assert fs.devices.owner_of(device.address) == owner.address
    return device


def test_withdraw_to_a_device_rejecting_ether_reverts_with_RewardVaultTransferFailed(
    fs, actors, creditor
):
    device = ContractWallet(fs, actors.deployer)
    credit(fs, creditor, [device.address], [ETHER])
    with reverts_with("RewardVaultTransferFailed", device.address, ETHER):
        device.call(fs.vault, "withdraw")
    assert fs.vault.balance_of(device.address) == ETHER
    assert_solvent(fs, [device.address])


def test_claim_by_an_owner_rejecting_ether_reverts_with_RewardVaultTransferFailed(
    fs, actors, creditor
):
    owner = ContractWallet(fs, actors.deployer)
    device = register_to_contract(fs, owner)
    credit(fs, creditor, [device.address], [ETHER])
    with reverts_with("RewardVaultTransferFailed", owner.address, ETHER):
        owner.call(fs.vault, "claim", [device.address])
    assert fs.vault.balance_of(device.address) == ETHER


def test_withdraw_cannot_be_reentered(fs, actors, creditor):
    attacker = ContractWallet(
        fs, actors.deployer, reenter_selector=selector("withdraw()")
    )
    credit(fs, creditor, [attacker.address], [ETHER])
    attacker.call(fs.vault, "withdraw")
    assert attacker.reentry_attempted and not attacker.reentry_succeeded
    assert attacker.reentry_error_selector == REENTRANT_CALL
    assert fs.chain.balance(attacker.address) == ETHER
    assert fs.vault.total_owed() == 0
    assert_solvent(fs, [attacker.address])


def test_claim_cannot_be_reentered_through_withdraw(fs, actors, creditor):
    # The owner is owed its own balance too: without the guard the nested withdraw would pay.
    attacker = ContractWallet(
        fs, actors.deployer, reenter_selector=selector("withdraw()")
    )
    device = register_to_contract(fs, attacker)
    credit(fs, creditor, [device.address, attacker.address], [ETHER, 2 * ETHER])
    attacker.call(fs.vault, "claim", [device.address])
    assert attacker.reentry_attempted and not attacker.reentry_succeeded
    assert attacker.reentry_error_selector == REENTRANT_CALL
    assert fs.chain.balance(attacker.address) == ETHER
    assert fs.vault.balance_of(attacker.address) == 2 * ETHER
    assert_solvent(fs, [device.address, attacker.address])
