"""The experiment suites: which scenarios make up each table.

Each suite has a full size (the committed tables) and a quick size (a few nodes and
rounds) that CI runs to keep the code paths honest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

from offchain.errors import ConfigError
from offchain.experiments.attacks import ATTACKS
from offchain.experiments.rules import AGGREGATORS
from offchain.experiments.scenario import Scenario

__all__ = ["FULL", "MNIST_LOCAL_EPOCHS", "QUICK", "SUITES", "Size", "scenarios"]

MNIST_LOCAL_EPOCHS = 10
"""Local epochs per round in the MNIST suites: with 10 rounds, the schedule that kept
the most accuracy at ε = 10 for 30 and 50 nodes (docs/tuning.md)."""


@dataclass(frozen=True)
class Size:
    """How big a suite's runs are: node counts of the dp suite, nodes and attacker
    counts of the attack grids, rounds, Dirichlet αs, attacks and seeds."""

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
    """``base`` clean, then with each attack and attacker count, under every rule."""
    runs = [replace(base, aggregator=a) for a in AGGREGATORS]
    for attack in size.attacks:
        for count in counts:
            runs += [replace(base, aggregator=a, attack=attack, attackers=count)
                     for a in AGGREGATORS]
    return runs


def _dp(size: Size, seed: int) -> list[Scenario]:
    """Accuracy per round with and without DP, per node count and seed."""
    return [Scenario(nodes=n, epsilon=eps, seed=seed + s, rounds=size.rounds,
                     local_epochs=MNIST_LOCAL_EPOCHS)
            for s in range(size.seeds) for n in size.nodes for eps in (None, 10.0)]


def _attacks(size: Size, seed: int) -> list[Scenario]:
    """Every attack and attacker count against every aggregator, IID, per seed."""
    return [run for s in range(size.seeds) for run in _attack_grid(
        size, Scenario(nodes=size.attack_nodes, seed=seed + s, rounds=size.rounds,
                       local_epochs=MNIST_LOCAL_EPOCHS),
        size.attacker_counts)]


def _noniid(size: Size, seed: int) -> list[Scenario]:
    """The attack grid (fewest attackers) on Dirichlet(α) label skew, per α."""
    runs = []
    for alpha in size.alphas:
        base = Scenario(nodes=size.attack_nodes, alpha=alpha, seed=seed,
                        rounds=size.rounds, local_epochs=MNIST_LOCAL_EPOCHS)
        runs += _attack_grid(size, base, size.attacker_counts[:1])
    return runs


def _regression(size: Size, seed: int) -> list[Scenario]:
    """Auto-MPG on 10 nodes: without DP, then the attack grid with one attacker."""
    base = Scenario(dataset="autompg", nodes=10, rounds=size.regression_rounds,
                    seed=seed)
    return [replace(base, epsilon=None), *_attack_grid(size, base, (1,))]


_BUILDERS: Mapping[str, Callable[[Size, int], list[Scenario]]] = MappingProxyType(
    {"dp": _dp, "attacks": _attacks, "noniid": _noniid, "regression": _regression}
)

SUITES = tuple(_BUILDERS)
"""The simulated suites, each one table."""


def scenarios(suite: str, *, quick: bool = False, seed: int = 0) -> list[Scenario]:
    """The scenarios of ``suite`` (one of SUITES), full or ``quick`` size, seeds from
    ``seed``. Raises ConfigError for another suite."""
    build = _BUILDERS.get(suite)
    if build is None:
        raise ConfigError(f"unknown suite {suite!r}; choose from {', '.join(SUITES)}")
    return build(QUICK if quick else FULL, seed)
