"""How a simulated round turns the updates it received into the next global step.

A :class:`RoundRule` settles one round: given each participant's update (None for
one that sent none) it says whose updates were accepted, their aggregate and whom
elimination would remove. One class per kind of rule, found by the name scenarios
use (:data:`ROUND_RULES`, :func:`make_round_rule`):

* ``poq`` -- :class:`ProofOfQuality`, fedshare: every update is scored by the
  verifiers the contract's circulant assignment draws, the round is settled by
  :mod:`offchain.protocol.poq` as the task contract settles it, and the accepted
  updates are averaged with the runtime FedAvg;
* ``fedavg``, ``median``, ``trimmed-mean``, ``krum``, ``multi-krum`` --
  :class:`PlaintextBaseline` around the :class:`~offchain.experiments.robust.RobustRule`
  of that name: every update is aggregated in plaintext, nobody is eliminated.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from offchain.errors import ConfigError
from offchain.experiments.robust import ROBUST_RULES, RobustRule, robust_rule
from offchain.protocol import poq
from offchain.learning.fedavg import average

if TYPE_CHECKING:
    from offchain.experiments.scenario import Scenario

__all__ = [
    "AGGREGATORS",
    "ROUND_RULES",
    "PlaintextBaseline",
    "ProofOfQuality",
    "RoundOutcome",
    "RoundRule",
    "ScoreFn",
    "make_round_rule",
]

ScoreFn = Callable[[int, Sequence[int]], list[int]]
"""``score(verifier, targets)``: the scores participant ``verifier`` reports for the
updates of participants ``targets``, in that order (as it reports them, lies
included)."""


@dataclass(frozen=True)
class RoundOutcome:
    """A settled round: the indices of the participants whose updates were accepted
    (in the order averaged), their aggregate (None when nobody was accepted) and the
    participant elimination would remove (None for nobody)."""

    accepted: tuple[int, ...]
    aggregate: np.ndarray | None
    worst: int | None


class RoundRule(ABC):
    """What an aggregator does with a round's updates."""

    @classmethod
    @abstractmethod
    def for_scenario(cls, scenario: Scenario) -> RoundRule:
        """The rule as ``scenario`` configures it. Raises ConfigError or
        LearningError for settings the rule cannot run with."""

    @abstractmethod
    def settle(
        self,
        deltas: Sequence[np.ndarray | None],
        *,
        score: ScoreFn,
        rng: np.random.Generator,
    ) -> RoundOutcome:
        """Settles a round whose participant ``i`` sent ``deltas[i]`` (None: nothing).

        ``score`` asks a participant for its scores of others' updates; ``rng`` is
        the run's generator, for what the rule draws. Raises LearningError or
        UpdateRejected when the updates cannot be aggregated.
        """


@dataclass(frozen=True, kw_only=True)
class ProofOfQuality(RoundRule):
    """fedshare's rule: ``verifiers`` peers score each update, quality is the median
    score, updates below ``min_quality`` or more than ``quality_gap`` basis points
    under the round's median quality are not accepted, the worst is eliminated."""

    name: ClassVar[str] = "poq"
    verifiers: int
    quality_gap: int = poq.DEFAULT_QUALITY_GAP
    min_quality: int = 0

    @classmethod
    def for_scenario(cls, scenario: Scenario) -> ProofOfQuality:
        """The scenario's verifiers per update, quality gap and minimum quality.
        Raises nothing."""
        return cls(verifiers=scenario.verifiers, quality_gap=scenario.quality_gap,
                   min_quality=scenario.min_quality)

    def settle(
        self,
        deltas: Sequence[np.ndarray | None],
        *,
        score: ScoreFn,
        rng: np.random.Generator,
    ) -> RoundOutcome:
        """Draws the assignment offset from ``rng`` (as the contract draws it per
        round), collects a score row from every participant that sent an update,
        settles as the contract does and averages the accepted updates.
        Raises LearningError or UpdateRejected for updates FedAvg rejects.
        """
        n = len(deltas)
        offset = int(rng.integers(2**32))
        rows = [None if deltas[i] is None else
                score(i, poq.targets(i, n, self.verifiers, offset)) for i in range(n)]
        settled = poq.settle(rows, k=self.verifiers, offset=offset,
                             min_quality=self.min_quality, quality_gap=self.quality_gap)
        chosen = settled.accepted_indices
        sent = _sent(deltas)
        updates = [sent[i] for i in chosen]
        return RoundOutcome(accepted=tuple(chosen),
                            aggregate=average(updates) if updates else None,
                            worst=settled.worst)


@dataclass(frozen=True)
class PlaintextBaseline(RoundRule):
    """A trusted server's rule: aggregate every update in plaintext with ``robust``;
    nobody is scored or eliminated."""

    robust: RobustRule

    @classmethod
    def for_scenario(cls, scenario: Scenario) -> PlaintextBaseline:
        """The baseline named by ``scenario.aggregator``, told to tolerate as many
        attackers as the scenario plants. Raises ConfigError for another name."""
        return cls(robust_rule(scenario.aggregator,
                               assumed_attackers=scenario.attackers))

    def settle(
        self,
        deltas: Sequence[np.ndarray | None],
        *,
        score: ScoreFn,
        rng: np.random.Generator,
    ) -> RoundOutcome:
        """Aggregates every update sent; asks for no scores and draws nothing.
        Raises LearningError or UpdateRejected for updates the rule rejects."""
        sent = _sent(deltas)
        updates = list(sent.values())
        aggregate = self.robust.aggregate(updates) if updates else None
        return RoundOutcome(accepted=tuple(sent), aggregate=aggregate, worst=None)


def _sent(deltas: Sequence[np.ndarray | None]) -> dict[int, np.ndarray]:
    """The updates sent, by participant index (in index order)."""
    return {i: delta for i, delta in enumerate(deltas) if delta is not None}


ROUND_RULES: Mapping[str, type[RoundRule]] = MappingProxyType(
    {ProofOfQuality.name: ProofOfQuality,
     **{name: PlaintextBaseline for name in ROBUST_RULES}}
)
"""Every aggregation rule by the name scenarios and tables use: proof of quality,
then the plaintext baselines."""

AGGREGATORS = tuple(ROUND_RULES)
"""fedshare's proof of quality, then the plaintext baselines."""


def make_round_rule(scenario: Scenario) -> RoundRule:
    """The rule ``scenario.aggregator`` names, configured by the scenario.

    Raises ConfigError for a name not in ROUND_RULES (listing them); LearningError
    for settings the rule cannot run with.
    """
    rule = ROUND_RULES.get(scenario.aggregator)
    if rule is None:
        raise ConfigError(
            f"aggregator must be one of {AGGREGATORS}, got {scenario.aggregator!r}"
        )
    return rule.for_scenario(scenario)
