"""The terms a requester offers for a task, checked before anything is sent."""

from __future__ import annotations

import math
from dataclasses import dataclass

from offchain.errors import ConfigError
from offchain.protocol.terms import (
    DEFAULTS,
    MAX_ALLOW_LIST,
    MAX_PARTICIPANTS,
    MAX_PHASE_DURATION,
    MAX_SCORE,
    MAX_VERIFIERS,
    epsilon_to_chain,
)
from offchain.protocol.types import TaskParams

__all__ = ["TaskPlan"]

_UINT128 = 2**128


@dataclass(frozen=True, kw_only=True)
class TaskPlan:
    """The terms a requester offers; validated here, enforced again on chain.

    Phase durations are seconds: devices train and commit until T1, commit their scores
    until T2, reveal them until T3; anyone may cancel a task with no progress for a
    round's phases plus `grace_period`. `epsilon_budget` is the most ε (at δ = 1e-5) a
    device may spend in the task. `verifiers_per_update` 0 means every other
    participant verifies every update. An update is accepted only if its quality
    (basis points) is at least `min_quality` and at most `quality_gap` below the
    round's median. A non-empty `allow_list` (devices or owners) restricts who may
    join. Raises ConfigError for any value the contract would refuse."""

    category: str = DEFAULTS.category
    rounds: int = DEFAULTS.rounds
    train_duration: int = DEFAULTS.train_duration
    verify_duration: int = DEFAULTS.verify_duration
    reveal_duration: int = DEFAULTS.reveal_duration
    grace_period: int = DEFAULTS.grace_period
    epsilon_budget: float = DEFAULTS.epsilon_budget
    reward_per_round: int = DEFAULTS.reward_per_round
    min_participants: int = DEFAULTS.min_participants
    max_participants: int = DEFAULTS.max_participants
    min_quality: int = DEFAULTS.min_quality
    quality_gap: int = DEFAULTS.quality_gap
    verifiers_per_update: int = DEFAULTS.verifiers_per_update
    allow_list: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.category.encode()) > 32:
            raise ConfigError(f"category {self.category!r} is longer than 32 bytes")
        if self.rounds < 1:
            raise ConfigError(f"rounds must be >= 1, got {self.rounds}")
        for name in ("train_duration", "verify_duration", "reveal_duration",
                     "grace_period"):
            value = getattr(self, name)
            if not 1 <= value <= MAX_PHASE_DURATION:
                raise ConfigError(
                    f"{name} must be 1..{MAX_PHASE_DURATION} seconds, got {value}")
        if not 1 <= self.reward_per_round < _UINT128:
            raise ConfigError(
                f"reward_per_round must be 1..2^128-1 wei, got {self.reward_per_round}")
        if not 2 <= self.min_participants <= self.max_participants <= MAX_PARTICIPANTS:
            raise ConfigError(
                f"need 2 <= min_participants ({self.min_participants}) <= "
                f"max_participants ({self.max_participants}) <= {MAX_PARTICIPANTS}")
        for name in ("min_quality", "quality_gap"):
            value = getattr(self, name)
            if not 0 <= value <= MAX_SCORE:
                raise ConfigError(f"{name} must be 0..{MAX_SCORE} bp, got {value}")
        if not (math.isfinite(self.epsilon_budget) and self.epsilon_budget > 0):
            raise ConfigError(
                f"epsilon_budget must be a finite number > 0, got {self.epsilon_budget}")
        if epsilon_to_chain(self.epsilon_budget) >= 2**64:
            raise ConfigError(f"epsilon_budget {self.epsilon_budget} is too large")
        verifiers = self.verifiers_per_update or self.max_participants - 1
        if self.verifiers_per_update < 0 or verifiers > MAX_VERIFIERS:
            raise ConfigError(
                f"verifiers_per_update must be 0..{MAX_VERIFIERS} (0 = every other "
                f"participant, here {self.max_participants - 1}), got "
                f"{self.verifiers_per_update}")
        if len(self.allow_list) > MAX_ALLOW_LIST:
            raise ConfigError(
                f"the allow-list has {len(self.allow_list)} entries, at most "
                f"{MAX_ALLOW_LIST} are allowed")

    @property
    def escrow(self) -> int:
        """The wei held in escrow at publication."""
        return self.rounds * self.reward_per_round

    def params(self, model_hash: bytes, key_hash: bytes) -> TaskParams:
        """The on-chain parameters for this plan."""
        return TaskParams(
            category=self.category.encode().ljust(32, b"\0"),
            model_hash=model_hash,
            paillier_key_hash=key_hash,
            rounds=self.rounds,
            train_duration=self.train_duration,
            verify_duration=self.verify_duration,
            reveal_duration=self.reveal_duration,
            grace_period=self.grace_period,
            epsilon_budget=epsilon_to_chain(self.epsilon_budget),
            reward_per_round=self.reward_per_round,
            min_participants=self.min_participants,
            max_participants=self.max_participants,
            min_quality=self.min_quality,
            quality_gap=self.quality_gap,
            verifiers_per_update=self.verifiers_per_update,
        )
