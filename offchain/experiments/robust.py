"""Robust aggregation baselines for experiments (plain numpy, no encryption).

fedshare itself aggregates encrypted updates with a plain mean; these
plaintext aggregators are the usual Byzantine-robust baselines it is compared
against. Each is one :class:`RobustRule` with the same interface, looked up by
the name the suites and tables use (:data:`ROBUST_RULES`, :func:`robust_rule`):

* ``fedavg`` -- :class:`FedAvg`, the coordinate-wise mean (McMahan et al.
  2017), computed by the runtime's :func:`offchain.learning.fedavg.average`;
* ``median`` -- :class:`CoordinateMedian` (Yin et al. 2018);
* ``trimmed-mean`` -- :class:`TrimmedMean`: per coordinate, drop the ``f``
  largest and ``f`` smallest values and average the rest (Yin et al. 2018);
* ``krum`` -- :class:`Krum`: the update closest to its ``n - f - 2`` nearest
  neighbours (Blanchard et al. 2017);
* ``multi-krum`` -- :class:`MultiKrum`: the mean of the ``n - f`` updates Krum
  ranks best (El Mhamdi et al. 2018).

``f`` is the number of attackers a rule is told to tolerate. The plain
functions (:func:`coordinate_median`, :func:`trimmed_mean`, :func:`krum_select`,
:func:`krum`) are the maths the rules wrap. Every aggregator takes a sequence of
1-D, finite, equally long deltas, works in float64 and returns a new float32
vector.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar

import numpy as np

from offchain.errors import ConfigError, LearningError
from offchain.learning.fedavg import average, finite_vector

__all__ = [
    "ROBUST_AGGREGATORS",
    "ROBUST_RULES",
    "CoordinateMedian",
    "FedAvg",
    "Krum",
    "MultiKrum",
    "RobustRule",
    "TrimmedMean",
    "coordinate_median",
    "krum",
    "krum_select",
    "robust_rule",
    "trimmed_mean",
]


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


def _mean(matrix: np.ndarray) -> np.ndarray:
    """FedAvg of the rows of a validated matrix, by the runtime's averaging."""
    return average(list(matrix))


def _trimmed(matrix: np.ndarray, trim: int) -> np.ndarray:
    """Coordinate-wise trimmed mean of a validated matrix (``2 * trim < n`` checked)."""
    n = matrix.shape[0]
    if 2 * trim >= n:
        raise LearningError(
            f"trimmed mean needs 2 * trim < n: got trim={trim} with n={n} deltas"
        )
    if trim == 0:
        return _mean(matrix)
    return _mean(np.sort(matrix, axis=0)[trim : n - trim])


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


def _krum_choice(matrix: np.ndarray, byzantine: int, select: int) -> list[int]:
    """Rows Krum trusts most in a validated matrix, best first (lower index on ties).

    Raises LearningError unless ``n > 2 * byzantine + 2`` and ``select <= n``.
    """
    n = matrix.shape[0]
    if n <= 2 * byzantine + 2:
        raise LearningError(
            f"Krum needs n > 2 * byzantine + 2: got n={n} deltas with "
            f"byzantine={byzantine} (needs n >= {2 * byzantine + 3})"
        )
    if select > n:
        raise LearningError(f"select must be in 1..{n} (n deltas), got {select}")
    order = np.argsort(_krum_scores(matrix, byzantine), kind="stable")
    return [int(i) for i in order[:select]]


def coordinate_median(deltas: Sequence[np.ndarray]) -> np.ndarray:
    """Coordinate-wise median of ``deltas``; with an even count, the mean of the
    two middle values.

    Raises LearningError for no deltas or deltas of different lengths;
    UpdateRejected for a non-1-D or non-finite delta.
    """
    return _finish(np.median(_stack(deltas), axis=0))


def trimmed_mean(deltas: Sequence[np.ndarray], trim: int) -> np.ndarray:
    """Coordinate-wise mean after dropping the ``trim`` largest and ``trim``
    smallest values of each coordinate (``trim=0`` is FedAvg).

    Raises LearningError if ``trim`` is not an int >= 0 or ``2 * trim >= n``,
    for no deltas or deltas of different lengths; UpdateRejected for a non-1-D
    or non-finite delta.
    """
    k = _count(trim, "trim")
    return _finish(_trimmed(_stack(deltas), k))


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
    return _krum_choice(_stack(deltas), f, m)


def krum(
    deltas: Sequence[np.ndarray], byzantine: int, *, select: int = 1
) -> np.ndarray:
    """Krum (``select=1``) or Multi-Krum (``select>1``): the FedAvg of the deltas
    :func:`krum_select` picks, as float32.

    Raises the same errors as :func:`krum_select`.
    """
    f = _count(byzantine, "byzantine")
    m = _count(select, "select", minimum=1)
    matrix = _stack(deltas)
    return _finish(_mean(matrix[_krum_choice(matrix, f, m)]))


@dataclass(frozen=True, kw_only=True)
class RobustRule(ABC):
    """A plaintext aggregation rule: :meth:`aggregate` turns a round's deltas into
    one float32 delta. ``assumed_attackers`` (an int >= 0) is how many attackers the
    rule is told to tolerate; rules that need no such number ignore it.
    Raises LearningError if ``assumed_attackers`` is not an int >= 0.
    """

    name: ClassVar[str]
    assumed_attackers: int = 0

    def __post_init__(self) -> None:
        count = _count(self.assumed_attackers, "assumed_attackers")
        object.__setattr__(self, "assumed_attackers", count)

    def aggregate(self, deltas: Sequence[np.ndarray]) -> np.ndarray:
        """The rule's aggregate of ``deltas`` as a new float32 vector.

        Raises LearningError for no deltas, deltas of different lengths or too
        few deltas for the assumed attackers; UpdateRejected for a non-1-D or
        non-finite delta, or an aggregate that overflows float32.
        """
        return _finish(self._combine(_stack(deltas)))

    @abstractmethod
    def _combine(self, matrix: np.ndarray) -> np.ndarray:
        """The aggregate of the rows of a validated float64 matrix ``[n, d]``."""


class FedAvg(RobustRule):
    """The coordinate-wise mean of every delta (the runtime's FedAvg)."""

    name: ClassVar[str] = "fedavg"

    def _combine(self, matrix: np.ndarray) -> np.ndarray:
        return _mean(matrix)


class CoordinateMedian(RobustRule):
    """The coordinate-wise median of the deltas."""

    name: ClassVar[str] = "median"

    def _combine(self, matrix: np.ndarray) -> np.ndarray:
        return np.median(matrix, axis=0)


class TrimmedMean(RobustRule):
    """Per coordinate, the mean after dropping ``assumed_attackers`` values from
    each side (FedAvg when it is 0)."""

    name: ClassVar[str] = "trimmed-mean"

    def _combine(self, matrix: np.ndarray) -> np.ndarray:
        return _trimmed(matrix, self.assumed_attackers)


class Krum(RobustRule):
    """The single delta Krum ranks best with ``byzantine = assumed_attackers``."""

    name: ClassVar[str] = "krum"

    def _combine(self, matrix: np.ndarray) -> np.ndarray:
        return _mean(matrix[_krum_choice(matrix, self.assumed_attackers, 1)])


class MultiKrum(RobustRule):
    """The FedAvg of the ``n - assumed_attackers`` deltas Krum ranks best."""

    name: ClassVar[str] = "multi-krum"

    def _combine(self, matrix: np.ndarray) -> np.ndarray:
        f = self.assumed_attackers
        return _mean(matrix[_krum_choice(matrix, f, matrix.shape[0] - f)])


ROBUST_RULES: Mapping[str, type[RobustRule]] = MappingProxyType(
    {
        rule.name: rule
        for rule in (FedAvg, CoordinateMedian, TrimmedMean, Krum, MultiKrum)
    }
)
"""Every baseline rule by the name the suites and tables use."""

ROBUST_AGGREGATORS = tuple(ROBUST_RULES)
"""The baselines' names, in table order."""


def robust_rule(name: str, *, assumed_attackers: int = 0) -> RobustRule:
    """The baseline called ``name``, told to tolerate ``assumed_attackers``.

    Raises ConfigError for a name not in ROBUST_RULES (listing them);
    LearningError if ``assumed_attackers`` is not an int >= 0.
    """
    rule = ROBUST_RULES.get(name)
    if rule is None:
        raise ConfigError(
            f"unknown robust aggregator {name!r}; choose one of "
            f"{', '.join(ROBUST_AGGREGATORS)}"
        )
    return rule(assumed_attackers=assumed_attackers)
