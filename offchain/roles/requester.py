"""The requester: publishes a task with escrow, decrypts only the aggregate, posts models."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from offchain.chain.accounts import Wallet
from offchain.chain.contracts import Fedshare
from offchain.chain.types import RoundStage, TaskParams, epsilon_to_chain
from offchain.crypto import EncryptedVector, PrivateKey, PublicKey, decrypt_sum
from offchain.errors import AggregationError, ConfigError
from offchain.learning.fedavg import apply_update
from offchain.learning.poq import DEFAULT_QUALITY_GAP
from offchain.learning.model import ModelSpec
from offchain.roles.common import load_model, store_model
from offchain.storage import BlobStore

__all__ = ["TaskPlan", "Requester"]


@dataclass(frozen=True, kw_only=True)
class TaskPlan:
    """The terms a requester offers; validated here, enforced again on chain.

    Phase durations are seconds: devices train and commit until T1, commit their scores
    until T2, reveal them until T3. `epsilon_budget` is the most ε (at δ = 1e-5) a device
    may spend in the task. `verifiers_per_update` 0 means every other participant
    verifies every update. An update is accepted only if its quality (basis points) is at
    least `min_quality` and at most `quality_gap` below the round's median. A non-empty
    `allow_list` (devices or owners) restricts who may join."""

    category: str = "mnist-digits"
    rounds: int = 5
    train_duration: int = 600
    verify_duration: int = 300
    reveal_duration: int = 300
    grace_period: int = 900
    epsilon_budget: float = 10.0
    reward_per_round: int = 5 * 10**17
    min_participants: int = 3
    max_participants: int = 8
    min_quality: int = 0
    quality_gap: int = DEFAULT_QUALITY_GAP
    verifiers_per_update: int = 0
    allow_list: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.category.encode()) > 32:
            raise ConfigError(f"category {self.category!r} is longer than 32 bytes")
        durations = (self.train_duration, self.verify_duration, self.reveal_duration,
                     self.grace_period)
        if self.rounds < 1 or min(durations) < 1 or self.reward_per_round < 1:
            raise ConfigError("rounds, durations and reward_per_round must be >= 1")
        if not 2 <= self.min_participants <= self.max_participants <= 64:
            raise ConfigError(
                f"need 2 <= min_participants ({self.min_participants}) <= "
                f"max_participants ({self.max_participants}) <= 64"
            )
        if not 0 <= self.min_quality <= 10_000:
            raise ConfigError(f"min_quality must be 0..10000 bp, got {self.min_quality}")
        if not 0 <= self.quality_gap <= 10_000:
            raise ConfigError(f"quality_gap must be 0..10000 bp, got {self.quality_gap}")
        if not self.epsilon_budget > 0:
            raise ConfigError(f"epsilon_budget must be > 0, got {self.epsilon_budget}")
        if self.verifiers_per_update < 0:
            raise ConfigError("verifiers_per_update must be >= 0")

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


class Requester:
    """Holds the task's Paillier private key; sees only sums of accepted updates."""

    def __init__(self, fs: Fedshare, wallet: Wallet, store: BlobStore, *,
                 spec: ModelSpec, public_key: PublicKey, private_key: PrivateKey) -> None:
        self.fs = fs
        self.wallet = wallet
        self.store = store
        self.spec = spec
        self.public_key = public_key
        self._private_key = private_key

    @property
    def address(self) -> str:
        return self.wallet.address

    def publish(self, plan: TaskPlan, initial_model: np.ndarray,
                aggregator: str | None) -> int:
        """Stores the initial model and publishes the task with its escrow."""
        model_hash = store_model(self.store, initial_model)
        params = plan.params(model_hash, self.public_key.key_id)
        task_id, _ = self.fs.publish_task(self.wallet, params, aggregator, plan.allow_list)
        return task_id

    def next_model(self, task_id: int, round_: int) -> np.ndarray:
        """Decrypts the round's aggregate and averages it into the next global model.

        With no accepted update the global model stays as it was. Raises
        AggregationError when the aggregate does not hold the accepted count."""
        info = self.fs.round_info(task_id, round_)
        if info.stage is not RoundStage.AGGREGATED:
            raise AggregationError(
                f"round {round_} of task {task_id} is {info.stage.name}, not AGGREGATED"
            )
        global_vec = load_model(self.store, info.global_model_hash, self.spec)
        if info.accepted == 0:
            return global_vec
        blob = self.store.get(info.aggregate_hash)
        aggregate = EncryptedVector.from_bytes(blob, expected_key_id=self.public_key.key_id)
        if aggregate.n_summands != info.accepted:
            raise AggregationError(
                f"aggregate 0x{info.aggregate_hash.hex()} sums {aggregate.n_summands} "
                f"updates, but round {round_} accepted {info.accepted}"
            )
        total = decrypt_sum(self._private_key, aggregate)
        mean = (total / aggregate.n_summands).astype(np.float32)
        return apply_update(global_vec, mean)

    def publish_model(self, task_id: int, round_: int, model: np.ndarray,
                      metrics: dict[str, float] | None = None) -> bytes:
        """Stores the new global model (and its metrics as a JSON blob) and records both
        hashes on chain, where the model becomes a registered version."""
        digest = store_model(self.store, model)
        metrics_hash = self.store.put(json.dumps(metrics or {}, sort_keys=True).encode())
        self.fs.publish_model(self.wallet, task_id, round_, digest,
                              f"blob:sha256:{digest.hex()}", metrics_hash)
        return digest

    def withdraw_refund(self) -> int:
        """Withdraws the unspent escrow owed to the requester; returns the wei."""
        amount = self.fs.refund_of(self.address)
        if amount:
            self.fs.withdraw_refund(self.wallet)
        return amount
