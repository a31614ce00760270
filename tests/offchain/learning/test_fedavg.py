"""Clipping, averaging and applying model deltas."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from offchain.errors import LearningError, UpdateRejected
from offchain.learning.fedavg import (
    apply_update,
    average,
    clip_update,
    clipped_fraction,
)

vectors = arrays(
    np.float32, st.integers(1, 50), elements=st.floats(-100, 100, width=32)
)


def test_clip_update_clips_each_coordinate() -> None:
    delta = np.array([-3.0, -0.5, 0.0, 0.5, 3.0])
    out = clip_update(delta, 1.0)
    assert out.dtype == np.float32
    assert out.tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert delta.tolist() == [-3.0, -0.5, 0.0, 0.5, 3.0]  # input untouched
    assert clipped_fraction(delta, 1.0) == 0.4
    assert clipped_fraction(np.zeros(0), 1.0) == 0.0


@settings(max_examples=50, deadline=None)
@given(vectors, st.floats(0.01, 50))
def test_clip_update_is_bounded_and_idempotent(delta: np.ndarray, bound: float) -> None:
    out = clip_update(delta, bound)
    assert np.all(np.abs(out) <= np.float32(bound))
    assert np.array_equal(clip_update(out, bound), out)


def test_clip_update_rejects_bad_input() -> None:
    with pytest.raises(UpdateRejected, match=r"1 non-finite values \(first at index 1"):
        clip_update(np.array([0.0, np.nan]), 1.0)
    with pytest.raises(UpdateRejected, match="must be 1-D"):
        clip_update(np.zeros((2, 2)), 1.0)
    for bound in (0.0, -1.0, float("inf"), "x"):
        with pytest.raises(LearningError, match="bound must be"):
            clip_update(np.zeros(2), bound)  # type: ignore[arg-type]


def test_average_is_the_coordinate_mean() -> None:
    deltas = [np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0]), np.zeros(3)]
    out = average(deltas)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [4 / 3, 4 / 3, 4 / 3], rtol=1e-6)
    assert average(d for d in deltas[:1]).tolist() == [1.0, 2.0, 3.0]


@settings(max_examples=50, deadline=None)
@given(vectors, st.integers(1, 9))
def test_average_of_copies_is_the_copy(delta: np.ndarray, copies: int) -> None:
    np.testing.assert_allclose(average([delta] * copies), delta, rtol=1e-6, atol=1e-6)


def test_average_rejects_empty_mismatched_and_non_finite() -> None:
    with pytest.raises(LearningError, match="cannot average zero deltas"):
        average([])
    with pytest.raises(LearningError, match=r"different lengths: \[3, 3, 2\]"):
        average([np.zeros(3), np.zeros(3), np.zeros(2)])
    with pytest.raises(UpdateRejected, match="delta 1 has 1 non-finite"):
        average([np.zeros(2), np.array([0.0, np.inf])])
    with pytest.raises(UpdateRejected, match="average has 1 non-finite"):
        average([np.array([1e300, 0.0])])  # finite, but not as float32


def test_apply_update() -> None:
    out = apply_update(np.array([1.0, 2.0], dtype=np.float32), np.array([0.5, -1.0]))
    assert out.dtype == np.float32 and out.tolist() == [1.5, 1.0]
    with pytest.raises(LearningError, match="global vector has 2 values, mean delta 3"):
        apply_update(np.zeros(2), np.zeros(3))
    with pytest.raises(UpdateRejected, match="mean delta has 1 non-finite"):
        apply_update(np.zeros(2), np.array([np.nan, 0.0]))
    with pytest.raises(UpdateRejected, match="updated global vector"):
        apply_update(np.full(1, 3e38, dtype=np.float32), np.full(1, 3e38))
