"""Where a round stands, as the contract decides it, from its state and the time.

The rules mirror ``TaskRegistry``: the train phase closes at the commit deadline T1 or
as soon as every participant committed; the verify phase at T2 or once every committer
committed scores; the reveal phase at T3 or once every score commitment is revealed;
then anyone may finalise. `now` is the timestamp the next block will carry: a call
is allowed while ``now <= deadline`` and a deadline has passed once ``now > deadline``.
"""

from __future__ import annotations

from enum import Enum

from offchain.protocol.types import RoundInfo, RoundStage, TaskParams, TaskState

__all__ = [
    "Phase",
    "phase_of",
    "commits_closed",
    "verify_closed",
    "reveals_closed",
    "phase_deadline",
    "stalled_after",
    "may_anyone_cancel",
]


class Phase(Enum):
    """What a round waits for."""

    TRAIN = "train"          # participants commit their updates
    VERIFY = "verify"        # committers commit to their scores
    REVEAL = "reveal"        # score committers reveal
    FINALIZE = "finalize"    # anyone may settle the round
    AGGREGATE = "aggregate"  # the aggregator posts the sum of accepted updates
    PUBLISH = "publish"      # the requester posts the new global model
    CLOSED = "closed"        # the round is over
    NONE = "none"            # no such round


def commits_closed(info: RoundInfo, now: int) -> bool:
    """The train phase is over (TaskRegistry._commitsClosed)."""
    return now > info.commit_deadline or info.committed == info.participants


def verify_closed(info: RoundInfo, now: int) -> bool:
    """The verify phase is over (TaskRegistry._verifyClosed)."""
    return commits_closed(info, now) and (
        now > info.verify_deadline or info.score_committed == info.committed)


def reveals_closed(info: RoundInfo, now: int) -> bool:
    """The round may be finalised (TaskRegistry.finalizeRound)."""
    return (verify_closed(info, now) and info.revealed == info.score_committed) or (
        now > info.reveal_deadline)


def phase_of(info: RoundInfo, now: int) -> Phase:
    """The phase of the round described by `info` at time `now`."""
    if info.stage is RoundStage.NONE:
        return Phase.NONE
    if info.stage is RoundStage.FINALIZED:
        return Phase.AGGREGATE
    if info.stage is RoundStage.AGGREGATED:
        return Phase.PUBLISH
    if info.stage is RoundStage.CLOSED:
        return Phase.CLOSED
    if not commits_closed(info, now):
        return Phase.TRAIN
    if not verify_closed(info, now):
        return Phase.VERIFY
    if not reveals_closed(info, now):
        return Phase.REVEAL
    return Phase.FINALIZE


def phase_deadline(info: RoundInfo, phase: Phase) -> int | None:
    """The deadline after which `phase` closes by time alone (None when only a party
    can close it)."""
    return {Phase.TRAIN: info.commit_deadline, Phase.VERIFY: info.verify_deadline,
            Phase.REVEAL: info.reveal_deadline}.get(phase)


def stalled_after(params: TaskParams, state: TaskState) -> int:
    """When anyone may cancel a task with no progress (TaskRegistry.cancelTask): the
    last progress plus one round's phases plus the grace period."""
    return state.last_progress_at + params.round_span + params.grace_period


def may_anyone_cancel(params: TaskParams, state: TaskState, active: int,
                      now: int) -> bool:
    """Whether a stranger's cancelTask succeeds at `now`: the task is live, it has
    started (a round was opened, or `active` participants reach the minimum) and it
    stalled."""
    started = state.rounds_opened > 0 or active >= params.min_participants
    return state.status.live and started and now > stalled_after(params, state)
