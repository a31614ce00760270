"""What every role does as a state machine over the chain: the driver steps a task to
its end with every wei where it belongs, stops by name when nobody can act and nobody
waits for a deadline, and a role stepped again after the end does nothing.

This module also holds the world the other role tests build on: three registered
devices of one owner, a published task, and the requester, aggregator, device and
owner roles over a shared local exchange."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from offchain import driver
from offchain.chain.contracts import Fedshare
from offchain.chain.node import Chain
from offchain.crypto import PrivateKey, PublicKey, generate_keypair
from offchain.driver import drive
from offchain.errors import TaskStalled
from offchain.learning.data import FederatedSplit, load_mnist, split_iid
from offchain.learning.model import ModelSpec, initial_vector
from offchain.privacy import AccountantStore, DPConfig
from offchain.protocol.phases import Phase, phase_of
from offchain.protocol.plan import TaskPlan
from offchain.protocol.terms import ETHER
from offchain.protocol.types import RoundInfo, RoundStage, Submission, TaskStatus
from offchain.roles import (
    AggregatorRole,
    DeviceRole,
    Owner,
    OwnerRole,
    RequesterRole,
    Role,
    Step,
    publish_task,
)
from offchain.roles.base import CANCEL_SLACK, FALLBACK_STAGGER
from offchain.storage.exchange import LocalExchange

SPEC = ModelSpec(name="logreg")
KEY_BITS = 512  # small test key: the maths is the same, the tests are faster
PLAN = TaskPlan(rounds=1, reward_per_round=ETHER, min_participants=3,
                max_participants=3)


# ---------------------------------------------------------------- the world
@functools.cache
def paillier_keys(which: int = 0) -> tuple[PublicKey, PrivateKey]:
    """Test key pair number `which` (generated once per process)."""
    return generate_keypair(bits=KEY_BITS, insecure_ok=True)


@functools.cache
def device_split() -> FederatedSplit:
    """The bundled digits split between three devices (about 1,066 training and 267
    validation samples each)."""
    return split_iid(load_mnist(), 3, seed=0)


@dataclass
class World:
    """One published task and its parties' roles, not yet stepped."""

    fs: Fedshare
    task_id: int
    exchange: LocalExchange
    state_dir: Path
    dp: DPConfig
    requester: RequesterRole
    aggregator: AggregatorRole
    devices: list[DeviceRole]
    owner: OwnerRole

    @property
    def chain(self) -> Chain:
        return self.fs.chain

    @property
    def public_key(self) -> PublicKey:
        return self.requester.public_key

    @property
    def roles(self) -> list[Role]:
        return [self.requester, self.aggregator, *self.devices, self.owner]

    def device(self, i: int, *, state_dir: Path | None = None,
               dp: DPConfig | None = None,
               paillier_key: PublicKey | None = None) -> DeviceRole:
        """Device `i` as a restarted process builds it: the same wallet, data, seed and
        (unless told otherwise) state directory, nothing carried over in memory."""
        return DeviceRole(self.fs, self.devices[i].wallet, self.task_id,
                          state_dir or self.state_dir, exchange=self.exchange,
                          data=device_split().devices[i], spec=SPEC, dp=dp or self.dp,
                          paillier_key=paillier_key or self.public_key, seed=i,
                          label=f"d{i}")

    def nonce(self, role: Role) -> int:
        return self.chain.nonce_of(role.address)

    def info(self, round_: int = 0) -> RoundInfo:
        return self.fs.tasks.round_info(self.task_id, round_)

    def phase(self, round_: int = 0) -> Phase:
        return phase_of(self.info(round_), self.chain.next_timestamp())

    def submission(self, i: int, round_: int = 0) -> Submission:
        return self.fs.tasks.submission(self.task_id, round_, self.devices[i].address)

    def logs(self, event: str, **indexed) -> list:
        return self.fs.tasks.logs(event, from_block=self.fs.deployment.block,
                                  taskId=self.task_id, **indexed)

    def accountant_path(self, i: int) -> Path:
        return AccountantStore(self.devices[i].state_dir / "privacy").path_for(
            self.task_id, self.devices[i].address)

    # ------------------------------------------------------------ moving it on
    def open_first_round(self) -> None:
        """Every device joins and the aggregator opens round 0 (one driver pass)."""
        drive_until(self.chain, [*self.devices, self.aggregator],
                    lambda: self.fs.tasks.state(self.task_id).rounds_opened == 1)

    def commit_updates(self, indices: Sequence[int] = (0, 1, 2)) -> None:
        """The devices at `indices` train and commit their round-0 updates."""
        for i in indices:
            assert self.devices[i].step().acted == "committed its update of round 0"

    def run_to_finalize(self, devices: Sequence[Role] | None = None) -> None:
        """Drives the devices until the current round may be finalised."""
        round_ = self.fs.tasks.state(self.task_id).current_round
        drive_until(self.chain, devices or self.devices,
                    lambda: self.phase(round_) is Phase.FINALIZE)

    def finalize(self) -> None:
        """The aggregator finalises round 0; nobody aggregates yet."""
        assert self.aggregator.step().acted == "finalised round 0"
        assert self.info().stage is RoundStage.FINALIZED


def drive_until(chain: Chain, roles: Sequence[Role],
                condition: Callable[[], bool]) -> None:
    """Drives `roles` (the driver's passes and clock) until `condition()` holds after
    a step. Fails the test when the roles finish first."""
    drive(chain, roles, until=condition)
    assert condition(), "every role finished before the condition held"


def make_world(fs: Fedshare, actors, tmp_path: Path, plan: TaskPlan = PLAN, *,
               dp: DPConfig | None = None, aggregator: str | None = None) -> World:
    """Registers three devices of `actors.owner`, publishes `plan` under test key 0
    with `actors.aggregator` (or `aggregator`) named, and builds every role."""
    public_key, private_key = paillier_keys()
    exchange = LocalExchange(tmp_path / "exchange")
    state_dir = tmp_path / "state"
    dp = dp or DPConfig()
    wallets = actors.devices[:3]
    Owner(fs, actors.owner).register_wallets(wallets)
    task_id = publish_task(fs, actors.requester, exchange, plan,
                           initial_vector(SPEC, seed=0), public_key.key_id,
                           aggregator or actors.aggregator.address)
    split = device_split()
    devices = [DeviceRole(fs, w, task_id, state_dir, exchange=exchange,
                          data=split.devices[i], spec=SPEC, dp=dp,
                          paillier_key=public_key, seed=i, label=f"d{i}")
               for i, w in enumerate(wallets)]
    return World(
        fs=fs, task_id=task_id, exchange=exchange, state_dir=state_dir, dp=dp,
        requester=RequesterRole(fs, actors.requester, task_id, state_dir,
                                exchange=exchange, spec=SPEC, private_key=private_key),
        aggregator=AggregatorRole(fs, actors.aggregator, task_id, state_dir,
                                  exchange=exchange, public_key=public_key),
        devices=devices,
        owner=OwnerRole(fs, actors.owner, task_id, state_dir, label="o1"),
    )


class Crash(BaseException):
    """The process dies (not an error any role handles)."""


@contextlib.contextmanager
def crash_before_broadcast(chain: Chain) -> Iterator[list[bytes]]:
    """Kills the process after a transaction is journalled, before it leaves: the
    node never sees it. Yields the raw transactions that were about to be sent."""
    lost: list[bytes] = []

    def die(raw: bytes) -> None:
        lost.append(bytes(raw))
        raise Crash("killed before the broadcast")

    chain.w3.eth.send_raw_transaction = die  # type: ignore[method-assign]
    try:
        yield lost
    finally:
        del chain.w3.eth.send_raw_transaction


@pytest.fixture
def world(fs, actors, tmp_path) -> World:
    return make_world(fs, actors, tmp_path)


# ---------------------------------------------------------------- whole tasks
def test_drive_runs_a_task_to_its_end_and_every_wei_ends_where_it_belongs(world):
    fs = world.fs
    requester_before = fs.chain.balance(world.requester.address)
    owner_before = fs.chain.balance(world.owner.address)

    drive(world.chain, world.roles)

    assert fs.tasks.state(world.task_id).status is TaskStatus.COMPLETED
    assert world.info().stage is RoundStage.CLOSED
    (final,) = world.logs("RoundFinalized", round=0)
    paid = final["args"]["rewardPaid"]
    assert paid == ETHER and len(final["args"]["accepted"]) == 2
    (published,) = world.logs("ModelPublished", round=0)
    assert published["args"]["modelHash"] == fs.tasks.state(world.task_id).current_model
    # The owner claimed what its devices earned; the requester took back the rest.
    assert world.owner.state.get("claimed") == paid
    assert world.requester.state.get("refunded", 0) == PLAN.escrow - paid == 0
    assert fs.vault.total_owed() == 0 == fs.chain.balance(fs.vault.address)
    assert fs.tasks.total_held() == 0 == fs.chain.balance(fs.tasks.address)
    assert fs.chain.balance(world.owner.address) > owner_before + paid - ETHER // 100
    assert fs.chain.balance(world.requester.address) < requester_before
    assert all(role.journal.pending() is None for role in world.roles)

    # Stepped again after the end, every role is done and sends nothing.
    nonces = [world.nonce(r) for r in world.roles]
    for role in world.roles:
        assert role.step() == Step(done=True)
        assert role.step() == Step(done=True)
    assert [world.nonce(r) for r in world.roles] == nonces


def test_every_role_is_done_after_a_cancelled_task_and_sends_nothing_more(world):
    fs = world.fs
    world.open_first_round()
    world.commit_updates((0,))
    # With a round in progress the requester may not cancel; once the task has
    # stalled anyone may. The requester's turn comes first, then each device's in
    # the order they joined, so that they do not all send the same cancel at once.
    view = world.requester.read()
    by_address = sorted(world.devices, key=lambda d: d.address.lower())
    assert world.requester.fallback_delay(view) == 0
    assert [d.fallback_delay(view) for d in by_address] == [
        CANCEL_SLACK + FALLBACK_STAGGER * i for i in range(3)]
    assert world.requester.step() == Step(until=view.stalled_after)
    world.chain.advance_past(view.stalled_after + world.devices[1].fallback_delay(view))
    assert world.devices[1].step().acted == "cancelled the stalled task"
    assert fs.tasks.state(world.task_id).status is TaskStatus.CANCELLED

    balance = fs.chain.balance(world.requester.address)
    assert world.requester.step().acted == "withdrew its refund"
    assert world.requester.state.get("refunded") == PLAN.escrow
    gained = fs.chain.balance(world.requester.address) - balance
    assert PLAN.escrow - ETHER // 100 < gained < PLAN.escrow
    nonces = [world.nonce(r) for r in world.roles]
    for role in world.roles:
        assert role.step() == Step(done=True), role
        assert role.step() == Step(done=True), role
    assert [world.nonce(r) for r in world.roles] == nonces
    assert len(world.logs("TaskCancelled")) == 1
    assert fs.tasks.total_held() == 0


# ---------------------------------------------------------------- stalls
def test_drive_names_who_waits_when_nobody_can_act_and_no_deadline_is_left(world):
    # Nobody joined: the aggregator waits for devices and the owner for the end; no
    # role waits for a time, so the clock must not move.
    now = world.chain.now()
    with pytest.raises(TaskStalled, match=r"nobody can act and no deadline is left; "
                                          r"waiting: aggregator, o1$"):
        drive(world.chain, [world.aggregator, world.owner])
    assert world.chain.now() == now
    assert world.logs("RoundOpened") == []


def test_drive_leaves_roles_that_are_done_out_of_the_stall_report(world, fs, actors,
                                                                  tmp_path):
    other = make_world(fs, actors, tmp_path / "other")
    fs.tasks.cancel(actors.requester, other.task_id)
    finished = other.device(0)  # a device of a task that has ended is done
    with pytest.raises(TaskStalled, match=r"waiting: aggregator, o1$") as stalled:
        drive(world.chain, [finished, world.aggregator, world.owner])
    assert "d0" not in str(stalled.value)
    assert finished.step() == Step(done=True)


def test_an_aggregator_the_task_does_not_name_waits_for_nobody(fs, actors, tmp_path):
    world = make_world(fs, actors, tmp_path, aggregator=actors.stranger.address)
    for device in world.devices:
        assert device.step().acted == "joined"
    nonce = world.nonce(world.aggregator)
    with pytest.raises(TaskStalled, match=r"waiting: aggregator$"):
        drive(world.chain, [world.aggregator])
    assert world.nonce(world.aggregator) == nonce
    assert world.logs("RoundOpened") == []


def test_drive_names_who_waits_when_every_deadline_waited_for_has_passed(world,
                                                                          monkeypatch):
    # Two of three devices join: the task never starts. The requester and the devices
    # wait for its stall time; once that has passed nobody may cancel it (it never
    # started) and nothing is left to wait for.
    monkeypatch.setattr(driver, "MAX_IDLE_ADVANCES", 3)  # spinning fails fast
    for device in world.devices[:2]:
        assert device.step() == Step(acted="joined")
    with pytest.raises(TaskStalled, match=r"nobody can act and no deadline is left; "
                                          r"waiting: requester, aggregator, d0, d1, "
                                          r"o1$"):
        drive(world.chain, [world.requester, world.aggregator, *world.devices[:2],
                            world.owner])
    assert world.fs.tasks.state(world.task_id).status is TaskStatus.OPEN


def test_when_the_aggregator_does_not_finalise_the_requester_does_before_any_device(
        world):
    world.open_first_round()
    world.commit_updates()
    world.run_to_finalize()
    # Every score is revealed before the reveal deadline; the aggregator is silent.
    # The others step in only past the deadline, the requester first, then each
    # device in turn.
    deadline = world.info().reveal_deadline
    assert world.requester.step() == Step(until=deadline)
    by_address = sorted(world.devices, key=lambda d: d.address.lower())
    assert [d.step() for d in by_address] == [
        Step(until=deadline + CANCEL_SLACK + FALLBACK_STAGGER * i) for i in range(3)]
    world.chain.advance_past(deadline)
    assert by_address[0].step() == Step(until=deadline + CANCEL_SLACK)
    assert world.requester.step() == Step(acted="finalised round 0")
    assert world.info().stage is RoundStage.FINALIZED
    (finalized,) = world.logs("RoundFinalized")
    assert world.fs.chain.w3.eth.get_transaction(
        finalized["transactionHash"])["from"] == world.requester.address
