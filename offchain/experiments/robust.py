"""Robust aggregation baselines for experiments (plain numpy, no encryption).

fedshare itself aggregates encrypted updates with a plain mean; these
plaintext aggregators are the usual Byzantine-robust baselines it is compared
against:

* ``fedavg`` -- the coordinate-wise mean (McMahan et al. 2017);
* ``median`` -- the coordinate-wise median (Yin et al. 2018);
* ``trimmed-mean`` -- per coordinate, drop the ``trim`` largest and ``trim``
  smallest values and average the rest (Yin et al. 2018);
* ``krum`` -- pick the update closest to its ``n - f - 2`` nearest neighbours
  (Blanchard et al. 2017); :func:`krum` with ``select > 1`` is Multi-Krum
  (El Mhamdi et al. 2018).

Every aggregator takes a sequence of 1-D, finite, equally long deltas, works in
float64 and returns a new float32 vector.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from offchain.errors import ConfigError, LearningError
from offchain.learning.fedavg import finite_vector

__all__ = [
    "ROBUST_AGGREGATORS",
    "coordinate_median",
    "fedavg",
    "krum",
    "krum_select",
    "robust_aggregate",
    "trimmed_mean",
]

ROBUST_AGGREGATORS = ("fedavg", "median", "trimmed-mean", "krum", "multi-krum")
"""Names :func:`robust_aggregate` accepts."""


def _stack(deltas: Sequence[np.ndarray]) -> np.ndarray:
    """Validate ``deltas`` and stack them into a float64 matrix ``[n, d]``.

    Raises LearningError for no deltas or deltas of different lengths;
    UpdateRejected for a non-numeric, non-1-D or non-finite delta.
    """
    items = list(deltas)
    if not items:
        raise LearningError("cannot aggregate zero deltas")
    arrays = [finite_vector(d, f"delta {i}") for i, d in enumerate(items)]
    lengths = [a.shape[0] for a in arrays]
    if len(set(lengths)) > 1:
        raise LearningError(f"deltas have different lengths: {lengths}")
    return np.stack([a.astype(np.float64, copy=False) for a in arrays])


def _finish(result: np.ndarray) -> np.ndarray:
    """Cast an aggregate to float32, rejecting one that overflows float32."""
    with np.errstate(over="ignore"):
        out = np.asarray(result, dtype=np.float64).astype(np.float32)
    return finite_vector(out, "aggregate")


def _count(value: object, what: str, minimum: int = 0) -> int:
    """Return ``value`` as an int >= ``minimum``, else raise LearningError."""
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, (int, np.integer))
        or value < minimum
    ):
        raise LearningError(f"{what} must be an int >= {minimum}, got {value!r}")
    return int(value)


def fedavg(deltas: Sequence[np.ndarray]) -> np.ndarray:
    """Coordinate-wise mean of ``deltas`` (float64 arithmetic, float32 result).

    Raises LearningError for no deltas or deltas of different lengths;
    UpdateRejected for a non-1-D or non-finite delta (or a mean that overflows
    float32).
    """
    return _finish(_stack(deltas).mean(axis=0))


def coordinate_median(deltas: Sequence[np.ndarray]) -> np.ndarray:
    """Coordinate-wise median of ``deltas``; with an even count, the mean of the
    two middle values.

    Raises LearningError for no deltas or deltas of different lengths;
    UpdateRejected for a non-1-D or non-finite delta.
    """
    return _finish(np.median(_stack(deltas), axis=0))


def trimmed_mean(deltas: Sequence[np.ndarray], trim: int) -> np.ndarray:
    """Coordinate-wise mean after dropping the ``trim`` largest and ``trim``
    smallest values of each coordinate (``trim=0`` is the plain mean).

    Raises LearningError if ``trim`` is not an int >= 0 or ``2 * trim >= n``,
    for no deltas or deltas of different lengths; UpdateRejected for a non-1-D
    or non-finite delta.
    """
    k = _count(trim, "trim")
    matrix = _stack(deltas)
    n = matrix.shape[0]
    if 2 * k >= n:
        raise LearningError(
            f"trimmed mean needs 2 * trim < n: got trim={k} with n={n} deltas"
        )
    if k == 0:
        return _finish(matrix.mean(axis=0))
    ordered = np.sort(matrix, axis=0)
    return _finish(ordered[k : n - k].mean(axis=0))


def _krum_scores(matrix: np.ndarray, byzantine: int) -> np.ndarray:
    """Krum score of every row: sum of squared distances to its ``n - f - 2``
    nearest other rows (``n > 2f + 2`` is checked by the caller)."""
    n = matrix.shape[0]
    # |a - b|^2 = |a|^2 + |b|^2 - 2 a.b from one float64 Gram matrix. (Not
    # centred first: centring would blur exact ties on small integer inputs.)
    gram = matrix @ matrix.T
    norms = np.diag(gram).copy()
    dist2 = norms[:, None] + norms[None, :] - 2.0 * gram
    np.maximum(dist2, 0.0, out=dist2)
    np.fill_diagonal(dist2, np.inf)  # a delta is not its own neighbour
    neighbours = n - byzantine - 2
    nearest = np.partition(dist2, neighbours - 1, axis=1)[:, :neighbours]
    return nearest.sum(axis=1)


def krum_select(
    deltas: Sequence[np.ndarray], byzantine: int, select: int = 1
) -> list[int]:
    """Indices of the ``select`` deltas Krum (Blanchard et al. 2017) trusts most.

    Each delta is scored by the sum of its squared Euclidean distances to its
    ``n - byzantine - 2`` nearest other deltas; the ``select`` lowest scores are
    returned, best first (ties go to the lower index). Pairwise distances come
    from one float64 Gram matrix, so 50 deltas of 20,000 values take a few
    milliseconds.
    Raises LearningError unless ``n > 2 * byzantine + 2``, if ``byzantine`` is
    not an int >= 0 or ``select`` not an int in ``1..n``, for no deltas or
    deltas of different lengths; UpdateRejected for a non-1-D or non-finite
    delta.
    """
    f = _count(byzantine, "byzantine")
    m = _count(select, "select", minimum=1)
    matrix = _stack(deltas)
    n = matrix.shape[0]
    if n <= 2 * f + 2:
        raise LearningError(
            f"Krum needs n > 2 * byzantine + 2: got n={n} deltas with "
            f"byzantine={f} (needs n >= {2 * f + 3})"
        )
    if m > n:
        raise LearningError(f"select must be in 1..{n} (n deltas), got {m}")
    scores = _krum_scores(matrix, f)
    order = np.argsort(scores, kind="stable")
    return [int(i) for i in order[:m]]


def krum(
    deltas: Sequence[np.ndarray], byzantine: int, *, select: int = 1
) -> np.ndarray:
    """Krum (``select=1``) or Multi-Krum (``select>1``): the mean of the deltas
    :func:`krum_select` picks, as float32.

    Raises the same errors as :func:`krum_select`.
    """
    items = list(deltas)
    chosen = krum_select(items, byzantine, select)
    matrix = _stack([items[i] for i in chosen])
    return _finish(matrix.mean(axis=0))


def robust_aggregate(
    name: str, deltas: Sequence[np.ndarray], *, assumed_attackers: int
) -> np.ndarray:
    """Aggregate ``deltas`` with the aggregator called ``name``.

    ``assumed_attackers`` (``f``, an int >= 0) is the number of attackers the
    aggregator is told to tolerate: ``trimmed-mean`` trims ``f`` values from
    each side, ``krum`` runs with ``byzantine=f`` and ``select=1``,
    ``multi-krum`` with ``select=n - f`` (El Mhamdi et al.); ``fedavg`` and
    ``median`` ignore it. With ``f=0`` the trimmed mean is the
    plain mean.
    Raises ConfigError for a name not in ROBUST_AGGREGATORS (listing them);
    LearningError if ``assumed_attackers`` is not an int >= 0 or is too large for
    the number of deltas, and for the aggregators' own input errors;
    UpdateRejected for a non-1-D or non-finite delta.
    """
    if name not in ROBUST_AGGREGATORS:
        raise ConfigError(
            f"unknown robust aggregator {name!r}; choose one of "
            f"{', '.join(ROBUST_AGGREGATORS)}"
        )
    f = _count(assumed_attackers, "assumed_attackers")
    if name == "fedavg":
        return fedavg(deltas)
    if name == "median":
        return coordinate_median(deltas)
    if name == "trimmed-mean":
        return trimmed_mean(deltas, f)
    items = list(deltas)
    return krum(items, f, select=len(items) - f if name == "multi-krum" else 1)

