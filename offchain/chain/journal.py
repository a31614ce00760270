"""A role's journal of sent transactions, so that a restart never sends one twice.

Before a transaction leaves, its signed bytes, hash, nonce and a label naming the
action are written to the journal (atomically); once it is mined the entry is
cleared. A role restarted after a crash first settles what the journal holds: it
waits for the transaction, or broadcasts the very same signed bytes again (same nonce,
same hash: the chain executes it at most once), instead of building a new one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from offchain.errors import StateError
from offchain.storage.atomic import write_atomic

__all__ = ["JournalEntry", "TxJournal"]


@dataclass(frozen=True)
class JournalEntry:
    """One transaction in flight."""

    label: str
    sender: str
    nonce: int
    tx_hash: str
    raw: str


class TxJournal:
    """At most one transaction in flight per wallet, kept in `path`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def pending(self) -> JournalEntry | None:
        """The transaction sent but not yet seen mined, if any. Raises StateError
        when the journal is unreadable."""
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise StateError(f"transaction journal {self.path} is unreadable: {exc}") from exc
        if not data:
            return None
        try:
            return JournalEntry(**data)
        except TypeError as exc:
            raise StateError(f"transaction journal {self.path} is malformed: {exc}") from exc

    def record(self, entry: JournalEntry) -> None:
        """Writes `entry` before it is broadcast. Raises StateError when it cannot."""
        try:
            write_atomic(self.path, json.dumps(asdict(entry)))
        except OSError as exc:
            raise StateError(f"cannot write transaction journal {self.path}: {exc}") from exc

    def clear(self) -> None:
        """Forgets the entry once it is mined."""
        try:
            write_atomic(self.path, "{}")
        except OSError as exc:
            raise StateError(f"cannot write transaction journal {self.path}: {exc}") from exc
