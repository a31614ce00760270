"""Client of the TaskRegistry: tasks, rounds, commitments, settlement, refunds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from offchain.chain.accounts import Wallet
from offchain.chain.clients.base import ContractClient
from offchain.chain.node import Receipt
from offchain.protocol.terms import ZERO_ADDRESS
from offchain.protocol.types import (
    MemberStatus,
    RoundInfo,
    RoundOutcome,
    Submission,
    TaskParams,
    TaskState,
)

__all__ = ["TaskRegistryClient"]


class TaskRegistryClient(ContractClient):
    """Every mutator takes the sending wallet first and optional transaction options
    (``journal``, ``label``: see :meth:`offchain.chain.node.Chain.transact`)."""

    # ------------------------------------------------------------ mutators
    def publish(self, requester: Wallet, params: TaskParams,
                aggregator: str | None = None, allow_list: Sequence[str] = (),
                **tx: Any) -> tuple[int, Receipt]:
        """Publishes a task with its escrow; returns the new task id. A non-empty
        `allow_list` (devices or owners) restricts who may join."""
        receipt = self._send(requester, "publishTask", params.as_tuple(),
                             aggregator or ZERO_ADDRESS, list(allow_list),
                             value=params.escrow, **tx)
        (event,) = self.receipt_events("TaskPublished", receipt)
        return int(event["args"]["taskId"]), receipt

    def set_aggregator(self, requester: Wallet, task_id: int, aggregator: str,
                       **tx: Any) -> Receipt:
        return self._send(requester, "setAggregator", task_id, aggregator, **tx)

    def join(self, device: Wallet, task_id: int, **tx: Any) -> Receipt:
        return self._send(device, "join", task_id, **tx)

    def open_round(self, aggregator: Wallet, task_id: int, model_hash: bytes,
                   **tx: Any) -> Receipt:
        return self._send(aggregator, "openRound", task_id, model_hash, **tx)

    def commit_update(self, device: Wallet, task_id: int, round_: int,
                      update_hash: bytes, epsilon: int, **tx: Any) -> Receipt:
        """Train phase: the update's hash and the device's ε spent so far (micro-ε)."""
        return self._send(device, "commitUpdate", task_id, round_, update_hash, epsilon,
                          **tx)

    def commit_scores(self, device: Wallet, task_id: int, round_: int,
                      commitment: bytes, **tx: Any) -> Receipt:
        """Verify phase: the commitment to the scores (see
        :func:`offchain.protocol.commitments.score_commitment`)."""
        return self._send(device, "commitScores", task_id, round_, commitment, **tx)

    def reveal_scores(self, device: Wallet, task_id: int, round_: int,
                      scores: Sequence[int], salt: bytes, **tx: Any) -> Receipt:
        """Reveal phase: the scores of the assigned updates and the salt."""
        return self._send(device, "revealScores", task_id, round_, list(scores), salt,
                          **tx)

    def finalize_round(self, caller: Wallet, task_id: int, round_: int,
                       **tx: Any) -> RoundOutcome:
        """Finalises a round and returns what the contract decided."""
        receipt = self._send(caller, "finalizeRound", task_id, round_, **tx)
        return self.outcome(receipt)

    def outcome(self, receipt: Receipt) -> RoundOutcome:
        """What the finalisation in `receipt` decided."""
        (final,) = self.receipt_events("RoundFinalized", receipt)
        assessed = self.receipt_events("QualityAssessed", receipt)
        args = final["args"]
        return RoundOutcome(
            leader=str(args["leader"]),
            eliminated=None if args["eliminated"] == ZERO_ADDRESS else str(args["eliminated"]),
            accepted=tuple(str(a) for a in args["accepted"]),
            reward_paid=int(args["rewardPaid"]),
            quality={str(e["args"]["device"]): int(e["args"]["quality"]) for e in assessed},
            rewards={str(e["args"]["device"]): int(e["args"]["reward"]) for e in assessed},
            gas_used=receipt.gas_used,
        )

    def submit_aggregate(self, aggregator: Wallet, task_id: int, round_: int,
                         aggregate_hash: bytes, **tx: Any) -> Receipt:
        return self._send(aggregator, "submitAggregate", task_id, round_, aggregate_hash,
                          **tx)

    def publish_model(self, requester: Wallet, task_id: int, round_: int,
                      model_hash: bytes, uri: str = "",
                      metrics_hash: bytes = b"\0" * 32, **tx: Any) -> Receipt:
        """Records the round's new global model; it becomes a model-registry version."""
        return self._send(requester, "publishModel", task_id, round_, model_hash, uri,
                          metrics_hash, **tx)

    def cancel(self, caller: Wallet, task_id: int, **tx: Any) -> Receipt:
        return self._send(caller, "cancelTask", task_id, **tx)

    def withdraw_refund(self, requester: Wallet, **tx: Any) -> Receipt:
        return self._send(requester, "withdrawRefund", **tx)

    # ------------------------------------------------------------ views
    def count(self) -> int:
        return int(self._view("taskCount"))

    def params(self, task_id: int) -> TaskParams:
        return self._struct(TaskParams, "taskParams", task_id)

    def state(self, task_id: int) -> TaskState:
        return self._struct(TaskState, "taskState", task_id)

    def round_info(self, task_id: int, round_: int) -> RoundInfo:
        return self._struct(RoundInfo, "roundInfo", task_id, round_)

    def submission(self, task_id: int, round_: int, device: str) -> Submission:
        return self._struct(Submission, "submissionOf", task_id, round_, device)

    def verifiers(self, task_id: int, round_: int, device: str) -> list[str]:
        """The participants that score `device`'s update in the open round."""
        return list(self._view("verifiersOf", task_id, round_, device))

    def assignment(self, task_id: int, round_: int, device: str) -> list[str]:
        """The participants whose updates `device` scores in the open round, in order."""
        return list(self._view("assignmentOf", task_id, round_, device))

    def epsilon_of(self, task_id: int, device: str) -> int:
        """The device's ε spent in the task as recorded on chain (micro-ε)."""
        return int(self._view("epsilonOf", task_id, device))

    def is_allowed(self, task_id: int, device: str) -> bool:
        return bool(self._view("isAllowed", task_id, device))

    def participants(self, task_id: int) -> list[str]:
        return list(self._view("participantsOf", task_id))

    def waiting(self, task_id: int) -> list[str]:
        return list(self._view("waitingOf", task_id))

    def member_status(self, task_id: int, device: str) -> MemberStatus:
        return MemberStatus(self._view("memberStatus", task_id, device))

    def refund_of(self, requester: str) -> int:
        return int(self._view("refundOf", requester))

    def total_held(self) -> int:
        return int(self._view("totalHeld"))
