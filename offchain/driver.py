"""The one owner of round sequencing: steps role state machines until a task ends.

In process (:func:`drive`), every role is stepped in turn; when nobody can act, a
development chain's clock is moved to the earliest time a role waits for, and only
then. As its own process (:func:`run_role`), a role is stepped whenever a new block
arrives or its deadline passes, with back-off while nothing happens.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Callable

from offchain.chain.node import Chain, unreachable
from offchain.errors import TaskStalled
from offchain.roles.base import LOST_RACE, Role, Step

__all__ = ["drive", "run_role"]

log = logging.getLogger(__name__)

MAX_IDLE_ADVANCES = 10_000


def drive(chain: Chain, roles: Sequence[Role], *,
          until: Callable[[], bool] | None = None) -> None:
    """Steps every role until all are done (or, with `until`, until it returns True
    after a step). When a full pass finds nobody able to act, moves the chain's clock
    just past the earliest deadline a role waits for (development chains only).

    Raises TaskStalled when nobody can act and nobody waits for a deadline; whatever a
    role raises propagates."""
    done: set[int] = set()
    advances = 0
    while len(done) < len(roles):
        acted = False
        waits: list[int] = []
        for index, role in enumerate(roles):
            if index in done:
                continue
            step = role.step()
            if until is not None and step.acted and until():
                return
            if step.done:
                done.add(index)
            elif step.acted:
                acted = True
                log.debug("%s %s", role.label, step.acted)
            elif step.until is not None:
                waits.append(step.until)
        if acted or len(done) == len(roles):
            continue
        # A deadline already behind the clock will not let anyone act either.
        now = chain.next_timestamp()
        waits = [until_ for until_ in waits if until_ >= now]
        if not waits:
            waiting = [r.label for i, r in enumerate(roles) if i not in done]
            raise TaskStalled(f"nobody can act and no deadline is left; waiting: "
                              f"{', '.join(waiting)}")
        advances += 1
        if advances > MAX_IDLE_ADVANCES:
            raise TaskStalled(f"the clock moved {MAX_IDLE_ADVANCES} times without an end")
        chain.advance_past(min(waits))


def run_role(role: Role, *, poll: float = 0.05, max_poll: float = 1.0,
             stop: Callable[[], bool] = lambda: False) -> Step:
    """Steps one role until it is done (its own process, against a node): at once
    after it acted, otherwise when a new block arrives or the time it waits for
    passes, polling with back-off from `poll` to `max_poll` seconds. While the node
    does not answer (restarting, say) it retries with back-off; nothing is lost, as
    every step starts from the chain and the role's journal. Returns the last step;
    `stop` ends the loop early (returning the last step taken)."""
    chain = role.fs.chain
    delay = poll
    last_block = -1
    step = Step.wait()
    outage = 0.0
    while not stop():
        try:
            step = role.step()
        except Exception as exc:  # noqa: BLE001 - only an unreachable node is retried
            if not unreachable(exc):
                raise
            outage = min(max(outage * 2, poll), max_poll * 5)
            log.warning("%s: node unreachable (%s); retrying in %.1f s", role.label,
                        type(exc).__name__, outage)
            time.sleep(outage)
            continue
        outage = 0.0
        if step.done:
            return step
        if step.acted:
            log.info("%s %s", role.label, step.acted)
            if step.acted.startswith(LOST_RACE):
                # Someone else moved first: give their transaction a moment.
                time.sleep(delay)
                delay = min(delay * 1.5, max_poll)
            else:
                delay = poll
            continue
        while not stop():
            time.sleep(delay)
            try:
                block = chain.block_number()
                due = step.until is not None and chain.next_timestamp() > step.until
            except Exception as exc:  # noqa: BLE001 - as above
                if not unreachable(exc):
                    raise
                break
            if block != last_block or due:
                last_block = block
                delay = poll
                break
            delay = min(delay * 1.5, max_poll)
    return step
