"""Solvency: every wei paid in is either paid out or still held, and each contract's
ETH balance equals what it owes (TaskRegistry: totalHeld; RewardVault: totalOwed, the sum
of device balances), through whole tasks and for random rounds."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offchain.chain.types import MemberStatus, RoundStage, TaskStatus
from tests.conftest import task_params
from tests.contracts.helpers import (
    ETHER,
    STALL_FACTOR,
    addresses,
    advance_past,
    assert_solvent,
    close_round,
    commit_updates,
    expected_round,
    finalize,
    gas_cost,
    open_round,
    publish_task,
    submit_scores,
)

pytestmark = pytest.mark.usefixtures("registered")


class Ledger:
    """Wei into and out of the two contracts, as seen from outside."""

    def __init__(self, fs) -> None:
        self.fs = fs
        self.paid_in = 0
        self.paid_out = 0

    def held(self) -> int:
        chain = self.fs.chain
        return chain.balance(self.fs.tasks.address) + chain.balance(
            self.fs.vault.address
        )

    def publish(self, actors, **overrides) -> int:
        task_id = publish_task(self.fs, actors, **overrides)
        self.paid_in += task_params(**overrides).escrow
        return task_id

    def pull(self, wallet, send) -> int:
        """Runs `send` (a withdrawal by `wallet`) and books what reached the wallet."""
        before = self.fs.chain.balance(wallet.address)
        receipt = send()
        received = self.fs.chain.balance(wallet.address) - before + gas_cost(receipt)
        self.paid_out += received
        return received

    def check(self, devices) -> None:
        assert_solvent(self.fs, devices)
        assert self.paid_in == self.paid_out + self.held()


def test_a_whole_task_with_mixed_behaviour_stays_solvent(fs, actors, registered):
    d = registered  # d0-d3 belong to owner, d4-d5 to other_owner
    everyone = addresses(d)
    ledger = Ledger(fs)
    reward = ETHER + 13  # rounding remainders on every split
    task = ledger.publish(
        actors,
        rounds=3,
        reward_per_round=reward,
        min_participants=3,
        max_participants=4,
        min_quality=5000,
    )
    for device in d[:5]:
        fs.join(device, task)  # d4 waits
    # A second task that stalls mid-round and is cancelled by a stranger.
    other = ledger.publish(
        actors,
        rounds=2,
        reward_per_round=3 * ETHER,
        min_participants=2,
        max_participants=2,
    )
    fs.join(d[5], other)
    fs.join(d[0], other)
    open_round(fs, actors, other)
    ledger.check(everyone)

    # Round 0: all commit; d3 does not score; d2 is the worst and is replaced by d4.
    r = open_round(fs, actors, task)
    commit_updates(fs, task, r, d[:4])
    rows = {
        d[0]: [0, 8000, 4000, 9000],
        d[1]: [9000, 0, 3000, 9000],
        d[2]: [8000, 7000, 0, 9000],
    }
    submit_scores(fs, task, r, rows)
    outcome = finalize(fs, actors, task, r)
    model = expected_round(
        4, {0: rows[d[0]], 1: rows[d[1]], 2: rows[d[2]]}, reward, 5000
    )
    assert [outcome.rewards[x.address] for x in d[:4]] == model.rewards
    assert outcome.rewards[d[3].address] == 0  # committed, did not score
    assert outcome.eliminated == d[2].address
    assert fs.participants(task) == addresses([d[0], d[1], d[4], d[3]])
    assert sum(outcome.rewards.values()) == reward
    ledger.check(everyone)
    close_round(fs, actors, task, r)

    # Meanwhile the other task stalls and anyone cancels it.
    advance_past(fs, fs.task_state(other).last_progress_at + STALL_FACTOR * 600)
    fs.cancel_task(actors.stranger, other)
    assert fs.refund_of(actors.requester.address) == 6 * ETHER
    ledger.check(everyone)

    # Round 1: d3 stays silent; d1 falls below the quality threshold.
    r = open_round(fs, actors, task)
    commit_updates(fs, task, r, [d[0], d[1], d[4]])
    advance_past(fs, fs.round_info(task, r).commit_deadline)
    rows = {
        d[0]: [0, 4000, 9000, 9000],
        d[1]: [9000, 0, 8000, 9000],
        d[4]: [8000, 4500, 0, 9000],
    }
    submit_scores(fs, task, r, rows)
    outcome = finalize(fs, actors, task, r)
    model = expected_round(
        4, {0: rows[d[0]], 1: rows[d[1]], 2: rows[d[4]]}, reward, 5000
    )
    order = [d[0], d[1], d[4], d[3]]
    assert [outcome.rewards[x.address] for x in order] == model.rewards
    assert outcome.rewards[d[3].address] == 0  # did not commit
    # d1 is the worst (and below the threshold); nobody waits and 4 > 3: it leaves.
    assert outcome.eliminated == d[1].address
    assert fs.member_status(task, d[1].address) is MemberStatus.ELIMINATED
    assert sum(outcome.rewards.values()) == reward
    ledger.check(everyone)
    close_round(fs, actors, task, r)

    # Withdrawals in the middle of the task.
    ledger.pull(d[0], lambda: fs.withdraw_reward(d[0]))
    ledger.pull(actors.owner, lambda: fs.claim_rewards(actors.owner, addresses(d[1:4])))
    ledger.check(everyone)

    # Round 2: nobody commits; nothing is paid and the task completes.
    r = open_round(fs, actors, task)
    outcome = finalize(fs, actors, task, r)
    assert outcome.reward_paid == 0
    assert fs.round_info(task, r).stage is RoundStage.AGGREGATED
    close_round(fs, actors, task, r)
    assert fs.task_state(task).status is TaskStatus.COMPLETED
    assert fs.refund_of(actors.requester.address) == 6 * ETHER + reward
    ledger.check(everyone)

    refund = ledger.pull(actors.requester, lambda: fs.withdraw_refund(actors.requester))
    assert refund == 6 * ETHER + reward
    assert fs.total_held() == 0 == fs.chain.balance(fs.tasks.address)
    ledger.check(everyone)
    # What is left is exactly the unclaimed rewards (d4's, owed to other_owner).
    assert fs.total_owed() == fs.reward_balance(d[4].address) > 0
    ledger.pull(
        actors.other_owner, lambda: fs.claim_rewards(actors.other_owner, [d[4].address])
    )
    assert ledger.held() == 0 and ledger.paid_in == ledger.paid_out
    ledger.check(everyone)


# ---------------------------------------------------------------- property test

SCORES = st.one_of(
    st.sampled_from([0, 1, 4999, 5000, 9999, 10_000]), st.integers(0, 10_000)
)


@st.composite
def round_scenarios(draw):
    n = draw(st.integers(3, 5))
    committed = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    scored = [
        c and s
        for c, s in zip(
            committed, draw(st.lists(st.booleans(), min_size=n, max_size=n))
        )
    ]
    rows = {
        i: draw(st.lists(SCORES, min_size=n, max_size=n)) for i in range(n) if scored[i]
    }
    thresholds = st.one_of(
        st.just(0), st.sampled_from([1, 5000, 10_000]), st.integers(0, 10_000)
    )
    rewards = st.one_of(st.integers(1, 1_000), st.integers(1, 10 * ETHER))
    return {
        "n": n,
        "min_participants": draw(st.integers(2, n)),
        "waiting": draw(st.booleans()),
        "committed": committed,
        "rows": rows,
        "min_quality": draw(thresholds),
        "reward": draw(rewards),
    }


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(scenario=round_scenarios())
def test_any_round_pays_exactly_its_reward_to_accepted_participants_only(
    fs, actors, registered, scenario
):
    snap = fs.chain.snapshot()
    try:
        _check_round(fs, actors, registered, **scenario)
    finally:
        fs.chain.revert(snap)


def _check_round(
    fs,
    actors,
    devices,
    *,
    n,
    min_participants,
    waiting,
    committed,
    rows,
    min_quality,
    reward,
):
    everyone = addresses(devices)
    participants, spare = devices[:n], devices[n]
    task = publish_task(
        fs,
        actors,
        rounds=1,
        reward_per_round=reward,
        min_participants=min_participants,
        max_participants=n,
        min_quality=min_quality,
    )
    for device in participants:
        fs.join(device, task)
    if waiting:
        fs.join(spare, task)
    r = open_round(fs, actors, task)
    committers = [p for p, c in zip(participants, committed) if c]
    commit_updates(fs, task, r, committers)
    if len(committers) < n:
        advance_past(fs, fs.round_info(task, r).commit_deadline)
    submit_scores(fs, task, r, {participants[i]: row for i, row in rows.items()})
    outcome = finalize(fs, actors, task, r)

    model = expected_round(n, rows, reward, min_quality)
    paid = [outcome.rewards[p.address] for p in participants]
    assert paid == model.rewards
    assert [fs.reward_balance(p.address) for p in participants] == model.rewards
    assert [outcome.quality[p.address] for p in participants] == model.quality
    anyone_accepted = any(model.accepted)
    assert sum(paid) == (reward if anyone_accepted else 0) == outcome.reward_paid
    assert fs.round_info(task, r).stage is (
        RoundStage.FINALIZED if anyone_accepted else RoundStage.AGGREGATED
    )
    for i, p in enumerate(participants):
        if not committed[i]:
            assert paid[i] == 0  # non-committers never paid
    if model.worst is not None:
        worst = participants[model.worst].address
        assert paid[model.worst] == 0  # the worst is never paid
        leaves = waiting or n > min_participants
        assert outcome.eliminated == (worst if leaves else None)
        if leaves:
            assert fs.member_status(task, worst) is MemberStatus.ELIMINATED
    else:
        assert outcome.eliminated is None
    assert fs.task_state(task).escrow == reward - sum(paid)
    assert_solvent(fs, everyone)
    close_round(fs, actors, task, r)
    assert fs.refund_of(actors.requester.address) == reward - sum(paid)
    assert_solvent(fs, everyone)
