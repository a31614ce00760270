"""Python mirrors of the contracts' structs and enums."""

from __future__ import annotations

from dataclasses import astuple, dataclass
from enum import IntEnum

__all__ = [
    "TaskStatus", "RoundStage", "MemberStatus", "TaskParams", "TaskState",
    "RoundInfo", "Submission", "RoundOutcome", "MAX_SCORE",
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


@dataclass(frozen=True)
class TaskParams:
    """What a requester fixes when publishing a task (mirrors ITaskRegistry.TaskParams)."""

    category: bytes
    model_hash: bytes
    paillier_key_hash: bytes
    rounds: int
    round_duration: int
    reward_per_round: int
    min_participants: int
    max_participants: int
    min_quality: int = 0

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
    rounds_opened: int
    last_progress_at: int
    escrow: int
    current_model: bytes


@dataclass(frozen=True)
class RoundInfo:
    stage: RoundStage
    commit_deadline: int
    score_deadline: int
    participants: int
    committed: int
    scored: int
    accepted: int
    leader: str
    eliminated: str
    global_model_hash: bytes
    aggregate_hash: bytes
    new_model_hash: bytes
    reward_paid: int


@dataclass(frozen=True)
class Submission:
    update_hash: bytes
    quality: int
    scored: bool
    accepted: bool
    reward: int


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
