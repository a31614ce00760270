"""The experiment suites: which scenarios make up each table.

Each suite has a full size (the committed tables) and a quick size (a few nodes and
rounds) that CI runs to keep the code paths honest.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from offchain.errors import ConfigError
from offchain.experiments.simulate import AGGREGATORS, Scenario
from offchain.experiments.attacks import ATTACKS

__all__ = ["SUITES", "Size", "scenarios"]

SUITES = ("dp", "attacks", "noniid", "regression")

MNIST_LOCAL_EPOCHS = 10
"""Local epochs per round in the MNIST suites: with 10 rounds, the schedule that kept
the most accuracy at ε = 10 for 30 and 50 nodes (docs/tuning.md)."""


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
    seeds: int = 1


FULL = Size(nodes=(10, 30, 50), attack_nodes=50, attacker_counts=(5, 10), rounds=10,
            regression_rounds=20, alphas=(0.5, 0.1), seeds=3)
QUICK = Size(nodes=(6,), attack_nodes=8, attacker_counts=(1,), rounds=2,
             regression_rounds=2, alphas=(0.5,), attacks=("sign-flip",))


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
    mnist = {"rounds": size.rounds, "local_epochs": MNIST_LOCAL_EPOCHS}
    if suite == "dp":
        return [Scenario(nodes=n, epsilon=eps, seed=seed + s, **mnist)
                for s in range(size.seeds) for n in size.nodes for eps in (None, 10.0)]
    if suite == "attacks":
        return [run for s in range(size.seeds) for run in _attack_grid(
            size, Scenario(nodes=size.attack_nodes, seed=seed + s, **mnist),
            size.attacker_counts)]
    if suite == "noniid":
        runs = []
        for alpha in size.alphas:
            base = Scenario(nodes=size.attack_nodes, alpha=alpha, seed=seed, **mnist)
            runs += _attack_grid(size, base, size.attacker_counts[:1])
        return runs
    if suite == "regression":
        base = Scenario(dataset="autompg", nodes=10, rounds=size.regression_rounds, seed=seed)
        runs = [replace(base, epsilon=None)]
        return runs + _attack_grid(size, base, (1,))
    raise ConfigError(f"unknown suite {suite!r}; choose from {', '.join(SUITES)}")
