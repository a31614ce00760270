"""Proof of quality as the task contract settles it, in plain Python.

The contract (``TaskSettlement`` and ``libraries/Quality.sol``) is the authority;
this module computes the same assignment, qualities, leader, worst and accepted
set from a round's scores, so that simulations run the protocol the chain runs
(a test feeds random score rows to both and compares). Scores are basis points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from offchain.errors import ProtocolError
from offchain.protocol.terms import DEFAULT_QUALITY_GAP, MAX_SCORE

__all__ = [
    "DEFAULT_QUALITY_GAP",
    "MAX_SCORE",
    "Settlement",
    "assignment_size",
    "median_score",
    "settle",
    "target",
    "targets",
    "verifier",
]



def assignment_size(n: int, k: int) -> int:
    """How many updates each of ``n`` participants scores with ``k`` verifiers per
    update requested (0 = every other participant). Raises nothing."""
    if n < 2:
        return 0
    return n - 1 if k == 0 or k >= n - 1 else k


def target(i: int, t: int, offset: int, n: int) -> int:
    """Index of the ``t``-th update that verifier ``i`` scores (circulant). Raises
    nothing for valid indices."""
    return (i + 1 + (offset + t) % (n - 1)) % n


def verifier(j: int, t: int, offset: int, n: int) -> int:
    """The verifier whose ``t``-th score is of update ``j`` (inverse of :func:`target`)."""
    step = 1 + (offset + t) % (n - 1)
    return (j + n - step) % n


def targets(i: int, n: int, k: int, offset: int) -> list[int]:
    """The updates verifier ``i`` scores, in the order its score row lists them."""
    return [target(i, t, offset, n) for t in range(assignment_size(n, k))]


def median_score(values: Sequence[int]) -> int:
    """Median of ``values`` (floor of the mean of the two middle ones when even);
    0 when empty, as ``Quality.median``. Raises nothing."""
    ordered = sorted(values)
    if not ordered:
        return 0
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) // 2


@dataclass(frozen=True)
class Settlement:
    """One settled round: each participant's quality (0 unless it revealed), which
    ones are accepted into the aggregate and paid, the leader and the worst (indices,
    or None), and the round's median quality that the quality gap is measured from."""

    quality: tuple[int, ...]
    accepted: tuple[bool, ...]
    leader: int | None
    worst: int | None
    median: int

    @property
    def accepted_indices(self) -> list[int]:
        return [i for i, ok in enumerate(self.accepted) if ok]

    def rewards(self, reward: int) -> list[int]:
        """Each participant's share of the round's ``reward`` (wei): accepted ones get
        ``floor(reward * quality / total accepted quality)``, the leader also the
        rounding remainder, so exactly ``reward`` is paid when anyone is accepted."""
        total = sum(q for q, ok in zip(self.quality, self.accepted) if ok)
        shares = [reward * q // total if ok else 0
                  for q, ok in zip(self.quality, self.accepted)]
        if total and self.leader is not None:
            shares[self.leader] += reward - sum(shares)
        return shares


def settle(
    rows: Sequence[Sequence[int] | None],
    *,
    k: int,
    offset: int,
    min_quality: int = 0,
    quality_gap: int = MAX_SCORE,
) -> Settlement:
    """Settles a round of ``len(rows)`` participants as the contract does.

    ``rows[i]`` is the score row participant ``i`` revealed (scores of
    :func:`targets` ``(i, n, k, offset)`` in order), or None if it revealed
    nothing. A participant's quality is the median of the scores its update got
    from verifiers that revealed; only revealing participants are ranked. Leader:
    best quality, first on ties. Worst: lowest, last on ties, only among two or
    more. Accepted: revealed, not the worst, quality > 0, >= ``min_quality`` and
    no more than ``quality_gap`` below the median quality of those that revealed.
    Raises ProtocolError for a row of the wrong length or a score outside
    0..MAX_SCORE.
    """
    n = len(rows)
    size = assignment_size(n, k)
    for i, row in enumerate(rows):
        if row is None:
            continue
        if len(row) != size:
            raise ProtocolError(f"participant {i} revealed {len(row)} scores, expected {size}")
        bad = [s for s in row if not 0 <= s <= MAX_SCORE]
        if bad:
            raise ProtocolError(f"participant {i} revealed score {bad[0]} outside 0..{MAX_SCORE}")
    revealed = [row is not None for row in rows]
    quality = [0] * n
    for j in range(n):
        if not revealed[j]:
            continue
        column = []
        for t in range(size):
            i = verifier(j, t, offset, n)
            if revealed[i]:
                column.append(rows[i][t])
        quality[j] = median_score(column)
    ranked = [i for i in range(n) if revealed[i]]
    leader = worst = None
    for i in ranked:
        if leader is None or quality[i] > quality[leader]:
            leader = i
        if worst is None or quality[i] <= quality[worst]:
            worst = i
    if len(ranked) < 2:
        worst = None
    middle = median_score([quality[i] for i in ranked])
    accepted = tuple(
        revealed[i] and i != worst and quality[i] > 0 and quality[i] >= min_quality
        and quality[i] + quality_gap >= middle
        for i in range(n)
    )
    return Settlement(tuple(quality), accepted, leader, worst, middle)
