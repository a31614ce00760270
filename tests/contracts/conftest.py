"""Fixtures of the contract tests, on top of tests/conftest.py."""

from __future__ import annotations

import pytest
from eth.vm.spoof import SpoofTransaction

from offchain.chain.accounts import Wallet, new_wallet
from tests.conftest import ETHER
from tests.contracts.helpers import CREDITOR_ROLE, register_devices


def _single_run_gas_estimate(state, transaction) -> int:
    """Gas estimator for the embedded chain: one run at the block gas limit (raising
    the revert exactly as py-evm's binary search does) and a generous limit from the
    gas it used. py-evm's default bisects with about a dozen runs per transaction,
    which made the suite several times slower; receipts only charge gas used, so a
    generous limit changes no balance the tests check."""
    probe = SpoofTransaction(transaction, gas=state.gas_limit, gas_price=0)
    snapshot = state.snapshot()
    try:
        computation = state.apply_transaction(probe)
        if computation.is_error:
            raise computation.error
        used = state.gas_limit - computation.get_gas_remaining()
    finally:
        state.revert(snapshot)
    return min(state.gas_limit // 2, 2 * used + 50_000)


@pytest.fixture(scope="package", autouse=True)
def fast_gas_estimates(chain):
    """Swaps in the single-run gas estimator for the contract tests (restored after)."""
    backend = chain.w3.provider.ethereum_tester.backend.chain
    original = backend.gas_estimator
    backend.gas_estimator = _single_run_gas_estimate
    yield
    backend.gas_estimator = original


@pytest.fixture(scope="module")
def registered(system, chain, actors):
    """The six devices registered once per module (four to `owner`, two to
    `other_owner`); rolled back when the module is done."""
    snap = chain.snapshot()
    register_devices(system, actors.owner, actors.devices[:4])
    register_devices(system, actors.other_owner, actors.devices[4:])
    yield actors.devices
    chain.revert(snap)


@pytest.fixture
def creditor(fs, actors) -> Wallet:
    """A funded wallet the vault's admin granted CREDITOR_ROLE to (for this test only)."""
    wallet = new_wallet()
    fs.chain.fund(wallet.address, 100 * ETHER)
    fs.chain.transact(
        actors.deployer, fs.vault.functions.grantRole(CREDITOR_ROLE, wallet.address)
    )
    return wallet
