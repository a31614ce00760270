"""Solvency: every wei paid in is either paid out or still held, and each contract's
ETH balance equals what it owes (TaskRegistry: totalHeld; RewardVault: totalOwed, the sum
of device balances), through whole tasks and for random rounds."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offchain.protocol.terms import ETHER
from offchain.protocol.types import MemberStatus, RoundStage, TaskStatus
from tests.conftest import task_params
from tests.contracts.helpers import (
    addresses,
    assert_solvent,
    assigned_rows,
    close_round,
    commit_scores,
    commit_updates,
    expected_round,
    finalize,
    gas_cost,
    open_round,
    publish_task,
    reveal_scores,
    reverts_with,
    round_assignment,
    score_round,
    stalled_after,
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
        fs.tasks.join(device, task)  # d4 waits
    # A second task that stalls mid-round and is cancelled by a stranger.
    other = ledger.publish(
        actors,
        rounds=2,
        reward_per_round=3 * ETHER,
        min_participants=2,
        max_participants=2,
    )
    fs.tasks.join(d[5], other)
    fs.tasks.join(d[0], other)
    open_round(fs, actors, other)
    ledger.check(everyone)

    # Round 0: all commit; d3 commits to scores but never reveals them; d2 is the worst
    # and is replaced by d4.
    r = open_round(fs, actors, task)
    commit_updates(fs, task, r, d[:4])
    rows = {
        d[0]: [0, 8000, 4000, 9000],
        d[1]: [9000, 0, 3000, 9000],
        d[2]: [8000, 7000, 0, 9000],
        d[3]: [1, 1, 1, 0],
    }
    score_round(fs, task, r, rows, reveal=d[:3])
    outcome = finalize(fs, actors, task, r)
    model = expected_round(
        4, {0: rows[d[0]], 1: rows[d[1]], 2: rows[d[2]]}, reward, 5000
    )
    assert [outcome.rewards[x.address] for x in d[:4]] == model.rewards
    assert outcome.rewards[d[3].address] == 0  # committed to scores, did not reveal
    assert outcome.eliminated == d[2].address
    assert fs.tasks.participants(task) == addresses([d[0], d[1], d[4], d[3]])
    assert sum(outcome.rewards.values()) == reward
    ledger.check(everyone)
    close_round(fs, actors, task, r)

    # Meanwhile the other task stalls and anyone cancels it.
    fs.chain.advance_past(stalled_after(fs, other))
    fs.tasks.cancel(actors.stranger, other)
    assert fs.tasks.refund_of(actors.requester.address) == 6 * ETHER
    ledger.check(everyone)

    # Round 1: d3 stays silent; d1 falls below the quality threshold.
    r = open_round(fs, actors, task)
    commit_updates(fs, task, r, [d[0], d[1], d[4]])
    rows = {
        d[0]: [0, 4000, 9000, 9000],
        d[1]: [9000, 0, 8000, 9000],
        d[4]: [8000, 4500, 0, 9000],
    }
    score_round(fs, task, r, rows)
    outcome = finalize(fs, actors, task, r)
    model = expected_round(
        4, {0: rows[d[0]], 1: rows[d[1]], 2: rows[d[4]]}, reward, 5000
    )
    order = [d[0], d[1], d[4], d[3]]
    assert [outcome.rewards[x.address] for x in order] == model.rewards
    assert outcome.rewards[d[3].address] == 0  # did not commit
    # d1 is the worst (and below the threshold); nobody waits and 4 > 3: it leaves.
    assert outcome.eliminated == d[1].address
    assert fs.tasks.member_status(task, d[1].address) is MemberStatus.ELIMINATED
    assert sum(outcome.rewards.values()) == reward
    ledger.check(everyone)
    close_round(fs, actors, task, r)

    # Withdrawals in the middle of the task.
    ledger.pull(d[0], lambda: fs.vault.withdraw(d[0]))
    ledger.pull(actors.owner, lambda: fs.vault.claim(actors.owner, addresses(d[1:4])))
    ledger.check(everyone)

    # Round 2: nobody commits; nothing is paid and the task completes.
    r = open_round(fs, actors, task)
    outcome = finalize(fs, actors, task, r)
    assert outcome.reward_paid == 0
    assert fs.tasks.round_info(task, r).stage is RoundStage.AGGREGATED
    close_round(fs, actors, task, r)
    assert fs.tasks.state(task).status is TaskStatus.COMPLETED
    assert fs.tasks.refund_of(actors.requester.address) == 6 * ETHER + reward
    ledger.check(everyone)

    refund = ledger.pull(
        actors.requester, lambda: fs.tasks.withdraw_refund(actors.requester)
    )
    assert refund == 6 * ETHER + reward
    assert fs.tasks.total_held() == 0 == fs.chain.balance(fs.tasks.address)
    ledger.check(everyone)
    # What is left is exactly the unclaimed rewards (d4's, owed to other_owner).
    assert fs.vault.total_owed() == fs.vault.balance_of(d[4].address) > 0
    ledger.pull(
        actors.other_owner, lambda: fs.vault.claim(actors.other_owner, [d[4].address])
    )
    assert ledger.held() == 0 and ledger.paid_in == ledger.paid_out
    ledger.check(everyone)


# ---------------------------------------------------------------- property test

SCORES = st.one_of(
    st.sampled_from([0, 1, 4999, 5000, 9999, 10_000]), st.integers(0, 10_000)
)
# How far each participant gets in a round: 0 nothing, 1 commits its update, 2 also
# commits to scores, 3 also reveals them.
NOTHING, COMMITS, SCORES_COMMITTED, REVEALS = range(4)


@st.composite
def round_scenarios(draw):
    n = draw(st.integers(3, 5))
    steps = draw(st.lists(st.integers(NOTHING, REVEALS), min_size=n, max_size=n))
    rows = {
        i: draw(st.lists(SCORES, min_size=n, max_size=n))
        for i in range(n)
        if steps[i] >= SCORES_COMMITTED
    }
    non_revealers = [i for i in range(n) if steps[i] < REVEALS]
    thresholds = st.one_of(
        st.just(0), st.sampled_from([1, 5000, 10_000]), st.integers(0, 10_000)
    )
    rewards = st.one_of(st.integers(1, 1_000), st.integers(1, 10 * ETHER))
    return {
        "n": n,
        "min_participants": draw(st.integers(2, n)),
        "verifiers": draw(st.integers(0, n)),
        "waiting": draw(st.booleans()),
        "steps": steps,
        "rows": rows,
        "revoked": draw(st.sampled_from([None, *non_revealers])),
        "min_quality": draw(thresholds),
        "reward": draw(rewards),
    }


@settings(
    # FEDSHARE_SOLVENCY_EXAMPLES=500 for a longer hunt (about a second per example).
    max_examples=int(os.environ.get("FEDSHARE_SOLVENCY_EXAMPLES", "10")),
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
    verifiers,
    waiting,
    steps,
    rows,
    revoked,
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
        verifiers_per_update=verifiers,
    )
    for device in participants:
        fs.tasks.join(device, task)
    if waiting:
        fs.tasks.join(spare, task)
    r = open_round(fs, actors, task)
    assignment = round_assignment(fs, task, r)
    assert assignment.size == (n - 1 if verifiers == 0 or verifiers >= n - 1 else verifiers)
    at_least = lambda step: [p for p, s in zip(participants, steps) if s >= step]
    commit_updates(fs, task, r, at_least(COMMITS))
    revealed = assigned_rows(fs, task, r, {participants[i]: row for i, row in rows.items()})
    commit_scores(fs, task, r, revealed)
    reveal_scores(fs, task, r, {p: revealed[p] for p in at_least(REVEALS)})
    if revoked is not None:
        owner = actors.owner if revoked < 4 else actors.other_owner  # see `registered`
        fs.devices.revoke(owner, participants[revoked].address)
    outcome = finalize(fs, actors, task, r)

    revealers = {i: row for i, row in rows.items() if steps[i] == REVEALS}
    model = expected_round(n, revealers, reward, min_quality, assignment=assignment)
    paid = [outcome.rewards[p.address] for p in participants]
    assert paid == model.rewards
    assert [fs.vault.balance_of(p.address) for p in participants] == model.rewards
    assert [outcome.quality[p.address] for p in participants] == model.quality
    anyone_accepted = any(model.accepted)
    assert sum(paid) == (reward if anyone_accepted else 0) == outcome.reward_paid
    assert fs.tasks.round_info(task, r).stage is (
        RoundStage.FINALIZED if anyone_accepted else RoundStage.AGGREGATED
    )
    for i in range(n):
        if steps[i] < REVEALS:
            assert paid[i] == 0  # only revealers are ever paid

    # Elimination of the worst; then each participant that did not reveal leaves if it
    # was revoked (always) or if a waiting device can take its slot.
    active = list(addresses(participants))
    queue = [spare.address] if waiting else []

    def leave(gone: str) -> None:
        index = active.index(gone)
        if queue:
            active[index] = queue.pop(0)
        else:
            active[index] = active[-1]
            active.pop()

    if model.worst is not None:
        worst = participants[model.worst].address
        assert paid[model.worst] == 0  # the worst is never paid
        worst_leaves = bool(queue) or n > min_participants
        assert outcome.eliminated == (worst if worst_leaves else None)
        if worst_leaves:
            leave(worst)
    else:
        assert outcome.eliminated is None
    gone_all = [worst] if model.worst is not None and outcome.eliminated else []
    for i, device in enumerate(participants):
        if steps[i] < REVEALS and (i == revoked or queue):
            leave(device.address)
            gone_all.append(device.address)
    for gone in gone_all:
        assert fs.tasks.member_status(task, gone) is MemberStatus.ELIMINATED
    assert fs.tasks.participants(task) == active
    assert fs.tasks.waiting(task) == queue

    assert fs.tasks.state(task).escrow == reward - sum(paid)
    assert_solvent(fs, everyone)
    close_round(fs, actors, task, r)
    assert fs.tasks.refund_of(actors.requester.address) == reward - sum(paid)
    assert_solvent(fs, everyone)
    # The owner of d0-d3 collects exactly what its devices earned, once.
    mine = [p for p in participants[:4]]
    earned = sum(fs.vault.balance_of(p.address) for p in mine)
    if earned:
        before = fs.chain.balance(actors.owner.address)
        receipt = fs.vault.claim(actors.owner, addresses(mine))
        assert fs.chain.balance(actors.owner.address) == before + earned - gas_cost(receipt)
    with reverts_with("RewardVaultNothingToWithdraw", actors.owner.address):
        fs.vault.claim(actors.owner, addresses(mine))
    assert_solvent(fs, everyone)
