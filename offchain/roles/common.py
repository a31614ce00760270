"""What several roles share: model blobs and the check of a task's Paillier key."""

from __future__ import annotations

import numpy as np

from offchain.chain.contracts import Fedshare
from offchain.crypto import PublicKey
from offchain.errors import KeyMismatchError
from offchain.learning.model import (
    ModelSpec,
    decode_vector,
    encode_vector,
    num_parameters,
)
from offchain.storage.exchange import Exchange

__all__ = ["load_model", "store_model", "require_task_key"]


def store_model(store: Exchange, vec: np.ndarray) -> bytes:
    """Stores a model vector and returns its 32-byte content address."""
    return store.put(encode_vector(vec))


def load_model(store: Exchange, digest: bytes, spec: ModelSpec) -> np.ndarray:
    """The model vector at `digest`. Raises BlobNotFound/BlobIntegrityError when the
    blob is missing or corrupt, UpdateRejected when it does not fit `spec`."""
    return decode_vector(store.get(digest), expected_size=num_parameters(spec))


def require_task_key(fs: Fedshare, task_id: int, public_key: PublicKey,
                     holder: str) -> None:
    """Raises KeyMismatchError unless task `task_id` names `public_key` on chain."""
    expected = fs.tasks.params(task_id).paillier_key_hash
    if expected != public_key.key_id:
        raise KeyMismatchError(
            f"task {task_id} names Paillier key 0x{expected.hex()[:16]}…, "
            f"the {holder} holds 0x{public_key.key_id.hex()[:16]}…"
        )
