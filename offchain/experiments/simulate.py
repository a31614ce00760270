"""Federated runs in one process, without chain or encryption, for experiments.

A :class:`Scenario` fixes the data, the nodes, privacy, attackers and the
aggregation rule. :func:`simulate` runs it with the parts the system runs:
Opacus DP-SGD on each device, the circulant verifier assignment, peer scores on
each verifier's validation data and proof-of-quality settlement as the task
contract computes it (:mod:`offchain.learning.poq`), including elimination of the
worst. Left out are only the transport and the cryptography: the Paillier sum of
quantised updates equals the plain mean to ~1e-4 per coordinate, and the chain path
(``fedshare demo``, :mod:`offchain.experiments.chain`) runs the same rules on the
contracts. The robust baselines see every plaintext update, which fedshare's
aggregator never does.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from offchain.errors import ConfigError, PrivacyBudgetExceeded
from offchain.experiments.attacks import ATTACKS, Attack, make_attack
from offchain.experiments.partition import label_skew, split_dirichlet
from offchain.experiments.robust import ROBUST_AGGREGATORS, robust_rule
from offchain.learning import poq
from offchain.learning.data import FederatedSplit, load_autompg, load_mnist, split_iid
from offchain.learning.evaluate import evaluate, score_update
from offchain.learning.fedavg import apply_update, average
from offchain.learning.model import ModelSpec, initial_vector
from offchain.privacy import DPConfig, PrivacyAccountant, train_local
from offchain.privacy.calibrate import noise_for_epsilon
from offchain.privacy.dp import DPDisabledWarning, steps_per_epoch

__all__ = ["AGGREGATORS", "DATASETS", "Scenario", "ScenarioResult", "simulate"]

AGGREGATORS = ("poq", *ROBUST_AGGREGATORS)
"""fedshare's proof of quality, then the plaintext baselines."""

DATASETS = ("mnist", "autompg")


def _default_model(dataset: str) -> ModelSpec:
    return ModelSpec(name="linreg", input_dim=9, pool=1) if dataset == "autompg" else ModelSpec()


def _default_training(dataset: str) -> DPConfig:
    """Training settings per data set (σ is set from the ε budget)."""
    if dataset == "autompg":
        # Full local batches, 20 epochs, lr 2: MAE 2.9 mpg at ε = 10 after 20 rounds on
        # 10 devices (2.7 without noise). Round-one deltas reach ~9.4 (the bias climbs
        # to ~20 mpg), hence the wider update bound.
        return DPConfig(noise_multiplier=1.0, batch_size=320, local_epochs=20, lr=2.0,
                        max_grad_norm=1.0, update_bound=10.0)
    return DPConfig()


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """One federated run. ``epsilon`` None trains without noise; ``alpha`` None splits
    IID; ``attackers`` of the nodes (chosen at random) run ``attack``. ``aggregator``
    is "poq" (fedshare: peer verification, quality gap, elimination) or a baseline.
    Training settings not given come from the data set's defaults; σ is calibrated so
    that ``rounds`` rounds spend exactly ``epsilon``. Raises ConfigError for invalid
    combinations."""

    dataset: str = "mnist"
    nodes: int = 10
    rounds: int = 5
    alpha: float | None = None
    epsilon: float | None = 10.0
    attack: str | None = None
    attackers: int = 0
    aggregator: str = "poq"
    verifiers: int = 4
    quality_gap: int = poq.DEFAULT_QUALITY_GAP
    min_quality: int = 0
    keep: float = 0.8
    local_epochs: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    max_grad_norm: float | None = None
    model: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ConfigError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        if self.aggregator not in AGGREGATORS:
            raise ConfigError(f"aggregator must be one of {AGGREGATORS}, got {self.aggregator!r}")
        if self.attack is not None and self.attack not in ATTACKS:
            raise ConfigError(f"attack must be one of {ATTACKS}, got {self.attack!r}")
        if self.nodes < 2 or self.rounds < 1:
            raise ConfigError("need at least 2 nodes and 1 round")
        if not 0 <= self.attackers < self.nodes:
            raise ConfigError(f"attackers must be in 0..{self.nodes - 1}, got {self.attackers}")
        if (self.attack is None) != (self.attackers == 0):
            raise ConfigError("name an attack exactly when there are attackers")
        if not 0 < self.keep <= 1:
            raise ConfigError(f"keep must be in (0, 1], got {self.keep}")

    @property
    def label(self) -> str:
        privacy = "no DP" if self.epsilon is None else f"ε={self.epsilon:g}"
        split = "IID" if self.alpha is None else f"α={self.alpha:g}"
        attack = f", {self.attackers}×{self.attack}" if self.attackers else ""
        return f"{self.dataset} {self.nodes} nodes {split} {privacy}{attack} [{self.aggregator}]"

    def spec(self) -> ModelSpec:
        spec = _default_model(self.dataset)
        if self.model is not None:
            name, _, hidden = self.model.partition(":")
            spec = replace(spec, name=name, **({"hidden": int(hidden)} if hidden else {}))
        return spec

    def split(self) -> FederatedSplit:
        data = load_autompg() if self.dataset == "autompg" else load_mnist()
        if self.alpha is None:
            return split_iid(data, self.nodes, seed=self.seed)
        return split_dirichlet(data, self.nodes, self.alpha, seed=self.seed)

    def training(self, samples: int) -> DPConfig:
        """The DP-SGD settings, with σ calibrated for ``samples`` per device."""
        base = _default_training(self.dataset)
        given = {"local_epochs": self.local_epochs, "lr": self.lr,
                 "batch_size": self.batch_size, "max_grad_norm": self.max_grad_norm}
        base = replace(base, **{k: v for k, v in given.items() if v is not None})
        if self.epsilon is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DPDisabledWarning)
                return replace(base, noise_multiplier=0.0)
        per_epoch = steps_per_epoch(samples, base.batch_size)
        sigma = noise_for_epsilon(self.epsilon, sample_rate=1.0 / per_epoch,
                                  steps=self.rounds * base.local_epochs * per_epoch,
                                  delta=base.delta)
        return replace(base, noise_multiplier=sigma)


@dataclass
class ScenarioResult:
    """What a run produced: the test metric after each round (accuracy, or MAE for
    regression; index 0 is the initial model), and per round the participants, how
    many of them were accepted, how many of the accepted were attackers, whom
    elimination removed (an attacker or not), the most ε any device spent."""

    scenario: dict[str, Any]
    metric: str
    curve: list[float] = field(default_factory=list)
    participants: list[int] = field(default_factory=list)
    accepted: list[int] = field(default_factory=list)
    attackers_accepted: list[int] = field(default_factory=list)
    eliminated_attackers: int = 0
    eliminated_honest: int = 0
    epsilon: float = 0.0
    noise_multiplier: float = 0.0
    label_skew: float = 0.0
    seconds: float = 0.0

    @property
    def final(self) -> float:
        return self.curve[-1]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Node:
    """One simulated device: its data (poisoned for training if it attacks) and its
    accountant."""

    def __init__(self, index: int, data, attack: Attack | None, classes: int,
                 dp: DPConfig, budget: float | None, seed: int) -> None:
        self.index = index
        self.data = data
        self.attack = attack
        self.train_data = attack.poison_data(data.train, classes=classes) if attack else data.train
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
                delta = train_local(spec, global_vec, self.train_data, dp, self.accountant,
                                    seed=self.seed * 1_000 + round_).delta
            except PrivacyBudgetExceeded:
                return None
        if self.attack is not None:
            delta = self.attack.poison_update(delta, bound=dp.update_bound, rng=self.rng)
        return delta


def _score_rows(scenario: Scenario, spec: ModelSpec, global_vec: np.ndarray,
                nodes: list[_Node], deltas: list[np.ndarray | None],
                is_attacker: list[bool], offset: int) -> list[list[int] | None]:
    n = len(nodes)
    rows: list[list[int] | None] = []
    for i, node in enumerate(nodes):
        if deltas[i] is None:
            rows.append(None)
            continue
        targets = poq.targets(i, n, scenario.verifiers, offset)
        scores = [0 if deltas[j] is None else
                  score_update(spec, global_vec, deltas[j], node.data.validation)
                  for j in targets]
        if node.attack is not None:
            scores = node.attack.poison_scores(scores, colluders=[is_attacker[j] for j in targets])
        rows.append(scores)
    return rows


def simulate(scenario: Scenario) -> ScenarioResult:
    """Runs ``scenario`` and returns its result. Deterministic given the scenario
    (its seed fixes the split, the attackers, the initial model, the noise and the
    verifier assignments). Raises ConfigError for scenarios the aggregator cannot
    run (e.g. Krum with too many assumed attackers)."""
    started = time.perf_counter()
    spec = scenario.spec()
    split = scenario.split()
    samples = len(split.devices[0].train)
    dp = scenario.training(samples)
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
    active = list(range(scenario.nodes))
    keep = max(2, math.ceil(scenario.keep * scenario.nodes))
    for round_ in range(scenario.rounds):
        members = [nodes[i] for i in active]
        deltas = [node.update(spec, global_vec, dp, round_) for node in members]
        attacker = [node.attack is not None for node in members]
        if scenario.aggregator == "poq":
            offset = int(rng.integers(2**32))
            rows = _score_rows(scenario, spec, global_vec, members, deltas, attacker, offset)
            settled = poq.settle(rows, k=scenario.verifiers, offset=offset,
                                 min_quality=scenario.min_quality,
                                 quality_gap=scenario.quality_gap)
            chosen = settled.accepted_indices
            mean = average([deltas[i] for i in chosen]) if chosen else None
            if settled.worst is not None and len(active) > keep:
                gone = active.pop(settled.worst)
                if gone in bad:
                    result.eliminated_attackers += 1
                else:
                    result.eliminated_honest += 1
        else:
            chosen = [i for i, d in enumerate(deltas) if d is not None]
            rule = robust_rule(scenario.aggregator, assumed_attackers=scenario.attackers)
            mean = rule.aggregate([deltas[i] for i in chosen]) if chosen else None
        if mean is not None:
            global_vec = apply_update(global_vec, mean)
        result.participants.append(len(members))
        result.accepted.append(len(chosen))
        result.attackers_accepted.append(sum(attacker[i] for i in chosen))
        result.curve.append(evaluate(spec, global_vec, split.test))
    result.epsilon = max(node.accountant.epsilon for node in nodes)
    result.seconds = time.perf_counter() - started
    return result
