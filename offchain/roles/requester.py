"""The requester: publishes a task with escrow, decrypts only the aggregate, posts
each round's model, and withdraws its refund when the task ends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from offchain.chain.accounts import Wallet
from offchain.chain.contracts import Fedshare
from offchain.crypto import EncryptedVector, PrivateKey, decrypt_sum
from offchain.errors import AggregationError
from offchain.learning.fedavg import apply_update
from offchain.learning.model import ModelSpec
from offchain.protocol.phases import Phase
from offchain.protocol.plan import TaskPlan
from offchain.protocol.types import RoundStage
from offchain.roles.base import Progress, Role, Step, TaskView
from offchain.roles.common import load_model, store_model
from offchain.storage.exchange import Exchange

__all__ = ["RequesterRole", "publish_task", "Evaluate"]

Evaluate = Callable[[np.ndarray], dict[str, float]]
"""Metrics of a model on the requester's own test data (recorded with each version)."""


def publish_task(fs: Fedshare, wallet: Wallet, exchange: Exchange, plan: TaskPlan,
                 initial_model: np.ndarray, key_id: bytes,
                 aggregator: str | None) -> int:
    """Stores the initial model and publishes the task with its escrow; returns its
    id. Raises InsufficientFunds when the wallet cannot pay the escrow and gas."""
    model_hash = store_model(exchange, initial_model)
    task_id, _ = fs.tasks.publish(wallet, plan.params(model_hash, key_id), aggregator,
                                  plan.allow_list)
    return task_id


class RequesterRole(Role):
    """Holds the task's Paillier private key; sees only sums of accepted updates."""

    kind = "requester"

    def __init__(self, fs: Fedshare, wallet: Wallet, task_id: int, state_dir: Path, *,
                 exchange: Exchange, spec: ModelSpec, private_key: PrivateKey,
                 evaluate: Evaluate | None = None, label: str | None = None,
                 progress: Progress | None = None) -> None:
        super().__init__(fs, wallet, task_id, state_dir, label=label or "requester",
                         progress=progress)
        self.exchange = exchange
        self.spec = spec
        self._private_key = private_key
        self.evaluate = evaluate

    @property
    def public_key(self):
        return self._private_key.public_key

    def decide(self, view: TaskView) -> Step:
        if not view.state.status.live:
            return self._withdraw()
        stalled = self.maybe_cancel(view)
        if stalled is not None:
            return stalled
        if view.info is None or view.round is None:
            return self.wait_for_stall(view)
        phase = view.phase
        if phase is Phase.PUBLISH:
            return self._publish(view.round)
        if phase is Phase.FINALIZE:
            return self.maybe_finalize(view, after_deadline=True) or Step.wait()
        return self.wait_for_stall(view)

    def fallback_delay(self, view: TaskView) -> int:
        """The requester, whose refund it is, steps in first."""
        return 0

    def next_model(self, round_: int) -> np.ndarray:
        """Decrypts the round's aggregate and averages it into the next global model.

        With no accepted update the global model stays as it was. Raises
        AggregationError when the aggregate does not hold the accepted count."""
        info = self.fs.tasks.round_info(self.task_id, round_)
        if info.stage is not RoundStage.AGGREGATED:
            raise AggregationError(f"round {round_} of task {self.task_id} is "
                                   f"{info.stage.name}, not AGGREGATED")
        global_vec = load_model(self.exchange, info.global_model_hash, self.spec)
        if info.accepted == 0:
            return global_vec
        aggregate = EncryptedVector.from_bytes(
            self.exchange.get(info.aggregate_hash), expected_key_id=self.public_key.key_id)
        if aggregate.n_summands != info.accepted:
            raise AggregationError(
                f"aggregate 0x{info.aggregate_hash.hex()} sums {aggregate.n_summands} "
                f"updates, but round {round_} accepted {info.accepted}")
        total = decrypt_sum(self._private_key, aggregate)
        mean = (total / aggregate.n_summands).astype(np.float32)
        return apply_update(global_vec, mean)

    def _publish(self, round_: int) -> Step:
        """Stores the new global model and its metrics and records both on chain,
        where the model becomes a registered version."""
        model = self.next_model(round_)
        metrics = self.evaluate(model) if self.evaluate else {}
        digest = store_model(self.exchange, model)
        metrics_hash = self.exchange.put(json.dumps(metrics, sort_keys=True).encode())
        self.fs.tasks.publish_model(self.wallet, self.task_id, round_, digest,
                                    f"blob:sha256:{digest.hex()}", metrics_hash,
                                    **self.tx("publishModel", round_))
        self.emit("published", round=round_, metrics=metrics)
        return Step(acted=f"published the model of round {round_}")

    def _withdraw(self) -> Step:
        amount = self.fs.tasks.refund_of(self.address)
        if amount:
            self.fs.tasks.withdraw_refund(self.wallet, **self.tx("withdrawRefund"))
            self.state.put(refunded=self.state.get("refunded", 0) + amount)
            self.emit("refunded", wei=amount)
            return Step(acted="withdrew its refund")
        return Step(done=True)
