"""A content-addressed blob store: a blob's address is the SHA-256 of its bytes.

Every read is verified against the address; a mismatch raises
:class:`BlobIntegrityError` naming the blob. The 32-byte digest is what goes on chain.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from offchain.errors import BlobIntegrityError, BlobNotFound, StorageError
from offchain.storage.atomic import write_atomic

__all__ = ["BlobStore", "content_hash"]


def content_hash(data: bytes) -> bytes:
    """The 32-byte content address of `data` (SHA-256)."""
    return hashlib.sha256(data).digest()


class BlobStore:
    """Blobs kept as files named by their content address under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, digest: bytes) -> Path:
        if len(digest) != 32:
            raise StorageError(f"a blob address is 32 bytes, got {len(digest)}")
        name = digest.hex()
        return self.root / name[:2] / name

    def put(self, data: bytes) -> bytes:
        """Stores `data` (atomically; storing the same bytes twice is a no-op) and
        returns its address."""
        digest = content_hash(data)
        path = self._path(digest)
        if path.exists():
            return digest
        write_atomic(path, data, durable=False)
        return digest

    def get(self, digest: bytes) -> bytes:
        """The blob at `digest`, verified. Raises BlobNotFound or BlobIntegrityError."""
        path = self._path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(f"no blob 0x{digest.hex()} in {self.root}") from None
        actual = content_hash(data)
        if actual != digest:
            raise BlobIntegrityError(
                f"blob 0x{digest.hex()} is corrupt: its content hashes to 0x{actual.hex()}"
            )
        return data

    def __contains__(self, digest: bytes) -> bool:
        return self._path(digest).exists()

    def path_of(self, digest: bytes) -> Path:
        """Where the blob at `digest` lives on disk."""
        return self._path(digest)
