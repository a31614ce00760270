"""ArrayDataset validation, MNIST and Auto-MPG loading and the IID device split."""

from __future__ import annotations

import numpy as np
import pytest

from offchain.errors import FedshareError, LearningError
from offchain.learning.data import (
    AUTOMPG_FEATURES,
    MIN_TRAIN_PER_DEVICE,
    ArrayDataset,
    load_autompg,
    load_mnist,
    split_iid,
)


def indexed_dataset(n: int, classes: int = 10, d: int = 3) -> ArrayDataset:
    """Dataset whose first feature is the sample index (to track samples)."""
    x = np.zeros((n, d), dtype=np.float32)
    x[:, 0] = np.arange(n)
    return ArrayDataset(x=x, y=np.arange(n) % classes)


def ids(data: ArrayDataset) -> set[int]:
    return set(data.x[:, 0].astype(int).tolist())


def test_dataset_converts_dtypes_and_is_read_only() -> None:
    data = ArrayDataset(x=np.ones((4, 2), dtype=np.float64), y=np.array([0, 1, 2, 3]))
    assert data.x.dtype == np.float32 and data.y.dtype == np.int64
    assert len(data) == 4 and data.features == 2
    with pytest.raises(ValueError):
        data.x[0, 0] = 5.0


def test_dataset_does_not_freeze_the_callers_array() -> None:
    x = np.ones((2, 2), dtype=np.float32)
    ArrayDataset(x=x, y=np.array([0, 1]))
    x[0, 0] = 3.0  # still writable


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        (np.ones(4), np.zeros(4, dtype=int), "x must be 2-D"),
        (np.ones((4, 2)), np.zeros((4, 1), dtype=int), "y must be 1-D"),
        (np.ones((4, 2)), np.zeros(3, dtype=int), "4 rows but y has 3"),
        (np.ones((2, 2)), np.array([True, False]), "y must hold integers"),
        (np.ones((2, 2)), np.array(["a", "b"]), "or floats"),
        (np.ones((2, 2)), np.array([1.0, np.nan]), "1 non-finite regression targets"),
        (np.ones((3, 2)), np.array([np.inf, 1.0, -np.inf]), "2 non-finite regression"),
        (np.ones((2, 2)), np.array([1e39, 0.0]), "1 non-finite regression"),
        (np.ones((2, 2)), np.array([0, -1]), "labels must be >= 0"),
        (np.array([[0.0, np.nan], [np.inf, 1.0]]), np.array([0, 1]), "2 non-finite"),
    ],
)
def test_dataset_rejects_malformed_arrays(x, y, message: str) -> None:
    with pytest.raises(LearningError, match=message):
        ArrayDataset(x=x, y=y)


def test_load_mnist_is_scaled_and_cached() -> None:
    data = load_mnist()
    assert data.x.shape == (5000, 784) and data.y.shape == (5000,)
    assert data.x.dtype == np.float32
    assert 0.0 <= float(data.x.min()) and float(data.x.max()) == 1.0
    assert np.bincount(data.y).tolist() == [500] * 10
    assert load_mnist() is data


def test_split_sizes_for_the_demo_setting() -> None:
    split = split_iid(load_mnist(), 10)
    assert len(split.test) == 1000
    assert len(split.devices) == 10
    for device in split.devices:
        assert (len(device.train), len(device.validation)) == (320, 80)


def test_split_parts_are_disjoint_and_cover_everything() -> None:
    data = indexed_dataset(1003)
    split = split_iid(data, 7, test_fraction=0.25, validation_fraction=0.3, seed=4)
    parts = [ids(split.test)]
    for device in split.devices:
        parts += [ids(device.train), ids(device.validation)]
    assert sum(len(p) for p in parts) == 1003
    assert set().union(*parts) == set(range(1003))
    # (1003 - 251) // 7 = 107 per device; the 3 left over join the test set.
    assert len(split.test) == 251 + 3
    assert {len(d.train) + len(d.validation) for d in split.devices} == {107}


def test_split_is_roughly_stratified() -> None:
    split = split_iid(load_mnist(), 10, seed=1)
    for device in split.devices:
        counts = np.bincount(device.train.y, minlength=10)
        assert counts.min() >= 28 and counts.max() <= 36, counts
        assert np.bincount(device.validation.y, minlength=10).min() >= 6
    assert np.bincount(split.test.y, minlength=10).min() >= 95


def test_split_is_deterministic_in_the_seed() -> None:
    data = indexed_dataset(500)
    a = split_iid(data, 4, seed=3)
    b = split_iid(data, 4, seed=3)
    c = split_iid(data, 4, seed=4)
    assert np.array_equal(a.test.x, b.test.x)
    for da, db in zip(a.devices, b.devices, strict=True):
        assert np.array_equal(da.train.x, db.train.x)
        assert np.array_equal(da.validation.y, db.validation.y)
    assert not np.array_equal(a.devices[0].train.x, c.devices[0].train.x)


def test_split_rejects_too_few_samples_per_device() -> None:
    message = r"give \d+ train and \d+ validation"
    with pytest.raises(LearningError, match=message) as info:
        split_iid(indexed_dataset(100), 10)
    assert str(MIN_TRAIN_PER_DEVICE) in str(info.value)
    assert isinstance(info.value, FedshareError)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(n_devices=0), "n_devices must be a positive int"),
        (dict(n_devices=2.0), "n_devices must be a positive int"),
        (dict(n_devices=2, test_fraction=0.0), "test_fraction must be in"),
        (dict(n_devices=2, validation_fraction=1.0), "validation_fraction must be in"),
    ],
)
def test_split_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(LearningError, match=message):
        split_iid(indexed_dataset(200), **kwargs)


# --- regression data -----------------------------------------------------------------


def test_float_targets_make_a_regression_dataset() -> None:
    data = ArrayDataset(x=np.ones((3, 2)), y=np.array([-1.5, 0.0, 30.25]))
    assert data.regression
    assert data.y.dtype == np.float32
    assert data.y.tolist() == [-1.5, 0.0, 30.25]  # negative targets are fine
    with pytest.raises(ValueError):
        data.y[0] = 1.0
    assert data.subset(np.array([2, 0])).regression
    labels = ArrayDataset(x=np.ones((2, 2)), y=np.array([0, 1], dtype=np.int32))
    assert not labels.regression and labels.y.dtype == np.int64
    half = ArrayDataset(x=np.ones((2, 2)), y=np.array([1, 2], dtype=np.float16))
    assert half.regression and half.y.dtype == np.float32


def test_load_autompg_is_scaled_and_cached() -> None:
    data = load_autompg()
    assert data.x.shape == (392, 9) and data.y.shape == (392,)
    assert len(AUTOMPG_FEATURES) == 9
    assert data.x.dtype == np.float32 and data.y.dtype == np.float32
    assert data.regression
    assert np.all(np.isfinite(data.x)) and np.all(np.isfinite(data.y))
    assert float(data.x.min()) >= 0.0 and float(data.x.max()) <= 1.0
    # Fixed public scales: 8 cylinders, 500 cu in, 250 hp, 6000 lb, 25 s, 1970-82.
    assert data.x[:, 0].max() == 1.0 and data.x[:, 5].min() == 0.0
    assert data.x[:, 5].max() == 1.0
    assert np.isclose(data.x[0, :6], [1.0, 307 / 500, 130 / 250, 3504 / 6000,
                                      12 / 25, 0.0]).all()
    origin = data.x[:, 6:]
    assert set(np.unique(origin).tolist()) == {0.0, 1.0}
    assert origin.sum(axis=1).tolist() == [1.0] * 392
    assert origin.sum(axis=0).tolist() == [245.0, 68.0, 79.0]  # USA, Europe, Japan
    assert 9.0 <= float(data.y.min()) and float(data.y.max()) <= 46.6 + 1e-4
    assert data.y[0] == np.float32(18.0)  # mpg, unscaled
    assert load_autompg() is data


def test_split_autompg_gives_every_device_enough_data() -> None:
    data = load_autompg()
    split = split_iid(data, 10, seed=0)
    assert len(split.test) == 78 + 4  # round(0.2 * 392) plus the 314 % 10 left over
    for device in split.devices:
        assert (len(device.train), len(device.validation)) == (25, 6)
        assert device.train.regression and device.validation.regression
    # Stratified by target quantiles: every device sees low and high mpg cars.
    low, high = np.quantile(data.y, [0.25, 0.75])
    for device in split.devices:
        assert device.train.y.min() < low and device.train.y.max() > high
        assert abs(float(np.median(device.train.y)) - np.median(data.y)) < 3.0


def test_split_stratifies_regression_targets_by_quantile() -> None:
    x = np.zeros((1000, 2))
    x[:, 0] = np.arange(1000)
    data = ArrayDataset(x=x, y=np.arange(1000) * 0.37)
    split = split_iid(data, 10, seed=3)

    def decile(part: ArrayDataset) -> np.ndarray:
        return np.bincount((part.y / 37).astype(int), minlength=10)

    assert decile(split.test).tolist() == [20] * 10
    for device in split.devices:
        assert set(decile(device.train).tolist()) <= {6, 7}
        assert set(decile(device.validation).tolist()) <= {1, 2}
    parts = [ids(split.test)]
    for device in split.devices:
        parts += [ids(device.train), ids(device.validation)]
    assert set().union(*parts) == set(range(1000))
    assert sum(len(p) for p in parts) == 1000
    again = split_iid(data, 10, seed=3)
    assert np.array_equal(again.devices[4].train.y, split.devices[4].train.y)


def test_split_handles_tied_regression_targets() -> None:
    x = np.zeros((200, 1))
    x[:, 0] = np.arange(200)
    y = np.where(np.arange(200) < 150, 1.0, 2.0)  # heavily tied: two strata
    split = split_iid(ArrayDataset(x=x, y=y), 4, seed=0)
    for device in split.devices:
        assert set(np.unique(device.train.y).tolist()) == {1.0, 2.0}
