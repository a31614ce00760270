"""Attacks on the contracts: (a) re-entrant payees, (b) replayed score commitments,
(c) late commits, (d) outsiders calling every mutator, (e) a revoked device slipping back
into a task. Plus a smoke run of the gas benchmark."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import solcx
from eth_utils import function_signature_to_4byte_selector
from web3 import Web3

from offchain.chain.accounts import Wallet, new_wallet
from offchain.chain.compile import SOLC_SETTINGS, _shim
from offchain.chain.clients.base import ContractClient
from offchain.chain.contracts import CREDITOR_ROLE, VERSIONER_ROLE, Fedshare
from offchain.chain.node import Chain, Receipt
from offchain.errors import TransactionReverted
from offchain.protocol.commitments import score_commitment
from offchain.protocol.terms import ETHER, MAX_SCORE, NO_HASH
from offchain.protocol.types import MemberStatus, RoundStage, TaskStatus
from tests.conftest import task_params

ROOT = Path(__file__).resolve().parents[2]

# ---------------------------------------------------------------- small helpers


def selector(signature: str) -> bytes:
    return function_signature_to_4byte_selector(signature)


REENTRANT_CALL = selector("ReentrancyGuardReentrantCall()")


def expect_revert(error: str, fn: Callable[[], Any]) -> TransactionReverted:
    with pytest.raises(TransactionReverted) as info:
        fn()
    assert info.value.error_name == error, f"expected {error}, got {info.value}"
    return info.value


def fee(receipt: Receipt) -> int:
    return receipt.gas_used * int(receipt.raw["effectiveGasPrice"])


def pending_time(chain: Chain) -> int:
    """The timestamp of the next transaction (eth-tester fixes it when the previous block
    is mined)."""
    tester = chain.w3.provider.ethereum_tester
    return int(tester.get_block_by_number("pending")["timestamp"])


def travel_to(chain: Chain, timestamp: int) -> None:
    """The next transaction runs at exactly `timestamp`."""
    if pending_time(chain) != timestamp:
        chain.w3.provider.ethereum_tester.time_travel(timestamp)
    assert pending_time(chain) == timestamp


@dataclass(frozen=True)
class World:
    chain: Chain
    deployer: Wallet
    owner: Wallet
    devices: tuple[Wallet, ...]
    outsider: Wallet
    requester: Wallet
    aggregator: Wallet
    stranger: Wallet


@pytest.fixture(scope="module")
def world(system: Fedshare, chain: Chain, actors) -> World:
    """Four devices and an outsider device (registered, never joins) of one owner, a
    requester, an aggregator and a stranger; rolled back when the module is done."""
    snap = chain.snapshot()
    owner, requester, aggregator, stranger, outsider = (new_wallet() for _ in range(5))
    devices = tuple(new_wallet() for _ in range(4))
    for wallet in (owner, requester, aggregator, stranger, outsider, *devices):
        chain.fund(wallet.address, 100 * ETHER)
    for device in (*devices, outsider):
        system.devices.register_device(owner, device)
    yield World(chain, actors.deployer, owner, devices, outsider, requester, aggregator,
                stranger)
    chain.revert(snap)


def publish(fs: Fedshare, w: World, allow_list: tuple[str, ...] = (), **overrides) -> int:
    params = task_params(**{"rounds": 1, "min_participants": 3, "max_participants": 3,
                            **overrides})
    task_id, _ = fs.tasks.publish(w.requester, params, w.aggregator.address, allow_list)
    return task_id


def salt(device: Wallet | str, round_: int = 0) -> bytes:
    return bytes(Web3.keccak(text=f"salt:{round_}:{device}"))


def update(device: Wallet | str, round_: int = 0) -> bytes:
    return bytes(Web3.keccak(text=f"update:{round_}:{device}"))


def scores_for(fs: Fedshare, task_id: int, round_: int, device: Wallet) -> list[int]:
    """Distinct scores, one per assigned update."""
    size = fs.tasks.round_info(task_id, round_).assignment_size
    base = 5_000 + 100 * (int(device.address, 16) % 40)
    return [min(MAX_SCORE, base + 10 * t) for t in range(size)]


def start_round(fs: Fedshare, w: World, devices: tuple[Wallet, ...] | None = None,
                **overrides) -> tuple[int, tuple[Wallet, ...]]:
    """A published task with `devices` (three by default) joined and round 0 open."""
    devices = devices or w.devices[:3]
    task_id = publish(fs, w, min_participants=len(devices), max_participants=len(devices),
                      **overrides)
    for device in devices:
        fs.tasks.join(device, task_id)
    fs.tasks.open_round(w.aggregator, task_id, fs.tasks.state(task_id).current_model)
    return task_id, devices


def commit_all(fs: Fedshare, task_id: int, devices, round_: int = 0) -> None:
    for device in devices:
        fs.tasks.commit_update(device, task_id, round_, update(device, round_), 1_000)


def score_all(fs: Fedshare, task_id: int, devices, round_: int = 0) -> None:
    for device in devices:
        scores = scores_for(fs, task_id, round_, device)
        fs.tasks.commit_scores(device, task_id, round_, score_commitment(
            task_id, round_, scores, salt(device, round_), device.address))


def reveal_all(fs: Fedshare, task_id: int, devices, round_: int = 0) -> None:
    for device in devices:
        scores = scores_for(fs, task_id, round_, device)
        fs.tasks.reveal_scores(device, task_id, round_, scores, salt(device, round_))


def play_round(fs: Fedshare, w: World, devices: tuple[Wallet, ...] | None = None,
               **overrides) -> tuple[int, tuple[Wallet, ...]]:
    """A task whose round 0 is played and finalised (stage Finalized)."""
    task_id, devices = start_round(fs, w, devices, **overrides)
    commit_all(fs, task_id, devices)
    score_all(fs, task_id, devices)
    reveal_all(fs, task_id, devices)
    fs.tasks.finalize_round(w.stranger, task_id, 0)
    assert fs.tasks.round_info(task_id, 0).stage == RoundStage.FINALIZED
    return task_id, devices


def assert_solvent(fs: Fedshare) -> None:
    chain = fs.chain
    assert chain.balance(fs.tasks.address) == fs.tasks.total_held()
    assert chain.balance(fs.vault.address) == fs.vault.total_owed()


# ---------------------------------------------------------------- (a) re-entrant payees

ATTACKER_SOURCE = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// A contract account its controller drives through `exec` (so it can be a requester or a
/// device owner). When paid, it re-enters `reenterTarget` once with `reenterData` and
/// records how that went, or, when `rejecting`, refuses the payment.
contract Attacker {
    address public immutable controller;
    address public reenterTarget;
    bytes public reenterData;
    bool public rejecting;
    uint256 public payments;
    uint256 public received;
    bool public reentryOk;
    bytes public reentryResult;

    constructor() {
        controller = msg.sender;
    }

    function arm(address target, bytes calldata data) external {
        require(msg.sender == controller, "not controller");
        reenterTarget = target;
        reenterData = data;
    }

    function setRejecting(bool value) external {
        require(msg.sender == controller, "not controller");
        rejecting = value;
    }

    function exec(address target, bytes calldata data) external payable returns (bytes memory out) {
        require(msg.sender == controller, "not controller");
        bool ok;
        (ok, out) = target.call{value: msg.value}(data);
        if (!ok) {
            assembly {
                revert(add(out, 32), mload(out))
            }
        }
    }

    receive() external payable {
        require(!rejecting, "rejecting payments");
        payments += 1;
        received += msg.value;
        if (reenterTarget != address(0) && payments == 1) {
            (bool ok, bytes memory out) = reenterTarget.call(reenterData);
            reentryOk = ok;
            reentryResult = out;
        }
    }
}
"""


@pytest.fixture(scope="module")
def attacker_artifact() -> dict[str, Any]:
    """The attacker contract compiled with the project's npm solc (through its shim)."""
    output = solcx.compile_standard(
        {"language": "Solidity", "sources": {"Attacker.sol": {"content": ATTACKER_SOURCE}},
         "settings": SOLC_SETTINGS},
        solc_binary=_shim())
    data = output["contracts"]["Attacker.sol"]["Attacker"]
    return {"abi": data["abi"], "bytecode": "0x" + data["evm"]["bytecode"]["object"]}


class AttackerHandle:
    def __init__(self, fs: Fedshare, controller: Wallet, artifact: dict[str, Any]):
        self.fs = fs
        self.chain = fs.chain
        self.controller = controller
        factory = self.chain.w3.eth.contract(abi=artifact["abi"],
                                             bytecode=artifact["bytecode"])
        receipt = self.chain.transact(controller, factory.constructor())
        self.address = receipt.raw["contractAddress"]
        self.contract = self.chain.w3.eth.contract(address=self.address,
                                                   abi=artifact["abi"])

    def exec(self, target: ContractClient, name: str, *args: Any,
             value: int = 0) -> Receipt:
        data = target.contract.encode_abi(name, args=list(args))
        return self.chain.transact(self.controller,
                                   self.contract.functions.exec(target.address, data),
                                   value=value)

    def arm(self, target: ContractClient, name: str, *args: Any) -> None:
        data = target.contract.encode_abi(name, args=list(args))
        self.chain.transact(self.controller, self.contract.functions.arm(target.address, data))

    def view(self, name: str) -> Any:
        return self.chain.view(getattr(self.contract.functions, name)())

    def register(self, device: Wallet) -> None:
        """Registers `device` with this contract as its owner (the device signs)."""
        devices = self.fs.devices
        consent = devices.sign_consent(self.address, device)
        self.exec(devices, "registerDevice", device.address, device.public_key, consent)


@pytest.fixture
def attacker(fs: Fedshare, world: World, attacker_artifact) -> AttackerHandle:
    return AttackerHandle(fs, world.stranger, attacker_artifact)


def _reentry_failed_with_guard(attacker: AttackerHandle) -> None:
    assert attacker.view("payments") == 1
    assert attacker.view("reentryOk") is False
    assert bytes(attacker.view("reentryResult"))[:4] == REENTRANT_CALL


@pytest.mark.parametrize("reenter", ["withdrawRefund", "finalizeRound"])
def test_reentrant_requester_gets_its_refund_once(fs, world, attacker, reenter):
    """A contract requester re-enters the task registry while its refund is paid: the
    re-entry hits the guard, exactly the refund leaves, and the books stay balanced."""
    params = task_params(rounds=2)
    attacker.exec(fs.tasks, "publishTask", params.as_tuple(), world.aggregator.address, [],
                  value=params.escrow)
    (task_id,) = [i for i in range(1, fs.tasks.count() + 1)
                  if fs.tasks.state(i).requester == attacker.address]
    attacker.exec(fs.tasks, "cancelTask", task_id)
    assert fs.tasks.refund_of(attacker.address) == params.escrow
    if reenter == "withdrawRefund":
        attacker.arm(fs.tasks, "withdrawRefund")
    else:
        attacker.arm(fs.tasks, "finalizeRound", task_id, 0)
    held = fs.chain.balance(fs.tasks.address)

    attacker.exec(fs.tasks, "withdrawRefund")

    _reentry_failed_with_guard(attacker)
    assert attacker.view("received") == params.escrow
    assert fs.chain.balance(attacker.address) == params.escrow
    assert fs.chain.balance(fs.tasks.address) == held - params.escrow
    assert fs.tasks.refund_of(attacker.address) == 0
    assert_solvent(fs)
    expect_revert("TaskRegistryNothingToRefund",
                  lambda: attacker.exec(fs.tasks, "withdrawRefund"))


@pytest.mark.parametrize("reenter", ["claim", "withdraw"])
def test_reentrant_owner_claims_once(fs, world, attacker, reenter):
    """A contract owner of two devices claims their rewards and re-enters the vault (claim
    again, or withdraw) from its receive hook: the guard stops it, exactly the two
    balances leave the vault."""
    mine = (new_wallet(), new_wallet())
    for device in mine:
        fs.chain.fund(device.address, 10 * ETHER)
        attacker.register(device)
    devices = (*mine, world.devices[0])
    play_round(fs, world, devices)
    owed = [fs.vault.balance_of(d.address) for d in mine]
    assert sum(owed) > 0
    addresses = [d.address for d in mine]
    if reenter == "claim":
        attacker.arm(fs.vault, "claim", addresses)
    else:
        attacker.arm(fs.vault, "withdraw")
    vault_before = fs.chain.balance(fs.vault.address)

    attacker.exec(fs.vault, "claim", addresses)

    _reentry_failed_with_guard(attacker)
    assert attacker.view("received") == sum(owed)
    assert fs.chain.balance(attacker.address) == sum(owed)
    assert fs.chain.balance(fs.vault.address) == vault_before - sum(owed)
    assert [fs.vault.balance_of(a) for a in addresses] == [0, 0]
    assert_solvent(fs)


@pytest.mark.parametrize("reenter", ["withdraw", "claim"])
def test_reentrant_payee_withdraws_once(fs, world, attacker, reenter):
    """A contract cannot be a registered device (registration needs the device key's
    signature), so a creditor credits it directly; its withdraw re-enters the vault and
    the guard stops it."""
    creditor = new_wallet()
    fs.chain.fund(creditor.address, 10 * ETHER)
    fs.chain.transact(world.deployer, fs.vault.functions.grantRole(CREDITOR_ROLE,
                                                                   creditor.address))
    fs.chain.transact(creditor, fs.vault.functions.credit(
        [attacker.address, world.devices[0].address], [3 * ETHER, ETHER]), value=4 * ETHER)
    if reenter == "withdraw":
        attacker.arm(fs.vault, "withdraw")
    else:
        attacker.arm(fs.vault, "claim", [world.devices[0].address])
    vault_before = fs.chain.balance(fs.vault.address)

    attacker.exec(fs.vault, "withdraw")

    _reentry_failed_with_guard(attacker)
    assert attacker.view("received") == 3 * ETHER
    assert fs.chain.balance(fs.vault.address) == vault_before - 3 * ETHER
    assert fs.vault.balance_of(attacker.address) == 0
    assert fs.vault.balance_of(world.devices[0].address) == ETHER
    assert_solvent(fs)


def test_rejecting_payee_keeps_its_refund(fs, world, attacker):
    """A payee that refuses ETH makes the withdrawal revert as a whole: nothing leaves and
    the refund stays owed."""
    params = task_params(rounds=1)
    attacker.exec(fs.tasks, "publishTask", params.as_tuple(), world.aggregator.address, [],
                  value=params.escrow)
    task_id = fs.tasks.count()
    attacker.exec(fs.tasks, "cancelTask", task_id)
    fs.chain.transact(world.stranger, attacker.contract.functions.setRejecting(True))
    held = fs.chain.balance(fs.tasks.address)

    expect_revert("TaskRegistryTransferFailed",
                  lambda: attacker.exec(fs.tasks, "withdrawRefund"))

    assert fs.chain.balance(fs.tasks.address) == held
    assert fs.tasks.refund_of(attacker.address) == params.escrow
    assert_solvent(fs)


# ---------------------------------------------------------------- (b) replayed commitments


def test_copied_score_commitment_cannot_be_revealed(fs, world):
    """B posts A's score commitment as its own; revealing A's scores and salt fails for B
    (the commitment binds the sender), A's reveal succeeds once, and the copier, silent,
    gets nothing."""
    task_id, (a, b, c) = start_round(fs, world)
    commit_all(fs, task_id, (a, b, c))
    scores_a = scores_for(fs, task_id, 0, a)
    commitment_a = score_commitment(task_id, 0, scores_a, salt(a), a.address)
    assert bytes(fs.chain.view(fs.tasks.functions.scoreCommitment(
        task_id, 0, scores_a, salt(a), a.address))) == commitment_a
    fs.tasks.commit_scores(a, task_id, 0, commitment_a)
    fs.tasks.commit_scores(b, task_id, 0, commitment_a)  # the copy
    score_all(fs, task_id, (c,))

    expect_revert("TaskRegistryRevealMismatch",
                  lambda: fs.tasks.reveal_scores(b, task_id, 0, scores_a, salt(a)))
    fs.tasks.reveal_scores(a, task_id, 0, scores_a, salt(a))
    expect_revert("TaskRegistryAlreadyRevealed",
                  lambda: fs.tasks.reveal_scores(a, task_id, 0, scores_a, salt(a)))
    # B's copied commitment can never be revealed: not even with B's own scores.
    expect_revert("TaskRegistryRevealMismatch", lambda: fs.tasks.reveal_scores(
        b, task_id, 0, scores_for(fs, task_id, 0, b), salt(b)))
    reveal_all(fs, task_id, (c,))

    info = fs.tasks.round_info(task_id, 0)
    travel_to(fs.chain, info.reveal_deadline + 1)
    outcome = fs.tasks.finalize_round(world.stranger, task_id, 0)
    assert b.address not in outcome.accepted
    assert outcome.rewards[b.address] == 0
    assert fs.vault.balance_of(b.address) == 0
    assert fs.tasks.submission(task_id, 0, b.address).revealed is False
    assert_solvent(fs)


def test_commitment_for_another_round_or_task_cannot_be_revealed(fs, world):
    """A commitment computed for another round (or task) does not open in this one."""
    task_id, (a, b, c) = start_round(fs, world)
    commit_all(fs, task_id, (a, b, c))
    scores = scores_for(fs, task_id, 0, a)
    fs.tasks.commit_scores(a, task_id, 0,
                           score_commitment(task_id, 1, scores, salt(a), a.address))
    fs.tasks.commit_scores(b, task_id, 0,
                           score_commitment(task_id + 1, 0, scores, salt(b), b.address))
    score_all(fs, task_id, (c,))
    expect_revert("TaskRegistryRevealMismatch",
                  lambda: fs.tasks.reveal_scores(a, task_id, 0, scores, salt(a)))
    expect_revert("TaskRegistryRevealMismatch",
                  lambda: fs.tasks.reveal_scores(b, task_id, 0, scores, salt(b)))


# ---------------------------------------------------------------- (c) late commits


@pytest.mark.parametrize("phase", ["update", "scores", "reveal"])
def test_commit_after_deadline(fs, world, phase):
    """Each phase accepts its call at exactly its deadline and rejects it one second
    later (CommitTooLate for updates, PhaseClosed for scores and reveals)."""
    task_id, (a, b, c) = start_round(fs, world)
    info = fs.tasks.round_info(task_id, 0)
    if phase == "update":
        commit_all(fs, task_id, (a,))
        travel_to(fs.chain, info.commit_deadline)
        commit_all(fs, task_id, (b,))
        travel_to(fs.chain, info.commit_deadline + 1)
        error = expect_revert("TaskRegistryCommitTooLate",
                              lambda: commit_all(fs, task_id, (c,)))
        assert error.error_args["deadline"] == info.commit_deadline
    elif phase == "scores":
        commit_all(fs, task_id, (a, b, c))
        score_all(fs, task_id, (a,))
        travel_to(fs.chain, info.verify_deadline)
        score_all(fs, task_id, (b,))
        travel_to(fs.chain, info.verify_deadline + 1)
        error = expect_revert("TaskRegistryPhaseClosed", lambda: score_all(fs, task_id, (c,)))
        assert error.error_args["deadline"] == info.verify_deadline
        expect_revert("TaskRegistryCommitTooLate", lambda: commit_all(fs, task_id, (c,)))
    else:
        commit_all(fs, task_id, (a, b, c))
        score_all(fs, task_id, (a, b, c))
        reveal_all(fs, task_id, (a,))
        travel_to(fs.chain, info.reveal_deadline)
        reveal_all(fs, task_id, (b,))
        travel_to(fs.chain, info.reveal_deadline + 1)
        error = expect_revert("TaskRegistryPhaseClosed", lambda: reveal_all(fs, task_id, (c,)))
        assert error.error_args["deadline"] == info.reveal_deadline
        expect_revert("TaskRegistryPhaseClosed", lambda: score_all(fs, task_id, (c,)))
    # Once the round is finalised every commit meets a closed stage.
    if pending_time(fs.chain) <= info.reveal_deadline:
        travel_to(fs.chain, info.reveal_deadline + 1)
    fs.tasks.finalize_round(world.stranger, task_id, 0)
    stage = fs.tasks.round_info(task_id, 0).stage
    assert stage in (RoundStage.FINALIZED, RoundStage.AGGREGATED)
    expect_revert("TaskRegistryWrongStage", lambda: commit_all(fs, task_id, (c,)))
    expect_revert("TaskRegistryWrongStage",
                  lambda: fs.tasks.commit_scores(c, task_id, 0, b"\x01" * 32))
    expect_revert("TaskRegistryWrongStage",
                  lambda: fs.tasks.reveal_scores(c, task_id, 0, [1, 2], salt(c)))


def test_phases_before_they_open(fs, world):
    """Scores before the train phase closes and reveals before the verify phase closes are
    refused (PhaseNotOpen)."""
    task_id, (a, b, c) = start_round(fs, world)
    commit_all(fs, task_id, (a, b))
    expect_revert("TaskRegistryPhaseNotOpen", lambda: score_all(fs, task_id, (a,)))
    commit_all(fs, task_id, (c,))
    score_all(fs, task_id, (a,))
    expect_revert("TaskRegistryPhaseNotOpen", lambda: reveal_all(fs, task_id, (a,)))


# ---------------------------------------------------------------- (d) outsiders


@dataclass
class Scene:
    fs: Fedshare
    world: World
    task_id: int
    devices: tuple[Wallet, ...]


@pytest.fixture(scope="module")
def scenes(system: Fedshare, chain: Chain, world: World) -> dict[str, tuple[Any, int]]:
    """One restricted task (allow-list: its three devices) played once, with a chain
    snapshot at each stage a mutator test needs: "open" (round 0 in its train phase),
    "finalized" and "aggregated". Tests revert to the stage they need (their `fs`
    fixture rolls back afterwards); built once, it keeps the 40 cases fast."""
    base = chain.snapshot()
    fs, w = system, world
    devices = w.devices[:3]
    task_id = publish(fs, w, min_participants=3, max_participants=3, rounds=1,
                      allow_list=tuple(d.address for d in devices))
    for device in devices:
        fs.tasks.join(device, task_id)
    fs.tasks.open_round(w.aggregator, task_id, fs.tasks.state(task_id).current_model)
    snaps = {"open": (chain.snapshot(), task_id)}
    commit_all(fs, task_id, devices)
    score_all(fs, task_id, devices)
    reveal_all(fs, task_id, devices)
    fs.tasks.finalize_round(w.stranger, task_id, 0)
    snaps["finalized"] = (chain.snapshot(), task_id)
    fs.tasks.submit_aggregate(w.aggregator, task_id, 0, b"\x33" * 32)
    snaps["aggregated"] = (chain.snapshot(), task_id)
    chain.revert(base)
    yield snaps


def _scene(fs: Fedshare, w: World, scenes, stage: str) -> Scene:
    snapshot, task_id = scenes[stage]
    fs.chain.revert(snapshot)
    return Scene(fs, w, task_id, w.devices[:3])


def _rotate(s: Scene, caller: Wallet) -> Receipt:
    device = s.devices[0]
    key = new_wallet().public_key
    consent = s.fs.devices.sign_consent(caller.address, device, key)
    return s.fs.chain.transact(caller, s.fs.devices.functions.rotateKey(
        device.address, key, consent))


def _register_again(s: Scene, caller: Wallet) -> Receipt:
    device = s.devices[0]
    consent = s.fs.devices.sign_consent(caller.address, device)
    return s.fs.devices.register(caller, device.address, device.public_key, consent)


# (name, stage the task must be in, call(scene, caller), error for the stranger, error for
# the outsider device). The stage puts the task where the caller check is the one that
# decides (e.g. submitAggregate checks the stage before the caller).
MUTATORS: list[tuple[str, str, Callable[[Scene, Wallet], Any], str, str]] = [
    ("TaskRegistry.setAggregator", "open",
     lambda s, w: s.fs.tasks.set_aggregator(w, s.task_id, w.address),
     "TaskRegistryNotRequester", "TaskRegistryNotRequester"),
    ("TaskRegistry.join", "open",
     lambda s, w: s.fs.tasks.join(w, s.task_id),
     "TaskRegistryDeviceNotActive", "TaskRegistryNotAllowed"),
    ("TaskRegistry.openRound", "aggregated",
     lambda s, w: s.fs.tasks.open_round(w, s.task_id,
                                        s.fs.tasks.state(s.task_id).current_model),
     "TaskRegistryNotAggregator", "TaskRegistryNotAggregator"),
    ("TaskRegistry.commitUpdate", "open",
     lambda s, w: s.fs.tasks.commit_update(w, s.task_id, 0, update(w), 1),
     "TaskRegistryNotParticipant", "TaskRegistryNotParticipant"),
    ("TaskRegistry.commitScores", "open",
     lambda s, w: s.fs.tasks.commit_scores(w, s.task_id, 0, b"\x01" * 32),
     "TaskRegistryNotParticipant", "TaskRegistryNotParticipant"),
    ("TaskRegistry.revealScores", "open",
     lambda s, w: s.fs.tasks.reveal_scores(w, s.task_id, 0, [1, 2], salt(w)),
     "TaskRegistryNotParticipant", "TaskRegistryNotParticipant"),
    # finalizeRound is permissionless by design: an outsider meets the same timing check
    # as anyone (the round is not over).
    ("TaskRegistry.finalizeRound", "open",
     lambda s, w: s.fs.tasks.finalize_round(w, s.task_id, 0),
     "TaskRegistryRoundNotOver", "TaskRegistryRoundNotOver"),
    ("TaskRegistry.submitAggregate", "finalized",
     lambda s, w: s.fs.tasks.submit_aggregate(w, s.task_id, 0, b"\x44" * 32),
     "TaskRegistryNotAggregator", "TaskRegistryNotAggregator"),
    ("TaskRegistry.publishModel", "aggregated",
     lambda s, w: s.fs.tasks.publish_model(w, s.task_id, 0, b"\x55" * 32),
     "TaskRegistryNotRequester", "TaskRegistryNotRequester"),
    ("TaskRegistry.cancelTask", "open",
     lambda s, w: s.fs.tasks.cancel(w, s.task_id),
     "TaskRegistryCannotCancel", "TaskRegistryCannotCancel"),
    ("TaskRegistry.withdrawRefund", "open",
     lambda s, w: s.fs.tasks.withdraw_refund(w),
     "TaskRegistryNothingToRefund", "TaskRegistryNothingToRefund"),
    ("RewardVault.credit", "finalized",
     lambda s, w: s.fs.chain.transact(w, s.fs.vault.functions.credit([w.address], [1]),
                                      value=1),
     "AccessControlUnauthorizedAccount", "AccessControlUnauthorizedAccount"),
    ("RewardVault.withdraw", "finalized",
     lambda s, w: s.fs.vault.withdraw(w),
     "RewardVaultNothingToWithdraw", "RewardVaultNothingToWithdraw"),
    ("RewardVault.claim", "finalized",
     lambda s, w: s.fs.vault.claim(w, [s.devices[0].address]),
     "RewardVaultNotDeviceOwner", "RewardVaultNotDeviceOwner"),
    ("RewardVault.grantRole", "open",
     lambda s, w: s.fs.chain.transact(w, s.fs.vault.functions.grantRole(CREDITOR_ROLE,
                                                                        w.address)),
     "AccessControlUnauthorizedAccount", "AccessControlUnauthorizedAccount"),
    ("RewardVault.revokeRole", "open",
     lambda s, w: s.fs.chain.transact(w, s.fs.vault.functions.revokeRole(
         CREDITOR_ROLE, s.fs.tasks.address)),
     "AccessControlUnauthorizedAccount", "AccessControlUnauthorizedAccount"),
    ("ModelRegistry.registerVersion", "aggregated",
     lambda s, w: s.fs.chain.transact(w, s.fs.models.functions.registerVersion(
         b"\x66" * 32, "fake", 1, s.task_id, 1, NO_HASH)),
     "ModelRegistryTaskVersionNotAllowed", "ModelRegistryTaskVersionNotAllowed"),
    ("ModelRegistry.grantRole", "open",
     lambda s, w: s.fs.chain.transact(w, s.fs.models.functions.grantRole(VERSIONER_ROLE,
                                                                         w.address)),
     "AccessControlUnauthorizedAccount", "AccessControlUnauthorizedAccount"),
    ("DeviceRegistry.revokeDevice", "open",
     lambda s, w: s.fs.devices.revoke(w, s.devices[0].address),
     "DeviceRegistryNotDeviceOwner", "DeviceRegistryNotDeviceOwner"),
    ("DeviceRegistry.rotateKey", "open", _rotate,
     "DeviceRegistryNotDeviceOwner", "DeviceRegistryNotDeviceOwner"),
    ("DeviceRegistry.registerDevice", "open", _register_again,
     "DeviceRegistryAlreadyRegistered", "DeviceRegistryAlreadyRegistered"),
]


def _snapshot_state(s: Scene) -> tuple:
    fs = s.fs
    return (
        fs.tasks.state(s.task_id), fs.tasks.round_info(s.task_id, 0),
        fs.tasks.participants(s.task_id),
        [fs.vault.balance_of(d.address) for d in s.devices], fs.models.count(),
        [fs.devices.is_active(d.address) for d in s.devices],
        [fs.devices.public_key(d.address) for d in s.devices],
        fs.chain.balance(fs.tasks.address), fs.chain.balance(fs.vault.address),
    )


@pytest.mark.parametrize("caller_kind", ["stranger", "outsider device"])
@pytest.mark.parametrize(
    "name, stage, call, stranger_error, outsider_error", MUTATORS,
    ids=[m[0] for m in MUTATORS])
def test_outsider_cannot_call_mutator(fs, world, scenes, caller_kind, name, stage, call,
                                      stranger_error, outsider_error):
    """A stranger (unregistered) or a registered device that did not join calls a
    mutator reserved to someone else: it reverts with the exact error and changes
    nothing."""
    scene = _scene(fs, world, scenes, stage)
    caller = world.stranger if caller_kind == "stranger" else world.outsider
    assert fs.tasks.member_status(scene.task_id, caller.address) == MemberStatus.NONE
    before = _snapshot_state(scene)
    expect_revert(stranger_error if caller_kind == "stranger" else outsider_error,
                  lambda: call(scene, caller))
    assert _snapshot_state(scene) == before
    assert fs.tasks.state(scene.task_id).status in (TaskStatus.OPEN, TaskStatus.RUNNING)


def test_anyone_may_register_a_service_model(fs, world):
    """The counterpart of the registerVersion check: taskId 0 is open to anyone, and it
    changes no task's versions."""
    count = fs.models.count()
    fs.chain.transact(world.stranger, fs.models.functions.registerVersion(
        b"\x77" * 32, "svc", 0, 0, 0, NO_HASH))
    assert fs.models.count() == count + 1
    assert fs.models.version(count + 1).task_id == 0


# ---------------------------------------------------------------- (e) revoked devices


def test_revoked_waiting_device_never_replaces_an_eliminated_one(fs, world):
    """The worst of a round is replaced by the earliest waiting device; a revoked waiting
    device must be skipped (as openRound skips it), not made a participant."""
    a, b, c = world.devices[:3]
    task_id = publish(fs, world, rounds=2, min_participants=2, max_participants=2)
    for device in (a, b, c):
        fs.tasks.join(device, task_id)
    assert fs.tasks.waiting(task_id) == [c.address]
    fs.devices.revoke(world.owner, c.address)
    fs.tasks.open_round(world.aggregator, task_id,
                        fs.tasks.state(task_id).current_model)
    commit_all(fs, task_id, (a, b))
    # A scores B low, B scores A high: B is the worst and is eliminated.
    rows = {a: [1_000], b: [9_000]}
    for device, scores in rows.items():
        fs.tasks.commit_scores(device, task_id, 0, score_commitment(
            task_id, 0, scores, salt(device), device.address))
    for device, scores in rows.items():
        fs.tasks.reveal_scores(device, task_id, 0, scores, salt(device))
    outcome = fs.tasks.finalize_round(world.stranger, task_id, 0)
    assert outcome.quality == {a.address: 9_000, b.address: 1_000}

    participants = fs.tasks.participants(task_id)
    assert c.address not in participants, "the revoked device became a participant"
    assert fs.tasks.member_status(task_id, c.address) != MemberStatus.ACTIVE
    assert all(fs.devices.is_active(p) for p in participants)


@pytest.mark.parametrize("leaver", ["worst", "silent"])
def test_nobody_leaves_for_a_queue_of_revoked_devices(fs, world, leaver):
    """With only revoked devices waiting nobody can take the slot of the worst (or of a
    silent participant): at minParticipants it stays, as when nobody waits, instead of
    leaving with no replacement (found as a bug of the first _popWaiting fix)."""
    a, b, c = world.devices[:3]
    task_id = publish(fs, world, rounds=2, min_participants=2, max_participants=2)
    for device in (a, b, c):
        fs.tasks.join(device, task_id)
    fs.devices.revoke(world.owner, c.address)
    fs.tasks.open_round(world.aggregator, task_id,
                        fs.tasks.state(task_id).current_model)
    commit_all(fs, task_id, (a, b))
    rows = {a: [1_000], b: [9_000]}
    for device, scores in rows.items():
        fs.tasks.commit_scores(device, task_id, 0, score_commitment(
            task_id, 0, scores, salt(device), device.address))
    fs.tasks.reveal_scores(a, task_id, 0, rows[a], salt(a))
    if leaver == "worst":
        fs.tasks.reveal_scores(b, task_id, 0, rows[b], salt(b))
    else:
        travel_to(fs.chain, fs.tasks.round_info(task_id, 0).reveal_deadline + 1)
    fs.tasks.finalize_round(world.stranger, task_id, 0)
    assert fs.tasks.participants(task_id) == [a.address, b.address]


# ---------------------------------------------------------------- gas benchmark smoke


def _load_benchmark():
    path = ROOT / "benchmarks" / "gas_bench.py"
    spec = importlib.util.spec_from_file_location("fedshare_gas_bench", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


def test_gas_benchmark_quick_runs(tmp_path):
    """benchmarks/gas_bench.py --quick runs N = 5, 10 in both verification modes on its
    own chain and writes the markdown table."""
    bench = _load_benchmark()
    out = tmp_path / "gas.md"
    rows = bench.main(["--quick", "--output", str(out)])
    assert [(r.k, r.n) for r in rows] == [(0, 5), (0, 10), (4, 5), (4, 10)]
    for row in rows:
        assert min(row.open_round, row.commit_update, row.commit_scores,
                   row.reveal_scores) > 0
        assert row.finalize > max(row.commit_update, row.commit_scores, row.reveal_scores)
    text = out.read_text()
    assert "| all others (k = 0) | 5 |" in text
    assert "| 4 per update | 10 |" in text
    assert "gas_bench.py" in text
