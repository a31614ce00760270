"""Global models as blobs: stored by content address, verified and decoded on read."""

from __future__ import annotations

import numpy as np

from offchain.learning.model import ModelSpec, decode_vector, encode_vector, num_parameters
from offchain.storage import BlobStore

__all__ = ["load_model", "store_model"]


def store_model(store: BlobStore, vec: np.ndarray) -> bytes:
    """Stores a model vector and returns its 32-byte content address."""
    return store.put(encode_vector(vec))


def load_model(store: BlobStore, digest: bytes, spec: ModelSpec) -> np.ndarray:
    """The model vector at `digest`. Raises BlobNotFound/BlobIntegrityError when the
    blob is missing or corrupt, UpdateRejected when it does not fit `spec`."""
    return decode_vector(store.get(digest), expected_size=num_parameters(spec))
