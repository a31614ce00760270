"""A directory-based mailbox: who sent which blob to whom in which round.

Devices post the address of a blob sealed to a peer, with the sender's signature of
the letter; the peer reads its inbox and checks the signatures. The mailbox itself
authenticates nothing, so it keeps every distinct letter: a letter forged in a
device's name cannot crowd out the device's own, and a device that signs two
different letters for the same recipient and round is seen doing so. The blobs
themselves live in the :class:`~offchain.storage.blobs.BlobStore`.
"""

from __future__ import annotations

import hashlib
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
    """Letters ``(task, round, sender → recipient)`` kept under `root`, one file per
    distinct letter."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _folder(self, task_id: int, round_: int, recipient: str) -> Path:
        return self.root / str(task_id) / str(round_) / recipient.lower()

    @staticmethod
    def _encode(letter: Letter) -> str:
        return json.dumps({"sender": letter.sender, "recipient": letter.recipient,
                           "blob": letter.blob.hex(), "signature": letter.signature.hex()},
                          sort_keys=True)

    def post(self, task_id: int, round_: int, letter: Letter) -> None:
        """Leaves `letter` for its recipient; posting the same letter again is a
        no-op. Raises StorageError when it cannot be written."""
        text = self._encode(letter)
        name = hashlib.sha256(text.encode()).hexdigest()[:32]
        path = self._folder(task_id, round_, letter.recipient) / \
            f"{letter.sender.lower()}-{name}.json"
        if path.exists():
            return
        try:
            write_atomic(path, text, durable=False)
        except OSError as exc:
            raise StorageError(f"cannot post letter to {path}: {exc}") from exc

    def inbox(self, task_id: int, round_: int, recipient: str) -> dict[str, list[Letter]]:
        """Every letter to `recipient` in the round, by the sender address each names
        (check the signatures before trusting any). Raises StorageError for a
        malformed letter file."""
        folder = self._folder(task_id, round_, recipient)
        letters: dict[str, list[Letter]] = {}
        if not folder.exists():
            return letters
        for path in sorted(folder.glob("0x*.json")):
            letter = self._read(path)
            letters.setdefault(letter.sender, []).append(letter)
        return letters

    @staticmethod
    def _read(path: Path) -> Letter:
        try:
            data = json.loads(path.read_text())
            return Letter(str(data["sender"]), str(data["recipient"]),
                          bytes.fromhex(data["blob"]), bytes.fromhex(data["signature"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StorageError(f"malformed letter {path}: {exc}") from exc
