"""Federated averaging of model deltas (plain numpy; encryption happens elsewhere).

The one FedAvg of the project: the requester averages decrypted updates with it, the
simulation's proof-of-quality rounds and the robust baselines of the experiments too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from offchain.errors import LearningError, UpdateRejected

__all__ = [
    "apply_update",
    "average",
    "check_bound",
    "clip_update",
    "clipped_fraction",
    "finite_vector",
]


def finite_vector(vec: np.ndarray, what: str) -> np.ndarray:
    """Return ``vec`` as an array after checking it is a numeric, 1-D, finite vector.

    ``what`` names the vector in the error message. Raises UpdateRejected for a
    non-numeric dtype, another number of dimensions or a NaN/infinite value
    (giving the count and the first index).
    """
    arr = np.asarray(vec)
    if arr.dtype.kind not in "fiu":
        raise UpdateRejected(f"{what} must be numeric, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise UpdateRejected(f"{what} must be 1-D, got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise UpdateRejected(
            f"{what} has {int(bad.sum())} non-finite values (first at index "
            f"{int(np.argmax(bad))})"
        )
    return arr


def check_bound(bound: float) -> float:
    """Return an update bound as a float after checking it is finite and > 0.

    Raises LearningError for a value that is not a number, not finite or <= 0.
    """
    try:
        value = float(bound)
    except (TypeError, ValueError) as exc:
        raise LearningError(f"bound must be a number, got {bound!r}") from exc
    if not math.isfinite(value) or value <= 0:
        raise LearningError(f"bound must be finite and > 0, got {bound!r}")
    return value


def clip_update(delta: np.ndarray, bound: float) -> np.ndarray:
    """Clip every coordinate of ``delta`` into ``[-bound, bound]`` (new float32 array).

    Raises UpdateRejected for a non-1-D or non-finite ``delta``; LearningError
    for a bound that is not finite and positive.
    """
    limit = check_bound(bound)
    arr = finite_vector(delta, "delta")
    return np.clip(arr.astype(np.float32), -limit, limit).astype(np.float32)


def clipped_fraction(delta: np.ndarray, bound: float) -> float:
    """Fraction of ``delta``'s coordinates with ``|delta_i| > bound`` (0 if empty).

    Raises UpdateRejected for a non-1-D or non-finite ``delta``; LearningError
    for a bound that is not finite and positive.
    """
    limit = check_bound(bound)
    arr = finite_vector(delta, "delta")
    if arr.size == 0:
        return 0.0
    return float(np.count_nonzero(np.abs(arr) > limit)) / arr.size


def average(deltas: Sequence[np.ndarray]) -> np.ndarray:
    """Coordinate-wise mean of ``deltas`` (computed in float64, returned float32).

    Raises LearningError for no deltas or deltas of different lengths;
    UpdateRejected for a non-1-D or non-finite delta, or a mean beyond float32.
    """
    items = list(deltas)
    if not items:
        raise LearningError("cannot average zero deltas")
    arrays = [finite_vector(d, f"delta {i}") for i, d in enumerate(items)]
    sizes = sorted({a.shape[0] for a in arrays})
    if len(sizes) > 1:
        lengths = [a.shape[0] for a in arrays]
        raise LearningError(f"deltas have different lengths: {lengths}")
    total = np.zeros(sizes[0], dtype=np.float64)
    for a in arrays:
        total += a
    with np.errstate(over="ignore"):
        mean = (total / len(arrays)).astype(np.float32)
    return finite_vector(mean, "average")


def apply_update(global_vec: np.ndarray, mean_delta: np.ndarray) -> np.ndarray:
    """Return the next global model ``global_vec + mean_delta`` as float32.

    Raises LearningError if the lengths differ; UpdateRejected for a non-1-D or
    non-finite input or a sum that overflows float32.
    """
    base = finite_vector(global_vec, "global vector")
    step = finite_vector(mean_delta, "mean delta")
    if base.shape != step.shape:
        raise LearningError(
            f"global vector has {base.shape[0]} values, mean delta {step.shape[0]}"
        )
    with np.errstate(over="ignore"):
        out = base.astype(np.float32) + step.astype(np.float32)
    return finite_vector(out, "updated global vector")
