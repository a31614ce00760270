"""Attack simulators for experiments: what a malicious device does differently.

An :class:`Attack` changes up to three things a device produces: the training
data it learns from (:meth:`Attack.poison_data`), the update it submits
(:meth:`Attack.poison_update`) and the scores it gives its peers in mutual
verification (:meth:`Attack.poison_scores`). The base class behaves honestly;
each attack is one subclass, found by the name the suites use
(:data:`ATTACK_TYPES`, :func:`make_attack`). The attacks, with their names in
the literature:

* ``label-flip`` -- :class:`LabelFlip`, *label flipping* (data poisoning;
  Biggio et al. 2012, Tolpegin et al. 2020): train honestly on data whose
  labels are mirrored (``y -> classes - 1 - y``; regression targets
  ``y -> min + max - y``).
* ``sign-flip`` -- :class:`SignFlip`, *sign flipping* (Damaskinos et al. 2018;
  Fang et al. 2020): train honestly, then submit ``-boost * delta``, pushing
  the model the wrong way.
* ``scale`` -- :class:`Scale`, *model replacement / boosting* (Bagdasaryan et
  al. 2020; Bhagoji et al. 2019): train on label-flipped data and submit
  ``boost * delta`` so the poisoned update survives averaging with honest ones.
* ``noise`` -- :class:`Noise`, *Gaussian noise* attack (Blanchard et al. 2017;
  Fang et al. 2020): skip training and submit ``N(0, noise_std^2)`` per
  coordinate.
* ``free-ride`` -- :class:`FreeRide`, *free riding* (Lin et al. 2019; Fraboni
  et al. 2021): skip training and submit a zero update (the unchanged global
  model) while still claiming a share of the reward.
* ``lying-rater`` -- :class:`LyingRater`, *lying raters / collusion* in mutual
  verification: train and submit honestly, but rate colluding peers with the
  maximum score and everybody else with zero (bad-mouthing and ballot stuffing
  in reputation systems).

Every submitted update is clipped into the packing range ``[-bound, bound]``:
an out-of-range update would be rejected by the encryption layer, so a rational
attacker stays inside it. Everything here is numpy only.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar

import numpy as np

from offchain.errors import ConfigError, LearningError
from offchain.learning.data import ArrayDataset
from offchain.learning.fedavg import check_bound, finite_vector
from offchain.protocol.terms import MAX_SCORE

__all__ = [
    "ATTACKS",
    "ATTACK_TYPES",
    "Attack",
    "FreeRide",
    "LabelFlip",
    "LyingRater",
    "Noise",
    "Scale",
    "SignFlip",
    "make_attack",
]


def _positive(value: object, what: str) -> float:
    """Return ``value`` as a float, else raise ConfigError unless finite and > 0."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise ConfigError(f"{what} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ConfigError(f"{what} must be finite and > 0, got {value!r}")
    return number


def _float32_limit(bound: float) -> float:
    """Largest float32 value that is ``<= bound`` (as a Python float).

    Clipping to this limit keeps a float32 result within ``bound`` even when
    compared in float64, as the packing layer does.
    """
    limit = np.float32(bound)
    if float(limit) > bound:
        limit = np.nextafter(limit, np.float32(0.0))
    return float(limit)


def _mirror_labels(data: ArrayDataset, classes: int) -> ArrayDataset:
    """``data`` with mirrored targets: integer labels ``y -> classes - 1 - y``, float
    (regression) targets ``y -> min(y) + max(y) - y`` (same dtype, same range).

    Raises LearningError for integer labels when ``classes`` is not an int >= 1 or
    a label is ``>= classes``.
    """
    y = np.asarray(data.y)
    if np.issubdtype(y.dtype, np.floating):
        if y.size == 0:
            return dataclasses.replace(data, y=y.copy())
        lo, hi = float(y.min()), float(y.max())
        return dataclasses.replace(
            data, y=((lo + hi) - y.astype(np.float64)).astype(y.dtype)
        )
    if isinstance(classes, (bool, np.bool_)) or not isinstance(
        classes, (int, np.integer)
    ) or classes < 1:
        raise LearningError(f"classes must be an int >= 1, got {classes!r}")
    if y.size and int(y.max()) >= classes:
        raise LearningError(
            f"label {int(y.max())} is out of range for {int(classes)} classes"
        )
    return dataclasses.replace(data, y=(int(classes) - 1 - y).astype(y.dtype))


@dataclass(frozen=True, kw_only=True)
class Attack:
    """One attacker's behaviour. The base class is honest: it trains, and submits
    its data, update and scores unchanged (the update clipped to the packing range);
    each subclass changes what its attack changes. ``name`` is the attack's name in
    :data:`ATTACK_TYPES`; ``trains`` says whether the attacker trains locally (and
    so spends privacy budget).
    """

    name: ClassVar[str] = "honest"
    trains: ClassVar[bool] = True

    def poison_data(self, data: ArrayDataset, *, classes: int) -> ArrayDataset:
        """The training data this attacker learns from: ``data`` itself unless the
        attack poisons it. ``classes`` is the number of labels of a classifier.
        Raises LearningError where the attack mirrors labels that do not fit
        ``classes``.
        """
        return data

    def poison_update(
        self, delta: np.ndarray, *, bound: float, rng: np.random.Generator
    ) -> np.ndarray:
        """The update this attacker submits instead of ``delta``.

        ``delta`` is what the attacker trained (zeros if it did not train); ``rng``
        draws what a randomised attack draws. The result is a new float32 vector
        clipped to ``[-bound, bound]`` (every ``|x_i| <= bound`` holds even in
        float64).
        Raises UpdateRejected for a non-numeric, non-1-D or non-finite ``delta``;
        LearningError for a bound that is not finite and > 0.
        """
        limit = _float32_limit(check_bound(bound))
        arr = finite_vector(delta, "delta").astype(np.float64)
        return np.clip(self._submit(arr, rng), -limit, limit).astype(np.float32)

    def poison_scores(
        self, scores: Sequence[int], *, colluders: Sequence[bool]
    ) -> list[int]:
        """The scores this attacker reports for its peers (a new list); peer ``i``
        colludes with it when ``colluders[i]`` is true.
        Raises LearningError if ``scores`` and ``colluders`` differ in length.
        """
        honest = list(scores)
        flags = [bool(flag) for flag in colluders]
        if len(honest) != len(flags):
            raise LearningError(
                f"{len(honest)} scores but {len(flags)} colluder flags"
            )
        return self._rate(honest, flags)

    def _submit(self, delta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The float64 update to submit, before clipping (honest: ``delta``)."""
        return delta

    def _rate(self, scores: list[int], colluders: list[bool]) -> list[int]:
        """The scores to report (honest: ``scores``)."""
        return scores


@dataclass(frozen=True, kw_only=True)
class LabelFlip(Attack):
    """Trains honestly on mirrored labels and submits that update."""

    name: ClassVar[str] = "label-flip"

    def poison_data(self, data: ArrayDataset, *, classes: int) -> ArrayDataset:
        """A new dataset with mirrored targets: integer labels ``y -> classes - 1 -
        y``, float (regression) targets ``y -> min(y) + max(y) - y`` (same dtype,
        same range; ``classes`` is only used for integer labels).
        Raises LearningError for integer labels when ``classes`` is not an int >= 1
        or a label is ``>= classes``.
        """
        return _mirror_labels(data, classes)


@dataclass(frozen=True, kw_only=True)
class SignFlip(Attack):
    """Trains honestly and submits ``-boost * delta``. Raises ConfigError for a
    ``boost`` that is not finite and > 0."""

    name: ClassVar[str] = "sign-flip"
    boost: float = 4.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "boost", _positive(self.boost, "boost"))

    def _submit(self, delta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return -self.boost * delta


@dataclass(frozen=True, kw_only=True)
class Scale(LabelFlip):
    """Trains on mirrored labels and submits ``boost * delta`` (model replacement).
    Raises ConfigError for a ``boost`` that is not finite and > 0."""

    name: ClassVar[str] = "scale"
    boost: float = 4.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "boost", _positive(self.boost, "boost"))

    def _submit(self, delta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.boost * delta


@dataclass(frozen=True, kw_only=True)
class Noise(Attack):
    """Skips training and submits ``N(0, noise_std^2)`` per coordinate, drawn from
    the ``rng`` given. Raises ConfigError for a ``noise_std`` that is not finite
    and > 0."""

    name: ClassVar[str] = "noise"
    trains: ClassVar[bool] = False
    noise_std: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "noise_std", _positive(self.noise_std, "noise_std"))

    def _submit(self, delta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return rng.normal(0.0, self.noise_std, size=delta.shape[0])


@dataclass(frozen=True, kw_only=True)
class FreeRide(Attack):
    """Skips training and submits zeros (the unchanged global model)."""

    name: ClassVar[str] = "free-ride"
    trains: ClassVar[bool] = False

    def _submit(self, delta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.zeros_like(delta)


@dataclass(frozen=True, kw_only=True)
class LyingRater(Attack):
    """Trains and submits honestly, but rates colluders MAX_SCORE (10000 basis
    points) and every other peer 0."""

    name: ClassVar[str] = "lying-rater"

    def _rate(self, scores: list[int], colluders: list[bool]) -> list[int]:
        return [MAX_SCORE if flag else 0 for flag in colluders]


ATTACK_TYPES: Mapping[str, type[Attack]] = MappingProxyType(
    {
        attack.name: attack
        for attack in (LabelFlip, SignFlip, Scale, Noise, FreeRide, LyingRater)
    }
)
"""Every attack by the name the suites, scenarios and tables use."""

ATTACKS = tuple(ATTACK_TYPES)
"""The attacks' names, in table order."""


def make_attack(name: str) -> Attack:
    """The attack called ``name`` with its default strength (boost 4, noise σ 1).

    Raises ConfigError for a name not in ATTACK_TYPES (listing them).
    """
    attack = ATTACK_TYPES.get(name)
    if attack is None:
        raise ConfigError(
            f"unknown attack {name!r}; choose one of {', '.join(ATTACKS)}"
        )
    return attack()
