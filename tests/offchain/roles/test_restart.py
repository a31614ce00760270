"""A device killed at any point and started again with the same wallet and state
directory loses nothing and does nothing twice: it keeps the ε it spent and refuses a
round over budget, reuses an update it trained but did not commit, reveals the scores
it committed, and broadcasts a journalled transaction exactly once. Its spending is
on disk before anything leaves, and a state file that is not its own is refused by
name before it sends anything."""

from __future__ import annotations

import functools
import json
import logging
import re
from pathlib import Path

import pytest

from offchain.chain.journal import TxJournal
from offchain.errors import ChainError, ConfigError, PrivacyError
from offchain.privacy import (
    AccountantStore,
    DPConfig,
    PrivacyAccountant,
    ledger,
    task_epsilon,
)
from offchain.protocol.commitments import score_commitment
from offchain.protocol.phases import Phase
from offchain.protocol.plan import TaskPlan
from offchain.protocol.terms import EPSILON_UNIT, ETHER, NO_HASH, epsilon_to_chain
from offchain.protocol.types import MemberStatus, RoundStage
from offchain.roles import Step
from offchain.roles.base import CANCEL_SLACK, RoleState
from tests.offchain.roles.test_roles import (
    Crash,
    World,
    crash_before_broadcast,
    device_split,
    drive_until,
    make_world,
)

DP = DPConfig()


@functools.cache
def epsilon_after(rounds: int) -> float:
    """ε of a device after `rounds` rounds of the default DP-SGD on its data."""
    samples = len(device_split().devices[0].train)
    return task_epsilon(DP, samples=samples, rounds=rounds)


def one_round_budget() -> float:
    """Enough for exactly one round of training."""
    return round((epsilon_after(1) + epsilon_after(2)) / 2, 6)


@pytest.fixture
def world(fs, actors, tmp_path) -> World:
    """A two-round task whose ε budget allows each device one round of training."""
    return make_world(fs, actors, tmp_path, TaskPlan(
        rounds=2, reward_per_round=ETHER, min_participants=3, max_participants=3,
        epsilon_budget=one_round_budget()), dp=DP)


def _no_rescoring(*args, **kwargs):
    raise AssertionError("a restarted device scored its peers again")


# ---------------------------------------------------------------- ε across restarts
def test_a_restarted_device_reports_the_epsilon_it_had_spent(world):
    device = world.devices[0]
    world.open_first_round()
    world.commit_updates((0,))
    assert device.epsilon == pytest.approx(epsilon_after(1))
    saved = json.loads(world.accountant_path(0).read_text())
    assert saved["epsilon"] == pytest.approx(device.epsilon)

    nonce = world.nonce(device)
    restarted = world.device(0)
    with pytest.raises(ConfigError, match=f"has not read task {world.task_id}"):
        _ = restarted.epsilon  # nothing is loaded before its first step
    # Already a member that committed: it picks its state up and sends nothing.
    assert restarted.step() == Step(until=world.info().commit_deadline)
    assert world.nonce(device) == nonce
    assert world.fs.tasks.member_status(world.task_id, device.address) is \
        MemberStatus.ACTIVE
    assert restarted.epsilon == device.epsilon
    assert restarted.accountant.history == device.accountant.history
    assert restarted.accountant.budget == one_round_budget()
    on_chain = world.fs.tasks.epsilon_of(world.task_id, device.address)
    assert on_chain == epsilon_to_chain(device.epsilon)
    assert on_chain / EPSILON_UNIT == pytest.approx(restarted.epsilon, abs=1e-6)


def test_a_restarted_device_refuses_a_round_over_budget(world, caplog, monkeypatch,
                                                         tmp_path):
    device = world.devices[0]
    world.open_first_round()
    world.commit_updates()
    world.run_to_finalize()
    world.finalize()
    assert world.aggregator.step().acted == "aggregated round 0"
    assert world.requester.step().acted == "published the model of round 0"
    assert world.aggregator.step() == Step(acted="opened round 1")
    saved = world.accountant_path(0).read_bytes()
    nonce = world.nonce(device)

    restarted = world.device(0)
    with caplog.at_level(logging.WARNING):
        assert restarted.step() == Step(acted="stopped at its ε budget")
    assert "d0 stops contributing" in caplog.text
    assert f"from {restarted.epsilon:.4f}" in caplog.text
    assert f"over the budget of {one_round_budget():g}" in caplog.text
    assert restarted.accountant.steps == device.accountant.steps
    assert world.accountant_path(0).read_bytes() == saved  # refusing writes nothing
    assert world.submission(0, round_=1).update_hash == NO_HASH
    assert world.nonce(device) == nonce

    # After yet another restart it still refuses, without even trying: a spent
    # budget stays spent.
    caplog.clear()
    again = world.device(0)
    with caplog.at_level(logging.WARNING):
        assert again.step() == Step(until=world.info(1).commit_deadline)
    assert "stops contributing" not in caplog.text
    assert again.epsilon == restarted.epsilon == device.epsilon
    assert world.nonce(device) == nonce

    # Without its state the same device would have trained again from ε = 0: the
    # refusals above come from the stored state alone.
    def unreachable(*args, **kwargs):
        raise ChainError("node unreachable")

    monkeypatch.setattr(world.fs.tasks, "commit_update", unreachable)
    amnesiac = world.device(0, state_dir=tmp_path / "amnesia")
    with pytest.raises(ChainError, match="node unreachable"):
        amnesiac.step()
    assert amnesiac.epsilon == pytest.approx(epsilon_after(1))
    assert amnesiac.accountant.steps == device.accountant.steps


def test_spending_is_saved_before_the_commit_is_sent(world, monkeypatch):
    device = world.devices[1]
    world.open_first_round()
    seen = {}

    def unreachable(*args, **kwargs):
        # What a crash at this instant would leave on disk.
        seen["accountant"] = AccountantStore(device.state_dir / "privacy").load(
            world.task_id, device.address, delta=DP.delta, budget=one_round_budget())
        seen["update"] = RoleState(device.state.path).get("round:0")
        raise ChainError("node unreachable")

    monkeypatch.setattr(world.fs.tasks, "commit_update", unreachable)
    with pytest.raises(ChainError, match="node unreachable"):
        device.step()

    assert seen["accountant"].steps == device.accountant.steps > 0
    assert seen["accountant"].epsilon == pytest.approx(epsilon_after(1))
    assert seen["update"]["epsilon_micro"] == epsilon_to_chain(device.epsilon)
    assert world.submission(1).update_hash == NO_HASH
    restarted = world.device(1)
    monkeypatch.undo()
    restarted.step()
    assert restarted.accountant.steps == device.accountant.steps
    assert restarted.epsilon == pytest.approx(epsilon_after(1))


def test_a_device_restarted_before_committing_reuses_its_saved_update(world,
                                                                       monkeypatch):
    device = world.devices[1]
    world.open_first_round()

    def unreachable(*args, **kwargs):
        raise ChainError("node unreachable")

    monkeypatch.setattr(world.fs.tasks, "commit_update", unreachable)
    with pytest.raises(ChainError, match="node unreachable"):
        device.step()
    monkeypatch.undo()
    saved = device.state.get("round:0")
    accountant = world.accountant_path(1).read_bytes()
    letters = {v.address: world.exchange.inbox(world.task_id, 0, v.address)
               for v in (world.devices[0], world.devices[2])}
    assert all(device.address in inbox for inbox in letters.values())
    nonce = world.nonce(device)

    restarted = world.device(1)
    assert restarted.step() == Step(acted="committed its update of round 0")

    # The very update it trained before the crash, with its ε, spent once.
    assert world.submission(1).update_hash == bytes.fromhex(saved["update_hash"])
    assert world.fs.tasks.epsilon_of(world.task_id, device.address) == \
        saved["epsilon_micro"]
    assert restarted.accountant.steps == device.accountant.steps
    assert restarted.epsilon == pytest.approx(epsilon_after(1))
    assert world.accountant_path(1).read_bytes() == accountant
    # Its letters went out again unchanged (the same letter twice is a no-op).
    for verifier, inbox in letters.items():
        assert world.exchange.inbox(world.task_id, 0, verifier) == inbox
    assert world.nonce(device) == nonce + 1
    assert len(world.logs("UpdateCommitted", device=device.address)) == 1


def test_a_failed_save_stops_the_round_before_the_commit(world, monkeypatch):
    device = world.devices[2]
    world.open_first_round()
    nonce = world.nonce(device)

    def disk_full(path, text, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ledger, "write_atomic", disk_full)
    path = world.accountant_path(2)
    with pytest.raises(PrivacyError, match=re.escape(
            f"cannot save the privacy accountant to {path}: [Errno 28] No space left")):
        device.step()

    assert world.submission(2).update_hash == NO_HASH
    assert world.logs("UpdateCommitted") == []
    assert world.nonce(device) == nonce
    assert device.state.get("round:0") is None
    assert device.address not in world.exchange.inbox(world.task_id, 0,
                                                      world.devices[0].address)


# ---------------------------------------------------------------- foreign state
def _accountant_file(tmp_path: Path, task_id: int, device: str, *, delta: float = 1e-5,
                     budget: float | None = None) -> bytes:
    """A valid accountant state file, kept elsewhere, of `device` in `task_id`."""
    store = AccountantStore(tmp_path / "elsewhere")
    accountant = PrivacyAccountant(delta=delta, budget=budget or one_round_budget())
    return store.save(task_id, device, accountant).read_bytes()


@pytest.mark.parametrize(("content", "dp", "why"), [
    (lambda w, tmp: b"{ torn", DP, "is not valid JSON"),
    (lambda w, tmp: _accountant_file(tmp, w.task_id, w.devices[1].address), DP,
     "belongs to device '{d1}', not {d0}"),
    (lambda w, tmp: _accountant_file(tmp, w.task_id + 1, w.devices[0].address), DP,
     "belongs to task {next_task}, not task {task}"),
    (lambda w, tmp: _accountant_file(tmp, w.task_id, w.devices[0].address, budget=5.0),
     DP, "has ε budget 5.0, but the task's budget is {budget}"),
    (lambda w, tmp: _accountant_file(tmp, w.task_id, w.devices[0].address),
     DPConfig(delta=1e-6), "reports ε at δ=1e-05, but the DP config uses δ=1e-06"),
], ids=["torn", "another-device", "another-task", "another-budget", "another-delta"])
def test_a_state_file_not_its_own_is_refused_by_name_before_joining(world, tmp_path,
                                                                    content, dp, why):
    path = world.accountant_path(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content(world, tmp_path))
    why = why.format(d0=world.devices[0].address, d1=world.devices[1].address,
                     task=world.task_id, next_task=world.task_id + 1,
                     budget=one_round_budget())
    restarted = world.device(0, dp=dp)
    nonce = world.nonce(restarted)

    with pytest.raises(PrivacyError) as refused:
        restarted.step()

    assert str(path) in str(refused.value)
    assert why in str(refused.value)
    assert world.nonce(restarted) == nonce
    assert world.fs.tasks.member_status(world.task_id, restarted.address) is \
        MemberStatus.NONE


# ---------------------------------------------------------------- scores
def test_a_device_killed_between_committing_and_revealing_its_scores_reveals_them(
        world, monkeypatch):
    device = world.devices[0]
    world.open_first_round()
    world.commit_updates()
    drive_until(world.chain, world.devices, lambda: world.info().score_committed == 3)
    assert world.info().revealed == 0
    saved = device.state.get("scores:0")
    nonce = world.nonce(device)

    restarted = world.device(0)  # the killed process's memory is gone
    monkeypatch.setattr(restarted, "score_peers", _no_rescoring)
    world.run_to_finalize([restarted, *world.devices[1:]])

    (revealed,) = world.logs("ScoresRevealed", round=0, device=device.address)
    assert list(revealed["args"]["scores"]) == saved["scores"]
    assert world.submission(0).revealed
    assert world.submission(0).score_commitment == score_commitment(
        world.task_id, 0, saved["scores"], bytes.fromhex(saved["salt"]), device.address)
    assert world.nonce(device) == nonce + 1
    assert world.info().revealed == 3
    world.finalize()
    assessed = world.logs("QualityAssessed", round=0)
    assert len(assessed) == 3 and all(e["args"]["quality"] > 5_000 for e in assessed)


# ---------------------------------------------------------------- the journal
def test_a_join_journalled_but_never_broadcast_is_sent_exactly_once_on_restart(world):
    device = world.devices[0]
    nonce = world.nonce(device)
    with crash_before_broadcast(world.chain) as lost:
        with pytest.raises(Crash):
            device.step()
    entry = TxJournal(device.state_dir / "journal.json").pending()
    assert entry is not None
    assert (entry.label, entry.sender, entry.nonce) == (
        f"join:{world.task_id}", device.address, nonce)
    assert lost == [bytes.fromhex(entry.raw)]
    assert world.nonce(device) == nonce
    assert world.logs("DeviceJoined") == []

    restarted = world.device(0)
    step = restarted.step()

    assert world.nonce(device) == nonce + 1
    (joined,) = world.logs("DeviceJoined", device=device.address)
    assert joined["transactionHash"].hex().removeprefix("0x") == \
        entry.tx_hash.removeprefix("0x")
    assert restarted.journal.pending() is None
    # It waits for the task to start, or to stall: then its turn to cancel comes
    # after the requester's (and other devices' before it).
    view = restarted.read()
    assert step == Step(until=view.stalled_after + restarted.fallback_delay(view))
    assert restarted.fallback_delay(view) >= CANCEL_SLACK
    # A step repeated after success sends nothing.
    assert restarted.step() == step
    assert world.nonce(device) == nonce + 1
    assert len(world.logs("DeviceJoined")) == 1


def test_a_score_commitment_lost_in_a_crash_is_broadcast_once_and_revealed(
        world, monkeypatch):
    device = world.devices[0]
    world.open_first_round()
    world.commit_updates()
    nonce = world.nonce(device)
    with crash_before_broadcast(world.chain):
        with pytest.raises(Crash):
            device.step()
    saved = device.state.get("scores:0")
    assert saved is not None  # the scores and salt are on disk before the commitment
    assert world.logs("ScoresCommitted") == []
    assert device.journal.pending().label == f"commitScores:{world.task_id}:0"

    restarted = world.device(0)
    monkeypatch.setattr(restarted, "score_peers", _no_rescoring)
    assert restarted.step() == Step(until=world.info().verify_deadline)
    (committed,) = world.logs("ScoresCommitted", device=device.address)
    assert committed["args"]["commitment"] == score_commitment(
        world.task_id, 0, saved["scores"], bytes.fromhex(saved["salt"]), device.address)
    assert world.nonce(device) == nonce + 1

    world.run_to_finalize([restarted, *world.devices[1:]])
    (revealed,) = world.logs("ScoresRevealed", device=device.address)
    assert list(revealed["args"]["scores"]) == saved["scores"]
    assert world.nonce(device) == nonce + 2
    assert world.phase() is Phase.FINALIZE
    world.finalize()
    assert world.info().stage is RoundStage.FINALIZED
