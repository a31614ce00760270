"""Parties that follow the round protocol with given payloads instead of data, keys
and models: the update hashes, ε and scores a script names. Contract tests and gas
measurements drive them with the same driver and the same state machines as the real
parties, so nothing else sequences a round."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from offchain.chain.accounts import Wallet
from offchain.chain.contracts import Fedshare
from offchain.protocol.phases import Phase, phase_deadline
from offchain.protocol.terms import epsilon_from_chain
from offchain.roles.aggregator import AggregatorRole
from offchain.roles.base import Progress, Role, Step, TaskView
from offchain.roles.device import DeviceRole
from offchain.roles.requester import RequesterRole

__all__ = ["ScriptedDevice", "ScriptedAggregator", "ScriptedRequester", "Settler",
           "Acts"]

Acts = Callable[[int, Phase], bool]
"""Whether a party acts in `phase` of round `round`; a party that does not stays
silent in that phase, as a device that crashed or lies low would."""


def _always(round_: int, phase: Phase) -> bool:
    return True


class ScriptedDevice(DeviceRole):
    """A device that commits ``update_hash(round)`` with ``epsilon(round)`` (micro-ε)
    and scores its assignment with ``scores(round, assignment)``."""

    def __init__(self, fs: Fedshare, wallet: Wallet, task_id: int, state_dir: Path, *,
                 update_hash: Callable[[int], bytes], epsilon: Callable[[int], int],
                 scores: Callable[[int, list[str]], list[int]], acts: Acts = _always,
                 salt: Callable[[int], bytes] | None = None, label: str | None = None,
                 progress: Progress | None = None) -> None:
        Role.__init__(self, fs, wallet, task_id, state_dir, label=label,
                      progress=progress)
        self.salt = salt
        self.update_hash = update_hash
        self.epsilon_of_round = epsilon
        self.scores = scores
        self.acts = acts

    def _ready(self, view: TaskView) -> None:
        return None

    def new_salt(self, round_: int) -> bytes:
        return super().new_salt(round_) if self.salt is None else self.salt(round_)

    def _round_step(self, view: TaskView, round_: int, phase: Phase) -> Step:
        if not self.acts(round_, phase):
            assert view.info is not None
            return Step.wait(phase_deadline(view.info, phase))
        return super()._round_step(view, round_, phase)

    def _train(self, view: TaskView, round_: int) -> dict:
        micro = self.epsilon_of_round(round_)
        saved = {"update_hash": self.update_hash(round_).hex(), "epsilon": epsilon_from_chain(micro),
                 "epsilon_micro": micro, "letters": {}}
        self.state.put(**{f"round:{round_}": saved})
        return saved

    def score_peers(self, task_id: int, round_: int) -> list[int]:
        return list(self.scores(round_, self.fs.tasks.assignment(task_id, round_,
                                                                 self.address)))


class ScriptedAggregator(AggregatorRole):
    """An aggregator that posts ``aggregate_hash(round)`` instead of a real sum."""

    def __init__(self, fs: Fedshare, wallet: Wallet, task_id: int, state_dir: Path, *,
                 aggregate_hash: Callable[[int], bytes], acts: Acts = _always,
                 label: str | None = None, progress: Progress | None = None) -> None:
        Role.__init__(self, fs, wallet, task_id, state_dir, label=label or "aggregator",
                      progress=progress)
        self.aggregate_hash = aggregate_hash
        self.acts = acts
        self._checked = True

    def decide(self, view: TaskView) -> Step:
        if view.round is not None and not self.acts(view.round, view.phase):
            return Step.wait(view.stalled_after + 1)
        return super().decide(view)

    def _aggregate(self, round_: int) -> Step:
        self.fs.tasks.submit_aggregate(self.wallet, self.task_id, round_,
                                       self.aggregate_hash(round_),
                                       **self.tx("submitAggregate", round_))
        self.emit("aggregated", round=round_)
        return Step(acted=f"aggregated round {round_}")


class ScriptedRequester(RequesterRole):
    """A requester that publishes ``model_hash(round)`` as each round's model."""

    def __init__(self, fs: Fedshare, wallet: Wallet, task_id: int, state_dir: Path, *,
                 model_hash: Callable[[int], bytes], label: str | None = None,
                 progress: Progress | None = None) -> None:
        Role.__init__(self, fs, wallet, task_id, state_dir, label=label or "requester",
                      progress=progress)
        self.model_hash = model_hash

    def _publish(self, round_: int) -> Step:
        self.fs.tasks.publish_model(self.wallet, self.task_id, round_,
                                    self.model_hash(round_),
                                    **self.tx("publishModel", round_))
        self.emit("published", round=round_, metrics={})
        return Step(acted=f"published the model of round {round_}")


class Settler(Role):
    """Anyone who finalises a round as soon as the contract allows it."""

    kind = "settler"

    def decide(self, view: TaskView) -> Step:
        if not view.state.status.live:
            return Step(done=True)
        step = self.maybe_finalize(view, after_deadline=False)
        if step is not None:
            return step
        deadline = None if view.info is None else phase_deadline(view.info, view.phase)
        return Step.wait(deadline)
