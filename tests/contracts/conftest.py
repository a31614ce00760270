"""Fixtures of the contract tests, on top of tests/conftest.py."""

from __future__ import annotations

import pytest
from eth_tester.backends.pyevm import main as pyevm_main
from web3 import Web3

from offchain.chain.accounts import Wallet, new_wallet
from offchain.protocol.terms import ETHER
from tests.contracts.helpers import CREDITOR_ROLE, register_devices


def _next_mix_hash(parent_hash: bytes) -> bytes:
    return bytes(Web3.keccak(b"prevrandao" + bytes(parent_hash)))


@pytest.fixture(scope="package", autouse=True)
def consistent_prevrandao(chain):
    """Makes the embedded chain's blocks replayable when a transaction reads
    ``block.prevrandao`` (TaskRegistry.openRound does, for the assignment offset).

    eth-tester runs a pending block's transactions with the pending header's mix_hash
    but mines the block with a fresh ``os.urandom`` one, so the stored header does not
    match what the transactions saw; reverting to a snapshot re-imports the snapshot's
    block and fails ("Mismatch between locally executed block and proposed block")
    whenever that block opened a round. Here each block is mined with the mix_hash its
    transactions saw, and each pending block gets a fresh deterministic one derived
    from its parent (so prevrandao still changes every block, reproducibly)."""
    backend = chain.w3.provider.ethereum_tester.backend

    def seed_pending() -> None:
        head = backend.chain.get_canonical_head()
        backend.chain.header = backend.chain.header.copy(
            mix_hash=_next_mix_hash(head.hash)
        )

    def mine_blocks(num_blocks=1, coinbase=pyevm_main.ZERO_ADDRESS):
        hashes = []
        for _ in range(num_blocks):
            kwargs = {"coinbase": coinbase, "mix_hash": backend.chain.header.mix_hash}
            transactions = backend.chain.get_block().transactions
            kwargs["blob_gas_used"] = sum(
                pyevm_main.get_total_blob_gas(tx) for tx in transactions
            )
            block = backend.chain.mine_block(**kwargs)
            hashes.append(block.hash)
            seed_pending()
        return tuple(hashes)

    def revert_to_snapshot(snapshot):
        original_revert(snapshot)
        seed_pending()

    assert isinstance(backend.chain.get_vm(), pyevm_main.PragueVM)
    original_revert = backend.revert_to_snapshot
    backend.mine_blocks = mine_blocks
    backend.revert_to_snapshot = revert_to_snapshot
    seed_pending()
    yield
    del backend.mine_blocks
    del backend.revert_to_snapshot


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
