"""How parties hand each other bytes: blobs by content address, letters by round.

Roles see only :class:`Exchange`. On one machine the parties share a local directory
(:class:`LocalExchange`); a network transport implements the same four methods. Every
blob read is checked against its content address whatever the transport.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from offchain.storage.blobs import BlobStore
from offchain.storage.mailbox import Letter, Mailbox

__all__ = ["Exchange", "LocalExchange"]


class Exchange(Protocol):
    """Blob and letter exchange between parties."""

    def put(self, data: bytes) -> bytes:
        """Stores `data`; returns its 32-byte content address."""

    def get(self, digest: bytes) -> bytes:
        """The blob at `digest`, verified. Raises BlobNotFound or BlobIntegrityError."""

    def post(self, task_id: int, round_: int, letter: Letter) -> None:
        """Delivers `letter` to its recipient (idempotent for the same letter)."""

    def inbox(self, task_id: int, round_: int, recipient: str) -> dict[str, list[Letter]]:
        """The letters to `recipient` in the round, by the sender each names."""


class LocalExchange:
    """Blobs and letters in a directory the parties share (one machine)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blobs = BlobStore(self.root / "blobs")
        self.mailbox = Mailbox(self.root / "mailbox")

    def put(self, data: bytes) -> bytes:
        return self.blobs.put(data)

    def get(self, digest: bytes) -> bytes:
        return self.blobs.get(digest)

    def post(self, task_id: int, round_: int, letter: Letter) -> None:
        self.mailbox.post(task_id, round_, letter)

    def inbox(self, task_id: int, round_: int, recipient: str) -> dict[str, list[Letter]]:
        return self.mailbox.inbox(task_id, round_, recipient)
