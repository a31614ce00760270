"""What happened in a task, read from the chain's events (and the metrics blobs each
model version names): what `fedshare task status` prints and the demo's table."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field

from offchain.chain.contracts import Fedshare
from offchain.errors import StorageError
from offchain.protocol.terms import ZERO_ADDRESS, epsilon_from_chain
from offchain.protocol.types import TaskParams, TaskState
from offchain.storage.exchange import Exchange

__all__ = ["RoundRecord", "TaskStatusReport", "task_status"]


@dataclass(frozen=True)
class RoundRecord:
    """One round as the demo table and `fedshare task status` show it."""

    round: int
    participants: int
    committed: int
    accepted: int
    accuracy: float | None
    epsilon: float
    leader: str | None
    eliminated: str | None
    reward_paid: int
    gas_per_participant: int  # commitUpdate + commitScores + revealScores, mean
    gas_finalize: int
    accepted_devices: tuple[str, ...] = ()
    quality: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskStatusReport:
    task_id: int
    params: TaskParams
    state: TaskState
    participants: list[str]
    waiting: list[str]
    rounds: list[RoundRecord]
    epsilon: dict[str, float]
    rewards: dict[str, int]


def _metrics(fs: Fedshare, exchange: Exchange | None, version_id: int) -> dict:
    if exchange is None:
        return {}
    try:
        version = fs.models.version(version_id)
        return dict(json.loads(exchange.get(version.metrics_hash)))
    except (StorageError, ValueError):
        return {}


def task_status(fs: Fedshare, task_id: int, exchange: Exchange | None = None,
                *, gas: bool = True) -> TaskStatusReport:
    """Everything public about task `task_id`: parameters, state, members, and per
    round the participants, commits, qualities, leader, eliminated, rewards, ε spent
    and gas (with `gas`, from the receipts). Model metrics come from the exchange
    when one is given."""
    tasks = fs.tasks
    start = fs.deployment.block
    logs = {name: defaultdict(list) for name in (
        "RoundOpened", "UpdateCommitted", "ScoresCommitted", "ScoresRevealed",
        "RoundFinalized", "QualityAssessed", "ModelPublished")}
    for name, by_round in logs.items():
        for entry in tasks.logs(name, from_block=start, taskId=task_id):
            by_round[int(entry["args"]["round"])].append(entry)
    receipts = fs.chain.w3.eth.get_transaction_receipt

    def gas_of(entries) -> int:
        return sum(int(receipts(e["transactionHash"])["gasUsed"]) for e in entries) if gas else 0

    rounds = []
    epsilon: dict[str, float] = {}
    rewards: dict[str, int] = defaultdict(int)
    for r, opened in sorted(logs["RoundOpened"].items()):
        commits = logs["UpdateCommitted"][r]
        for e in commits:
            epsilon[str(e["args"]["device"])] = epsilon_from_chain(int(e["args"]["epsilon"]))
        finalized = logs["RoundFinalized"][r]
        final = finalized[0]["args"] if finalized else None
        quality = {str(e["args"]["device"]): int(e["args"]["quality"])
                   for e in logs["QualityAssessed"][r]}
        for e in logs["QualityAssessed"][r]:
            rewards[str(e["args"]["device"])] += int(e["args"]["reward"])
        published = logs["ModelPublished"][r]
        metrics = _metrics(fs, exchange, int(published[0]["args"]["versionId"])) \
            if published else {}
        paid_gas = gas_of(commits) + gas_of(logs["ScoresCommitted"][r]) + \
            gas_of(logs["ScoresRevealed"][r])
        eliminated = str(final["eliminated"]) if final else ZERO_ADDRESS
        rounds.append(RoundRecord(
            round=r,
            participants=len(opened[0]["args"]["participants"]),
            committed=len(commits),
            accepted=len(final["accepted"]) if final else 0,
            accuracy=metrics.get("test_accuracy"),
            epsilon=max((epsilon_from_chain(int(e["args"]["epsilon"])) for e in commits),
                        default=0.0),
            leader=str(final["leader"]) if final and final["leader"] != ZERO_ADDRESS else None,
            eliminated=None if eliminated == ZERO_ADDRESS else eliminated,
            reward_paid=int(final["rewardPaid"]) if final else 0,
            gas_per_participant=paid_gas // max(1, len(commits)),
            gas_finalize=gas_of(finalized),
            accepted_devices=tuple(str(a) for a in final["accepted"]) if final else (),
            quality=quality,
            metrics=metrics,
        ))
    return TaskStatusReport(task_id, tasks.params(task_id), tasks.state(task_id),
                            tasks.participants(task_id), tasks.waiting(task_id), rounds,
                            epsilon, dict(rewards))
