"""The driver steps the parties of a whole task on the embedded chain: silent devices,
devices at their ε budget and a restarted device never stall it, and every wei ends
where it belongs."""

from __future__ import annotations

import pytest

from offchain.chain.contracts import Deployment, Fedshare
from offchain.chain.node import Chain
from offchain.protocol.plan import TaskPlan
from offchain.protocol.terms import ETHER
from offchain.protocol.types import RoundStage, TaskStatus
from offchain.runner import RunConfig, run_task

KEY_BITS = 512


def _run(tmp_path, **overrides):
    chain = Chain.embedded_chain()
    base = dict(owners=1, devices_per_owner=4, key_bits=KEY_BITS, insecure_test_key=True,
                seed=3, home=tmp_path,
                plan=TaskPlan(rounds=2, reward_per_round=ETHER // 2, min_participants=3,
                              max_participants=4))
    base.update(overrides)
    report = run_task(RunConfig(**base), chain=chain)
    return chain, Fedshare(chain, Deployment(**report.deployment)), report


def _assert_settled(fs: Fedshare, report) -> None:
    """The task ended, both contracts hold exactly what they owe, nothing is owed."""
    state = fs.tasks.state(report.task_id)
    assert state.status in (TaskStatus.COMPLETED, TaskStatus.CANCELLED)
    assert fs.chain.balance(fs.tasks.address) == fs.tasks.total_held() == 0
    assert fs.chain.balance(fs.vault.address) == fs.vault.total_owed() == 0
    paid = sum(r.reward_paid for r in report.rounds)
    assert sum(report.claimed.values()) == paid
    assert report.refund == 2 * (ETHER // 2) - paid


def test_a_silent_device_never_stalls_the_task(tmp_path):
    chain, fs, report = _run(tmp_path, silent=(1,))
    assert fs.tasks.state(report.task_id).status is TaskStatus.COMPLETED
    silent = next(a for a, label in report.labels.items() if label == "o1-d2")
    for r in report.rounds:
        assert r.committed == r.participants - (1 if silent in _round_members(fs, report, r.round) else 0)
    assert all(silent not in r.accepted_devices for r in report.rounds)
    _assert_settled(fs, report)


def _round_members(fs: Fedshare, report, round_: int) -> list[str]:
    (opened,) = fs.tasks.logs("RoundOpened", from_block=fs.deployment.block,
                              taskId=report.task_id, round=round_)
    return list(opened["args"]["participants"])


def test_devices_stopping_at_their_budget_never_stall_the_task(tmp_path):
    # With 1,000 digits each, the default training reaches ε 2.53, 2.88 and 3.16 after
    # one, two and three rounds: a budget of 3 stops every device before the third.
    chain, fs, report = _run(tmp_path, plan=TaskPlan(
        rounds=3, reward_per_round=ETHER // 2, min_participants=3, max_participants=4,
        epsilon_budget=3.0))
    assert fs.tasks.state(report.task_id).status is TaskStatus.COMPLETED
    assert report.rounds[0].committed == report.rounds[0].participants
    assert report.rounds[-1].committed < report.rounds[-1].participants
    assert all(r.epsilon <= 3.0 for r in report.rounds)
    for r in range(3):
        assert fs.tasks.round_info(report.task_id, r).stage is RoundStage.CLOSED
    state = fs.tasks.state(report.task_id)
    assert state.escrow == 0
    assert fs.chain.balance(fs.tasks.address) == fs.tasks.total_held() == 0
    assert report.refund == 3 * (ETHER // 2) - sum(r.reward_paid for r in report.rounds)


def test_the_same_seed_gives_the_same_accuracies(tmp_path):
    _, _, first = _run(tmp_path / "a")
    _, _, second = _run(tmp_path / "b")
    assert [r.accuracy for r in first.rounds] == [r.accuracy for r in second.rounds]
    assert first.final_accuracy > first.initial_accuracy + 0.3
