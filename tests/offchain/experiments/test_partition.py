"""Dirichlet label-skew partitions."""

from __future__ import annotations

import numpy as np
import pytest

from offchain.errors import LearningError
from offchain.experiments.partition import label_skew, split_dirichlet
from offchain.learning.data import ArrayDataset, label_groups, load_mnist, split_iid


def _indices(split):
    parts = [split.test.x[:, 0]] + [a for d in split.devices
                                    for a in (d.train.x[:, 0], d.validation.x[:, 0])]
    return np.concatenate(parts)


def indexed(n: int, classes: int = 10) -> ArrayDataset:
    return ArrayDataset(x=np.arange(n, dtype=np.float32)[:, None],
                        y=np.arange(n, dtype=np.int64) % classes)


def test_every_sample_lands_exactly_once_in_equal_shares():
    data = indexed(1000)
    split = split_dirichlet(data, 8, 0.3, seed=2)
    assert sorted(_indices(split).tolist()) == list(range(1000))
    assert len(split.test) == 200
    assert {(len(d.train), len(d.validation)) for d in split.devices} == {(80, 20)}


def test_small_alpha_skews_labels_and_large_alpha_is_close_to_iid():
    data = load_mnist()
    skews = [label_skew(split_dirichlet(data, 20, a, seed=0)) for a in (100.0, 0.5, 0.1)]
    assert skews[0] < 0.2 < skews[1] < skews[2]
    assert label_skew(split_iid(data, 20)) < 0.05
    test = split_dirichlet(data, 20, 0.1, seed=0).test
    assert np.bincount(test.y).min() >= 0.09 * len(test)  # the test set stays balanced


def test_split_depends_only_on_the_seed():
    data = indexed(500)
    a, b = split_dirichlet(data, 5, 0.5, seed=1), split_dirichlet(data, 5, 0.5, seed=1)
    c = split_dirichlet(data, 5, 0.5, seed=2)
    assert np.array_equal(_indices(a), _indices(b))
    assert not np.array_equal(_indices(a), _indices(c))


def test_real_valued_targets_are_skewed_by_decile():
    y = np.linspace(0.0, 1.0, 400, dtype=np.float32)
    groups = label_groups(y)
    assert groups.min() == 0 and groups.max() == 9
    assert np.bincount(groups).tolist() == [40] * 10
    data = ArrayDataset(x=np.zeros((400, 1)), y=y)
    assert label_skew(split_dirichlet(data, 4, 0.1, seed=0)) > 0.3


@pytest.mark.parametrize("kwargs, message", [
    ({"n_devices": 0}, "n_devices must be a positive int"),
    ({"alpha": 0.0}, "alpha must be finite and > 0"),
    ({"alpha": float("inf")}, "alpha must be finite and > 0"),
    ({"test_fraction": 1.0}, "test_fraction must be in"),
    ({"n_devices": 60}, "need at least 10 and 1"),
])
def test_bad_arguments_are_rejected(kwargs, message):
    args = {"n_devices": 4, "alpha": 0.5} | kwargs
    with pytest.raises(LearningError, match=message):
        split_dirichlet(indexed(500), **args)
