"""Attack simulators: poisoned data, poisoned updates, lying scores."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from offchain.errors import ConfigError, LearningError, UpdateRejected
from offchain.experiments.attacks import ATTACKS, MAX_SCORE, Attack
from offchain.learning.data import ArrayDataset

DELTA = np.array([0.5, -0.25, 0.0, 1.0], dtype=np.float32)


def _rng() -> np.random.Generator:
    return np.random.default_rng(7)


def test_attack_kinds_and_validation() -> None:
    assert ATTACKS == (
        "label-flip", "sign-flip", "scale", "noise", "free-ride", "lying-rater"
    )
    attack = Attack(kind="scale")
    assert (attack.boost, attack.noise_std) == (4.0, 1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        attack.kind = "noise"  # type: ignore[misc]
    with pytest.raises(TypeError):
        Attack("scale")  # type: ignore[misc]  # keyword-only
    with pytest.raises(
        ConfigError,
        match="unknown attack 'flip'; choose one of label-flip, sign-flip, scale, "
        "noise, free-ride, lying-rater",
    ):
        Attack(kind="flip")
    for bad in (0.0, -1.0, float("nan"), float("inf"), True, "2"):
        with pytest.raises(ConfigError, match="boost must be"):
            Attack(kind="scale", boost=bad)  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="noise_std must be"):
            Attack(kind="noise", noise_std=bad)  # type: ignore[arg-type]
    assert Attack(kind="sign-flip", boost=2).boost == 2.0


def test_trains() -> None:
    trains = {kind: Attack(kind=kind).trains for kind in ATTACKS}
    assert trains == {
        "label-flip": True,
        "sign-flip": True,
        "scale": True,
        "noise": False,
        "free-ride": False,
        "lying-rater": True,
    }


def test_poison_update_exact_outputs() -> None:
    bound = 10.0

    def run(kind: str, **kw: float) -> list[float]:
        out = Attack(kind=kind, **kw).poison_update(DELTA, bound=bound, rng=_rng())
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
    out = Attack(kind="label-flip").poison_update(DELTA, bound=10.0, rng=_rng())
    assert out is not DELTA and np.array_equal(out, DELTA)


def test_poison_update_clips_to_the_bound() -> None:
    assert Attack(kind="scale").poison_update(
        DELTA, bound=1.5, rng=_rng()
    ).tolist() == [1.5, -1.0, 0.0, 1.5]
    assert Attack(kind="sign-flip").poison_update(
        DELTA, bound=1.5, rng=_rng()
    ).tolist() == [-1.5, 1.0, 0.0, -1.5]
    # float32(0.3) > 0.3, so the clip limit is the float32 just below 0.3.
    below = np.nextafter(np.float32(0.3), np.float32(0))
    assert float(below) < 0.3 < float(np.float32(0.3))
    assert Attack(kind="label-flip").poison_update(
        DELTA, bound=0.3, rng=_rng()
    ).tolist() == [below, -0.25, 0.0, below]
    noisy = Attack(kind="noise", noise_std=100.0).poison_update(
        np.zeros(1000), bound=0.1, rng=_rng()
    )
    # Clipped so that even the float64 comparison the packing layer makes holds.
    assert np.all(np.abs(noisy.astype(np.float64)) <= 0.1)
    assert np.count_nonzero(np.abs(noisy) == noisy.max()) > 900
    huge = np.array([3e38, -3e38], dtype=np.float32)  # boost would overflow float32
    assert Attack(kind="scale").poison_update(huge, bound=2.0, rng=_rng()).tolist() == [
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
    attack = Attack(kind=kind, boost=boost, noise_std=boost)
    out = attack.poison_update(delta, bound=bound, rng=_rng())
    assert out.dtype == np.float32 and out.shape == delta.shape
    assert np.all(np.abs(out.astype(np.float64)) <= bound)


def test_poison_update_rejects_bad_input() -> None:
    attack = Attack(kind="sign-flip")
    with pytest.raises(UpdateRejected, match=r"1 non-finite values \(first at index 1"):
        attack.poison_update(np.array([0.0, np.nan]), bound=1.0, rng=_rng())
    with pytest.raises(UpdateRejected, match="must be 1-D"):
        attack.poison_update(np.zeros((2, 2)), bound=1.0, rng=_rng())
    with pytest.raises(UpdateRejected, match="must be numeric"):
        attack.poison_update(np.array(["a"]), bound=1.0, rng=_rng())
    # Even attacks that ignore the delta validate it.
    with pytest.raises(UpdateRejected, match="non-finite"):
        Attack(kind="free-ride").poison_update(
            np.array([np.inf]), bound=1.0, rng=_rng()
        )
    with pytest.raises(LearningError, match="bound must be finite and > 0"):
        attack.poison_update(DELTA, bound=0.0, rng=_rng())


def test_poison_data_flips_integer_labels() -> None:
    data = ArrayDataset(x=np.arange(8.0).reshape(4, 2), y=np.array([0, 3, 9, 5]))
    for kind in ("label-flip", "scale"):
        out = Attack(kind=kind).poison_data(data, classes=10)
        assert out is not data
        assert out.y.tolist() == [9, 6, 0, 4]
        assert out.y.dtype == data.y.dtype
        assert out.x is data.x  # features shared, not copied
    assert data.y.tolist() == [0, 3, 9, 5]  # original untouched
    for kind in ("sign-flip", "noise", "free-ride", "lying-rater"):
        assert Attack(kind=kind).poison_data(data, classes=10) is data
    attack = Attack(kind="label-flip")
    with pytest.raises(LearningError, match="label 9 is out of range for 5 classes"):
        attack.poison_data(data, classes=5)
    with pytest.raises(LearningError, match="classes must be an int >= 1"):
        attack.poison_data(data, classes=0)


def test_poison_data_mirrors_float_targets() -> None:
    y = np.array([1.5, -2.0, 4.0, 0.25], dtype=np.float32)
    data = ArrayDataset(x=np.zeros((4, 3)), y=y)
    if not np.issubdtype(data.y.dtype, np.floating):  # pragma: no cover
        pytest.skip("ArrayDataset does not keep float targets")
    out = Attack(kind="label-flip").poison_data(data, classes=1)
    assert out.y.dtype == data.y.dtype
    # min + max = 2.0
    assert out.y.tolist() == [0.5, 4.0, -2.0, 1.75]
    assert (out.y.min(), out.y.max()) == (data.y.min(), data.y.max())
    assert Attack(kind="scale").poison_data(data, classes=0).y.tolist() == [
        0.5, 4.0, -2.0, 1.75
    ]  # classes is irrelevant for regression


def test_poison_scores() -> None:
    scores = [9000, 100, 5000]
    colluders = [True, False, True]
    assert MAX_SCORE == 10_000
    liar = Attack(kind="lying-rater")
    assert liar.poison_scores(scores, colluders=colluders) == [10_000, 0, 10_000]
    assert liar.poison_scores([], colluders=[]) == []
    for kind in ATTACKS[:-1]:
        out = Attack(kind=kind).poison_scores(scores, colluders=colluders)
        assert out == scores and out is not scores
    with pytest.raises(LearningError, match="3 scores but 2 colluder flags"):
        liar.poison_scores(scores, colluders=[True, False])
    with pytest.raises(LearningError, match="3 scores but 2 colluder flags"):
        Attack(kind="noise").poison_scores(scores, colluders=[True, False])
