"""A directory-based mailbox: who sent which blob to whom in which round.

Devices post the address of a blob sealed to a peer; the peer reads its inbox.
The blobs themselves live in the :class:`~offchain.storage.blobs.BlobStore`.
"""

from __future__ import annotations

import json
from pathlib import Path

from offchain.errors import StorageError
from offchain.storage.atomic import write_atomic

__all__ = ["Mailbox"]


class Mailbox:
    """Letters ``(task, round, sender → recipient) = blob address`` kept under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _dir(self, task_id: int, round_: int, recipient: str) -> Path:
        return self.root / str(task_id) / str(round_) / recipient.lower()

    def post(self, task_id: int, round_: int, sender: str, recipient: str,
             digest: bytes) -> None:
        """Leaves `digest` for `recipient`; a second letter from the same sender in the
        same round is rejected (StorageError), so letters cannot be replaced."""
        folder = self._dir(task_id, round_, recipient)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{sender.lower()}.json"
        if path.exists():
            raise StorageError(
                f"{sender} already posted to {recipient} in task {task_id} round {round_}"
            )
        write_atomic(path, json.dumps({"sender": sender, "blob": digest.hex()}),
                     durable=False)

    def inbox(self, task_id: int, round_: int, recipient: str) -> dict[str, bytes]:
        """Every letter to `recipient` in the round: sender address → blob address."""
        folder = self._dir(task_id, round_, recipient)
        letters: dict[str, bytes] = {}
        if not folder.exists():
            return letters
        for path in sorted(folder.glob("0x*.json")):
            try:
                data = json.loads(path.read_text())
                letters[data["sender"]] = bytes.fromhex(data["blob"])
            except (ValueError, KeyError) as exc:
                raise StorageError(f"malformed letter {path}: {exc}") from exc
        return letters
