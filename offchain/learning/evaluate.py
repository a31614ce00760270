"""Evaluating models and peer updates on local data (accuracy, basis points)."""

from __future__ import annotations

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

__all__ = ["BASIS_POINTS", "accuracy", "correct_count", "score_update"]

BASIS_POINTS = 10_000
_EVAL_BATCH = 4096


def _check_data(spec: ModelSpec, data: ArrayDataset) -> None:
    if len(data) == 0:
        raise LearningError("cannot evaluate on an empty dataset")
    if data.features != spec.input_dim:
        raise LearningError(
            f"data has {data.features} features, {spec.describe()} expects "
            f"{spec.input_dim}"
        )


def correct_count(spec: ModelSpec, vec: np.ndarray, data: ArrayDataset) -> int:
    """Number of samples in ``data`` that the model ``vec`` classifies correctly.

    Raises UpdateRejected for a malformed ``vec``; LearningError for empty data
    or a feature count other than ``spec.input_dim``.
    """
    _check_data(spec, data)
    model = vector_to_model(spec, vec)
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(data), _EVAL_BATCH):
            x = torch.from_numpy(data.x[start : start + _EVAL_BATCH].copy())
            y = torch.from_numpy(data.y[start : start + _EVAL_BATCH].copy())
            correct += int((model(x).argmax(dim=1) == y).sum())
    return correct


def accuracy(spec: ModelSpec, vec: np.ndarray, data: ArrayDataset) -> float:
    """Fraction in [0, 1] of ``data`` classified correctly by the model ``vec``.

    Raises UpdateRejected for a malformed ``vec``; LearningError for empty data
    or a feature count other than ``spec.input_dim``.
    """
    return correct_count(spec, vec, data) / len(data)


def score_update(
    spec: ModelSpec, global_vec: np.ndarray, delta: np.ndarray, data: ArrayDataset
) -> int:
    """Accuracy of ``global_vec + delta`` on ``data`` in basis points (0..10000).

    The score is ``floor(10000 * correct / len(data))`` so it is an exact integer
    function of the correct count.
    Raises UpdateRejected if ``global_vec`` or ``delta`` has the wrong shape or
    non-finite values (or their sum overflows); LearningError for empty data or
    a feature count other than ``spec.input_dim``.
    """
    size = num_parameters(spec)
    base = check_vector(global_vec, size, what="global vector")
    step = check_vector(delta, size, what="delta")
    with np.errstate(over="ignore"):
        candidate = base + step
    check_vector(candidate, size, what="global vector + delta")
    correct = correct_count(spec, candidate, data)
    return correct * BASIS_POINTS // len(data)
