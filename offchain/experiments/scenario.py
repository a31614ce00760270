"""What a simulated run is (:class:`Scenario`) and what it produced
(:class:`ScenarioResult`).

A scenario fixes the data set, the nodes, the split, privacy, the attack and its
attackers, the aggregation rule and a seed; the seed fixes everything random in the
run, so a scenario's result is reproducible. The names a scenario holds (data set,
attack, aggregator) are the keys of the registries that build their objects:
:data:`~offchain.experiments.datasets.DATASET_TYPES`,
:data:`~offchain.experiments.attacks.ATTACK_TYPES` and
:data:`~offchain.experiments.rules.ROUND_RULES`.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from offchain.errors import ConfigError
from offchain.experiments.attacks import ATTACKS
from offchain.experiments.datasets import DATASETS, make_dataset
from offchain.experiments.partition import split_dirichlet
from offchain.experiments.rules import AGGREGATORS
from offchain.protocol import poq
from offchain.learning.data import FederatedSplit, split_iid
from offchain.learning.model import ModelSpec
from offchain.privacy import DPConfig
from offchain.privacy.calibrate import noise_for_epsilon
from offchain.privacy.dp import DPDisabledWarning, steps_per_epoch

__all__ = ["Scenario", "ScenarioResult"]


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
        self._check_names()
        if self.nodes < 2 or self.rounds < 1:
            raise ConfigError("need at least 2 nodes and 1 round")
        if not 0 <= self.attackers < self.nodes:
            raise ConfigError(
                f"attackers must be in 0..{self.nodes - 1}, got {self.attackers}")
        if (self.attack is None) != (self.attackers == 0):
            raise ConfigError("name an attack exactly when there are attackers")
        if not 0 < self.keep <= 1:
            raise ConfigError(f"keep must be in (0, 1], got {self.keep}")

    def _check_names(self) -> None:
        """Raises ConfigError unless data set, aggregator and attack are registered."""
        if self.dataset not in DATASETS:
            raise ConfigError(
                f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        if self.aggregator not in AGGREGATORS:
            raise ConfigError(
                f"aggregator must be one of {AGGREGATORS}, got {self.aggregator!r}")
        if self.attack is not None and self.attack not in ATTACKS:
            raise ConfigError(f"attack must be one of {ATTACKS}, got {self.attack!r}")

    @property
    def label(self) -> str:
        """A one-line description for progress lines and tables."""
        privacy = "no DP" if self.epsilon is None else f"ε={self.epsilon:g}"
        split = "IID" if self.alpha is None else f"α={self.alpha:g}"
        attack = f", {self.attackers}×{self.attack}" if self.attackers else ""
        return (f"{self.dataset} {self.nodes} nodes {split} {privacy}{attack} "
                f"[{self.aggregator}]")

    def spec(self) -> ModelSpec:
        """The model: the data set's, or ``model`` ("name" or "name:hidden").
        Raises ValueError for a hidden size that is not an integer."""
        spec = make_dataset(self.dataset).model()
        if self.model is not None:
            name, _, hidden = self.model.partition(":")
            sizes = {"hidden": int(hidden)} if hidden else {}
            spec = replace(spec, name=name, **sizes)
        return spec

    def split(self) -> FederatedSplit:
        """The data set split over the nodes: IID, or Dirichlet(``alpha``) label skew.
        Raises LearningError for shares too small to train and validate on."""
        data = make_dataset(self.dataset).load()
        if self.alpha is None:
            return split_iid(data, self.nodes, seed=self.seed)
        return split_dirichlet(data, self.nodes, self.alpha, seed=self.seed)

    def training(self, samples: int) -> DPConfig:
        """The DP-SGD settings, with σ calibrated for ``samples`` per device.
        Raises PrivacyError (from the calibration) for a budget no σ reaches."""
        base = make_dataset(self.dataset).training()
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
        """The test metric after the last round."""
        return self.curve[-1]

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON-ready data (``ScenarioResult(**d)`` restores it)."""
        return asdict(self)
