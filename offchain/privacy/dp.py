"""Local DP-SGD training with Opacus and per-device privacy accounting (RDP).

Each device trains the global model on its own data with Poisson-sampled,
per-sample-clipped, Gaussian-noised SGD and sends back the clipped model delta.
A :class:`PrivacyAccountant` per device and task accumulates the privacy spent
over all rounds; Opacus steps straight into its RDP accountant.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from opacus import PrivacyEngine
from opacus.accountants import RDPAccountant
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from offchain.errors import LearningError, PrivacyBudgetExceeded, PrivacyError
from offchain.learning.data import ArrayDataset
from offchain.learning.fedavg import clip_update, clipped_fraction
from offchain.learning.model import (
    ModelSpec,
    model_to_vector,
    seeded_torch,
    vector_to_model,
)

__all__ = [
    "DEFAULT_DELTA",
    "DPConfig",
    "DPDisabledWarning",
    "LocalUpdate",
    "PrivacyAccountant",
    "default_config",
    "task_epsilon",
    "steps_per_epoch",
    "train_local",
]

logger = logging.getLogger(__name__)

DEFAULT_DELTA = 1e-5
_STATE_VERSION = 1


class DPDisabledWarning(UserWarning):
    """Emitted when a configuration turns differential privacy off (noise 0)."""


def _positive(name: str, value: Any, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool):
        raise PrivacyError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise PrivacyError(f"{name} must be a number, got {value!r}") from exc
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise PrivacyError(f"{name} must be finite and {bound}, got {value!r}")
    return number


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PrivacyError(f"{name} must be a positive int, got {value!r}")
    return value


@dataclass(frozen=True, kw_only=True)
class DPConfig:
    """Hyper-parameters of one device's DP-SGD round (all keyword-only).

    ``noise_multiplier`` is σ (noise std / ``max_grad_norm``), ``max_grad_norm``
    the per-sample gradient clip C, ``batch_size`` the *expected* Poisson batch,
    ``local_epochs`` passes over the local data per round, ``lr``/``momentum``
    the SGD settings, ``delta`` the δ that ε is reported at, ``update_bound`` the
    coordinate-wise bound on the model delta sent out (the encryption layer's
    packing range). The defaults were tuned for the default model, 10 devices x
    5 rounds on the 5,000 MNIST digits (320 training samples per device): full
    local batches (sample rate 1) for 20 steps a round, ε ≈ 7.82 at δ = 1e-5
    after 5 rounds, ~87% test accuracy; deltas stay below 2 in practice.
    Raises PrivacyError for invalid values; warns (DPDisabledWarning) when
    ``noise_multiplier`` is 0, because then training is not private at all.
    """

    noise_multiplier: float = 6.5
    max_grad_norm: float = 1.0
    batch_size: int = 320
    local_epochs: int = 20
    lr: float = 4.0
    delta: float = DEFAULT_DELTA
    update_bound: float = 3.0
    momentum: float = 0.0

    def __post_init__(self) -> None:
        floats = ("noise_multiplier", "max_grad_norm", "lr", "update_bound", "delta")
        for name in floats:
            value = _positive(
                name, getattr(self, name), allow_zero=name == "noise_multiplier"
            )
            object.__setattr__(self, name, value)
        _positive_int("batch_size", self.batch_size)
        _positive_int("local_epochs", self.local_epochs)
        if self.delta >= 1:
            raise PrivacyError(f"delta must be in (0, 1), got {self.delta!r}")
        momentum = _positive("momentum", self.momentum, allow_zero=True)
        if momentum >= 1:
            raise PrivacyError(f"momentum must be in [0, 1), got {self.momentum!r}")
        object.__setattr__(self, "momentum", momentum)
        if self.noise_multiplier == 0:
            message = (
                "DIFFERENTIAL PRIVACY IS OFF: noise_multiplier=0 adds no noise, so "
                "local training leaks the training data and ε is infinite"
            )
            warnings.warn(message, DPDisabledWarning, stacklevel=3)
            logger.warning(message)

    @property
    def private(self) -> bool:
        """True unless ``noise_multiplier`` is 0."""
        return self.noise_multiplier > 0


def default_config() -> DPConfig:
    """The tuned default configuration (same as ``DPConfig()``). Raises nothing."""
    return DPConfig()


def steps_per_epoch(samples: int, batch_size: int) -> int:
    """Optimizer steps Opacus takes per epoch: ``ceil(samples / batch_size)``.

    The matching Poisson sample rate is ``1 / steps_per_epoch``.
    Raises PrivacyError for non-positive arguments.
    """
    _positive_int("samples", samples)
    _positive_int("batch_size", batch_size)
    return -(-samples // batch_size)


def task_epsilon(config: DPConfig, *, samples: int, rounds: int) -> float:
    """ε at ``config.delta`` after ``rounds`` rounds of :func:`train_local` on
    ``samples`` training samples (what a device will have spent by a task's end).

    Raises PrivacyError for non-positive ``samples`` or ``rounds``.
    """
    _positive_int("rounds", rounds)
    per_epoch = steps_per_epoch(samples, config.batch_size)
    return PrivacyAccountant(delta=config.delta).projected_epsilon(
        noise_multiplier=config.noise_multiplier,
        sample_rate=1.0 / per_epoch,
        steps=rounds * config.local_epochs * per_epoch,
    )


class PrivacyAccountant:
    """Cumulative (ε, δ) of one device within one task, by Rényi DP accounting.

    Wraps Opacus' :class:`~opacus.accountants.RDPAccountant`; :func:`train_local`
    hands that very object to Opacus, which steps it once per optimizer step.
    ``history`` is the list of ``(noise_multiplier, sample_rate, steps)`` runs.
    ``budget`` (optional) caps ε: training that would exceed it is refused.
    Raises PrivacyError for an invalid ``delta`` or ``budget``.
    """

    def __init__(
        self, *, delta: float = DEFAULT_DELTA, budget: float | None = None
    ) -> None:
        self._delta = _positive("delta", delta)
        if self._delta >= 1:
            raise PrivacyError(f"delta must be in (0, 1), got {delta!r}")
        self._budget = None if budget is None else _positive("budget", budget)
        self._rdp = RDPAccountant()

    @classmethod
    def for_config(
        cls, config: DPConfig, *, budget: float | None = None
    ) -> PrivacyAccountant:
        """A fresh accountant reporting ε at ``config.delta``.

        Raises PrivacyError for an invalid ``budget``.
        """
        return cls(delta=config.delta, budget=budget)

    @property
    def delta(self) -> float:
        """The δ at which ε is reported."""
        return self._delta

    @property
    def budget(self) -> float | None:
        """Largest ε this accountant allows, or None for no limit."""
        return self._budget

    @property
    def opacus_accountant(self) -> RDPAccountant:
        """The underlying Opacus accountant (shared, not a copy)."""
        return self._rdp

    @property
    def history(self) -> tuple[tuple[float, float, int], ...]:
        """``(noise_multiplier, sample_rate, steps)`` runs recorded so far."""
        return tuple((float(s), float(q), int(n)) for s, q, n in self._rdp.history)

    @property
    def steps(self) -> int:
        """Total optimizer steps recorded."""
        return sum(n for _, _, n in self.history)

    @property
    def epsilon(self) -> float:
        """Cumulative ε at :attr:`delta` (0 before any step, inf if σ was ever 0)."""
        return _epsilon(self.history, self._delta)

    def projected_epsilon(
        self, *, noise_multiplier: float, sample_rate: float, steps: int
    ) -> float:
        """ε after ``steps`` more steps at ``noise_multiplier`` and ``sample_rate``.

        Raises PrivacyError for invalid arguments.
        """
        run = _check_run(noise_multiplier, sample_rate, steps)
        return _epsilon(self.history + (run,), self._delta)

    def check_budget(
        self, *, noise_multiplier: float, sample_rate: float, steps: int
    ) -> float:
        """Return the projected ε of the next run, refusing it if over budget.

        Raises PrivacyBudgetExceeded (with spent, projected and budget ε) if
        the run would take ε above :attr:`budget`; PrivacyError for invalid
        arguments.
        """
        projected = self.projected_epsilon(
            noise_multiplier=noise_multiplier, sample_rate=sample_rate, steps=steps
        )
        if self._budget is not None and not projected <= self._budget:
            raise PrivacyBudgetExceeded(
                f"{steps} more steps (noise_multiplier={noise_multiplier}, "
                f"sample_rate={sample_rate:.6g}) would raise ε from "
                f"{self.epsilon:.4f} to {projected:.4f} at δ={self._delta:g}, over "
                f"the budget of {self._budget:g}"
            )
        return projected

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe snapshot of the state (restore with :meth:`from_dict`).

        Raises nothing.
        """
        return {
            "version": _STATE_VERSION,
            "mechanism": "rdp",
            "delta": self._delta,
            "budget": self._budget,
            "history": [[s, q, n] for s, q, n in self.history],
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> PrivacyAccountant:
        """Rebuild an accountant from :meth:`to_dict` output.

        Raises PrivacyError naming the problem if ``state`` is malformed.
        """
        if not isinstance(state, Mapping):
            raise PrivacyError(
                f"accountant state must be a mapping, got {type(state).__name__}"
            )
        if state.get("version") != _STATE_VERSION:
            raise PrivacyError(
                f"accountant state version {state.get('version')!r}, expected "
                f"{_STATE_VERSION}"
            )
        if state.get("mechanism") != "rdp":
            raise PrivacyError(
                f"accountant state mechanism {state.get('mechanism')!r}, expected 'rdp'"
            )
        for key in ("delta", "budget", "history"):
            if key not in state:
                raise PrivacyError(f"accountant state lacks {key!r}")
        accountant = cls(delta=state["delta"], budget=state["budget"])
        history = state["history"]
        if not isinstance(history, (list, tuple)):
            raise PrivacyError(f"accountant history must be a list, got {history!r}")
        runs = []
        for i, item in enumerate(history):
            if not isinstance(item, (list, tuple)) or len(item) != 3:
                raise PrivacyError(
                    f"accountant history entry {i} is malformed: {item!r}"
                )
            runs.append(_check_run(*item))
        accountant._rdp.history = runs
        return accountant

    def __repr__(self) -> str:
        return (
            f"PrivacyAccountant(delta={self._delta:g}, budget={self._budget}, "
            f"steps={self.steps}, epsilon={self.epsilon:.4f})"
        )


def _check_run(
    noise_multiplier: Any, sample_rate: Any, steps: Any
) -> tuple[float, float, int]:
    sigma = _positive("noise_multiplier", noise_multiplier, allow_zero=True)
    q = _positive("sample_rate", sample_rate)
    if q > 1:
        raise PrivacyError(f"sample_rate must be in (0, 1], got {sample_rate!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise PrivacyError(f"steps must be a non-negative int, got {steps!r}")
    return (sigma, q, steps)


def _epsilon(history: tuple[tuple[float, float, int], ...], delta: float) -> float:
    runs = [run for run in history if run[2] > 0]
    if not runs:
        return 0.0
    if any(sigma == 0 for sigma, _, _ in runs):
        return math.inf
    rdp = RDPAccountant()
    rdp.history = list(runs)
    with warnings.catch_warnings():
        # Opacus warns when the best RDP order sits at the edge of its grid.
        warnings.filterwarnings("ignore", message="Optimal order is")
        return float(rdp.get_epsilon(delta))


@dataclass(frozen=True, eq=False)
class LocalUpdate:
    """What one device's training round produced.

    ``delta`` is new − global, clipped to ``[-update_bound, update_bound]``;
    ``epsilon`` the device's cumulative ε after this round; ``steps`` the DP-SGD
    steps of this round; ``samples`` the training set size; ``train_loss`` the
    sample-weighted mean loss over the round; ``clipped_fraction`` the share of
    delta coordinates the update bound cut; ``seconds`` the wall time.
    """

    delta: np.ndarray
    epsilon: float
    steps: int
    samples: int
    train_loss: float
    clipped_fraction: float = 0.0
    seconds: float = field(default=0.0, compare=False)


def train_local(
    spec: ModelSpec,
    global_vec: np.ndarray,
    data: ArrayDataset,
    config: DPConfig,
    accountant: PrivacyAccountant,
    *,
    seed: int,
    threads: int | None = 1,
) -> LocalUpdate:
    """Train ``global_vec`` on ``data`` with DP-SGD and return the clipped delta.

    Uses Opacus' ``make_private`` with Poisson sampling (sample rate
    ``1 / ceil(n / batch_size)``) for ``local_epochs * ceil(n / batch_size)``
    steps, stepping ``accountant``'s RDP accountant. The loss is cross-entropy
    for a classifier and L1 (mean absolute error) for a regression spec
    (``spec.regression``; its ``[n, 1]`` output is flattened to ``[n]``); L1
    keeps each per-sample gradient bounded by the input's norm. ``train_loss``
    is that loss. Deterministic given ``seed``
    (torch's global RNG is restored afterwards); ``threads`` caps torch threads
    during training (1 was fastest for these tiny models).
    Raises PrivacyBudgetExceeded before any step if the round would exceed the
    accountant's budget; PrivacyError if ``config.delta`` differs from the
    accountant's δ or Opacus fails; UpdateRejected for a malformed
    ``global_vec``; LearningError for empty or mismatched data (wrong feature
    count, or integer labels for a regression spec / real-valued targets for a
    classifier), a bad seed, or a diverged (non-finite) model.
    """
    started = time.perf_counter()
    if config.delta != accountant.delta:
        raise PrivacyError(
            f"config delta {config.delta:g} differs from the accountant's "
            f"{accountant.delta:g}"
        )
    n = len(data)
    if n == 0:
        raise LearningError("cannot train on an empty dataset")
    if data.features != spec.input_dim:
        raise LearningError(
            f"data has {data.features} features, {spec.describe()} expects "
            f"{spec.input_dim}"
        )
    if spec.regression != data.regression:
        kind = "a regression model" if spec.regression else "a classifier"
        held = (
            "real-valued regression targets"
            if data.regression
            else "integer class labels"
        )
        raise LearningError(f"{spec.describe()} is {kind} but the data holds {held}")
    model = vector_to_model(spec, global_vec)
    base = model_to_vector(model)
    per_epoch = steps_per_epoch(n, config.batch_size)
    total_steps = per_epoch * config.local_epochs
    sample_rate = 1.0 / per_epoch
    accountant.check_budget(
        noise_multiplier=config.noise_multiplier,
        sample_rate=sample_rate,
        steps=total_steps,
    )
    steps_before = accountant.steps
    loss_sum = 0.0
    loss_count = 0
    with seeded_torch(seed, threads), warnings.catch_warnings():
        # Expected and harmless here: secure_mode (torchcsprng) is off so runs are
        # reproducible, and Opacus' hooks fire although the inputs need no grad.
        warnings.filterwarnings("ignore", message="Secure RNG turned off")
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        tensors = TensorDataset(
            torch.from_numpy(data.x.copy()), torch.from_numpy(data.y.copy())
        )
        loader = DataLoader(tensors, batch_size=config.batch_size)
        optimizer = torch.optim.SGD(
            model.parameters(), lr=config.lr, momentum=config.momentum
        )
        engine = PrivacyEngine(accountant="rdp")
        engine.accountant = accountant.opacus_accountant
        criterion: nn.Module = (
            nn.L1Loss() if spec.regression else nn.CrossEntropyLoss()
        )
        try:
            dp_model, dp_optimizer, dp_loader = engine.make_private(
                module=model,
                optimizer=optimizer,
                data_loader=loader,
                noise_multiplier=config.noise_multiplier,
                max_grad_norm=config.max_grad_norm,
                poisson_sampling=True,
            )
            rate = dp_loader.sample_rate
            if abs(rate - sample_rate) > 1e-12 or len(dp_loader) != per_epoch:
                raise PrivacyError(
                    f"Opacus sampled at rate {rate} for "
                    f"{len(dp_loader)} steps per epoch, expected {sample_rate} for "
                    f"{per_epoch}"
                )
            dp_model.train()
            for _ in range(config.local_epochs):
                for x, y in dp_loader:
                    dp_optimizer.zero_grad(set_to_none=True)
                    out = dp_model(x)
                    if spec.regression:
                        out = out.reshape(-1)  # [b, 1] -> [b], like the targets
                    if len(y) == 0:
                        # Empty Poisson batch: the noise-only step still happens
                        # (and is accounted for); its mean loss would be NaN.
                        loss = out.sum() * 0.0
                    else:
                        loss = criterion(out, y)
                        loss_sum += float(loss.detach()) * len(y)
                        loss_count += len(y)
                    loss.backward()
                    dp_optimizer.step()
        except (RuntimeError, ValueError, TypeError) as exc:
            raise PrivacyError(f"DP-SGD training failed: {exc}") from exc
    taken = accountant.steps - steps_before
    if taken != total_steps:
        raise PrivacyError(f"Opacus recorded {taken} steps, expected {total_steps}")
    new = model_to_vector(model)
    raw_delta = new.astype(np.float64) - base.astype(np.float64)
    if not np.all(np.isfinite(raw_delta)):
        raise LearningError(
            f"local training diverged: {int((~np.isfinite(raw_delta)).sum())} "
            f"non-finite parameters (lr={config.lr})"
        )
    raw_delta = raw_delta.astype(np.float32)
    return LocalUpdate(
        delta=clip_update(raw_delta, config.update_bound),
        epsilon=accountant.epsilon,
        steps=taken,
        samples=n,
        train_loss=loss_sum / loss_count if loss_count else math.nan,
        clipped_fraction=clipped_fraction(raw_delta, config.update_bound),
        seconds=time.perf_counter() - started,
    )
