"""Shared fixtures: one embedded chain with the contracts deployed, funded wallets,
and a snapshot reverted after every test that touches the chain."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from offchain.chain.accounts import Wallet, new_wallet
from offchain.chain.contracts import Fedshare, deploy
from offchain.chain.node import Chain
from offchain.protocol.terms import ETHER, MAX_SCORE
from offchain.protocol.types import TaskParams


@dataclass(frozen=True)
class Actors:
    deployer: Wallet
    owner: Wallet
    other_owner: Wallet
    devices: tuple[Wallet, ...]
    requester: Wallet
    aggregator: Wallet
    stranger: Wallet


@pytest.fixture(scope="session")
def chain() -> Chain:
    return Chain.embedded_chain()


@pytest.fixture(scope="session")
def actors(chain: Chain) -> Actors:
    wallets = [new_wallet() for _ in range(12)]
    for wallet in wallets:
        chain.fund(wallet.address, 1_000 * ETHER)
    return Actors(wallets[0], wallets[1], wallets[2], tuple(wallets[3:9]), wallets[9],
                  wallets[10], wallets[11])


@pytest.fixture(scope="session")
def system(chain: Chain, actors: Actors) -> Fedshare:
    return deploy(chain, actors.deployer)


@pytest.fixture
def fs(system: Fedshare, chain: Chain):
    """The deployed system, with every change of the test rolled back afterwards."""
    snap = chain.snapshot()
    yield system
    chain.revert(snap)


def task_params(**overrides) -> TaskParams:
    """The terms of the tests' tasks; `quality_gap` is MAX_SCORE (no relative quality
    test) unless a test asks for one."""
    base = dict(
        category=b"mnist".ljust(32, b"\0"),
        model_hash=b"\x11" * 32,
        paillier_key_hash=b"\x22" * 32,
        rounds=2,
        train_duration=600,
        verify_duration=300,
        reveal_duration=300,
        grace_period=900,
        epsilon_budget=10_000_000,
        reward_per_round=ETHER,
        min_participants=3,
        max_participants=4,
        min_quality=0,
        quality_gap=MAX_SCORE,
        verifiers_per_update=0,
    )
    base.update(overrides)
    return TaskParams(**base)
