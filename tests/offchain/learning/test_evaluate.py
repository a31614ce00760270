"""Accuracy, mean absolute error and the basis-point score of peer updates."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from offchain.errors import LearningError, UpdateRejected
from offchain.learning.data import ArrayDataset, load_autompg, load_mnist
from offchain.learning.evaluate import (
    REGRESSION_SCORE_SCALE,
    accuracy,
    correct_count,
    evaluate,
    mean_absolute_error,
    model_quality,
    regression_score,
    score_update,
)
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


# --- regression --------------------------------------------------------------------

# Linear regression on 2 features: prediction = x0 + 2 x1 + 0.5.
LINREG = ModelSpec(name="linreg", input_dim=2, pool=1)
LINE = np.array([1, 2, 0.5], dtype=np.float32)
TARGETS = ArrayDataset(
    x=np.array([[1, 0], [0, 1], [2, 1], [0, 3]], dtype=np.float32),
    y=np.array([1.5, 3.5, 3.5, 7.5]),  # predictions 1.5, 2.5, 4.5, 6.5
)


def test_regression_score_mapping() -> None:
    assert REGRESSION_SCORE_SCALE == 1.0
    assert regression_score(0.0) == 10_000
    assert regression_score(1.0) == 5_000
    assert regression_score(3.0) == 2_500
    assert regression_score(0.5) == 6_666
    assert regression_score(9.0) == 1_000
    assert regression_score(6.5) == 1_333
    assert regression_score(1e-9) == 9_999
    assert regression_score(1e12) == 0
    assert regression_score(math.inf) == 0
    assert regression_score(2.0, scale=2.0) == 5_000
    scores = [regression_score(m) for m in np.linspace(0.0, 50.0, 2001)]
    assert all(isinstance(x, int) for x in scores)
    # Non-increasing everywhere (floored), strictly decreasing where the real-valued
    # map drops by more than a basis point per step (MAE <= 5 at steps of 0.025).
    pairs = list(itertools.pairwise(scores))
    assert all(0 <= b <= a <= 10_000 for a, b in pairs)
    assert all(b < a for a, b in pairs[:200])


@pytest.mark.parametrize(
    ("mae", "scale", "message"),
    [
        (-0.1, 1.0, "mae must be >= 0"),
        (math.nan, 1.0, "mae must be >= 0"),
        ("x", 1.0, "must be numbers"),
        (1.0, 0.0, "scale must be finite and > 0"),
        (1.0, math.inf, "scale must be finite and > 0"),
    ],
)
def test_regression_score_rejects_bad_input(mae, scale, message: str) -> None:
    with pytest.raises(LearningError, match=message):
        regression_score(mae, scale=scale)


def test_mean_absolute_error_of_a_known_model() -> None:
    assert mean_absolute_error(LINREG, LINE, TARGETS) == 0.75  # (0 + 1 + 1 + 1) / 4
    assert evaluate(LINREG, LINE, TARGETS) == 0.75
    assert model_quality(LINREG, LINE, TARGETS) == 5_714  # floor(10000 / 1.75)
    zero = np.zeros(3, dtype=np.float32)
    assert mean_absolute_error(LINREG, zero, TARGETS) == 4.0
    assert model_quality(LINREG, zero, TARGETS) == 2_000


def test_score_update_on_regression_is_the_mapped_mae() -> None:
    zero = np.zeros(3, dtype=np.float32)
    assert score_update(LINREG, zero, LINE, TARGETS) == 5_714
    assert score_update(LINREG, LINE, -LINE, TARGETS) == 2_000
    exact = ArrayDataset(x=TARGETS.x[:1], y=TARGETS.y[:1])
    assert score_update(LINREG, LINE, zero, exact) == 10_000
    # Finite weights whose predictions overflow float32 score 0.
    huge = np.array([3e38, 3e38, 0], dtype=np.float32)
    assert mean_absolute_error(LINREG, huge, TARGETS) == math.inf
    assert score_update(LINREG, zero, huge, TARGETS) == 0


def test_generic_metrics_on_classification() -> None:
    assert evaluate(TINY, IDENTITY, DATA) == 0.75
    assert model_quality(TINY, IDENTITY, DATA) == 7_500


def test_kind_mismatches_are_rejected() -> None:
    with pytest.raises(LearningError, match="regression model: it has no accuracy"):
        accuracy(LINREG, LINE, TARGETS)
    with pytest.raises(LearningError, match="classifier: it has no mean absolute"):
        mean_absolute_error(TINY, IDENTITY, DATA)
    labels = ArrayDataset(x=TARGETS.x, y=np.array([0, 1, 2, 3]))
    message = r"linreg\(in=2\) is a regression model but the data holds integer"
    with pytest.raises(LearningError, match=message):
        score_update(LINREG, LINE, np.zeros(3), labels)
    with pytest.raises(LearningError, match=message):
        evaluate(LINREG, LINE, labels)
    message = "is a classifier but the data holds real-valued regression targets"
    with pytest.raises(LearningError, match=message):
        score_update(TINY, IDENTITY, np.zeros(6), TARGETS)
    with pytest.raises(LearningError, match=message):
        model_quality(TINY, IDENTITY, TARGETS)
    empty = ArrayDataset(x=np.zeros((0, 2)), y=np.zeros(0))
    with pytest.raises(LearningError, match="empty dataset"):
        mean_absolute_error(LINREG, LINE, empty)


def test_constant_median_model_on_autompg() -> None:
    data = load_autompg()
    spec = ModelSpec(name="linreg", input_dim=9, pool=1)
    median = np.zeros(10, dtype=np.float32)
    median[-1] = np.median(data.y)  # bias only
    mae = mean_absolute_error(spec, median, data)
    assert mae == pytest.approx(float(np.abs(data.y - median[-1]).mean()), rel=1e-6)
    assert 6.0 < mae < 7.0
    assert model_quality(spec, median, data) == regression_score(mae)
