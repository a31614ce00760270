"""Attack simulators: one class per attack, poisoned data, updates and scores."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from offchain.errors import ConfigError, LearningError, UpdateRejected
from offchain.experiments.attacks import (
    ATTACK_TYPES,
    ATTACKS,
    Attack,
    FreeRide,
    LabelFlip,
    LyingRater,
    Noise,
    Scale,
    SignFlip,
    make_attack,
)
from offchain.protocol.terms import MAX_SCORE
from offchain.learning.data import ArrayDataset

DELTA = np.array([0.5, -0.25, 0.0, 1.0], dtype=np.float32)


def _rng() -> np.random.Generator:
    return np.random.default_rng(7)


def test_each_attack_is_a_class_found_by_its_name() -> None:
    assert ATTACKS == (
        "label-flip", "sign-flip", "scale", "noise", "free-ride", "lying-rater"
    )
    assert list(ATTACK_TYPES.values()) == [
        LabelFlip, SignFlip, Scale, Noise, FreeRide, LyingRater
    ]
    for name, kind in ATTACK_TYPES.items():
        assert issubclass(kind, Attack) and kind.name == name
        assert type(make_attack(name)) is kind
    with pytest.raises(
        ConfigError,
        match="unknown attack 'flip'; choose one of label-flip, sign-flip, scale, "
        "noise, free-ride, lying-rater",
    ):
        make_attack("flip")


def test_strengths_default_and_are_validated() -> None:
    attack = Scale()
    assert (attack.boost, SignFlip().boost, Noise().noise_std) == (4.0, 4.0, 1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        attack.boost = 2.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        Scale(2.0)  # type: ignore[misc]  # keyword-only
    for bad in (0.0, -1.0, float("nan"), float("inf"), True, "2"):
        for kind in (Scale, SignFlip):
            with pytest.raises(ConfigError, match="boost must be"):
                kind(boost=bad)  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="noise_std must be"):
            Noise(noise_std=bad)  # type: ignore[arg-type]
    assert SignFlip(boost=2).boost == 2.0


def test_poison_update_exact_outputs() -> None:
    bound = 10.0

    def run(kind: str, **kw: float) -> list[float]:
        attack = ATTACK_TYPES[kind](**kw)  # type: ignore[call-arg]
        out = attack.poison_update(DELTA, bound=bound, rng=_rng())
        assert out.dtype == np.float32 and out.shape == DELTA.shape
        return out.tolist()

    assert run("sign-flip") == [-2.0, 1.0, 0.0, -4.0]
    assert run("sign-flip", boost=1.0) == [-0.5, 0.25, 0.0, -1.0]
    assert run("scale") == [2.0, -1.0, 0.0, 4.0]
    assert run("scale", boost=2.0) == [1.0, -0.5, 0.0, 2.0]
    assert run("free-ride") == [0.0, 0.0, 0.0, 0.0]
    assert run("label-flip") == DELTA.tolist()
    assert run("lying-rater") == DELTA.tolist()
    expected = np.random.default_rng(7).normal(0.0, 0.5, size=4).astype(np.float32)
    assert run("noise", noise_std=0.5) == expected.tolist()
    assert DELTA.tolist() == [0.5, -0.25, 0.0, 1.0]  # input untouched


def test_poison_update_returns_a_new_array() -> None:
    out = make_attack("label-flip").poison_update(DELTA, bound=10.0, rng=_rng())
    assert out is not DELTA and np.array_equal(out, DELTA)


def test_poison_update_clips_to_the_bound() -> None:
    assert make_attack("scale").poison_update(
        DELTA, bound=1.5, rng=_rng()
    ).tolist() == [1.5, -1.0, 0.0, 1.5]
    assert make_attack("sign-flip").poison_update(
        DELTA, bound=1.5, rng=_rng()
    ).tolist() == [-1.5, 1.0, 0.0, -1.5]
    # float32(0.3) > 0.3, so the clip limit is the float32 just below 0.3.
    below = np.nextafter(np.float32(0.3), np.float32(0))
    assert float(below) < 0.3 < float(np.float32(0.3))
    assert make_attack("label-flip").poison_update(
        DELTA, bound=0.3, rng=_rng()
    ).tolist() == [below, -0.25, 0.0, below]
    noisy = Noise(noise_std=100.0).poison_update(
        np.zeros(1000), bound=0.1, rng=_rng()
    )
    # Clipped so that even the float64 comparison the packing layer makes holds.
    assert np.all(np.abs(noisy.astype(np.float64)) <= 0.1)
    assert np.count_nonzero(np.abs(noisy) == noisy.max()) > 900
    huge = np.array([3e38, -3e38], dtype=np.float32)  # boost would overflow float32
    assert make_attack("scale").poison_update(huge, bound=2.0, rng=_rng()).tolist() == [
        2.0,
        -2.0,
    ]


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(ATTACKS),
    arrays(np.float32, st.integers(1, 40), elements=st.floats(-1e6, 1e6, width=32)),
    st.floats(1e-6, 1e3),
    st.floats(0.1, 50),
)
def test_poison_update_always_stays_in_range(
    kind: str, delta: np.ndarray, bound: float, boost: float
) -> None:
    params = {"noise_std": boost} if kind == "noise" else {"boost": boost}
    if kind not in ("noise", "sign-flip", "scale"):
        params = {}
    attack = ATTACK_TYPES[kind](**params)  # type: ignore[arg-type]
    out = attack.poison_update(delta, bound=bound, rng=_rng())
    assert out.dtype == np.float32 and out.shape == delta.shape
    assert np.all(np.abs(out.astype(np.float64)) <= bound)


def test_poison_update_rejects_bad_input() -> None:
    attack = make_attack("sign-flip")
    with pytest.raises(UpdateRejected, match=r"1 non-finite values \(first at index 1"):
        attack.poison_update(np.array([0.0, np.nan]), bound=1.0, rng=_rng())
    with pytest.raises(UpdateRejected, match="must be 1-D"):
        attack.poison_update(np.zeros((2, 2)), bound=1.0, rng=_rng())
    with pytest.raises(UpdateRejected, match="must be numeric"):
        attack.poison_update(np.array(["a"]), bound=1.0, rng=_rng())
    # Even attacks that ignore the delta validate it.
    with pytest.raises(UpdateRejected, match="non-finite"):
        make_attack("free-ride").poison_update(
            np.array([np.inf]), bound=1.0, rng=_rng()
        )
    with pytest.raises(LearningError, match="bound must be finite and > 0"):
        attack.poison_update(DELTA, bound=0.0, rng=_rng())


def test_poison_data_flips_integer_labels() -> None:
    data = ArrayDataset(x=np.arange(8.0).reshape(4, 2), y=np.array([0, 3, 9, 5]))
    for kind in ("label-flip", "scale"):
        out = make_attack(kind).poison_data(data, classes=10)
        assert out is not data
        assert out.y.tolist() == [9, 6, 0, 4]
        assert out.y.dtype == data.y.dtype
        assert out.x is data.x  # features shared, not copied
    assert data.y.tolist() == [0, 3, 9, 5]  # original untouched
    for kind in ("sign-flip", "noise", "free-ride", "lying-rater"):
        assert make_attack(kind).poison_data(data, classes=10) is data
    attack = make_attack("label-flip")
    with pytest.raises(LearningError, match="label 9 is out of range for 5 classes"):
        attack.poison_data(data, classes=5)
    with pytest.raises(LearningError, match="classes must be an int >= 1"):
        attack.poison_data(data, classes=0)


def test_poison_data_mirrors_float_targets() -> None:
    y = np.array([1.5, -2.0, 4.0, 0.25], dtype=np.float32)
    data = ArrayDataset(x=np.zeros((4, 3)), y=y)
    if not np.issubdtype(data.y.dtype, np.floating):  # pragma: no cover
        pytest.skip("ArrayDataset does not keep float targets")
    out = make_attack("label-flip").poison_data(data, classes=1)
    assert out.y.dtype == data.y.dtype
    # min + max = 2.0
    assert out.y.tolist() == [0.5, 4.0, -2.0, 1.75]
    assert (out.y.min(), out.y.max()) == (data.y.min(), data.y.max())
    assert make_attack("scale").poison_data(data, classes=0).y.tolist() == [
        0.5, 4.0, -2.0, 1.75
    ]  # classes is irrelevant for regression


def test_poison_scores() -> None:
    scores = [9000, 100, 5000]
    colluders = [True, False, True]
    assert MAX_SCORE == 10_000
    liar = make_attack("lying-rater")
    assert liar.poison_scores(scores, colluders=colluders) == [10_000, 0, 10_000]
    assert liar.poison_scores([], colluders=[]) == []
    for kind in ATTACKS[:-1]:
        out = make_attack(kind).poison_scores(scores, colluders=colluders)
        assert out == scores and out is not scores
    with pytest.raises(LearningError, match="3 scores but 2 colluder flags"):
        liar.poison_scores(scores, colluders=[True, False])
    with pytest.raises(LearningError, match="3 scores but 2 colluder flags"):
        make_attack("noise").poison_scores(scores, colluders=[True, False])


def test_the_base_attack_is_honest() -> None:
    honest = Attack()
    data = ArrayDataset(x=np.zeros((2, 1)), y=np.array([0, 1]))
    assert honest.trains and honest.poison_data(data, classes=2) is data
    assert honest.poison_update(DELTA, bound=10.0, rng=_rng()).tolist() == DELTA.tolist()
    assert honest.poison_scores([3, 4], colluders=[True, False]) == [3, 4]
