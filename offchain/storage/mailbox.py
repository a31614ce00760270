"""A directory-based mailbox: who sent which blob to whom in which round.

Devices post the address of a blob sealed to a peer, with the sender's signature of
the letter; the peer reads its inbox and checks the signatures. The blobs themselves
live in the :class:`~offchain.storage.blobs.BlobStore`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from offchain.errors import StorageError
from offchain.storage.atomic import write_atomic

__all__ = ["Letter", "Mailbox"]


@dataclass(frozen=True)
class Letter:
    """One letter: the sealed blob's address and the sender's signature of the
    letter (see :func:`offchain.protocol.commitments.letter_digest`)."""

    sender: str
    recipient: str
    blob: bytes
    signature: bytes


class Mailbox:
    """Letters ``(task, round, sender → recipient)`` kept under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, task_id: int, round_: int, sender: str, recipient: str) -> Path:
        return (self.root / str(task_id) / str(round_) / recipient.lower()
                / f"{sender.lower()}.json")

    def post(self, task_id: int, round_: int, letter: Letter) -> None:
        """Leaves `letter` for its recipient. Posting the same letter again is a no-op;
        a different second letter from the same sender in the same round is refused
        (StorageError), so letters cannot be replaced."""
        path = self._path(task_id, round_, letter.sender, letter.recipient)
        if path.exists():
            if self._read(path) == letter:
                return
            raise StorageError(f"{letter.sender} already posted to {letter.recipient} "
                               f"in task {task_id} round {round_}")
        write_atomic(path, json.dumps({
            "sender": letter.sender, "recipient": letter.recipient,
            "blob": letter.blob.hex(), "signature": letter.signature.hex()}),
            durable=False)

    def inbox(self, task_id: int, round_: int, recipient: str) -> dict[str, Letter]:
        """Every letter to `recipient` in the round, by sender address (as the letter
        names it; check the signature before trusting it). Raises StorageError for
        a malformed letter file."""
        folder = self.root / str(task_id) / str(round_) / recipient.lower()
        if not folder.exists():
            return {}
        letters = [self._read(path) for path in sorted(folder.glob("0x*.json"))]
        return {letter.sender: letter for letter in letters}

    @staticmethod
    def _read(path: Path) -> Letter:
        try:
            data = json.loads(path.read_text())
            return Letter(str(data["sender"]), str(data["recipient"]),
                          bytes.fromhex(data["blob"]), bytes.fromhex(data["signature"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StorageError(f"malformed letter {path}: {exc}") from exc
