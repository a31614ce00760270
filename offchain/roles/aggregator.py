"""The aggregator: opens rounds, settles them, and sums accepted ciphertexts without
any key."""

from __future__ import annotations

from pathlib import Path

from offchain.chain.accounts import Wallet
from offchain.chain.contracts import Fedshare
from offchain.crypto import EncryptedVector, PublicKey, aggregate
from offchain.errors import AggregationError
from offchain.protocol.phases import Phase, phase_deadline
from offchain.protocol.types import RoundStage
from offchain.roles.base import Progress, Role, Step, TaskView
from offchain.roles.common import require_task_key
from offchain.storage.exchange import Exchange

__all__ = ["AggregatorRole"]


class AggregatorRole(Role):
    """Holds only the requester's public key. Opens each round once the previous one
    is closed and enough devices are there, finalises it as soon as its reveals are
    closed, and posts the homomorphic sum of the accepted updates."""

    kind = "aggregator"

    def __init__(self, fs: Fedshare, wallet: Wallet, task_id: int, state_dir: Path, *,
                 exchange: Exchange, public_key: PublicKey, label: str | None = None,
                 progress: Progress | None = None) -> None:
        super().__init__(fs, wallet, task_id, state_dir, label=label or "aggregator",
                         progress=progress)
        self.exchange = exchange
        self.public_key = public_key
        self._checked = False

    def decide(self, view: TaskView) -> Step:
        if not view.state.status.live:
            return Step(done=True)
        if not self._checked:
            require_task_key(self.fs, self.task_id, self.public_key, "aggregator")
            self._checked = True
        if view.state.aggregator != self.address:
            return Step.wait()  # not (yet) named by the requester
        info = view.info
        if info is None or info.stage is RoundStage.CLOSED:
            return self._open(view)
        assert view.round is not None
        phase = view.phase
        if phase is Phase.FINALIZE:
            step = self.maybe_finalize(view, after_deadline=False)
            assert step is not None
            return step
        if phase is Phase.AGGREGATE:
            return self._aggregate(view.round)
        return Step.wait(phase_deadline(info, phase))

    def _open(self, view: TaskView) -> Step:
        tasks = self.fs.tasks
        ready = len(tasks.participants(self.task_id)) + len(tasks.waiting(self.task_id))
        if ready < view.params.min_participants:
            return Step.wait()
        tasks.open_round(self.wallet, self.task_id, view.state.current_model,
                         **self.tx("openRound", view.state.rounds_opened))
        self.emit("opened", round=view.state.rounds_opened)
        return Step(acted=f"opened round {view.state.rounds_opened}")

    def accepted(self, round_: int) -> list[str]:
        """The devices whose updates the contract accepted in `round_`: the task's
        participants whose submission is marked accepted, as many as the round
        counts (else, should a participant have left since, its RoundFinalized
        event's list)."""
        tasks = self.fs.tasks
        info = tasks.round_info(self.task_id, round_)
        accepted = [d for d in tasks.participants(self.task_id)
                    if tasks.submission(self.task_id, round_, d).accepted]
        if len(accepted) == info.accepted:
            return accepted
        logs = tasks.logs("RoundFinalized", from_block=self.fs.deployment.block,
                          taskId=self.task_id, round=round_)
        if len(logs) != 1:
            raise AggregationError(f"round {round_} of task {self.task_id} has "
                                   f"{len(logs)} RoundFinalized events, expected 1")
        return [str(a) for a in logs[0]["args"]["accepted"]]

    def _aggregate(self, round_: int) -> Step:
        """Sums the committed ciphertexts of the accepted devices, stores the sum and
        posts its hash. Every blob is verified against its on-chain hash and the
        task's key."""
        accepted = self.accepted(round_)
        if not accepted:
            raise AggregationError(f"round {round_} of task {self.task_id} accepted nobody")
        parts = []
        for device in accepted:
            digest = self.fs.tasks.submission(self.task_id, round_, device).update_hash
            parts.append(EncryptedVector.from_bytes(
                self.exchange.get(digest), expected_key_id=self.public_key.key_id))
        total = aggregate(self.public_key, parts)
        digest = self.exchange.put(total.to_bytes())
        self.fs.tasks.submit_aggregate(self.wallet, self.task_id, round_, digest,
                                       **self.tx("submitAggregate", round_))
        self.emit("aggregated", round=round_, accepted=len(accepted))
        return Step(acted=f"aggregated round {round_}")
