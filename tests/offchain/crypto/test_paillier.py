"""Packed Paillier encryption, homomorphic aggregation and the binary blob."""

from __future__ import annotations

import dataclasses
import math
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from offchain.crypto.keys import PrivateKey, PublicKey, generate_keypair, key_id
from offchain.crypto.packing import PackingSpec
from offchain.crypto.paillier import (
    EncryptedVector,
    aggregate,
    decrypt_sum,
    encrypt_vector,
)
from offchain.errors import (
    AggregationError,
    BlobFormatError,
    CryptoError,
    KeyMismatchError,
    PackingError,
)

SMALL_BITS = 512
HEADER_BYTES = 66


@pytest.fixture(scope="module")
def small() -> tuple[PublicKey, PrivateKey]:
    return generate_keypair(bits=SMALL_BITS, insecure_ok=True)


@pytest.fixture(scope="module")
def other() -> tuple[PublicKey, PrivateKey]:
    return generate_keypair(bits=SMALL_BITS, insecure_ok=True)


@pytest.fixture(scope="module")
def spec() -> PackingSpec:
    return PackingSpec(bound=0.5, value_bits=16, max_summands=64, key_bits=SMALL_BITS)


def _exact_sum(xs: np.ndarray) -> np.ndarray:
    return np.array([math.fsum(column) for column in np.atleast_2d(xs).T])


# ---------------------------------------------------------------- round trips


@st.composite
def parties(draw: st.DrawFn) -> tuple[PackingSpec, np.ndarray]:
    spec = PackingSpec(
        bound=draw(st.sampled_from([0.01, 0.5, 1.0, 37.5])),
        value_bits=draw(st.integers(4, 24)),
        max_summands=draw(st.integers(1, 64)),
        key_bits=SMALL_BITS,
    )
    n_parties = draw(st.integers(1, min(spec.max_summands, 12)))
    length = draw(st.integers(1, 3 * spec.slots_per_plaintext + 2))
    elements = st.floats(-spec.bound, spec.bound, allow_nan=False, width=64)
    xs = draw(hnp.arrays(np.float64, (n_parties, length), elements=elements))
    return spec, xs


@settings(max_examples=25, deadline=None)
@given(case=parties())
def test_decrypt_of_aggregate_is_sum(
    small: tuple[PublicKey, PrivateKey], case: tuple[PackingSpec, np.ndarray]
) -> None:
    pk, sk = small
    spec, xs = case
    parts = [encrypt_vector(pk, x, spec) for x in xs]
    total = aggregate(pk, parts)
    assert total.n_summands == len(xs) and total.n_values == xs.shape[1]
    got = decrypt_sum(sk, total)
    assert got.dtype == np.float64 and got.shape == (xs.shape[1],)
    assert np.all(np.abs(got - _exact_sum(xs)) <= len(xs) * spec.quantisation_error)


def test_2048_bit_key_three_parties_2000_values() -> None:
    pk, sk = generate_keypair(bits=2048)
    spec = PackingSpec(bound=0.5)
    rng = np.random.default_rng(7)
    xs = rng.uniform(-0.5, 0.5, size=(3, 2000))
    xs[0, :3] = [0.5, -0.5, 0.0]
    parts = [encrypt_vector(pk, x, spec) for x in xs]
    assert all(len(p.ciphertexts) == math.ceil(2000 / 93) for p in parts)
    blobs = [p.to_bytes() for p in parts]
    assert all(len(b) == HEADER_BYTES + 22 * 512 for b in blobs)
    kid = key_id(pk)
    received = [EncryptedVector.from_bytes(b, expected_key_id=kid) for b in blobs]
    total = EncryptedVector.from_bytes(aggregate(pk, received).to_bytes())
    got = decrypt_sum(sk, total)
    assert np.all(np.abs(got - _exact_sum(xs)) <= 3 * spec.quantisation_error)


def test_aggregates_can_be_aggregated(
    small: tuple[PublicKey, PrivateKey], spec: PackingSpec
) -> None:
    pk, sk = small
    xs = np.random.default_rng(1).uniform(-0.5, 0.5, size=(5, 40))
    parts = [encrypt_vector(pk, x, spec) for x in xs]
    total = aggregate(pk, [aggregate(pk, parts[:2]), aggregate(pk, parts[2:])])
    assert total.n_summands == 5
    got = decrypt_sum(sk, total)
    assert np.all(np.abs(got - _exact_sum(xs)) <= 5 * spec.quantisation_error)


def test_encryption_is_randomised(
    small: tuple[PublicKey, PrivateKey], spec: PackingSpec
) -> None:
    pk, sk = small
    a, b = (encrypt_vector(pk, [0.25, -0.25], spec) for _ in range(2))
    assert a.ciphertexts != b.ciphertexts
    assert np.array_equal(decrypt_sum(sk, a), decrypt_sum(sk, b))


def test_encrypt_rejects_bad_vectors(
    small: tuple[PublicKey, PrivateKey], spec: PackingSpec
) -> None:
    pk, _ = small
    with pytest.raises(PackingError, match="index 1"):
        encrypt_vector(pk, [0.0, 0.7], spec)
    with pytest.raises(PackingError, match="non-finite"):
        encrypt_vector(pk, [math.nan], spec)


def test_spec_key_bits_must_match_key(small: tuple[PublicKey, PrivateKey]) -> None:
    pk, _ = small
    with pytest.raises(CryptoError) as info:
        encrypt_vector(pk, [0.0], PackingSpec(bound=0.5, key_bits=1024))
    assert "key_bits=1024" in str(info.value) and "512 bits" in str(info.value)


# ----------------------------------------------------------------------- blob


def test_blob_round_trip_and_layout(
    small: tuple[PublicKey, PrivateKey], spec: PackingSpec
) -> None:
    pk, _ = small
    enc = encrypt_vector(pk, np.linspace(-0.5, 0.5, 50), spec)
    blob = enc.to_bytes()
    assert blob[:4] == b"FSPV" and blob[4] == 1 and blob[5:37] == key_id(pk)
    assert len(enc.ciphertexts) == 3  # 50 values, 23 slots per 512-bit plaintext
    assert len(blob) == HEADER_BYTES + 3 * 128
    assert EncryptedVector.from_bytes(blob) == enc
    again = EncryptedVector.from_bytes(bytearray(blob), expected_key_id=key_id(pk))
    assert again == enc
    assert "FSPV" not in repr(enc) and str(enc.ciphertexts[0]) not in repr(enc)


def _blob(small: tuple[PublicKey, PrivateKey], spec: PackingSpec) -> bytes:
    return encrypt_vector(small[0], np.zeros(30), spec).to_bytes()


@pytest.mark.parametrize("cut", [0, 3, HEADER_BYTES - 1, HEADER_BYTES, -1, -128])
def test_truncated_blob(
    small: tuple[PublicKey, PrivateKey], spec: PackingSpec, cut: int
) -> None:
    blob = _blob(small, spec)
    with pytest.raises(BlobFormatError, match="truncated"):
        EncryptedVector.from_bytes(blob[:cut])


def test_trailing_bytes(small: tuple[PublicKey, PrivateKey], spec: PackingSpec) -> None:
    with pytest.raises(BlobFormatError, match="1 trailing byte"):
        EncryptedVector.from_bytes(_blob(small, spec) + b"\x00")


def test_bad_magic_and_version(
    small: tuple[PublicKey, PrivateKey], spec: PackingSpec
) -> None:
    blob = _blob(small, spec)
    with pytest.raises(BlobFormatError, match="bad magic b'XSPV'"):
        EncryptedVector.from_bytes(b"X" + blob[1:])
    with pytest.raises(BlobFormatError, match="unsupported blob version 3"):
        EncryptedVector.from_bytes(blob[:4] + b"\x03" + blob[5:])
    with pytest.raises(BlobFormatError, match="must be bytes"):
        EncryptedVector.from_bytes("FSPV")  # type: ignore[arg-type]


def test_inconsistent_header_fields(
    small: tuple[PublicKey, PrivateKey], spec: PackingSpec
) -> None:
    blob = _blob(small, spec)
    # n_values says 100 (5 plaintexts) but 2 ciphertexts follow.
    with pytest.raises(BlobFormatError, match="2 ciphertext"):
        EncryptedVector.from_bytes(blob[:54] + struct.pack(">I", 100) + blob[58:])
    # value_bits = 0 is not a valid spec.
    with pytest.raises(BlobFormatError, match="invalid packing spec"):
        EncryptedVector.from_bytes(blob[:45] + b"\x00" + blob[46:])
    # n_summands = 65 > max_summands.
    with pytest.raises(BlobFormatError, match="n_summands=65"):
        EncryptedVector.from_bytes(blob[:58] + struct.pack(">I", 65) + blob[62:])
    # An all-zero ciphertext is never valid.
    with pytest.raises(BlobFormatError, match="ciphertext 1"):
        EncryptedVector.from_bytes(blob[: HEADER_BYTES + 128] + bytes(128))


def test_blob_under_another_key(
    small: tuple[PublicKey, PrivateKey],
    other: tuple[PublicKey, PrivateKey],
    spec: PackingSpec,
) -> None:
    blob = _blob(small, spec)
    mine, theirs = key_id(small[0]).hex(), key_id(other[0]).hex()
    with pytest.raises(KeyMismatchError) as info:
        EncryptedVector.from_bytes(blob, expected_key_id=key_id(other[0]))
    assert mine[:16] in str(info.value) and theirs[:16] in str(info.value)
    with pytest.raises(KeyMismatchError, match=theirs[:16]):
        decrypt_sum(other[1], EncryptedVector.from_bytes(blob))


# ------------------------------------------------------------------ aggregate


def test_aggregate_errors(
    small: tuple[PublicKey, PrivateKey],
    other: tuple[PublicKey, PrivateKey],
    spec: PackingSpec,
) -> None:
    pk, _ = small
    mine = encrypt_vector(pk, np.zeros(10), spec)
    with pytest.raises(AggregationError, match="no encrypted vectors"):
        aggregate(pk, [])
    foreign = encrypt_vector(other[0], np.zeros(10), spec)
    with pytest.raises(AggregationError, match="part 1 is encrypted under key"):
        aggregate(pk, [mine, foreign])
    with pytest.raises(AggregationError, match="part 1 has 11 values, part 0 10"):
        aggregate(pk, [mine, encrypt_vector(pk, np.zeros(11), spec)])
    coarse = dataclasses.replace(spec, value_bits=8)
    with pytest.raises(AggregationError, match="part 1 has spec"):
        aggregate(pk, [mine, encrypt_vector(pk, np.zeros(10), coarse)])
    with pytest.raises(AggregationError, match="part 0 is a list"):
        aggregate(pk, [[1, 2]])  # type: ignore[list-item]


def test_aggregate_rejects_too_many_summands(
    small: tuple[PublicKey, PrivateKey],
) -> None:
    pk, _ = small
    spec = PackingSpec(bound=0.5, max_summands=4, key_bits=SMALL_BITS)
    part = encrypt_vector(pk, np.zeros(5), spec)
    three = aggregate(pk, [part] * 3)
    assert aggregate(pk, [three, part]).n_summands == 4
    with pytest.raises(AggregationError) as info:
        aggregate(pk, [three, part, part])
    assert "3 parts carry 5 summands" in str(info.value)
    assert "max_summands=4" in str(info.value)


def test_aggregate_rejects_ciphertext_not_below_n_squared(
    small: tuple[PublicKey, PrivateKey], spec: PackingSpec
) -> None:
    pk, _ = small
    good = encrypt_vector(pk, np.zeros(3), spec)
    bad = dataclasses.replace(good, ciphertexts=(pk.nsquare,))
    with pytest.raises(AggregationError, match="part 1: ciphertext 0"):
        aggregate(pk, [good, bad])


def test_decrypt_rejects_inconsistent_vectors(
    small: tuple[PublicKey, PrivateKey], spec: PackingSpec
) -> None:
    pk, sk = small
    enc = encrypt_vector(pk, np.zeros(30), spec)
    with pytest.raises(BlobFormatError, match="ciphertext 1 is not below n"):
        decrypt_sum(sk, dataclasses.replace(enc, ciphertexts=(1, pk.nsquare)))
    # 50 values take 2 plaintexts at 46 slots each under a 1024-bit spec.
    wide_spec = dataclasses.replace(spec, key_bits=1024)
    wide = dataclasses.replace(enc, spec=wide_spec, n_values=50)
    with pytest.raises(BlobFormatError, match="spec.key_bits=1024"):
        decrypt_sum(sk, wide)
    # Claiming fewer summands than were added is caught by the slot check.
    double = aggregate(pk, [enc, enc])
    with pytest.raises(PackingError, match="exceeds 1 x 65535"):
        decrypt_sum(sk, dataclasses.replace(double, n_summands=1))
