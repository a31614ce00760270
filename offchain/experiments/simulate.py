"""Federated runs in one process, without chain or encryption, for experiments.

A :class:`~offchain.experiments.scenario.Scenario` fixes the data, the nodes,
privacy, attackers and the aggregation rule. :func:`simulate` runs it with the parts
the system runs: Opacus DP-SGD on each device, the circulant verifier assignment,
peer scores on each verifier's validation data and proof-of-quality settlement as
the task contract computes it (:mod:`offchain.protocol.poq`), including elimination
of the worst. Left out are only the transport and the cryptography: the Paillier sum
of quantised updates equals the plain mean to ~1e-4 per coordinate, and the chain
path (``fedshare demo``, :mod:`offchain.experiments.chain`) runs the same rules on
the contracts. The robust baselines see every plaintext update, which fedshare's
aggregator never does.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from offchain.errors import PrivacyBudgetExceeded
from offchain.experiments.attacks import Attack, make_attack
from offchain.experiments.partition import label_skew
from offchain.experiments.rules import RoundRule, ScoreFn, make_round_rule
from offchain.experiments.scenario import Scenario, ScenarioResult
from offchain.learning.data import DeviceData, FederatedSplit
from offchain.learning.evaluate import evaluate, score_update
from offchain.learning.fedavg import apply_update
from offchain.learning.model import ModelSpec, initial_vector
from offchain.privacy import DPConfig, PrivacyAccountant, train_local

__all__ = ["simulate"]


class _Node:
    """One simulated device: its data (poisoned for training if it attacks) and its
    accountant."""

    def __init__(self, index: int, data: DeviceData, attack: Attack | None,
                 classes: int, dp: DPConfig, budget: float | None, seed: int) -> None:
        self.index = index
        self.data = data
        self.attack = attack
        self.train_data = (attack.poison_data(data.train, classes=classes) if attack
                           else data.train)
        self.accountant = PrivacyAccountant(delta=dp.delta, budget=budget)
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def update(self, spec: ModelSpec, global_vec: np.ndarray, dp: DPConfig,
               round_: int) -> np.ndarray | None:
        """This round's delta, or None once the ε budget is spent (it stops)."""
        if self.attack is not None and not self.attack.trains:
            delta = np.zeros_like(global_vec)
        else:
            try:
                trained = train_local(spec, global_vec, self.train_data, dp,
                                      self.accountant, seed=self.seed * 1_000 + round_)
                delta = trained.delta
            except PrivacyBudgetExceeded:
                return None
        if self.attack is not None:
            delta = self.attack.poison_update(delta, bound=dp.update_bound,
                                              rng=self.rng)
        return delta


@dataclass
class _Run:
    """A run in progress: what the scenario fixed, the global model, the nodes still
    taking part (``active``, indices into ``nodes``) and the result so far."""

    scenario: Scenario
    spec: ModelSpec
    split: FederatedSplit
    dp: DPConfig
    rule: RoundRule
    rng: np.random.Generator
    attackers: set[int]
    nodes: list[_Node]
    global_vec: np.ndarray
    active: list[int]
    keep: int
    result: ScenarioResult


def _start(scenario: Scenario) -> _Run:
    """Splits the data, calibrates σ, picks the attackers (the first draw of the run's
    generator), builds the nodes and the initial model, and evaluates it."""
    spec = scenario.spec()
    split = scenario.split()
    dp = scenario.training(len(split.devices[0].train))
    rng = np.random.default_rng(scenario.seed)
    bad = set(rng.permutation(scenario.nodes)[: scenario.attackers].tolist())
    attack = make_attack(scenario.attack) if scenario.attack else None
    nodes = [_Node(i, split.devices[i], attack if i in bad else None, spec.classes, dp,
                   scenario.epsilon, scenario.seed * 10_000 + i)
             for i in range(scenario.nodes)]
    global_vec = initial_vector(spec, seed=scenario.seed)
    result = ScenarioResult(scenario=asdict(scenario),
                            metric="mae" if spec.regression else "accuracy",
                            noise_multiplier=dp.noise_multiplier,
                            label_skew=label_skew(split))
    result.curve.append(evaluate(spec, global_vec, split.test))
    return _Run(scenario=scenario, spec=spec, split=split, dp=dp,
                rule=make_round_rule(scenario), rng=rng, attackers=bad, nodes=nodes,
                global_vec=global_vec, active=list(range(scenario.nodes)),
                keep=max(2, math.ceil(scenario.keep * scenario.nodes)), result=result)


def _peer_scores(run: _Run, members: Sequence[_Node],
                 deltas: Sequence[np.ndarray | None]) -> ScoreFn:
    """How this round's members score each other: a verifier scores ``global +
    delta`` on its own validation data (0 for a missing update) and an attacker
    reports what its attack reports, favouring fellow attackers."""

    def score(verifier: int, targets: Sequence[int]) -> list[int]:
        node = members[verifier]
        scores = [0 if (delta := deltas[j]) is None else
                  score_update(run.spec, run.global_vec, delta, node.data.validation)
                  for j in targets]
        if node.attack is None:
            return scores
        colluders = [members[j].attack is not None for j in targets]
        return node.attack.poison_scores(scores, colluders=colluders)

    return score


def _eliminate(run: _Run, worst: int | None) -> None:
    """Removes the member at index ``worst`` while more than ``keep`` remain."""
    if worst is None or len(run.active) <= run.keep:
        return
    gone = run.active.pop(worst)
    if gone in run.attackers:
        run.result.eliminated_attackers += 1
    else:
        run.result.eliminated_honest += 1


def _play_round(run: _Run, round_: int) -> None:
    """One round: the active nodes train (or attack), the rule settles, the worst may
    be eliminated, the global model moves and the round is recorded."""
    members = [run.nodes[i] for i in run.active]
    deltas = [node.update(run.spec, run.global_vec, run.dp, round_) for node in members]
    outcome = run.rule.settle(deltas, score=_peer_scores(run, members, deltas),
                              rng=run.rng)
    _eliminate(run, outcome.worst)
    if outcome.aggregate is not None:
        run.global_vec = apply_update(run.global_vec, outcome.aggregate)
    result = run.result
    result.participants.append(len(members))
    result.accepted.append(len(outcome.accepted))
    result.attackers_accepted.append(
        sum(members[i].attack is not None for i in outcome.accepted))
    result.curve.append(evaluate(run.spec, run.global_vec, run.split.test))


def simulate(scenario: Scenario) -> ScenarioResult:
    """Runs ``scenario`` and returns its result. Deterministic given the scenario
    (its seed fixes the split, the attackers, the initial model, the noise and the
    verifier assignments). Raises LearningError for scenarios the aggregation rule
    cannot run (e.g. Krum with too many assumed attackers) and PrivacyError for a
    budget no noise level meets."""
    started = time.perf_counter()
    run = _start(scenario)
    for round_ in range(scenario.rounds):
        _play_round(run, round_)
    run.result.epsilon = max(node.accountant.epsilon for node in run.nodes)
    run.result.seconds = time.perf_counter() - started
    return run.result
