"""The experiment suites: which scenarios make up each table.

Each suite has a full size (the committed tables) and a quick size (a few nodes and
rounds) that CI runs to keep the code paths honest.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from offchain.errors import ConfigError
from offchain.experiments.simulate import AGGREGATORS, Scenario
from offchain.learning.attacks import ATTACKS

__all__ = ["SUITES", "Size", "scenarios"]

SUITES = ("dp", "attacks", "noniid", "regression")


@dataclass(frozen=True)
class Size:
    """How big a suite's runs are."""

    nodes: tuple[int, ...]
    attack_nodes: int
    attacker_counts: tuple[int, ...]
    rounds: int
    regression_rounds: int
    alphas: tuple[float, ...]
    attacks: tuple[str, ...] = ATTACKS


FULL = Size(nodes=(10, 30, 50), attack_nodes=50, attacker_counts=(5, 10), rounds=20,
            regression_rounds=20, alphas=(0.5, 0.1))
QUICK = Size(nodes=(6,), attack_nodes=10, attacker_counts=(1,), rounds=2,
             regression_rounds=2, alphas=(0.5,), attacks=("sign-flip", "lying-rater"))


def _attack_grid(size: Size, base: Scenario, counts: tuple[int, ...]) -> list[Scenario]:
    runs = [replace(base, aggregator=a) for a in AGGREGATORS]
    for attack in size.attacks:
        for count in counts:
            runs += [replace(base, aggregator=a, attack=attack, attackers=count)
                     for a in AGGREGATORS]
    return runs


def scenarios(suite: str, *, quick: bool = False, seed: int = 0) -> list[Scenario]:
    """The scenarios of ``suite`` (one of SUITES). Raises ConfigError for another."""
    size = QUICK if quick else FULL
    if suite == "dp":
        return [Scenario(nodes=n, rounds=size.rounds, epsilon=eps, seed=seed)
                for n in size.nodes for eps in (None, 10.0)]
    if suite == "attacks":
        base = Scenario(nodes=size.attack_nodes, rounds=size.rounds, seed=seed)
        return _attack_grid(size, base, size.attacker_counts)
    if suite == "noniid":
        runs = []
        for alpha in size.alphas:
            base = Scenario(nodes=size.attack_nodes, rounds=size.rounds, alpha=alpha, seed=seed)
            runs += _attack_grid(size, base, size.attacker_counts[:1])
        return runs
    if suite == "regression":
        base = Scenario(dataset="autompg", nodes=10, rounds=size.regression_rounds, seed=seed)
        runs = [replace(base, epsilon=None)]
        return runs + _attack_grid(replace(size, attacks=("label-flip", "sign-flip", "noise")),
                                   base, (1,))
    raise ConfigError(f"unknown suite {suite!r}; choose from {', '.join(SUITES)}")
