"""Evaluating models and peer updates on local data (accuracy or MAE, basis points).

Classification models (``logreg``, ``mlp``) are judged by accuracy on integer
labels, regression models (``linreg``) by mean absolute error on real-valued
targets. Either way a verifier's score is an integer in basis points
(0..10000), the scale the contract works in.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from offchain.errors import LearningError
from offchain.learning.data import ArrayDataset
from offchain.learning.model import (
    ModelSpec,
    check_vector,
    num_parameters,
    vector_to_model,
)

__all__ = [
    "BASIS_POINTS",
    "REGRESSION_SCORE_SCALE",
    "accuracy",
    "correct_count",
    "evaluate",
    "mean_absolute_error",
    "model_quality",
    "regression_score",
    "score_update",
]

BASIS_POINTS = 10_000
REGRESSION_SCORE_SCALE = 1.0
"""MAE (in target units: mpg for Auto-MPG) at which a regression score is 5000.

A regression score is ``floor(10000 * s / (s + MAE))`` with ``s`` this scale:
10000 for a perfect model, 5000 at MAE = s, 2500 at MAE = 3 s, and strictly
decreasing towards 0 as the MAE grows.
"""
_EVAL_BATCH = 4096


def _check_data(spec: ModelSpec, data: ArrayDataset) -> None:
    if len(data) == 0:
        raise LearningError("cannot evaluate on an empty dataset")
    if data.features != spec.input_dim:
        raise LearningError(
            f"data has {data.features} features, {spec.describe()} expects "
            f"{spec.input_dim}"
        )
    if spec.regression and not data.regression:
        raise LearningError(
            f"{spec.describe()} is a regression model but the data holds integer "
            "class labels; it needs real-valued (float) targets"
        )
    if data.regression and not spec.regression:
        raise LearningError(
            f"{spec.describe()} is a classifier but the data holds real-valued "
            "regression targets; it needs integer class labels"
        )


def _predict(spec: ModelSpec, vec: np.ndarray, data: ArrayDataset) -> torch.Tensor:
    """Raw model outputs on all of ``data`` (logits, or [n] predictions)."""
    model = vector_to_model(spec, vec)
    model.eval()
    outputs = []
    with torch.no_grad():
        for start in range(0, len(data), _EVAL_BATCH):
            x = torch.from_numpy(data.x[start : start + _EVAL_BATCH].copy())
            out = model(x)
            outputs.append(out.reshape(-1) if spec.regression else out)
    return torch.cat(outputs)


def correct_count(spec: ModelSpec, vec: np.ndarray, data: ArrayDataset) -> int:
    """Number of samples in ``data`` that the model ``vec`` classifies correctly.

    Raises UpdateRejected for a malformed ``vec``; LearningError for empty data,
    a feature count other than ``spec.input_dim``, or a regression model or
    regression data (use :func:`mean_absolute_error` there).
    """
    if spec.regression:
        raise LearningError(
            f"{spec.describe()} is a regression model: it has no accuracy, use "
            "mean_absolute_error"
        )
    _check_data(spec, data)
    logits = _predict(spec, vec, data)
    labels = torch.from_numpy(data.y.copy())
    return int((logits.argmax(dim=1) == labels).sum())


def accuracy(spec: ModelSpec, vec: np.ndarray, data: ArrayDataset) -> float:
    """Fraction in [0, 1] of ``data`` classified correctly by the model ``vec``.

    Raises UpdateRejected for a malformed ``vec``; LearningError for empty data,
    a feature count other than ``spec.input_dim``, or a regression model or
    regression data.
    """
    return correct_count(spec, vec, data) / len(data)


def mean_absolute_error(spec: ModelSpec, vec: np.ndarray, data: ArrayDataset) -> float:
    """Mean of ``|prediction - target|`` of the regression model ``vec`` on ``data``.

    Predictions are float32 model outputs; the absolute errors are summed
    exactly (``math.fsum`` in float64), so the result does not depend on the
    summation order. Returns ``inf`` if some prediction is not finite (finite
    but huge weights overflowing float32).
    Raises UpdateRejected for a malformed ``vec``; LearningError for empty data,
    a feature count other than ``spec.input_dim``, or a classification model or
    labelled (integer) data.
    """
    if not spec.regression:
        raise LearningError(
            f"{spec.describe()} is a classifier: it has no mean absolute error, "
            "use accuracy"
        )
    _check_data(spec, data)
    predictions = _predict(spec, vec, data).numpy().astype(np.float64)
    errors = np.abs(predictions - data.y.astype(np.float64))
    if not np.all(np.isfinite(errors)):
        return math.inf  # finite weights can still overflow float32 outputs
    return math.fsum(errors.tolist()) / len(data)


def regression_score(mae: float, *, scale: float = REGRESSION_SCORE_SCALE) -> int:
    """Map a mean absolute error to basis points: ``floor(10000 * s / (s + mae))``.

    ``s`` is ``scale`` (default :data:`REGRESSION_SCORE_SCALE`). The result is
    in 0..10000, 10000 exactly at ``mae`` 0 and strictly decreasing in ``mae``
    (e.g. 5000 at ``mae == s``, 2500 at ``3 s``).
    Raises LearningError for a negative or NaN ``mae`` or a ``scale`` that is
    not finite and positive.
    """
    try:
        error = float(mae)
        unit = float(scale)
    except (TypeError, ValueError) as exc:
        raise LearningError(f"mae and scale must be numbers: {exc}") from exc
    if not (math.isfinite(unit) and unit > 0):
        raise LearningError(f"scale must be finite and > 0, got {scale!r}")
    if math.isnan(error) or error < 0:
        raise LearningError(f"mae must be >= 0, got {mae!r}")
    if math.isinf(error):
        return 0
    return min(BASIS_POINTS, max(0, math.floor(BASIS_POINTS * unit / (unit + error))))


def evaluate(spec: ModelSpec, vec: np.ndarray, data: ArrayDataset) -> float:
    """The task's natural metric of the model ``vec`` on ``data``.

    Accuracy in [0, 1] (higher is better) for a classifier; mean absolute
    error in target units (lower is better) for a regression model.
    Raises UpdateRejected for a malformed ``vec``; LearningError for empty data,
    a feature count other than ``spec.input_dim``, or data of the other kind
    (labels vs real-valued targets) than ``spec``.
    """
    if spec.regression:
        return mean_absolute_error(spec, vec, data)
    return accuracy(spec, vec, data)


def model_quality(spec: ModelSpec, vec: np.ndarray, data: ArrayDataset) -> int:
    """Quality of the model ``vec`` on ``data`` in basis points (0..10000).

    ``floor(10000 * correct / len(data))`` for a classifier;
    :func:`regression_score` of the mean absolute error for a regression model.
    Raises UpdateRejected for a malformed ``vec``; LearningError for empty data,
    a feature count other than ``spec.input_dim``, or data of the other kind
    (labels vs real-valued targets) than ``spec``.
    """
    if spec.regression:
        return regression_score(mean_absolute_error(spec, vec, data))
    return correct_count(spec, vec, data) * BASIS_POINTS // len(data)


def score_update(
    spec: ModelSpec, global_vec: np.ndarray, delta: np.ndarray, data: ArrayDataset
) -> int:
    """Quality of ``global_vec + delta`` on ``data`` in basis points (0..10000).

    For a classifier the score is ``floor(10000 * correct / len(data))``, an
    exact integer function of the correct count; for a regression model it is
    :func:`regression_score` of the mean absolute error (see
    :func:`model_quality`).
    Raises UpdateRejected if ``global_vec`` or ``delta`` has the wrong shape or
    non-finite values (or their sum overflows); LearningError for empty data,
    a feature count other than ``spec.input_dim``, or data of the other kind
    (labels vs real-valued targets) than ``spec``.
    """
    size = num_parameters(spec)
    base = check_vector(global_vec, size, what="global vector")
    step = check_vector(delta, size, what="delta")
    with np.errstate(over="ignore"):
        candidate = base + step
    check_vector(candidate, size, what="global vector + delta")
    return model_quality(spec, candidate, data)
