"""Quantisation and slot packing: pure integer maths, no encryption."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from offchain.crypto.packing import (
    PackingSpec,
    dequantize_sum,
    pack,
    quantize,
    unpack,
)
from offchain.errors import CryptoError, PackingError

SPEC = PackingSpec(bound=0.5, value_bits=16, max_summands=64, key_bits=2048)


# --------------------------------------------------------------------------- spec


def test_default_layout_at_2048_bits() -> None:
    assert SPEC.slot_bits == 22  # 16 value bits + 6 headroom bits for 64 summands
    assert SPEC.slots_per_plaintext == 93  # 93 * 22 = 2046 <= 2048 - 2
    assert SPEC.scale == pytest.approx(1.0 / 65535)
    assert SPEC.quantisation_error == pytest.approx(0.5 / 65535)


@given(
    value_bits=st.integers(1, 32),
    max_summands=st.integers(1, 2**20),
    key_bits=st.integers(128, 8192),
)
def test_layout_invariants(value_bits: int, max_summands: int, key_bits: int) -> None:
    spec = PackingSpec(
        bound=1.0, value_bits=value_bits, max_summands=max_summands, key_bits=key_bits
    )
    # A slot holds the sum of max_summands largest values without carrying ...
    assert max_summands * spec.max_level < 2**spec.slot_bits
    # ... with no wasted bit, and never more than ceil(log2) bits of headroom ...
    assert max_summands * spec.max_level >= 2 ** (spec.slot_bits - 1)
    assert spec.headroom_bits <= math.ceil(math.log2(max_summands))
    # ... and all slots stay below 2**(key_bits - 2) < n for a key_bits-bit n.
    assert spec.slots_per_plaintext * spec.slot_bits <= key_bits - 2
    assert (spec.slots_per_plaintext + 1) * spec.slot_bits > key_bits - 2


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"bound": 0.0}, "bound must be finite and > 0, got 0.0"),
        ({"bound": -1.0}, "bound must be finite and > 0, got -1.0"),
        ({"bound": math.nan}, "bound must be finite"),
        ({"bound": math.inf}, "bound must be finite"),
        ({"bound": True}, "bound must be a number"),
        ({"bound": "0.5"}, "bound must be a number"),
        ({"bound": 1.0, "value_bits": 0}, "value_bits must be in [1, 32], got 0"),
        ({"bound": 1.0, "value_bits": 33}, "value_bits must be in [1, 32], got 33"),
        ({"bound": 1.0, "value_bits": 16.0}, "value_bits must be an int"),
        ({"bound": 1.0, "max_summands": 0}, "max_summands must be in"),
        ({"bound": 1.0, "max_summands": 2**20 + 1}, "max_summands must be in"),
        ({"bound": 1.0, "key_bits": 64}, "key_bits must be in [128, 16384], got 64"),
        ({"bound": 1.0, "key_bits": True}, "key_bits must be an int"),
    ],
)
def test_spec_validation(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(PackingError) as info:
        PackingSpec(**kwargs)  # type: ignore[arg-type]
    assert fragment in str(info.value)
    assert isinstance(info.value, CryptoError)


def test_spec_is_frozen_and_normalises_bound() -> None:
    spec = PackingSpec(bound=2, value_bits=np.int64(8))  # type: ignore[arg-type]
    assert isinstance(spec.bound, float) and isinstance(spec.value_bits, int)
    assert spec == PackingSpec(bound=2.0, value_bits=8)
    with pytest.raises(AttributeError):
        spec.bound = 3.0  # type: ignore[misc]


# ---------------------------------------------------------------- property: sums


@st.composite
def summed_vectors(draw: st.DrawFn) -> tuple[PackingSpec, np.ndarray]:
    spec = PackingSpec(
        bound=draw(st.floats(1e-3, 1e3, allow_nan=False, allow_infinity=False)),
        value_bits=draw(st.integers(1, 32)),
        max_summands=draw(st.integers(1, 300)),
        key_bits=draw(st.sampled_from([128, 256, 512, 1000, 2048])),
    )
    n_parties = draw(st.integers(1, min(spec.max_summands, 64)))
    slots = spec.slots_per_plaintext
    length = draw(
        st.one_of(
            st.integers(1, 3 * slots + 1),
            st.sampled_from([slots, slots + 1, 2 * slots - 1, 2 * slots]),
        )
    )
    elements = st.floats(
        -spec.bound, spec.bound, allow_nan=False, allow_infinity=False, width=64
    )
    xs = draw(hnp.arrays(np.float64, (n_parties, length), elements=elements))
    return spec, xs


@settings(max_examples=300, deadline=None)
@given(summed_vectors())
def test_sum_of_packed_integers_decodes_to_sum_of_vectors(
    case: tuple[PackingSpec, np.ndarray],
) -> None:
    spec, xs = case
    n_parties, length = xs.shape
    packed = [pack(quantize(x, spec), spec) for x in xs]
    assert all(len(p) == spec.n_plaintexts(length) for p in packed)
    assert all(0 <= m < 2 ** (spec.key_bits - 2) for p in packed for m in p)
    summed = [sum(column) for column in zip(*packed, strict=True)]
    assert all(m < 2 ** (spec.key_bits - 2) for m in summed)  # below any such n
    q_sum = unpack(summed, length, n_parties, spec)
    got = dequantize_sum(q_sum, n_parties, spec)
    exact = np.array([math.fsum(column) for column in xs.T])
    assert got.dtype == np.float64 and got.shape == (length,)
    assert np.all(np.abs(got - exact) <= n_parties * spec.quantisation_error)


@given(
    st.lists(
        st.floats(-0.5, 0.5, allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=200,
    )
)
def test_quantize_levels_in_range_and_single_value_round_trip(xs: list[float]) -> None:
    q = quantize(xs, SPEC)
    assert q.dtype == np.uint64
    assert int(q.max()) <= 2**16 - 1
    back = dequantize_sum(unpack(pack(q, SPEC), len(xs), 1, SPEC), 1, SPEC)
    assert np.all(np.abs(back - np.array(xs)) <= SPEC.quantisation_error)


def test_offset_encoding_end_points() -> None:
    assert quantize([-0.5, 0.5], SPEC).tolist() == [0, 65535]
    assert quantize([0.0], PackingSpec(bound=1.0, value_bits=2)).tolist() == [2]


def test_pack_layout_least_significant_slot_first() -> None:
    spec = PackingSpec(bound=1.0, value_bits=4, max_summands=4, key_bits=128)
    assert spec.slot_bits == 6 and spec.slots_per_plaintext == 21
    q = np.arange(1, 23, dtype=np.uint64) % 16
    packed = pack(q, spec)
    assert len(packed) == 2
    assert packed[0] & 0b111111 == 1 and (packed[0] >> 6) & 0b111111 == 2
    assert packed[1] == int(q[21])
    assert unpack(packed, 22, 1, spec).tolist() == q.astype(np.int64).tolist()


# ------------------------------------------------------------------ input errors


def test_out_of_bound_value_is_named() -> None:
    with pytest.raises(PackingError) as info:
        quantize([0.1, -0.2, 0.3, 0.75, -0.9], SPEC)
    message = str(info.value)
    assert "index 3" in message and "0.75" in message and "bound 0.5" in message
    assert "2 value(s) out of bounds" in message


def test_value_just_above_bound_is_not_clipped() -> None:
    with pytest.raises(PackingError, match="exceeds bound"):
        quantize([np.nextafter(0.5, 1.0)], SPEC)


@pytest.mark.parametrize(
    ("vec", "fragment"),
    [
        (
            [0.0, math.nan, 0.1, math.nan],
            "2 non-finite value(s) (NaN/Inf); first at index 1: nan",
        ),
        ([math.inf], "1 non-finite value(s) (NaN/Inf); first at index 0: inf"),
        ([0.1, 0.2, -math.inf], "first at index 2: -inf"),
    ],
)
def test_non_finite_values_are_counted_and_located(
    vec: list[float], fragment: str
) -> None:
    with pytest.raises(PackingError) as info:
        quantize(vec, SPEC)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("vec", "fragment"),
    [
        (np.zeros((2, 3)), "must be 1-D, got shape (2, 3)"),
        (np.float64(0.1), "must be 1-D, got shape ()"),
        ([], "vector is empty"),
        (["a", "b"], "cannot read vector as float64"),
    ],
)
def test_bad_shapes_and_types(vec: object, fragment: str) -> None:
    with pytest.raises(PackingError) as info:
        quantize(vec, SPEC)
    assert fragment in str(info.value)


def test_pack_rejects_levels_out_of_range() -> None:
    with pytest.raises(PackingError, match=r"value 65536 at index 1 is outside"):
        pack(np.array([0, 65536], dtype=np.int64), SPEC)
    with pytest.raises(PackingError, match=r"value -1 at index 0"):
        pack(np.array([-1, 3]), SPEC)
    with pytest.raises(PackingError, match="must hold integers"):
        pack(np.array([0.5]), SPEC)
    with pytest.raises(PackingError, match="must be 1-D"):
        pack(np.zeros((2, 2), dtype=np.uint64), SPEC)


def test_unpack_rejects_too_many_summands() -> None:
    packed = pack(quantize([0.1, 0.2], SPEC), SPEC)
    with pytest.raises(PackingError) as info:
        unpack(packed, 2, 65, SPEC)
    assert "n_summands=65" in str(info.value) and "max_summands=64" in str(info.value)
    with pytest.raises(PackingError, match="n_summands=0"):
        unpack(packed, 2, 0, SPEC)
    with pytest.raises(PackingError, match="n_summands=65"):
        dequantize_sum(np.array([1, 2]), 65, SPEC)


def test_unpack_detects_inconsistent_plaintexts() -> None:
    q = quantize([0.5, 0.5, 0.5], SPEC)
    packed = pack(q, SPEC)
    with pytest.raises(PackingError, match="1 plaintext"):
        unpack(packed, 200, 1, SPEC)
    # A slot above n_summands * max_level cannot come from honest summands.
    with pytest.raises(PackingError, match="slot sum 131070 at index 0 exceeds"):
        unpack([packed[0] * 2], 3, 1, SPEC)
    # Garbage in the unused slots of the last plaintext.
    with pytest.raises(PackingError, match="unused slots after value 3"):
        unpack([packed[0] + (1 << (22 * 5))], 3, 1, SPEC)
    with pytest.raises(PackingError, match="more than the 2046 bits"):
        unpack([1 << 2046], 3, 1, SPEC)
    with pytest.raises(PackingError, match="n_values must be an int >= 1"):
        unpack(packed, 0, 1, SPEC)
