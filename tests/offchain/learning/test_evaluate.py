"""Accuracy and the basis-point score of peer updates."""

from __future__ import annotations

import numpy as np
import pytest

from offchain.errors import LearningError, UpdateRejected
from offchain.learning.data import ArrayDataset, load_mnist
from offchain.learning.evaluate import accuracy, correct_count, score_update
from offchain.learning.model import ModelSpec, initial_vector, num_parameters

# Logistic regression on 2 features, 2 classes: weights [[1, 0], [0, 1]], bias 0
# predicts the larger feature.
TINY = ModelSpec(name="logreg", input_dim=2, classes=2, pool=1)
IDENTITY = np.array([1, 0, 0, 1, 0, 0], dtype=np.float32)
DATA = ArrayDataset(
    x=np.array([[1, 0], [0, 1], [2, 1], [0, 3]], dtype=np.float32),
    y=np.array([0, 1, 0, 0]),
)


def test_accuracy_of_a_known_model() -> None:
    assert correct_count(TINY, IDENTITY, DATA) == 3
    assert accuracy(TINY, IDENTITY, DATA) == 0.75
    assert accuracy(TINY, -IDENTITY, DATA) == 0.25


def test_score_is_accuracy_in_basis_points() -> None:
    zero = np.zeros(6, dtype=np.float32)
    assert score_update(TINY, zero, IDENTITY, DATA) == 7500
    assert score_update(TINY, IDENTITY, -2 * IDENTITY, DATA) == 2500
    three = ArrayDataset(x=DATA.x[1:], y=DATA.y[1:])  # 2 of 3 correct: floored
    assert score_update(TINY, IDENTITY, zero, three) == 6666


def test_score_update_range_on_mnist() -> None:
    spec = ModelSpec()
    data = load_mnist()
    subset = ArrayDataset(x=data.x[:200], y=data.y[:200])
    rng = np.random.default_rng(0)
    base = initial_vector(spec, seed=0)
    for scale in (0.0, 0.1, 10.0):
        delta = (scale * rng.normal(size=base.size)).astype(np.float32)
        score = score_update(spec, base, delta, subset)
        assert isinstance(score, int) and 0 <= score <= 10_000


@pytest.mark.parametrize(
    ("delta", "message"),
    [
        (np.zeros(5, dtype=np.float32), "delta has 5 values, expected 6"),
        (np.zeros((2, 3), dtype=np.float32), "delta must be 1-D"),
        (np.array([0, 0, np.nan, 0, 0, 0], dtype=np.float32), "first at index 2"),
        (np.array([0, 0, 0, 0, 0, np.inf], dtype=np.float32), "1 non-finite"),
        (np.array(["a"] * 6), "delta must be numeric"),
    ],
)
def test_score_update_rejects_bad_deltas(delta: np.ndarray, message: str) -> None:
    with pytest.raises(UpdateRejected, match=message):
        score_update(TINY, IDENTITY, delta, DATA)


def test_score_update_rejects_bad_global_and_overflow() -> None:
    with pytest.raises(UpdateRejected, match="global vector has 7 values"):
        score_update(TINY, np.zeros(7), IDENTITY, DATA)
    huge = np.full(6, 3e38, dtype=np.float32)
    message = r"global vector \+ delta has 6 non-finite"
    with pytest.raises(UpdateRejected, match=message):
        score_update(TINY, huge, huge, DATA)


def test_evaluation_rejects_bad_data() -> None:
    empty = ArrayDataset(x=np.zeros((0, 2), dtype=np.float32), y=np.zeros(0, dtype=int))
    with pytest.raises(LearningError, match="empty dataset"):
        accuracy(TINY, IDENTITY, empty)
    wide = ArrayDataset(x=np.zeros((1, 3), dtype=np.float32), y=np.zeros(1, dtype=int))
    with pytest.raises(LearningError, match="data has 3 features"):
        score_update(TINY, IDENTITY, np.zeros(6), wide)


def test_initial_model_is_near_chance_on_mnist() -> None:
    spec = ModelSpec()
    assert num_parameters(spec) == initial_vector(spec, seed=1).size
    assert accuracy(spec, initial_vector(spec, seed=1), load_mnist()) < 0.25
