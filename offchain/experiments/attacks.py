"""Attack simulators for experiments: what a malicious device does differently.

An :class:`Attack` changes up to three things a device produces: the training
data it learns from (:meth:`Attack.poison_data`), the update it submits
(:meth:`Attack.poison_update`) and the scores it gives its peers in mutual
verification (:meth:`Attack.poison_scores`). The kinds, with their names in
the literature:

* ``label-flip`` -- *label flipping* (data poisoning; Biggio et al. 2012,
  Tolpegin et al. 2020): train honestly on data whose labels are mirrored
  (``y -> classes - 1 - y``; regression targets ``y -> min + max - y``).
* ``sign-flip`` -- *sign flipping* (Damaskinos et al. 2018; Fang et al. 2020):
  train honestly, then submit ``-boost * delta``, pushing the model the wrong
  way.
* ``scale`` -- *model replacement / boosting* (Bagdasaryan et al. 2020;
  Bhagoji et al. 2019): train on label-flipped data and submit
  ``boost * delta`` so the poisoned update survives averaging with honest ones.
* ``noise`` -- *Gaussian noise* attack (Blanchard et al. 2017; Fang et al.
  2020): skip training and submit ``N(0, noise_std^2)`` per coordinate.
* ``free-ride`` -- *free riding* (Lin et al. 2019; Fraboni et al. 2021): skip
  training and submit a zero update (the unchanged global model) while still
  claiming a share of the reward.
* ``lying-rater`` -- *lying raters / collusion* in mutual verification: train
  and submit honestly, but rate colluding peers with the maximum score and
  everybody else with zero (bad-mouthing and ballot stuffing in reputation
  systems).

Every submitted update is clipped into the packing range ``[-bound, bound]``:
an out-of-range update would be rejected by the encryption layer, so a rational
attacker stays inside it. Everything here is numpy only.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from offchain.errors import ConfigError, LearningError
from offchain.learning.data import ArrayDataset
from offchain.learning.fedavg import check_bound, finite_vector
from offchain.protocol.terms import MAX_SCORE

__all__ = ["ATTACKS", "Attack"]

ATTACKS = ("label-flip", "sign-flip", "scale", "noise", "free-ride", "lying-rater")
"""Attack kinds :class:`Attack` accepts."""


_FLIPS_LABELS = frozenset({"label-flip", "scale"})
_NO_TRAINING = frozenset({"free-ride", "noise"})


def _positive(value: object, what: str) -> float:
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


@dataclass(frozen=True, kw_only=True)
class Attack:
    """One attacker's behaviour; ``kind`` is one of :data:`ATTACKS`.

    ``boost`` is the factor of ``sign-flip`` (submits ``-boost * delta``) and
    ``scale`` (submits ``boost * delta`` of a label-flipped model);
    ``noise_std`` is the standard deviation of the ``noise`` attack's update.
    Raises ConfigError for an unknown kind or a ``boost``/``noise_std`` that is
    not finite and > 0.
    """

    kind: str
    boost: float = 4.0
    noise_std: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or self.kind not in ATTACKS:
            raise ConfigError(
                f"unknown attack {self.kind!r}; choose one of {', '.join(ATTACKS)}"
            )
        object.__setattr__(self, "boost", _positive(self.boost, "boost"))
        object.__setattr__(self, "noise_std", _positive(self.noise_std, "noise_std"))

    @property
    def trains(self) -> bool:
        """Whether the attacker trains locally (and so spends privacy budget).

        False for ``free-ride`` and ``noise``, which submit without training.
        """
        return self.kind not in _NO_TRAINING

    def poison_data(self, data: ArrayDataset, *, classes: int) -> ArrayDataset:
        """The training data this attacker learns from.

        ``label-flip`` and ``scale`` return a new dataset with mirrored targets:
        integer labels ``y -> classes - 1 - y``, float (regression) targets
        ``y -> min(y) + max(y) - y`` (same dtype, same range). Every other kind
        returns ``data`` itself. ``classes`` is only used for integer labels.
        Raises LearningError for integer labels when ``classes`` is not an
        int >= 1 or a label is ``>= classes``.
        """
        if self.kind not in _FLIPS_LABELS:
            return data
        y = np.asarray(data.y)
        if np.issubdtype(y.dtype, np.floating):
            if y.size == 0:
                flipped = y.copy()
            else:
                lo = float(y.min())
                hi = float(y.max())
                flipped = ((lo + hi) - y.astype(np.float64)).astype(y.dtype)
        else:
            if isinstance(classes, (bool, np.bool_)) or not isinstance(
                classes, (int, np.integer)
            ) or classes < 1:
                raise LearningError(f"classes must be an int >= 1, got {classes!r}")
            if y.size and int(y.max()) >= classes:
                raise LearningError(
                    f"label {int(y.max())} is out of range for {int(classes)} classes"
                )
            flipped = (int(classes) - 1 - y).astype(y.dtype)
        return dataclasses.replace(data, y=flipped)

    def poison_update(
        self, delta: np.ndarray, *, bound: float, rng: np.random.Generator
    ) -> np.ndarray:
        """The update this attacker submits instead of ``delta``.

        ``delta`` is what the attacker trained (zeros if it did not train).
        ``sign-flip`` gives ``-boost * delta``, ``scale`` ``boost * delta``,
        ``noise`` ``N(0, noise_std^2)`` per coordinate drawn from ``rng``,
        ``free-ride`` zeros, ``label-flip`` and ``lying-rater`` ``delta``
        unchanged. The result is a new float32 vector clipped to
        ``[-bound, bound]`` (every ``|x_i| <= bound`` holds even in float64).
        Raises UpdateRejected for a non-numeric, non-1-D or non-finite
        ``delta``; LearningError for a bound that is not finite and > 0.
        """
        limit = _float32_limit(check_bound(bound))
        arr = finite_vector(delta, "delta").astype(np.float64)
        if self.kind == "sign-flip":
            out = -self.boost * arr
        elif self.kind == "scale":
            out = self.boost * arr
        elif self.kind == "noise":
            out = rng.normal(0.0, self.noise_std, size=arr.shape[0])
        elif self.kind == "free-ride":
            out = np.zeros_like(arr)
        else:
            out = arr
        return np.clip(out, -limit, limit).astype(np.float32)

    def poison_scores(
        self, scores: Sequence[int], *, colluders: Sequence[bool]
    ) -> list[int]:
        """The scores this attacker reports for its peers (a new list).

        ``lying-rater`` gives MAX_SCORE (10000 basis points) to every peer ``i``
        with ``colluders[i]`` true and 0 to the rest; every other kind reports
        ``scores`` unchanged.
        Raises LearningError if ``scores`` and ``colluders`` differ in length.
        """
        honest = list(scores)
        flags = list(colluders)
        if len(honest) != len(flags):
            raise LearningError(
                f"{len(honest)} scores but {len(flags)} colluder flags"
            )
        if self.kind != "lying-rater":
            return honest
        return [MAX_SCORE if bool(flag) else 0 for flag in flags]
