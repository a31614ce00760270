"""Stateful property test of the whole protocol on the embedded chain.

A hypothesis ``RuleBasedStateMachine`` drives random interleavings of every mutator
(publish, join, open a round, commit updates, commit and reveal scores, time travel past
deadlines, finalise, aggregate, publish the model, cancel, withdraw refunds and rewards,
owner claims, device revocation) against one deployment. A Python model of the contracts
predicts the outcome of every call: success, or the exact custom error. After every
step the invariants below are checked against the chain.

* TaskRegistry's ETH balance == totalHeld() == the model's escrow + refunds owed, and
  each requester's refundOf equals the model's.
* RewardVault's ETH balance == totalOwed() == the sum of balanceOf over every device,
  and each balance equals the model's.
* Conservation: wei paid in (escrows) == wei paid out (refunds and rewards that reached
  the withdrawer, measured by its balance) + wei still held by the two contracts.
* Nobody is paid twice: each (task, round, device) is credited at most once.
* Eliminated (worst of the round), silent (no reveal) and non-committing participants
  are never credited in that round; every credit matches the model's proof of quality
  (median scores, leader, worst, proportional shares, remainder to the leader).
* ModelRegistry versions never change once registered (all re-read and compared).

Every call's outcome is predicted by mirroring the order of the contract's checks, and a
revert must carry exactly the predicted custom error (a success where a revert was
predicted, or the reverse, fails too). The model's clock is exact: eth-tester fixes the
timestamp of the next block when the previous one is mined, so phase and stall deadlines
are tested at and one second past their boundary.

Every example starts from a chain snapshot and reverts it at teardown, so examples are
independent; the contracts are deployed once for the module. Run with
``-s --hypothesis-show-statistics`` to see how many examples ran and what they did
(FEDSHARE_STATEFUL_EXAMPLES / FEDSHARE_STATEFUL_STEPS change the budget).
"""

from __future__ import annotations

import itertools
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any

import eth_tester.backends.pyevm.main as pyevm_backend
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    get_state_machine_test,
    initialize,
    invariant,
    precondition,
    rule,
)
from web3 import Web3

from offchain.chain.abi import decode_outputs
from offchain.chain.accounts import Wallet, new_wallet
from offchain.chain.clients.base import ContractClient
from offchain.chain.contracts import Fedshare, deploy
from offchain.chain.node import Chain, Receipt
from offchain.errors import TransactionReverted
from offchain.protocol import poq
from offchain.protocol.commitments import score_commitment
from offchain.protocol.terms import ETHER, MAX_PARTICIPANTS, MAX_SCORE, ZERO_ADDRESS
from offchain.protocol.types import MemberStatus, RoundStage, TaskParams, TaskStatus
from tests.contracts.helpers import params_from_event

MAX_TASKS = 3
MAX_REVOCATIONS = 2
LIVE = (TaskStatus.OPEN, TaskStatus.RUNNING)

EXAMPLES = int(os.environ.get("FEDSHARE_STATEFUL_EXAMPLES", "25"))
STEPS = int(os.environ.get("FEDSHARE_STATEFUL_STEPS", "25"))
MACHINE_SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                           HealthCheck.data_too_large],
    # FEDSHARE_STATEFUL_NO_SHRINK=1 reports a failure as found (shrinking a long run
    # of transactions takes minutes).
    phases=[p for p in Phase
            if p != Phase.shrink or not os.environ.get("FEDSHARE_STATEFUL_NO_SHRINK")],
)

# What the runs did, printed at the end of the test (run pytest with -s to see it).
STATS: Counter[str] = Counter()
# Each example's clock starts this far after the previous one's (see `env`).
EXAMPLE_TIME_STRIDE = 100_000
EXAMPLE_COUNTER = itertools.count()


# ---------------------------------------------------------------- chain plumbing


class RawViews:
    """View calls straight through eth-tester (about 3x cheaper than web3's call path:
    the invariants make a few dozen of them after every step), decoded as
    :meth:`Chain.view` decodes them (structs as tuples in ABI order)."""

    def __init__(self, chain: Chain, caller: str) -> None:
        self.tester = chain.w3.provider.ethereum_tester
        self.caller = caller
        self._outputs: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def raw(self, client: ContractClient, name: str, *args: Any) -> bytes:
        data = client.contract.encode_abi(name, args=list(args))
        out = self.tester.call(
            {"from": self.caller, "to": client.address, "data": data}, "latest")
        return bytes.fromhex(out[2:]) if isinstance(out, str) else bytes(out)

    def call(self, client: ContractClient, name: str, *args: Any) -> Any:
        key = (client.address, name)
        if key not in self._outputs:
            (abi,) = [i for i in client.contract.abi
                      if i.get("type") == "function" and i["name"] == name]
            self._outputs[key] = abi["outputs"]
        return decode_outputs(self._outputs[key], self.raw(client, name, *args))


@dataclass(frozen=True)
class Env:
    chain: Chain
    fs: Fedshare
    owners: tuple[Wallet, ...]
    devices: tuple[Wallet, ...]
    requesters: tuple[Wallet, ...]
    aggregator: Wallet
    stranger: Wallet
    owner_of: dict[str, str]
    start_time: int


@pytest.fixture(scope="module")
def env(chain: Chain):
    """A fresh deployment with 8 devices (4 per owner), 2 requesters, an aggregator and a
    stranger; rolled back when the module is done.

    Hypothesis replays choice sequences and requires a replay to draw exactly as before,
    so the chain must behave the same way relative to an example's start: each example
    starts its clock at its own multiple of EXAMPLE_TIME_STRIDE past `start_time` (a day
    ahead of the wall clock, which eth-tester would otherwise follow once it overtakes
    the chain), and prevrandao (which sets a round's assignment offset) is derived from
    the block number instead of os.urandom. Distinct start times keep blocks of
    different examples distinct: identical blocks would be deduplicated by py-evm, and
    receipts looked up by transaction hash could then come from another example."""
    snap = chain.snapshot()
    tester = chain.w3.provider.ethereum_tester
    original_os = pyevm_backend.os

    def mix_hash(size: int) -> bytes:
        number = tester.backend.chain.get_canonical_head().block_number
        return bytes(Web3.keccak(b"fedshare-prevrandao" + number.to_bytes(32, "big")))[:size]

    pyevm_backend.os = SimpleNamespace(urandom=mix_hash)
    try:
        deployer = new_wallet()
        owners = (new_wallet(), new_wallet())
        devices = tuple(new_wallet() for _ in range(8))
        requesters = (new_wallet(), new_wallet())
        aggregator, stranger = new_wallet(), new_wallet()
        for wallet in (deployer, *owners, *devices, *requesters, aggregator, stranger):
            chain.fund(wallet.address, 1_000 * ETHER)
        fs = deploy(chain, deployer)
        owner_of = {}
        for i, device in enumerate(devices):
            owner = owners[i // 4]
            fs.devices.register_device(owner, device)
            owner_of[device.address] = owner.address
        start_time = max(chain.now(), int(time.time())) + 86_400
        yield Env(chain, fs, owners, devices, requesters, aggregator, stranger, owner_of,
                  start_time)
    finally:
        pyevm_backend.os = original_os
        chain.revert(snap)


# ---------------------------------------------------------------- the model


@dataclass
class RoundModel:
    stage: RoundStage
    opened_at: int
    commit_deadline: int
    verify_deadline: int
    reveal_deadline: int
    members: list[str]
    size: int
    offset: int
    committed: set[str] = field(default_factory=set)
    secrets: dict[str, tuple[list[int], bytes]] = field(default_factory=dict)
    revealed: dict[str, list[int]] = field(default_factory=dict)

    def commits_closed(self, now: int) -> bool:
        return now > self.commit_deadline or len(self.committed) == len(self.members)

    def verify_closed(self, now: int) -> bool:
        return self.commits_closed(now) and (
            now > self.verify_deadline or len(self.secrets) == len(self.committed))

    def targets(self, device: str) -> list[str]:
        n = len(self.members)
        i = self.members.index(device)
        return [self.members[j] for j in poq.targets(i, n, self.size, self.offset)]


@dataclass
class TaskModel:
    tid: int
    requester: Wallet
    params: TaskParams
    aggregator: str
    allow: frozenset[str]
    status: TaskStatus
    last_progress: int
    escrow: int
    current_model: bytes
    model_version: int
    active: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    members: dict[str, MemberStatus] = field(default_factory=dict)
    epsilon: dict[str, int] = field(default_factory=dict)
    rounds: list[RoundModel] = field(default_factory=list)

    @property
    def live(self) -> bool:
        return self.status in LIVE

    @property
    def current(self) -> RoundModel | None:
        return self.rounds[-1] if self.rounds else None

    def member(self, device: str) -> MemberStatus:
        return self.members.get(device, MemberStatus.NONE)

    def stalled_after(self) -> int:
        p = self.params
        return (self.last_progress + p.train_duration + p.verify_duration
                + p.reveal_duration + p.grace_period)

    def idle(self) -> bool:
        return not self.rounds or self.rounds[-1].stage == RoundStage.CLOSED


def _params_strategy() -> st.SearchStrategy[TaskParams]:
    @st.composite
    def build(draw) -> TaskParams:
        min_p = draw(st.integers(2, 3))
        return TaskParams(
            category=b"stateful".ljust(32, b"\0"),
            model_hash=draw(st.sampled_from([b"\x11" * 32, b"\x12" * 32])),
            paillier_key_hash=b"\x22" * 32,
            rounds=draw(st.integers(1, 3)),
            train_duration=draw(st.sampled_from([100, 600])),
            verify_duration=draw(st.sampled_from([100, 300])),
            reveal_duration=draw(st.sampled_from([100, 300])),
            grace_period=draw(st.sampled_from([1, 500])),
            epsilon_budget=draw(st.sampled_from([1, 1_000_000, 10_000_000])),
            reward_per_round=draw(st.sampled_from(
                [ETHER, 10**15 + 1, 999_999_999_999_999_999, 7])),
            min_participants=min_p,
            max_participants=draw(st.integers(min_p, 5)),
            min_quality=draw(st.sampled_from([0, 0, 3_000, 6_000])),
            quality_gap=draw(st.sampled_from([MAX_SCORE, MAX_SCORE, 0, 1_500])),
            verifiers_per_update=draw(st.sampled_from([0, 2])),
        )

    return build()


# The ways publishTask's validation can fail, and the error each one must raise.
FLAWS: dict[str, tuple[dict[str, Any], str]] = {
    "bounds": ({"min_participants": 1}, "TaskRegistryInvalidParticipantBounds"),
    "schedule": ({"rounds": 0}, "TaskRegistryInvalidSchedule"),
    "reward": ({"reward_per_round": 0}, "TaskRegistryZeroReward"),
    "quality": ({"min_quality": MAX_SCORE + 1}, "TaskRegistryInvalidQualityThreshold"),
    "budget": ({"epsilon_budget": 0}, "TaskRegistryZeroEpsilonBudget"),
    "verifiers": ({"verifiers_per_update": 17}, "TaskRegistryTooManyVerifiers"),
}


class ProtocolMachine(RuleBasedStateMachine):
    """Random sequences of every mutator, each checked against the model."""

    def __init__(self, env: Env) -> None:
        super().__init__()
        self.env = env
        self.chain = env.chain
        self.fs = env.fs
        self.tester = env.chain.w3.provider.ethereum_tester
        self.views = RawViews(env.chain, env.stranger.address)
        self.snapshot = env.chain.snapshot()
        self.tester.time_travel(env.start_time + next(EXAMPLE_COUNTER) * EXAMPLE_TIME_STRIDE)
        STATS["examples"] += 1
        self.tasks: dict[int, TaskModel] = {}
        self.device_active = {d.address: True for d in env.devices}
        self.revocations = 0
        self.refunds: Counter[str] = Counter()
        self.balances: Counter[str] = Counter()
        self.credited: set[tuple[int, int, str]] = set()
        self.paid_in = 0
        self.paid_out = 0
        self.versions: list[bytes] = [
            self.views.raw(self.fs.models, "versionOf", i)
            for i in range(1, self.views.call(self.fs.models, "versionCount") + 1)]
        self.dirty = True
        self.salt_counter = 0

    def teardown(self) -> None:
        self.chain.revert(self.snapshot)

    # ------------------------------------------------------------ plumbing

    def now(self) -> int:
        """The timestamp the next transaction will have: eth-tester fixes the pending
        block's header (and its timestamp) when the previous block is mined."""
        return int(self.tester.get_block_by_number("pending")["timestamp"])

    def _send(self, expected: str | None, fn: Callable[[], Receipt],
              what: str) -> Receipt | None:
        """Runs a transaction: it must revert with `expected`, or succeed when None."""
        at = self.now()
        try:
            receipt = fn()
        except TransactionReverted as exc:
            if expected is None:
                raise AssertionError(f"{what}: unexpected revert {exc}") from None
            assert exc.error_name == expected, f"{what}: expected {expected}, got {exc}"
            STATS[f"revert {expected}"] += 1
            return None
        assert expected is None, f"{what}: expected {expected}, but it succeeded"
        block = self.chain.w3.eth.get_block(receipt.block_number)
        assert int(block["timestamp"]) == at, "the model's clock is off"
        STATS[f"ok {what}"] += 1
        self.dirty = True
        return receipt

    def _pull(self, wallet: Wallet, expected: str | None, fn: Callable[[], Receipt],
              what: str, amount: int) -> bool:
        """A withdrawal: books what actually reached `wallet` as paid out."""
        before = self.chain.balance(wallet.address)
        receipt = self._send(expected, fn, what)
        if receipt is None:
            return False
        fee = receipt.gas_used * int(receipt.raw["effectiveGasPrice"])
        received = self.chain.balance(wallet.address) - before + fee
        assert received == amount, f"{what}: received {received}, owed {amount}"
        self.paid_out += received
        return True

    def _append_version(self, model_hash: bytes, parent: int, task_id: int,
                        round_: int, uri: str) -> int:
        """Reads the version a successful call appended and checks its fields."""
        count = self.views.call(self.fs.models, "versionCount")
        assert count == len(self.versions) + 1, "exactly one version is appended"
        raw = self.views.raw(self.fs.models, "versionOf", count)
        version = self.views.call(self.fs.models, "versionOf", count)
        assert version[0] == model_hash and version[2] == parent
        assert version[3] == task_id and version[4] == round_ and version[7] == uri
        assert version[6].lower() == self.fs.tasks.address.lower()
        self.versions.append(raw)
        return count

    def _task_ids(self) -> list[int]:
        return sorted(self.tasks) + [len(self.tasks) + 1]  # the last one is unknown

    def _live_error(self, tid: int) -> str | None:
        t = self.tasks.get(tid)
        if t is None:
            return "TaskRegistryUnknownTask"
        if not t.live:
            return "TaskRegistryTaskNotLive"
        return None

    def _round_error(self, tid: int, round_: int, stage: RoundStage) -> str | None:
        error = self._live_error(tid)
        if error:
            return error
        t = self.tasks[tid]
        if not t.rounds or round_ != len(t.rounds) - 1:
            return "TaskRegistryWrongRound"
        if t.rounds[round_].stage != stage:
            return "TaskRegistryWrongStage"
        return None

    def _participant_error(self, t: TaskModel, device: str) -> str | None:
        if t.member(device) != MemberStatus.ACTIVE:
            return "TaskRegistryNotParticipant"
        if not self.device_active.get(device, False):
            return "TaskRegistryDeviceNotActive"
        return None

    def _draw_task(self, data) -> int:
        """A live task most of the time; else any id, the next (unknown) one included."""
        ids = self._task_ids()
        live = [i for i in ids if i in self.tasks and self.tasks[i].live]
        if live and data.draw(st.integers(0, 4), label="bias") > 0:
            return data.draw(st.sampled_from(live), label="task")
        return data.draw(st.sampled_from(ids), label="task")

    def _draw_round(self, data, t: TaskModel | None) -> int:
        current = len(t.rounds) - 1 if t and t.rounds else 0
        delta = data.draw(st.sampled_from([0, 0, 0, 0, 0, 0, -1, 1]), label="round delta")
        return max(0, current + delta)

    def _wallets(self) -> list[Wallet]:
        return [*self.env.devices, self.env.stranger]

    def _wallet(self, address: str) -> Wallet:
        for wallet in self._wallets():
            if wallet.address == address:
                return wallet
        raise KeyError(address)

    # ------------------------------------------------------------ actions

    def do_publish(self, requester: Wallet, params: TaskParams, aggregator: str | None,
                   allow: tuple[str, ...], expected: str | None) -> None:
        at = self.now()
        receipt = self._send(
            expected,
            lambda: self.fs.tasks.publish(requester, params, aggregator, allow)[1],
            "publishTask")
        if receipt is None:
            return
        (event,) = self.fs.tasks.receipt_events("TaskPublished", receipt)
        tid = int(event["args"]["taskId"])
        assert tid == len(self.tasks) + 1
        # The event alone rebuilds the task.
        assert params_from_event(event["args"]["params"]) == params
        assert tuple(event["args"]["allowList"]) == allow
        assert event["args"]["aggregator"] == (aggregator or ZERO_ADDRESS)
        assert event["args"]["escrow"] == params.escrow
        version = self._append_version(params.model_hash, 0, tid, 0, "")
        self.paid_in += params.escrow
        self.tasks[tid] = TaskModel(
            tid, requester, params, aggregator or ZERO_ADDRESS, frozenset(allow),
            TaskStatus.OPEN, at, params.escrow, params.model_hash, version)

    def do_join(self, tid: int, device: Wallet) -> None:
        t = self.tasks.get(tid)
        addr = device.address
        expected = self._live_error(tid)
        if expected is None:
            allowed = not t.allow or addr in t.allow or self.env.owner_of.get(addr) in t.allow
            if not self.device_active.get(addr, False):
                expected = "TaskRegistryDeviceNotActive"
            elif not allowed:
                expected = "TaskRegistryNotAllowed"
            elif t.member(addr) != MemberStatus.NONE:
                expected = "TaskRegistryAlreadyJoined"
        at = self.now()
        registry = self.fs.tasks
        if self._send(expected, lambda: registry.join(device, tid), "join") is None:
            return
        if t.rounds or len(t.active) >= t.params.max_participants:
            t.members[addr] = MemberStatus.WAITING
            t.waiting.append(addr)
        else:
            t.members[addr] = MemberStatus.ACTIVE
            t.active.append(addr)
            t.last_progress = at  # gathering participants restarts the stall clock

    def do_open(self, tid: int, caller: Wallet, model_hash: bytes) -> None:
        t = self.tasks.get(tid)
        expected = self._live_error(tid)
        if expected is None:
            promoted = self._fill(t, apply=False)
            if caller.address != t.aggregator:
                expected = "TaskRegistryNotAggregator"
            elif t.rounds and t.rounds[-1].stage != RoundStage.CLOSED:
                expected = "TaskRegistryRoundInProgress"
            elif len(promoted) < t.params.min_participants:
                expected = "TaskRegistryNotEnoughParticipants"
            elif model_hash != t.current_model:
                expected = "TaskRegistryModelMismatch"
        at = self.now()
        receipt = self._send(
            expected, lambda: self.fs.tasks.open_round(caller, tid, model_hash),
            "openRound")
        if receipt is None:
            return
        self._fill(t, apply=True)
        index = len(t.rounds)
        (event,) = self.fs.tasks.receipt_events("RoundOpened", receipt)
        assert list(event["args"]["participants"]) == t.active
        info = self.views.call(self.fs.tasks, "roundInfo", tid, index)
        p = t.params
        commit = at + p.train_duration
        round_ = RoundModel(RoundStage.OPEN, at, commit, commit + p.verify_duration,
                            commit + p.verify_duration + p.reveal_duration, list(t.active),
                            poq.assignment_size(len(t.active), p.verifiers_per_update), info[10])
        assert (info[0], info[1], info[2], info[3], info[4], info[9]) == (
            RoundStage.OPEN, round_.commit_deadline, round_.verify_deadline,
            round_.reveal_deadline, len(t.active), round_.size)
        args = event["args"]
        assert (args["commitDeadline"], args["verifyDeadline"], args["revealDeadline"],
                args["assignmentSize"], args["assignmentOffset"]) == (
            info[1], info[2], info[3], info[9], info[10])
        t.rounds.append(round_)
        t.status = TaskStatus.RUNNING
        t.last_progress = at
        STATS[f"round opened (n={len(t.active)}, k={p.verifiers_per_update})"] += 1

    def _pop_waiting(self, waiting: list[str], members: dict[str, MemberStatus]) -> str | None:
        """TaskSettlement.popWaiting: the earliest waiting device that is still active,
        now Active; revoked ones are dropped (Eliminated) on the way; at most
        MAX_PARTICIPANTS entries looked at. None when there is none."""
        looked_at = 0
        while waiting and looked_at < MAX_PARTICIPANTS:
            candidate = waiting.pop(0)
            looked_at += 1
            active = self.device_active.get(candidate, False)
            members[candidate] = MemberStatus.ACTIVE if active else MemberStatus.ELIMINATED
            if active:
                return candidate
        return None

    def _fill(self, t: TaskModel, apply: bool) -> list[str]:
        """openRound's promotion of waiting devices into free slots; on a copy of the
        model unless `apply`. Returns the active list it makes."""
        waiting = t.waiting if apply else list(t.waiting)
        members = t.members if apply else dict(t.members)
        active = t.active if apply else list(t.active)
        while len(active) < t.params.max_participants and waiting:
            device = self._pop_waiting(waiting, members)
            if device is None:
                break
            active.append(device)
        return active

    def do_commit_update(self, tid: int, round_: int, device: Wallet, epsilon: int) -> None:
        t = self.tasks.get(tid)
        addr = device.address
        expected = self._round_error(tid, round_, RoundStage.OPEN)
        if expected is None:
            r = t.rounds[round_]
            expected = self._participant_error(t, addr)
            if expected is None:
                if self.now() > r.commit_deadline:
                    expected = "TaskRegistryCommitTooLate"
                elif addr in r.committed:
                    expected = "TaskRegistryAlreadyCommitted"
                elif epsilon < t.epsilon.get(addr, 0):
                    expected = "TaskRegistryEpsilonDecreased"
                elif epsilon > t.params.epsilon_budget:
                    expected = "TaskRegistryPrivacyBudgetExceeded"
        update = bytes(Web3.keccak(text=f"update:{tid}:{round_}:{addr}"))
        if self._send(expected, lambda: self.fs.tasks.commit_update(
                device, tid, round_, update, epsilon), "commitUpdate") is None:
            return
        t.rounds[round_].committed.add(addr)
        t.epsilon[addr] = epsilon
        assert self.views.call(self.fs.tasks, "epsilonOf", tid, addr) == epsilon

    def do_commit_scores(self, tid: int, round_: int, device: Wallet,
                         scores: list[int]) -> None:
        t = self.tasks.get(tid)
        addr = device.address
        expected = self._round_error(tid, round_, RoundStage.OPEN)
        if expected is None:
            r = t.rounds[round_]
            now = self.now()
            expected = self._participant_error(t, addr)
            if expected is None:
                if not r.commits_closed(now):
                    expected = "TaskRegistryPhaseNotOpen"
                elif now > r.verify_deadline:
                    expected = "TaskRegistryPhaseClosed"
                elif addr not in r.committed:
                    expected = "TaskRegistryNotCommitted"
                elif addr in r.secrets:
                    expected = "TaskRegistryAlreadyScored"
        self.salt_counter += 1
        salt = bytes(Web3.keccak(text=f"salt:{self.salt_counter}:{addr}"))
        commitment = score_commitment(tid, round_, scores, salt, addr)
        if self._send(expected, lambda: self.fs.tasks.commit_scores(
                device, tid, round_, commitment), "commitScores") is None:
            return
        t.rounds[round_].secrets[addr] = (list(scores), salt)

    def do_reveal(self, tid: int, round_: int, device: Wallet, wrong_salt: bool) -> None:
        t = self.tasks.get(tid)
        addr = device.address
        scores: list[int] = []
        salt = b"\x01" * 32
        expected = self._round_error(tid, round_, RoundStage.OPEN)
        if expected is None:
            r = t.rounds[round_]
            now = self.now()
            expected = self._participant_error(t, addr)
            if expected is None:
                if not r.verify_closed(now):
                    expected = "TaskRegistryPhaseNotOpen"
                elif now > r.reveal_deadline:
                    expected = "TaskRegistryPhaseClosed"
                elif addr not in r.secrets:
                    expected = "TaskRegistryNoScoreCommitment"
                elif addr in r.revealed:
                    expected = "TaskRegistryAlreadyRevealed"
            if addr in r.secrets:
                scores, salt = r.secrets[addr]
                if wrong_salt:
                    salt = bytes(Web3.keccak(salt))
            if expected is None:
                if wrong_salt:
                    expected = "TaskRegistryRevealMismatch"
                elif len(scores) != r.size:
                    expected = "TaskRegistryScoreCountMismatch"
                elif any(s > MAX_SCORE for s in scores):
                    expected = "TaskRegistryScoreOutOfRange"
        if self._send(expected, lambda: self.fs.tasks.reveal_scores(
                device, tid, round_, scores, salt), "revealScores") is None:
            return
        r = t.rounds[round_]
        assignment = self.fs.tasks.assignment(tid, round_, addr)
        assert assignment == r.targets(addr), "assignmentOf is the circulant assignment"
        r.revealed[addr] = list(scores)

    def do_finalize(self, tid: int, round_: int, caller: Wallet) -> None:
        t = self.tasks.get(tid)
        expected = self._round_error(tid, round_, RoundStage.OPEN)
        now = self.now()
        if expected is None:
            r = t.rounds[round_]
            all_revealed = r.verify_closed(now) and len(r.revealed) == len(r.secrets)
            if not all_revealed and now <= r.reveal_deadline:
                expected = "TaskRegistryRoundNotOver"
        receipt = self._send(expected, lambda: self.fs.chain.transact(
            caller, self.fs.tasks.functions.finalizeRound(tid, round_)), "finalizeRound")
        if receipt is None:
            return
        self._settle(t, round_, receipt, now)

    def _settle(self, t: TaskModel, index: int, receipt: Receipt, now: int) -> None:
        """The model's proof of quality and settlement, compared with what happened."""
        r = t.rounds[index]
        members = r.members
        assert t.active == members, "the active set does not change during a round"
        n = len(members)
        revealed = [m in r.revealed for m in members]
        settled = poq.settle([r.revealed.get(m) for m in members],
                             k=t.params.verifiers_per_update, offset=r.offset,
                             min_quality=t.params.min_quality,
                             quality_gap=t.params.quality_gap)
        quality, ok = list(settled.quality), list(settled.accepted)
        leader = n if settled.leader is None else settled.leader
        worst = n if settled.worst is None else settled.worst
        reward = t.params.reward_per_round
        rewards = settled.rewards(reward)
        paid = reward if any(ok) else 0

        registry = self.fs.tasks
        assessed = registry.receipt_events("QualityAssessed", receipt)
        got = [(e["args"]["device"], e["args"]["quality"], e["args"]["accepted"],
                e["args"]["reward"]) for e in assessed]
        want = [(members[i], quality[i], ok[i], rewards[i]) for i in range(n)]
        assert got == want, f"proof of quality differs:\n got {got}\nwant {want}"
        (final,) = registry.receipt_events("RoundFinalized", receipt)
        assert final["args"]["leader"] == (members[leader] if leader < n else ZERO_ADDRESS)
        assert list(final["args"]["accepted"]) == [m for m, good in zip(members, ok) if good]
        assert final["args"]["rewardPaid"] == paid

        # Credits: at most once per (task, round, device), never to the worst, a silent
        # or a non-committing participant.
        credits = self.fs.vault.receipt_events("RewardCredited", receipt)
        for event in credits:
            device, amount = event["args"]["device"], int(event["args"]["amount"])
            key = (t.tid, index, device)
            assert key not in self.credited, f"{device} credited twice for {key}"
            self.credited.add(key)
            assert device in r.committed and device in r.secrets and device in r.revealed
            assert worst == n or device != members[worst], "the worst is never paid"
            self.balances[device] += amount
            STATS["credits"] += 1
        assert sum(int(e["args"]["amount"]) for e in credits) == paid
        assert len(credits) == sum(ok)
        for i, m in enumerate(members):
            if not ok[i]:
                submission = self.views.call(registry, "submissionOf", t.tid, index, m)
                assert submission[6] == 0

        t.escrow -= paid
        t.last_progress = now
        r.stage = RoundStage.FINALIZED if any(ok) else RoundStage.AGGREGATED
        eliminated = ZERO_ADDRESS
        removed = []
        if worst < n:
            gone = self._eliminate(t, members[worst], force=False, only_if_replaced=False)
            if gone:
                eliminated = members[worst]
                removed.append(gone)
        # Silent participants: a revoked one leaves; any other yields its slot to a
        # waiting (active) device, so staying silent cannot dodge elimination.
        for i, m in enumerate(members):
            if revealed[i]:
                continue
            revoked = not self.device_active.get(m, False)
            gone = self._eliminate(t, m, force=revoked, only_if_replaced=True)
            if gone:
                removed.append(gone)
        assert final["args"]["eliminated"] == eliminated
        events = registry.receipt_events("ParticipantEliminated", receipt)
        got_removed = [(e["args"]["device"], e["args"]["replacement"]) for e in events]
        assert got_removed == removed, (
            f"eliminations differ: got {got_removed}, want {removed}; members {members}, "
            f"revealed {revealed}, quality {quality}, worst {worst}, model active "
            f"{[self.device_active.get(m) for m in members]}, chain active "
            f"{[self.fs.devices.is_active(m) for m in members]}, waiting {t.waiting}, "
            f"min {t.params.min_participants}")
        assert self.fs.tasks.participants(t.tid) == t.active
        assert self.fs.tasks.waiting(t.tid) == t.waiting
        info = self.views.call(self.fs.tasks, "roundInfo", t.tid, index)
        assert (info[0], info[8], info[16]) == (r.stage, sum(ok), paid)
        STATS[f"round finalised ({sum(ok)} accepted, {len(removed)} removed)"] += 1

    def _eliminate(self, t: TaskModel, device: str, force: bool,
                   only_if_replaced: bool) -> tuple[str, str] | None:
        """TaskSettlement._eliminate: the earliest still-active waiting device takes the
        slot (revoked ones are dropped from the queue on the way, even when nobody is then
        removed); without one, `device` stays unless `force`, or unless it may simply
        leave (`only_if_replaced` false) without taking the task below its minimum."""
        replacement = self._pop_waiting(t.waiting, t.members)
        if replacement is None and not force and (
                only_if_replaced or len(t.active) <= t.params.min_participants):
            return None
        index = t.active.index(device)
        if replacement is not None:
            t.active[index] = replacement
        else:
            t.active[index] = t.active[-1]
            t.active.pop()
        t.members[device] = MemberStatus.ELIMINATED
        return (device, replacement or ZERO_ADDRESS)

    def do_aggregate(self, tid: int, round_: int, caller: Wallet) -> None:
        t = self.tasks.get(tid)
        expected = self._round_error(tid, round_, RoundStage.FINALIZED)
        if expected is None and caller.address != t.aggregator:
            expected = "TaskRegistryNotAggregator"
        at = self.now()
        if self._send(expected, lambda: self.fs.tasks.submit_aggregate(
                caller, tid, round_, bytes(Web3.keccak(text=f"sum:{tid}:{round_}"))),
                "submitAggregate") is None:
            return
        t.rounds[round_].stage = RoundStage.AGGREGATED
        t.last_progress = at

    def do_publish_model(self, tid: int, round_: int, caller: Wallet) -> None:
        t = self.tasks.get(tid)
        expected = self._round_error(tid, round_, RoundStage.AGGREGATED)
        if expected is None and caller.address != t.requester.address:
            expected = "TaskRegistryNotRequester"
        model = bytes(Web3.keccak(text=f"model:{tid}:{round_}"))
        uri = f"blob://{tid}/{round_}"
        at = self.now()
        if self._send(expected, lambda: self.fs.tasks.publish_model(
                caller, tid, round_, model, uri), "publishModel") is None:
            return
        t.rounds[round_].stage = RoundStage.CLOSED
        t.current_model = model
        t.last_progress = at
        t.model_version = self._append_version(model, t.model_version, tid, round_ + 1, uri)
        if round_ + 1 == t.params.rounds:
            t.status = TaskStatus.COMPLETED
            self.refunds[t.requester.address] += t.escrow
            t.escrow = 0
            STATS["task completed"] += 1

    def do_cancel(self, tid: int, caller: Wallet) -> None:
        t = self.tasks.get(tid)
        expected = self._live_error(tid)
        if expected is None:
            requester_may = caller.address == t.requester.address and t.idle()
            started = bool(t.rounds) or len(t.active) >= t.params.min_participants
            anyone_may = started and self.now() > t.stalled_after()
            if not requester_may and not anyone_may:
                expected = "TaskRegistryCannotCancel"
        if self._send(expected, lambda: self.fs.tasks.cancel(caller, tid),
                      "cancelTask") is None:
            return
        t.status = TaskStatus.CANCELLED
        self.refunds[t.requester.address] += t.escrow
        t.escrow = 0
        STATS["task cancelled"] += 1

    # ------------------------------------------------------------ rules

    @initialize(data=st.data())
    def first_task(self, data) -> None:
        """Every run starts with one valid task."""
        self._publish(data, valid=True)

    @precondition(lambda self: len(self.tasks) < MAX_TASKS)
    @rule(data=st.data())
    def publish(self, data) -> None:
        STATS["steps"] += 1
        self._publish(data, valid=False)

    def _publish(self, data, valid: bool) -> None:
        requester = data.draw(st.sampled_from(self.env.requesters), label="requester")
        params = data.draw(_params_strategy(), label="params")
        flaw = None if valid else data.draw(st.sampled_from([None] * 10 + sorted(FLAWS)),
                                            label="flaw")
        expected = None
        if flaw:
            changes, expected = FLAWS[flaw]
            params = replace(params, **changes)
        devices = [d.address for d in self.env.devices]
        owners = [o.address for o in self.env.owners]
        allow = data.draw(st.sampled_from(
            [(), (), (), (owners[0],), (devices[0], devices[5], devices[6], owners[0])]),
            label="allow-list")
        aggregator = self.env.aggregator.address
        if not valid and data.draw(st.integers(0, 4), label="no aggregator") == 0:
            aggregator = None
        self.do_publish(requester, params, aggregator, allow, expected)

    @precondition(lambda self: self.tasks)
    @rule(data=st.data())
    def join(self, data) -> None:
        STATS["steps"] += 1
        tid = self._draw_task(data)
        devices = data.draw(st.lists(st.sampled_from(self._wallets()), min_size=1,
                                     max_size=4, unique_by=lambda w: w.address),
                            label="devices")
        for device in devices:
            self.do_join(tid, device)

    @precondition(lambda self: self.tasks)
    @rule(data=st.data())
    def open_round(self, data) -> None:
        STATS["steps"] += 1
        tid = self._draw_task(data)
        t = self.tasks.get(tid)
        caller = data.draw(st.sampled_from(
            [self.env.aggregator] * 4 + [self.env.stranger, self.env.requesters[0]]),
            label="caller")
        model = t.current_model if t else b"\x11" * 32
        if data.draw(st.integers(0, 5), label="wrong model") == 0:
            model = b"\x99" * 32
        self.do_open(tid, caller, model)

    @precondition(lambda self: self.tasks)
    @rule(data=st.data())
    def round_action(self, data) -> None:
        """One of the round's calls, by random (often wrong) callers at random times."""
        STATS["steps"] += 1
        action = data.draw(st.sampled_from([
            self._commit_updates, self._commit_scores, self._reveal, self._finalize,
            self._aggregate, self._publish_model]), label="action")
        action(data)

    def _draw_round_task(self, data) -> int:
        """A task with a round under way, most of the time (else any id)."""
        running = [t.tid for t in self.tasks.values() if t.live and t.rounds
                   and t.rounds[-1].stage != RoundStage.CLOSED]
        if running and data.draw(st.integers(0, 3), label="running bias") > 0:
            return data.draw(st.sampled_from(running), label="task")
        return self._draw_task(data)

    def _commit_updates(self, data) -> None:
        tid = self._draw_round_task(data)
        t = self.tasks.get(tid)
        round_ = self._draw_round(data, t)
        pool = self._wallets()
        if t and t.active and data.draw(st.integers(0, 3), label="participants only") > 0:
            pool = [self._wallet(a) for a in t.active]
        devices = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3,
                                     unique_by=lambda w: w.address), label="devices")
        for device in devices:
            budget = t.params.epsilon_budget if t else 1
            spent = t.epsilon.get(device.address, 0) if t else 0
            epsilon = data.draw(st.sampled_from([
                spent, spent + 1, spent + budget // 4, budget, budget + 1,
                max(0, spent - 1)]), label="epsilon")
            self.do_commit_update(tid, round_, device, epsilon)

    def _commit_scores(self, data) -> None:
        tid = self._draw_round_task(data)
        t = self.tasks.get(tid)
        round_ = self._draw_round(data, t)
        pool = self._wallets()
        if t and t.active and data.draw(st.integers(0, 3), label="participants only") > 0:
            pool = [self._wallet(a) for a in t.active]
        size = t.rounds[-1].size if t and t.rounds else 1
        devices = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3,
                                     unique_by=lambda w: w.address), label="devices")
        for device in devices:
            self.do_commit_scores(tid, round_, device, self._draw_scores(data, size))

    def _draw_scores(self, data, size: int) -> list[int]:
        kind = data.draw(st.sampled_from(["good"] * 8 + ["count", "range"]),
                         label="score kind")
        score = st.one_of(st.sampled_from([0, 2_500, 5_000, 7_500, MAX_SCORE]),
                          st.integers(0, MAX_SCORE))
        if kind == "count":
            return data.draw(st.lists(score, max_size=size + 1).filter(
                lambda s: len(s) != size), label="scores")
        scores = data.draw(st.lists(score, min_size=size, max_size=size), label="scores")
        if kind == "range" and scores:
            scores[data.draw(st.integers(0, size - 1), label="index")] = MAX_SCORE + 1
        return scores

    def _reveal(self, data) -> None:
        tid = self._draw_round_task(data)
        t = self.tasks.get(tid)
        round_ = self._draw_round(data, t)
        pool = self._wallets()
        if t and t.active and data.draw(st.integers(0, 3), label="participants only") > 0:
            pool = [self._wallet(a) for a in t.active]
        devices = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3,
                                     unique_by=lambda w: w.address), label="devices")
        for device in devices:
            wrong = data.draw(st.integers(0, 5), label="wrong salt") == 0
            self.do_reveal(tid, round_, device, wrong)

    @precondition(lambda self: any(t.live for t in self.tasks.values()))
    @rule(data=st.data())
    def advance_time(self, data) -> None:
        """Jumps to just at or past a deadline of a live task (phase ends or stall)."""
        STATS["steps"] += 1
        now = self.now()
        marks = []
        for t in self.tasks.values():
            if not t.live:
                continue
            r = t.current
            if r is not None and r.stage == RoundStage.OPEN:
                marks += [r.commit_deadline, r.verify_deadline, r.reveal_deadline]
            marks.append(t.stalled_after())
        offset = data.draw(st.sampled_from([0, 1, 1, 1, 30]), label="offset")
        future = sorted({m + offset for m in marks if m + offset > now})
        if not future:
            return
        when = data.draw(st.sampled_from(future), label="when")
        self.tester.time_travel(when)
        assert self.now() >= when

    def _finalize(self, data) -> None:
        tid = self._draw_round_task(data)
        round_ = self._draw_round(data, self.tasks.get(tid))
        caller = data.draw(st.sampled_from(self._wallets()), label="caller")
        self.do_finalize(tid, round_, caller)

    def _aggregate(self, data) -> None:
        tid = self._draw_round_task(data)
        round_ = self._draw_round(data, self.tasks.get(tid))
        caller = data.draw(st.sampled_from([self.env.aggregator] * 3 + [self.env.stranger]),
                           label="caller")
        self.do_aggregate(tid, round_, caller)

    def _publish_model(self, data) -> None:
        tid = self._draw_round_task(data)
        t = self.tasks.get(tid)
        round_ = self._draw_round(data, t)
        requester = t.requester if t else self.env.requesters[0]
        caller = data.draw(st.sampled_from(
            [requester] * 3 + [self.env.aggregator, *self.env.requesters]), label="caller")
        self.do_publish_model(tid, round_, caller)

    @precondition(lambda self: self.tasks)
    @rule(data=st.data())
    def cancel(self, data) -> None:
        STATS["steps"] += 1
        tid = self._draw_task(data)
        caller = data.draw(st.sampled_from(
            [*self.env.requesters, self.env.stranger, self.env.devices[0]]), label="caller")
        self.do_cancel(tid, caller)

    @rule(data=st.data())
    def withdraw(self, data) -> None:
        """A requester's refund, a device's own withdrawal or an owner's claim."""
        STATS["steps"] += 1
        kind = data.draw(st.sampled_from([self._withdraw_refund, self._device_withdraw,
                                          self._owner_claim]), label="kind")
        kind(data)

    def _withdraw_refund(self, data) -> None:
        caller = data.draw(st.sampled_from([*self.env.requesters, self.env.stranger]),
                           label="caller")
        owed = self.refunds[caller.address]
        expected = None if owed else "TaskRegistryNothingToRefund"
        if self._pull(caller, expected, lambda: self.fs.tasks.withdraw_refund(caller),
                      "withdrawRefund", owed):
            self.refunds[caller.address] = 0

    def _device_withdraw(self, data) -> None:
        device = data.draw(st.sampled_from(self._wallets()), label="device")
        owed = self.balances[device.address]
        expected = None if owed else "RewardVaultNothingToWithdraw"
        if self._pull(device, expected, lambda: self.fs.vault.withdraw(device),
                      "withdraw", owed):
            self.balances[device.address] = 0

    def _owner_claim(self, data) -> None:
        owner = data.draw(st.sampled_from(self.env.owners), label="owner")
        devices = data.draw(st.lists(st.sampled_from(
            [d.address for d in self.env.devices]), min_size=1, max_size=5), label="devices")
        expected = None
        owed = 0
        for device in devices:
            if self.env.owner_of[device] != owner.address:
                expected = "RewardVaultNotDeviceOwner"
                break
        if expected is None:
            owed = sum(self.balances[d] for d in set(devices))
            if owed == 0:
                expected = "RewardVaultNothingToWithdraw"
        if self._pull(owner, expected, lambda: self.fs.vault.claim(owner, devices),
                      "claim", owed):
            for device in devices:
                self.balances[device] = 0

    @precondition(lambda self: self.revocations < MAX_REVOCATIONS)
    @rule(data=st.data())
    def revoke(self, data) -> None:
        STATS["steps"] += 1
        owner = data.draw(st.sampled_from(self.env.owners), label="owner")
        device = data.draw(st.sampled_from(self._wallets()), label="device").address
        if device not in self.env.owner_of:
            expected = "DeviceRegistryUnknownDevice"
        elif self.env.owner_of[device] != owner.address:
            expected = "DeviceRegistryNotDeviceOwner"
        elif not self.device_active[device]:
            expected = "DeviceRegistryDeviceRevoked"
        else:
            expected = None
        if self._send(expected, lambda: self.fs.devices.revoke(owner, device),
                      "revokeDevice") is None:
            return
        self.device_active[device] = False
        self.revocations += 1

    @precondition(lambda self: any(t.live for t in self.tasks.values()))
    @rule(data=st.data())
    def progress(self, data) -> None:
        """A few natural steps of a live task, so that random runs get deep: joins,
        opening, each phase by (a subset of) those who can act, time travel when nobody
        can, finalisation, aggregation, publication."""
        STATS["steps"] += 1
        for _ in range(data.draw(st.integers(1, 3), label="steps")):
            if not any(t.live for t in self.tasks.values()):
                return
            self._progress_once(data)

    @precondition(lambda self: any(t.live for t in self.tasks.values()))
    @rule(data=st.data())
    def progress_more(self, data) -> None:
        """The same as progress: a second entry doubles its share of the steps."""
        self.progress(data)

    def _progress_once(self, data) -> None:
        live = [t for t in self.tasks.values() if t.live]
        t = data.draw(st.sampled_from(live), label="task")
        r = t.current
        now = self.now()

        def some(wallets: list[Wallet]) -> list[Wallet]:
            if not wallets or data.draw(st.integers(0, 2), label="all") > 0:
                return wallets
            return data.draw(st.lists(st.sampled_from(wallets), min_size=1,
                                      unique_by=lambda w: w.address), label="subset")

        if r is None or r.stage == RoundStage.CLOSED:
            count = len(t.active) + len(t.waiting)
            if count < t.params.min_participants:
                fresh = [d for d in self.env.devices if t.member(d.address) == MemberStatus.NONE]
                # Enough to open, and one more to wait now and then.
                for device in some(fresh)[:t.params.max_participants + 1 - count]:
                    self.do_join(t.tid, device)
            else:
                self.do_open(t.tid, self.env.aggregator, t.current_model)
            return
        index = len(t.rounds) - 1
        if r.stage == RoundStage.FINALIZED:
            self.do_aggregate(t.tid, index, self.env.aggregator)
            return
        if r.stage == RoundStage.AGGREGATED:
            self.do_publish_model(t.tid, index, t.requester)
            return
        can = [self._wallet(a) for a in r.members
               if self._participant_error(t, a) is None]
        # Now and then a mistake: acting just after the phase's deadline, an ε that
        # decreases or passes the budget, malformed scores, a wrong salt.
        late = data.draw(st.integers(0, 9), label="late") == 0

        def mistake() -> bool:
            return data.draw(st.integers(0, 7), label="mistake") == 0

        if not r.commits_closed(now):
            todo = [w for w in can if w.address not in r.committed]
            deadline = r.commit_deadline
            if late and todo:
                self.tester.time_travel(deadline + 1)
            for device in some(todo):
                spent = t.epsilon.get(device.address, 0)
                budget = t.params.epsilon_budget
                step = data.draw(st.sampled_from([0, 1, budget // 3]), label="epsilon step")
                epsilon = min(spent + step, budget)
                if mistake():
                    epsilon = data.draw(st.sampled_from([budget + 1, max(0, spent - 1)]),
                                        label="bad epsilon")
                self.do_commit_update(t.tid, index, device, epsilon)
        elif not r.verify_closed(now):
            todo = [w for w in can if w.address in r.committed and w.address not in r.secrets]
            deadline = r.verify_deadline
            if late and todo:
                self.tester.time_travel(deadline + 1)
            for device in some(todo):
                if mistake():
                    scores = self._draw_scores(data, r.size)
                else:
                    scores = data.draw(st.lists(
                        st.sampled_from([0, 1_000, 4_000, 5_000, 9_000, MAX_SCORE]),
                        min_size=r.size, max_size=r.size), label="scores")
                self.do_commit_scores(t.tid, index, device, scores)
        elif now <= r.reveal_deadline and len(r.revealed) < len(r.secrets):
            todo = [w for w in can if w.address in r.secrets and w.address not in r.revealed]
            deadline = r.reveal_deadline
            if late and todo:
                self.tester.time_travel(deadline + 1)
            for device in some(todo):
                self.do_reveal(t.tid, index, device, wrong_salt=mistake())
        else:
            self.do_finalize(t.tid, index, self.env.stranger)
            return
        if not todo:
            self.tester.time_travel(deadline + 1)

    # ------------------------------------------------------------ invariants

    @invariant()
    def solvent_conserving_append_only(self) -> None:
        """Checked after every step; skipped when no transaction succeeded since the last
        check (the state, hence every value compared, is then unchanged)."""
        if not self.dirty:
            return
        self.dirty = False
        STATS["invariant checks"] += 1
        fs, views = self.fs, self.views
        tasks_balance = self.chain.balance(fs.tasks.address)
        vault_balance = self.chain.balance(fs.vault.address)
        escrow = sum(t.escrow for t in self.tasks.values())
        refunds = sum(self.refunds.values())
        assert tasks_balance == views.call(fs.tasks, "totalHeld") == escrow + refunds
        for requester in self.env.requesters:
            assert views.call(fs.tasks, "refundOf", requester.address) == (
                self.refunds[requester.address])
        device_sum = 0
        for device in self.env.devices:
            balance = views.call(fs.vault, "balanceOf", device.address)
            assert balance == self.balances[device.address], f"balance of {device.address}"
            device_sum += balance
        assert vault_balance == views.call(fs.vault, "totalOwed") == device_sum
        assert self.paid_in == self.paid_out + tasks_balance + vault_balance
        count = views.call(fs.models, "versionCount")
        assert count == len(self.versions)
        for version_id, raw in enumerate(self.versions, start=1):
            assert views.raw(fs.models, "versionOf", version_id) == raw, (
                f"model version {version_id} changed")


_ENV: list[Env] = []


@pytest.fixture(scope="module", autouse=True)
def _machine_env(env: Env):
    """Hands the deployment to the state machine and prints what the runs did."""
    STATS.clear()
    _ENV[:] = [env]
    yield
    _ENV.clear()
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(STATS.items()))
    print(f"\nstate machine: {summary}")


# Built with get_state_machine_test (not run_state_machine_as_test inside a test) so that
# pytest sees a hypothesis test and --hypothesis-show-statistics reports on it.
test_protocol_state_machine = get_state_machine_test(
    lambda: ProtocolMachine(_ENV[0]), settings=MACHINE_SETTINGS)
test_protocol_state_machine.__doc__ = (
    "Random sequences of the protocol keep every invariant (see the module docstring).")
