"""Robust aggregation baselines: mean, median, trimmed mean, (Multi-)Krum."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from offchain.errors import ConfigError, LearningError, UpdateRejected
from offchain.experiments.robust import (
    ROBUST_AGGREGATORS,
    ROBUST_RULES,
    CoordinateMedian,
    FedAvg,
    Krum,
    MultiKrum,
    RobustRule,
    TrimmedMean,
    coordinate_median,
    krum,
    krum_select,
    robust_rule,
    trimmed_mean,
)
from offchain.learning.fedavg import average


def _vecs(*rows: list[float]) -> list[np.ndarray]:
    return [np.array(r, dtype=np.float32) for r in rows]


def _aggregate(name: str, deltas: list[np.ndarray], f: int) -> np.ndarray:
    return robust_rule(name, assumed_attackers=f).aggregate(deltas)


def test_fedavg_is_the_runtime_mean() -> None:
    deltas = _vecs([1, 2], [3, 6], [5, 1])
    out = FedAvg().aggregate(deltas)
    assert out.dtype == np.float32
    assert out.tolist() == [3.0, 3.0]
    rng = np.random.default_rng(1)
    noisy = [rng.normal(0, 1, 500).astype(np.float32) for _ in range(7)]
    assert np.array_equal(FedAvg().aggregate(noisy), average(noisy))


def test_median_odd_and_even() -> None:
    odd = coordinate_median(_vecs([1, 9, -1], [100, 0, -3], [2, 5, -2]))
    assert odd.dtype == np.float32
    assert odd.tolist() == [2.0, 5.0, -2.0]
    even = coordinate_median(_vecs([1, 9], [100, 0], [2, 5], [4, -7]))
    assert even.tolist() == [3.0, 2.5]


def test_trimmed_mean_drops_extremes_per_coordinate() -> None:
    deltas = _vecs([1, -50], [2, 0], [3, 2], [4, 4], [1000, 6])
    out = trimmed_mean(deltas, 1)
    assert out.dtype == np.float32
    assert out.tolist() == [3.0, 2.0]
    assert trimmed_mean(deltas, 2).tolist() == [3.0, 2.0]  # the median
    assert trimmed_mean(deltas, 0).tolist() == average(deltas).tolist()


def test_trimmed_mean_rejects_bad_trim() -> None:
    deltas = _vecs([1], [2], [3], [4])
    with pytest.raises(LearningError, match=r"2 \* trim < n: got trim=2 with n=4"):
        trimmed_mean(deltas, 2)
    for bad in (-1, 1.0, True, "1"):
        with pytest.raises(LearningError, match="trim must be an int >= 0"):
            trimmed_mean(deltas, bad)  # type: ignore[arg-type]


def test_krum_picks_the_cluster_and_ignores_outliers() -> None:
    deltas = _vecs(
        [0.0, 0.0],
        [100.0, 100.0],  # outlier
        [0.1, 0.0],
        [0.0, 0.1],
        [0.1, 0.1],
        [-100.0, 50.0],  # outlier
        [0.05, 0.05],
    )
    # n=7, f=2: each delta is scored on its 3 nearest others; the centre of the
    # cluster (index 6, distance^2 0.005 to four neighbours) wins.
    assert krum_select(deltas, 2) == [6]
    out = krum(deltas, 2)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.float32([0.05, 0.05]))
    # Multi-Krum averages the best `select`, never an outlier.
    chosen = krum_select(deltas, 2, 5)
    assert chosen[0] == 6
    assert sorted(chosen) == [0, 2, 3, 4, 6]
    np.testing.assert_allclose(krum(deltas, 2, select=5), [0.05, 0.05], rtol=1e-6)


def test_krum_exact_scores_on_a_line() -> None:
    # Points 0, 1, 3, 10, 11 on a line with f=1: score = sum of 2 nearest sq.
    # distances: 0 -> 1+9=10, 1 -> 1+4=5, 3 -> 4+9=13, 10 -> 1+49=50,
    # 11 -> 1+64=65.
    deltas = _vecs([0], [1], [3], [10], [11])
    assert krum_select(deltas, 1, 5) == [1, 0, 2, 3, 4]
    assert krum(deltas, 1).tolist() == [1.0]
    assert krum(deltas, 1, select=2).tolist() == [0.5]
    # Ties go to the lower index.
    assert krum_select(_vecs([0], [0], [0], [0]), 0, 4) == [0, 1, 2, 3]


def test_krum_rejects_too_few_deltas_and_bad_args() -> None:
    deltas = _vecs([0], [1], [2], [3], [4], [5])
    with pytest.raises(
        LearningError,
        match=r"n > 2 \* byzantine \+ 2: got n=6 deltas with byzantine=2 "
        r"\(needs n >= 7\)",
    ):
        krum(deltas, 2)
    with pytest.raises(LearningError, match="n=2 deltas with byzantine=0"):
        krum(deltas[:2], 0)
    with pytest.raises(LearningError, match=r"select must be in 1\.\.6"):
        krum_select(deltas, 1, 7)
    for bad in (0, 1.5, True):
        with pytest.raises(LearningError, match=r"select must be an int >= 1"):
            krum(deltas, 1, select=bad)  # type: ignore[arg-type]
    with pytest.raises(LearningError, match="byzantine must be an int >= 0"):
        krum(deltas, -1)


@pytest.mark.parametrize(
    "call",
    [
        coordinate_median,
        lambda d: trimmed_mean(d, 0),
        lambda d: krum(d, 0),
        *(rule(assumed_attackers=0).aggregate for rule in ROBUST_RULES.values()),
    ],
)
def test_every_aggregator_validates_inputs(call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(LearningError, match="cannot aggregate zero deltas"):
        call([])
    with pytest.raises(LearningError, match=r"different lengths: \[2, 2, 3\]"):
        call([np.zeros(2), np.zeros(2), np.zeros(3)])
    with pytest.raises(UpdateRejected, match="delta 1 has 1 non-finite"):
        call([np.zeros(2), np.array([0.0, np.inf]), np.zeros(2)])
    with pytest.raises(UpdateRejected, match="delta 0 must be 1-D"):
        call([np.zeros((2, 1)), np.zeros(2), np.zeros(2)])


def test_inputs_are_not_modified() -> None:
    deltas = _vecs([3, 1], [1, 2], [2, 3], [9, 9])
    before = [d.copy() for d in deltas]
    for name in ROBUST_AGGREGATORS:
        _aggregate(name, deltas, 0 if "krum" in name else 1)
    assert all(np.array_equal(a, b) for a, b in zip(deltas, before, strict=True))


def test_each_rule_is_a_class_found_by_its_name() -> None:
    assert ROBUST_AGGREGATORS == ("fedavg", "median", "trimmed-mean", "krum", "multi-krum")
    assert list(ROBUST_RULES.values()) == [
        FedAvg, CoordinateMedian, TrimmedMean, Krum, MultiKrum
    ]
    for name, rule in ROBUST_RULES.items():
        assert issubclass(rule, RobustRule) and rule.name == name
        made = robust_rule(name, assumed_attackers=2)
        assert type(made) is rule and made.assumed_attackers == 2
    assert robust_rule("krum") == Krum(assumed_attackers=0)


def test_rules_tolerate_the_assumed_attackers() -> None:
    deltas = _vecs([0], [1], [2], [3], [100])
    assert _aggregate("fedavg", deltas, 1).tolist() == [np.float32(21.2)]
    assert _aggregate("median", deltas, 1).tolist() == [2.0]
    assert _aggregate("trimmed-mean", deltas, 1).tolist() == [2.0]
    assert _aggregate("trimmed-mean", deltas, 0).tolist() == [np.float32(21.2)]
    # f=1 (2 nearest others): scores 5, 2, 2, 5, big -> tie, lower index wins.
    assert _aggregate("krum", deltas, 1).tolist() == [1.0]
    # f=0 (3 nearest others): scores 14, 6, 6, 14, big.
    assert _aggregate("krum", deltas, 0).tolist() == [1.0]
    # Multi-Krum keeps the n - f best-scored: f=1 drops only the outlier.
    assert _aggregate("multi-krum", deltas, 1).tolist() == [1.5]


def test_unknown_names_and_bad_counts_are_rejected() -> None:
    with pytest.raises(
        ConfigError,
        match="unknown robust aggregator 'mean'; choose one of fedavg, median, "
        "trimmed-mean, krum, multi-krum",
    ):
        robust_rule("mean")
    for bad in (-1, 1.0, True):
        with pytest.raises(LearningError, match="assumed_attackers must be an int >= 0"):
            robust_rule("fedavg", assumed_attackers=bad)  # type: ignore[arg-type]
    with pytest.raises(LearningError, match="2 \\* trim < n"):
        _aggregate("trimmed-mean", _vecs([0], [1]), 1)
    with pytest.raises(LearningError, match="Krum needs"):
        _aggregate("krum", _vecs([0], [1], [2], [3]), 1)
    with pytest.raises(LearningError, match="Krum needs"):
        _aggregate("multi-krum", _vecs([0], [1], [2], [3]), 1)


def test_an_aggregate_that_overflows_float32_is_rejected() -> None:
    huge = [np.array([1e300]), np.array([1e300]), np.array([1e300])]
    with pytest.raises(UpdateRejected, match="has 1 non-finite"):
        FedAvg().aggregate(huge)


def test_krum_is_fast_on_50_by_20000() -> None:
    rng = np.random.default_rng(0)
    deltas = [rng.normal(0, 0.01, 20_000).astype(np.float32) for _ in range(50)]
    for i in range(5):
        deltas[i] = deltas[i] + np.float32(5.0)  # outliers far from the rest
    chosen = krum_select(deltas, 5, 10)
    assert not set(chosen) & set(range(5))
    assert krum(deltas, 5).shape == (20_000,)


matrices = st.integers(1, 9).flatmap(
    lambda n: st.integers(1, 6).flatmap(
        lambda d: arrays(
            np.float32, (n, d), elements=st.floats(-1e3, 1e3, width=32)
        )
    )
)


@settings(max_examples=60, deadline=None)
@given(matrices, st.data())
def test_median_and_trimmed_mean_stay_in_the_input_range(
    matrix: np.ndarray, data: st.DataObject
) -> None:
    deltas = list(matrix)
    lo = matrix.min(axis=0)
    hi = matrix.max(axis=0)
    trim = data.draw(st.integers(0, (len(deltas) - 1) // 2))
    for out in (coordinate_median(deltas), trimmed_mean(deltas, trim)):
        assert out.shape == lo.shape
        assert np.all(lo <= out) and np.all(out <= hi)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 4).flatmap(
        lambda f: st.tuples(
            st.just(f),
            st.integers(2 * f + 3, 2 * f + 8),
            st.integers(1, 8),
            st.integers(0, 2**32 - 1),
        )
    ),
    st.data(),
)
def test_krum_never_selects_far_outliers(
    params: tuple[int, int, int, int], data: st.DataObject
) -> None:
    f, n, d, seed = params
    rng = np.random.default_rng(seed)
    honest = rng.uniform(-1, 1, size=(n - f, d))
    directions = rng.normal(size=(f, d))
    directions /= np.maximum(np.linalg.norm(directions, axis=1, keepdims=True), 1e-12)
    outliers = 1e3 * directions + rng.uniform(-1, 1, size=(f, d))
    rows = np.concatenate([honest, outliers])
    perm = rng.permutation(n)
    deltas = list(rows[perm])
    outlier_positions = {int(np.flatnonzero(perm == n - f + j)[0]) for j in range(f)}
    select = data.draw(st.integers(1, n - f))
    chosen = krum_select(deltas, f, select)
    assert len(chosen) == select == len(set(chosen))
    assert not set(chosen) & outlier_positions
