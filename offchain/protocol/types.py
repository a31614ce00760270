"""Python mirrors of the contracts' structs and enums.

Field names are the ABI's in snake case, in the ABI's order: the chain clients decode
structs by name (:func:`offchain.chain.abi.decode_struct`) and a test checks every
dataclass here against the compiled ABI.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from enum import IntEnum

__all__ = [
    "TaskStatus", "RoundStage", "MemberStatus", "DeviceStatus", "TaskParams",
    "TaskState", "RoundInfo", "Submission", "ModelVersion", "DeviceInfo",
    "RoundOutcome",
]


class TaskStatus(IntEnum):
    NONE = 0
    OPEN = 1
    RUNNING = 2
    COMPLETED = 3
    CANCELLED = 4

    @property
    def live(self) -> bool:
        """Open or running: the task still moves."""
        return self in (TaskStatus.OPEN, TaskStatus.RUNNING)


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


class DeviceStatus(IntEnum):
    UNKNOWN = 0
    ACTIVE = 1
    REVOKED = 2


@dataclass(frozen=True)
class TaskParams:
    """What a requester fixes when publishing a task (ITaskRegistry.TaskParams).

    Durations are seconds; `epsilon_budget` is micro-ε; `verifiers_per_update` 0 means
    every other participant verifies every update; `quality_gap` is how many basis
    points below the round's median quality an accepted update may score (10,000: no
    relative test). Build one from a :class:`~offchain.protocol.plan.TaskPlan`."""

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
    min_quality: int
    quality_gap: int
    verifiers_per_update: int

    @property
    def escrow(self) -> int:
        """The wei to send with publishTask."""
        return self.rounds * self.reward_per_round

    @property
    def round_span(self) -> int:
        """Seconds from opening a round to its reveal deadline."""
        return self.train_duration + self.verify_duration + self.reveal_duration

    def as_tuple(self) -> tuple:
        return astuple(self)


@dataclass(frozen=True)
class TaskState:
    """The moving parts of a task (ITaskRegistry.TaskState)."""

    requester: str
    aggregator: str
    status: TaskStatus
    restricted: bool
    rounds_opened: int
    last_progress_at: int
    escrow: int
    current_model: bytes
    model_version: int

    @property
    def current_round(self) -> int | None:
        """The last round opened, or None before the first."""
        return self.rounds_opened - 1 if self.rounds_opened else None


@dataclass(frozen=True)
class RoundInfo:
    """One round of a task (ITaskRegistry.RoundInfo)."""

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
    """One participant's part in one round (ITaskRegistry.Submission)."""

    update_hash: bytes
    score_commitment: bytes
    epsilon: int
    quality: int
    revealed: bool
    accepted: bool
    reward: int


@dataclass(frozen=True)
class ModelVersion:
    """One entry of the append-only model registry (IModelRegistry.ModelVersion)."""

    model_hash: bytes
    metrics_hash: bytes
    parent: int
    task_id: int
    round: int
    created_at: int
    publisher: str
    uri: str


@dataclass(frozen=True)
class DeviceInfo:
    """A registered device (IDeviceRegistry.Device)."""

    owner: str
    status: DeviceStatus
    registered_at: int
    public_key: bytes


@dataclass(frozen=True)
class RoundOutcome:
    """What finalisation decided, read from the RoundFinalized and QualityAssessed
    events."""

    leader: str
    eliminated: str | None
    accepted: tuple[str, ...]
    reward_paid: int
    quality: dict[str, int]
    rewards: dict[str, int]
    gas_used: int
