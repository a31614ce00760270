"""Python mirrors of the contracts' structs and enums."""

from __future__ import annotations

import math
from dataclasses import astuple, dataclass
from enum import IntEnum

__all__ = [
    "TaskStatus", "RoundStage", "MemberStatus", "TaskParams", "TaskState",
    "RoundInfo", "Submission", "ModelVersion", "RoundOutcome", "MAX_SCORE",
    "EPSILON_UNIT", "epsilon_to_chain",
]

MAX_SCORE = 10_000


class TaskStatus(IntEnum):
    NONE = 0
    OPEN = 1
    RUNNING = 2
    COMPLETED = 3
    CANCELLED = 4


class RoundStage(IntEnum):
    NONE = 0
    OPEN = 1
    FINALIZED = 2
    AGGREGATED = 3
    CLOSED = 4


class MemberStatus(IntEnum):
    NONE = 0
    ACTIVE = 1
    WAITING = 2
    ELIMINATED = 3


EPSILON_UNIT = 1_000_000
"""On chain, ε is an integer number of micro-ε."""


def epsilon_to_chain(epsilon: float) -> int:
    """ε as the contract counts it: micro-ε, rounded up so the chain never under-reports."""
    return int(math.ceil(epsilon * EPSILON_UNIT))


@dataclass(frozen=True)
class TaskParams:
    """What a requester fixes when publishing a task (mirrors ITaskRegistry.TaskParams).

    Durations are seconds; `epsilon_budget` is micro-ε; `verifiers_per_update` 0 means every
    other participant verifies every update; `quality_gap` is how many basis points below the
    round's median quality an accepted update may score (10,000: no relative test)."""

    category: bytes
    model_hash: bytes
    paillier_key_hash: bytes
    rounds: int
    train_duration: int
    verify_duration: int
    reveal_duration: int
    grace_period: int
    epsilon_budget: int
    reward_per_round: int
    min_participants: int
    max_participants: int
    min_quality: int = 0
    quality_gap: int = 10_000
    verifiers_per_update: int = 0

    @property
    def escrow(self) -> int:
        """The wei to send with publishTask."""
        return self.rounds * self.reward_per_round

    def as_tuple(self) -> tuple:
        return astuple(self)


@dataclass(frozen=True)
class TaskState:
    requester: str
    aggregator: str
    status: TaskStatus
    restricted: bool
    rounds_opened: int
    last_progress_at: int
    escrow: int
    current_model: bytes
    model_version: int


@dataclass(frozen=True)
class RoundInfo:
    stage: RoundStage
    commit_deadline: int
    verify_deadline: int
    reveal_deadline: int
    participants: int
    committed: int
    score_committed: int
    revealed: int
    accepted: int
    assignment_size: int
    assignment_offset: int
    leader: str
    eliminated: str
    global_model_hash: bytes
    aggregate_hash: bytes
    new_model_hash: bytes
    reward_paid: int


@dataclass(frozen=True)
class Submission:
    update_hash: bytes
    score_commitment: bytes
    epsilon: int
    quality: int
    revealed: bool
    accepted: bool
    reward: int


@dataclass(frozen=True)
class ModelVersion:
    """One entry of the append-only model registry."""

    model_hash: bytes
    metrics_hash: bytes
    parent: int
    task_id: int
    round: int
    created_at: int
    publisher: str
    uri: str


@dataclass(frozen=True)
class RoundOutcome:
    """What finalisation decided, read from the RoundFinalized and QualityAssessed events."""

    leader: str
    eliminated: str | None
    accepted: tuple[str, ...]
    reward_paid: int
    quality: dict[str, int]
    rewards: dict[str, int]
    gas_used: int
