"""What every role is: a state machine over the chain, stepped one action at a time.

A role reads the task's on-chain state, the current round's stage and deadlines and its
own saved state, and decides its next action. :meth:`Role.step` takes at most one
action and says what happened (:class:`Step`): it acted, it waits (until a chain time
after which a deadline lets something happen, or for others), or it is done. Every
action checks the chain first and goes through the role's transaction journal, so a
repeated or resumed step never sends a transaction twice.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from offchain.chain.accounts import Wallet
from offchain.chain.contracts import Fedshare
from offchain.chain.journal import TxJournal
from offchain.errors import StateError, TransactionReverted
from offchain.protocol.phases import Phase, may_anyone_cancel, phase_of, stalled_after
from offchain.protocol.types import RoundInfo, TaskParams, TaskState
from offchain.storage.atomic import write_atomic

__all__ = ["Step", "TaskView", "Role", "RoleState", "Progress", "RACES", "LOST_RACE",
           "CANCEL_SLACK", "FALLBACK_STAGGER"]

log = logging.getLogger(__name__)

Progress = Callable[[str, dict[str, Any]], None]

RACES = frozenset({
    "TaskRegistryWrongStage", "TaskRegistryWrongRound", "TaskRegistryPhaseNotOpen",
    "TaskRegistryPhaseClosed", "TaskRegistryRoundNotOver", "TaskRegistryCommitTooLate",
    "TaskRegistryRoundInProgress", "TaskRegistryTaskNotLive", "TaskRegistryCannotCancel",
    "TaskRegistryNotEnoughParticipants",
})
"""Reverts that only mean another party or the clock moved first: the role reads the
chain again and decides anew."""

LOST_RACE = "lost a race"
"""How a step that lost a race to another party says so."""

CANCEL_SLACK = 60
"""Seconds past a deadline before a party other than the requester steps in for one
that did not act (the requester, who gets the refund, goes first)."""

FALLBACK_STAGGER = 10
"""Seconds between one device's turn to step in and the next one's, so that devices
do not all send the same fallback transaction at once."""


@dataclass(frozen=True)
class Step:
    """What one step did: `acted` names the action; otherwise the role waits until
    chain time `until` (None: until another party moves) or is `done`."""

    acted: str | None = None
    until: int | None = None
    done: bool = False

    @classmethod
    def wait(cls, until: int | None = None) -> "Step":
        return cls(until=until)


@dataclass(frozen=True)
class TaskView:
    """One read of a task: parameters, state, the current round and the time the
    next block will carry."""

    task_id: int
    params: TaskParams
    state: TaskState
    round: int | None
    info: RoundInfo | None
    now: int

    @property
    def phase(self) -> Phase:
        return Phase.NONE if self.info is None else phase_of(self.info, self.now)

    @property
    def stalled_after(self) -> int:
        return stalled_after(self.params, self.state)


class RoleState:
    """A role's saved state: one JSON document written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.data: dict[str, Any] = self._load()

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise StateError(f"state file {self.path} is unreadable: {exc}") from exc
        if not isinstance(data, dict):
            raise StateError(f"state file {self.path} is not a JSON object")
        return data

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def put(self, **values: Any) -> None:
        """Sets `values` and writes the state durably before returning. Raises
        StateError when it cannot be written."""
        self.data.update(values)
        try:
            write_atomic(self.path, json.dumps(self.data, indent=1, sort_keys=True))
        except OSError as exc:
            raise StateError(f"cannot write state file {self.path}: {exc}") from exc


class Role:
    """A party's part in one task. Subclasses implement :meth:`decide`."""

    kind = "role"

    def __init__(self, fs: Fedshare, wallet: Wallet, task_id: int, state_dir: Path, *,
                 label: str | None = None, progress: Progress | None = None) -> None:
        self.fs = fs
        self.wallet = wallet
        self.task_id = task_id
        self.label = label or wallet.address
        self.state_dir = Path(state_dir) / f"{self.kind}-{wallet.address.lower()}" / \
            f"task-{task_id}"
        self.journal = TxJournal(self.state_dir / "journal.json")
        self.state = RoleState(self.state_dir / "state.json")
        self.progress = progress or (lambda kind, data: None)
        self._params: TaskParams | None = None

    @property
    def address(self) -> str:
        return self.wallet.address

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.label})"

    def read(self) -> TaskView:
        """One read of the task (its parameters are read once: they never change)."""
        tasks = self.fs.tasks
        if self._params is None:
            self._params = tasks.params(self.task_id)
        state = tasks.state(self.task_id)
        round_ = state.current_round
        info = None if round_ is None else tasks.round_info(self.task_id, round_)
        return TaskView(self.task_id, self._params, state, round_, info,
                        self.fs.chain.next_timestamp())

    def step(self) -> Step:
        """Settles a transaction a crash left in flight, reads the chain and takes the
        next action, if any. A revert that only means someone else moved first is
        logged and turns into a fresh decision at the next step."""
        chain = self.fs.chain
        chain.settle(self.wallet, self.journal)
        try:
            with chain.pinned():
                return self.decide(self.read())
        except TransactionReverted as exc:
            if exc.error_name not in RACES:
                raise
            log.info("%s: %s; reading the chain again", self.label, exc)
            return Step(acted=f"{LOST_RACE} ({exc.error_name})")

    def decide(self, view: TaskView) -> Step:
        raise NotImplementedError

    def tx(self, action: str, round_: int | None = None) -> dict[str, Any]:
        """Transaction options for `action`: the journal and a label naming it."""
        where = "" if round_ is None else f":{round_}"
        return {"journal": self.journal, "label": f"{action}:{self.task_id}{where}"}

    def emit(self, kind: str, **data: Any) -> None:
        self.progress(kind, {"role": self.kind, "label": self.label, **data})

    # ------------------------------------------------------------ shared moves
    def fallback_delay(self, view: TaskView) -> int:
        """Seconds past a deadline before this party steps in for a party that did
        not act (cancelling a stalled task, finalising a round the aggregator left)."""
        return CANCEL_SLACK

    def wait_for_stall(self, view: TaskView) -> Step:
        """Waits until this party may cancel the task should nothing happen before."""
        return Step.wait(view.stalled_after + self.fallback_delay(view))

    def maybe_cancel(self, view: TaskView) -> Step | None:
        """Cancels a stalled task once this party's :meth:`fallback_delay` past its
        stall time, so that nobody waits for a party that is gone and every escrowed
        wei is returned. Returns the step taken, or None when it is not time."""
        if not view.state.status.live:
            return None
        delay = self.fallback_delay(view)
        if view.now - delay <= view.stalled_after:
            return None
        active = len(self.fs.tasks.participants(self.task_id))
        if not may_anyone_cancel(view.params, view.state, active, view.now - delay):
            return None
        self.fs.tasks.cancel(self.wallet, self.task_id, **self.tx("cancel"))
        self.emit("cancelled", task_id=self.task_id)
        return Step(acted="cancelled the stalled task")

    def maybe_finalize(self, view: TaskView, *, after_deadline: bool) -> Step | None:
        """Finalises the round once its reveals are closed (with `after_deadline`,
        only once this party's :meth:`fallback_delay` past the reveal deadline: a
        fallback for when the aggregator does not). Returns the step, or None when
        the round is not in its finalise phase."""
        if view.phase is not Phase.FINALIZE:
            return None
        assert view.info is not None and view.round is not None
        if after_deadline:
            turn = view.info.reveal_deadline + self.fallback_delay(view)
            if view.now <= turn:
                return Step.wait(turn)
        outcome = self.fs.tasks.finalize_round(self.wallet, self.task_id, view.round,
                                               **self.tx("finalize", view.round))
        self.emit("finalized", round=view.round, outcome=outcome)
        return Step(acted=f"finalised round {view.round}")
