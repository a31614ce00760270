"""Weighted sums, weight headroom, signed values and bounds (packing + Paillier)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from offchain.crypto.fast import RandomnessPool
from offchain.crypto.keys import PrivateKey, PublicKey, generate_keypair, key_id
from offchain.crypto.packing import (
    MAX_TOTAL_WEIGHT_LIMIT,
    PackingSpec,
    dequantize_sum,
    pack,
    quantize,
    unpack,
)
from offchain.crypto.paillier import (
    EncryptedVector,
    aggregate,
    decrypt_sum,
    encrypt_vector,
)
from offchain.errors import AggregationError, BlobFormatError, PackingError

BITS = 1024


@pytest.fixture(scope="module")
def pair() -> tuple[PublicKey, PrivateKey]:
    return generate_keypair(bits=BITS, insecure_ok=True)


@pytest.fixture(scope="module")
def pool(pair: tuple[PublicKey, PrivateKey]) -> RandomnessPool:
    return RandomnessPool(pair[0], workers=1)


# ---------------------------------------------------------------- the spec


def test_max_total_weight_defaults_to_max_summands() -> None:
    old = PackingSpec(bound=0.5, max_summands=64)
    assert old.max_total_weight == 64
    assert old == PackingSpec(bound=0.5, max_summands=64, max_total_weight=64)
    assert old.slot_bits == 22 and old.slots_per_plaintext == 93  # unchanged
    weighted = PackingSpec(bound=0.5, max_summands=64, max_total_weight=1000)
    assert weighted.slot_bits == 26  # 1000 * 65535 < 2**26
    assert 1000 * weighted.max_level < 2**weighted.slot_bits
    assert weighted.slots_per_plaintext == 2046 // 26


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        (
            {"max_summands": 10, "max_total_weight": 9},
            "max_total_weight must be in [max_summands=10, 1048576], got 9",
        ),
        (
            {"max_total_weight": MAX_TOTAL_WEIGHT_LIMIT + 1},
            "got 1048577",
        ),
        ({"max_total_weight": 2.0}, "max_total_weight must be an int"),
    ],
)
def test_max_total_weight_validation(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(PackingError) as info:
        PackingSpec(bound=1.0, **kwargs)  # type: ignore[arg-type]
    assert fragment in str(info.value)


def test_unpack_limit_follows_max_total_weight() -> None:
    spec = PackingSpec(bound=1.0, value_bits=8, max_summands=2, max_total_weight=5)
    q = pack(quantize([1.0, -1.0], spec), spec)
    assert unpack([5 * m for m in q], 2, 5, spec).tolist() == [5 * 255, 0]
    with pytest.raises(PackingError, match=r"n_summands=6 is outside \[1, max_total_weight=5\]"):
        unpack(q, 2, 6, spec)


# ------------------------------------------------ signed values and bounds


@settings(max_examples=100, deadline=None)
@given(
    k=st.integers(1, 64),
    signs=st.lists(st.sampled_from([-1.0, 1.0, 0.0]), min_size=1, max_size=200),
)
def test_signed_values_never_borrow_across_slots(k: int, signs: list[float]) -> None:
    """-bound encodes as level 0, so sums of negative values cannot go below zero
    in a slot and borrow from the neighbour: every slot decodes on its own."""
    spec = PackingSpec(bound=0.5, value_bits=16, max_summands=64, key_bits=512)
    x = 0.5 * np.array(signs)
    q = quantize(x, spec)
    assert int(q.min()) >= 0 and q[x == -0.5].tolist() == [0] * int((x == -0.5).sum())
    packed = pack(q, spec)
    summed = [k * m for m in packed]  # k copies of the same vector
    slots = unpack(summed, len(x), k, spec)
    assert slots.tolist() == (k * q.astype(np.int64)).tolist()
    got = dequantize_sum(slots, k, spec)
    assert np.all(np.abs(got - k * x) <= k * spec.quantisation_error)


@settings(max_examples=100, deadline=None)
@given(
    data=st.data(),
    bound=st.floats(1e-3, 1e3, allow_nan=False, allow_infinity=False),
)
def test_out_of_bound_inputs_raise_never_wrap_or_clip(
    data: st.DataObject, bound: float
) -> None:
    spec = PackingSpec(bound=bound, value_bits=16, key_bits=512)
    inside = st.floats(-bound, bound, allow_nan=False, width=64)
    x = data.draw(hnp.arrays(np.float64, st.integers(1, 50), elements=inside))
    outside = data.draw(
        st.floats(allow_nan=False, allow_infinity=False, width=64).filter(
            lambda v: abs(v) > bound
        )
    )
    index = data.draw(st.integers(0, x.size - 1))
    x[index] = outside
    with pytest.raises(PackingError) as info:
        quantize(x, spec)
    message = str(info.value)
    assert "exceeds bound" in message and f"index {index}" in message


def test_encrypt_vector_rejects_out_of_bound_values(
    pair: tuple[PublicKey, PrivateKey], pool: RandomnessPool
) -> None:
    spec = PackingSpec(bound=0.5, key_bits=BITS)
    before = pool.issued
    with pytest.raises(PackingError, match="value 0.5000001 at index 2 exceeds bound 0.5"):
        encrypt_vector(pair[0], [0.0, -0.5, 0.5000001], spec, pool=pool)
    assert pool.issued == before  # nothing was encrypted


# ------------------------------------------------------------ weighted sums


@st.composite
def weighted_parties(draw: st.DrawFn) -> tuple[PackingSpec, np.ndarray, list[int]]:
    max_summands = draw(st.integers(1, 12))
    spec = PackingSpec(
        bound=draw(st.sampled_from([0.01, 0.5, 3.0])),
        value_bits=draw(st.integers(4, 20)),
        max_summands=max_summands,
        max_total_weight=draw(st.integers(max_summands, 5000)),
        key_bits=BITS,
    )
    n_parties = draw(st.integers(1, max_summands))
    cap = spec.max_total_weight // n_parties  # type: ignore[operator]
    weights = draw(st.lists(st.integers(1, cap), min_size=n_parties, max_size=n_parties))
    length = draw(st.integers(1, 2 * spec.slots_per_plaintext + 1))
    elements = st.floats(-spec.bound, spec.bound, allow_nan=False, width=64)
    xs = draw(hnp.arrays(np.float64, (n_parties, length), elements=elements))
    return spec, xs, weights


@settings(max_examples=20, deadline=None)
@given(case=weighted_parties())
def test_decrypt_of_weighted_aggregate_is_weighted_sum(
    pair: tuple[PublicKey, PrivateKey],
    pool: RandomnessPool,
    case: tuple[PackingSpec, np.ndarray, list[int]],
) -> None:
    pk, sk = pair
    spec, xs, weights = case
    parts = [encrypt_vector(pk, x, spec, pool=pool) for x in xs]
    total = aggregate(pk, parts, weights)
    big_w = sum(weights)
    assert total.n_summands == len(xs) and total.weight == big_w
    blob = total.to_bytes()
    weighted = big_w != len(xs) or spec.max_total_weight != spec.max_summands
    assert blob[4] == (2 if weighted else 1)
    back = EncryptedVector.from_bytes(blob, expected_key_id=key_id(pk))
    assert back == total
    got = decrypt_sum(sk, back)
    exact = np.array(
        [math.fsum(w * v for w, v in zip(weights, col, strict=True)) for col in xs.T]
    )
    assert np.all(np.abs(got - exact) <= big_w * spec.quantisation_error)


def test_weighted_aggregates_nest(
    pair: tuple[PublicKey, PrivateKey], pool: RandomnessPool
) -> None:
    pk, sk = pair
    spec = PackingSpec(bound=1.0, max_summands=4, max_total_weight=100, key_bits=BITS)
    xs = np.random.default_rng(5).uniform(-1, 1, size=(4, 60))
    parts = [encrypt_vector(pk, x, spec, pool=pool) for x in xs]
    left = aggregate(pk, parts[:2], [3, 5])  # 3 x0 + 5 x1, weight 8
    right = aggregate(pk, parts[2:])  # x2 + x3, weight 2
    total = aggregate(pk, [left, right], [2, 7])  # weight 2*8 + 7*2 = 30
    assert total.n_summands == 4 and total.weight == 30
    exact = 6 * xs[0] + 10 * xs[1] + 7 * xs[2] + 7 * xs[3]
    got = decrypt_sum(sk, total)
    assert np.all(np.abs(got - exact) <= 30 * spec.quantisation_error)


def test_weights_that_would_overflow_are_rejected_with_the_numbers(
    pair: tuple[PublicKey, PrivateKey], pool: RandomnessPool
) -> None:
    pk, _ = pair
    spec = PackingSpec(bound=1.0, max_summands=3, max_total_weight=10, key_bits=BITS)
    parts = [encrypt_vector(pk, [0.1, 0.2], spec, pool=pool) for _ in range(3)]
    assert aggregate(pk, parts, [2, 3, 5]).weight == 10
    with pytest.raises(AggregationError) as info:
        aggregate(pk, parts, [2, 3, 6])
    message = str(info.value)
    assert "weights [2, 3, 6] give a total weight of 11" in message
    assert "max_total_weight=10" in message and "10 x 65535" in message
    # Default spec: no headroom beyond max_summands, so any weight > 1 of a
    # full set overflows.
    plain = PackingSpec(bound=1.0, max_summands=3, key_bits=BITS)
    plain_parts = [encrypt_vector(pk, [0.1], plain, pool=pool) for _ in range(2)]
    with pytest.raises(AggregationError, match="total weight of 4 over 2 summands"):
        aggregate(pk, plain_parts, [1, 3])


@pytest.mark.parametrize(
    ("weights", "fragment"),
    [
        ([1, 0], "weight 1 is 0; weights must be integers >= 1"),
        ([-2, 1], "weight 0 is -2"),
        ([1, True], "weight 1 is not an int: True"),
        ([1.0, 1], "weight 0 is not an int: 1.0"),
        ([1], "1 weights for 2 parts"),
    ],
)
def test_bad_weights(
    pair: tuple[PublicKey, PrivateKey],
    pool: RandomnessPool,
    weights: list[object],
    fragment: str,
) -> None:
    pk, _ = pair
    spec = PackingSpec(bound=1.0, max_summands=4, max_total_weight=20, key_bits=BITS)
    parts = [encrypt_vector(pk, [0.0], spec, pool=pool) for _ in range(2)]
    with pytest.raises(AggregationError) as info:
        aggregate(pk, parts, weights)  # type: ignore[arg-type]
    assert fragment in str(info.value)


def test_numpy_integer_weights(
    pair: tuple[PublicKey, PrivateKey], pool: RandomnessPool
) -> None:
    pk, sk = pair
    spec = PackingSpec(bound=1.0, max_summands=2, max_total_weight=9, key_bits=BITS)
    parts = [encrypt_vector(pk, [v], spec, pool=pool) for v in (0.25, -0.5)]
    got = decrypt_sum(sk, aggregate(pk, parts, np.array([4, 5])))
    assert abs(got[0] - (1.0 - 2.5)) <= 9 * spec.quantisation_error


# --------------------------------------------------------------- blob v2


def test_blob_versions(
    pair: tuple[PublicKey, PrivateKey], pool: RandomnessPool
) -> None:
    pk, _ = pair
    plain = PackingSpec(bound=1.0, max_summands=4, key_bits=BITS)
    one = encrypt_vector(pk, [0.5, -0.5], plain, pool=pool)
    assert one.to_bytes()[4] == 1 and len(one.to_bytes()) == 66 + 256
    roomy = dataclasses.replace(plain, max_total_weight=40)
    two = encrypt_vector(pk, [0.5, -0.5], roomy, pool=pool)
    blob = two.to_bytes()
    assert blob[4] == 2 and len(blob) == 74 + 256
    assert int.from_bytes(blob[66:70], "big") == 40
    assert int.from_bytes(blob[70:74], "big") == 1
    assert EncryptedVector.from_bytes(blob) == two
    with pytest.raises(BlobFormatError, match="a version 2 header alone is 74"):
        EncryptedVector.from_bytes(blob[:70])
    with pytest.raises(BlobFormatError, match="truncated"):
        EncryptedVector.from_bytes(blob[:-1])
    # total_weight below n_summands or above max_total_weight is corruption.
    bad_low = blob[:70] + (0).to_bytes(4, "big") + blob[74:]
    with pytest.raises(BlobFormatError, match=r"total_weight=0 is outside \[n_summands=1"):
        EncryptedVector.from_bytes(bad_low)
    bad_high = blob[:70] + (41).to_bytes(4, "big") + blob[74:]
    with pytest.raises(BlobFormatError, match="max_total_weight=40"):
        EncryptedVector.from_bytes(bad_high)
    # A version 1 blob cannot claim a spec with extra weight headroom.
    v1 = blob[:4] + b"\x01" + blob[5:66] + blob[74:]
    assert EncryptedVector.from_bytes(v1).spec == plain


def test_total_weight_normalises_and_repr(
    pair: tuple[PublicKey, PrivateKey], pool: RandomnessPool
) -> None:
    pk, _ = pair
    spec = PackingSpec(bound=1.0, max_summands=4, max_total_weight=12, key_bits=BITS)
    part = encrypt_vector(pk, [0.1], spec, pool=pool)
    same = dataclasses.replace(part, total_weight=1)
    assert same.total_weight is None and same == part and same.weight == 1
    heavy = aggregate(pk, [part, part], [5, 7])
    assert heavy.total_weight == 12 and "total_weight=12" in repr(heavy)
    assert ", total_weight=" not in repr(part)
