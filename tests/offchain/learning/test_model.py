"""Model specs, parameter vectors and the binary vector encoding."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from offchain.errors import LearningError, UpdateRejected
from offchain.learning.model import (
    VECTOR_HEADER_SIZE,
    VECTOR_MAGIC,
    ModelSpec,
    build_model,
    decode_vector,
    encode_vector,
    initial_vector,
    model_to_vector,
    num_parameters,
    vector_to_model,
)

SPECS = [
    ModelSpec(),
    ModelSpec(name="logreg", pool=1),
    ModelSpec(name="logreg", pool=4),
    ModelSpec(name="mlp", pool=1, hidden=32, activation="relu"),
    ModelSpec(name="mlp", pool=4, hidden=16),
    ModelSpec(name="mlp", input_dim=5, hidden=3, classes=2, pool=1),
]


def test_default_spec_is_small_enough_to_encrypt() -> None:
    spec = ModelSpec()
    assert num_parameters(spec) == 1_970
    assert num_parameters(spec) <= 30_000


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.describe())
def test_num_parameters_matches_the_torch_model(spec: ModelSpec) -> None:
    model = build_model(spec)
    assert num_parameters(spec) == sum(p.numel() for p in model.parameters())
    out = model(torch.zeros(3, spec.input_dim))
    assert out.shape == (3, spec.classes)


def test_describe_and_hash_are_canonical() -> None:
    assert ModelSpec().describe() == "logreg(in=784,pool=2,classes=10)"
    assert ModelSpec(name="mlp").describe() == (
        "mlp(in=784,pool=2,hidden=32,act=tanh,classes=10)"
    )
    # logistic regression ignores hidden/activation, so they do not change its hash
    a = ModelSpec(name="logreg", hidden=5, pool=1)
    b = ModelSpec(name="logreg", hidden=99, activation="relu", pool=1)
    assert a.describe() == b.describe() == "logreg(in=784,classes=10)"
    assert a.spec_hash == b.spec_hash
    assert len({s.spec_hash for s in SPECS}) == len(SPECS)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(name="cnn"), "model name must be one of"),
        (dict(hidden=0), "hidden must be a positive int"),
        (dict(input_dim=True), "input_dim must be a positive int"),
        (dict(classes=1), "classes must be >= 2"),
        (dict(activation="gelu"), "activation must be one of"),
        (dict(pool=3), "pool=3 needs a square input"),
        (dict(input_dim=100, pool=2, hidden=4, classes=2), None),
        (dict(name="mlp", pool=1, hidden=128), "more than 50000"),
        (dict(name="linreg", input_dim=9), "linreg takes no image pooling"),
        (dict(name="linreg", input_dim=784, pool=2), "pool must be 1, got 2"),
        (dict(name="linreg", input_dim=9, pool=1, classes=0), "classes must be a"),
        (dict(name="linreg", input_dim=9, pool=1, classes=1), None),
    ],
)
def test_spec_validation(kwargs: dict, message: str | None) -> None:
    if message is None:
        ModelSpec(**kwargs)
        return
    with pytest.raises(LearningError, match=message):
        ModelSpec(**kwargs)


LINREG = ModelSpec(name="linreg", input_dim=9, pool=1)


def test_linreg_spec() -> None:
    assert LINREG.regression
    assert not any(spec.regression for spec in SPECS)
    assert num_parameters(LINREG) == 10
    assert LINREG.describe() == "linreg(in=9)"
    model = build_model(LINREG)
    assert num_parameters(LINREG) == sum(p.numel() for p in model.parameters())
    assert model(torch.zeros(3, 9)).shape == (3, 1)
    # classes, hidden and activation are ignored, so they do not change the hash
    other = ModelSpec(name="linreg", input_dim=9, pool=1, classes=3, hidden=7,
                      activation="relu")
    assert other.describe() == LINREG.describe()
    assert other.spec_hash == LINREG.spec_hash
    wide = ModelSpec(name="linreg", input_dim=784, pool=1)
    assert wide.describe() == "linreg(in=784)"
    assert wide.spec_hash not in {s.spec_hash for s in SPECS}


def test_linreg_vector_round_trip() -> None:
    vec = np.arange(10, dtype=np.float32)
    model = vector_to_model(LINREG, vec)
    assert np.array_equal(model_to_vector(model), vec)
    x = torch.ones(2, 9)
    assert model(x).reshape(-1).tolist() == [45.0, 45.0]  # sum(0..8) + bias 9
    start = initial_vector(LINREG, seed=0)
    assert start.shape == (10,)
    assert np.array_equal(start, initial_vector(LINREG, seed=0))


def test_initial_vector_is_deterministic_and_leaves_global_rng_alone() -> None:
    spec = ModelSpec()
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = initial_vector(spec, seed=7)
    assert torch.equal(torch.rand(3), expected_next)
    b = initial_vector(spec, seed=7)
    c = initial_vector(spec, seed=8)
    assert a.dtype == np.float32 and a.shape == (num_parameters(spec),)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_initial_vector_rejects_bad_seed() -> None:
    with pytest.raises(LearningError, match="seed must be a non-negative int"):
        initial_vector(ModelSpec(), seed=-1)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.describe())
def test_vector_model_round_trip(spec: ModelSpec) -> None:
    vec = np.random.default_rng(0).normal(size=num_parameters(spec)).astype(np.float32)
    assert np.array_equal(model_to_vector(vector_to_model(spec, vec)), vec)


def test_vector_to_model_rejects_bad_vectors() -> None:
    spec = ModelSpec()
    size = num_parameters(spec)
    with pytest.raises(UpdateRejected, match=f"has {size - 1} values, expected {size}"):
        vector_to_model(spec, np.zeros(size - 1, dtype=np.float32))
    with pytest.raises(UpdateRejected, match="must be 1-D"):
        vector_to_model(spec, np.zeros((1, size), dtype=np.float32))
    bad = np.zeros(size, dtype=np.float32)
    bad[[5, 9]] = np.nan
    with pytest.raises(UpdateRejected, match=r"2 non-finite values \(first at index 5"):
        vector_to_model(spec, bad)


finite_f32 = arrays(
    np.float32,
    st.integers(0, 300),
    elements=st.floats(-1e6, 1e6, width=32, allow_nan=False),
)


@settings(max_examples=50, deadline=None)
@given(finite_f32)
def test_encode_decode_round_trip(vec: np.ndarray) -> None:
    blob = encode_vector(vec)
    assert len(blob) == VECTOR_HEADER_SIZE + 4 * vec.size
    out = decode_vector(blob, expected_size=vec.size)
    assert out.dtype == np.float32
    assert np.array_equal(out, vec)


def test_encoding_is_little_endian_float32() -> None:
    blob = encode_vector(np.array([1.0, -2.5], dtype=np.float64))
    assert blob[:4] == VECTOR_MAGIC
    assert blob[VECTOR_HEADER_SIZE:] == struct.pack("<2f", 1.0, -2.5)
    assert decode_vector(bytearray(blob), expected_size=2).tolist() == [1.0, -2.5]


def _blob(values: list[float]) -> bytes:
    """Encode without the encoder's finiteness check (as a malicious peer could)."""
    header = struct.pack("<4sBBHI", VECTOR_MAGIC, 1, 1, 0, len(values))
    return header + struct.pack(f"<{len(values)}f", *values)


def test_decode_rejects_wrong_size() -> None:
    blob = encode_vector(np.zeros(10, dtype=np.float32))
    with pytest.raises(UpdateRejected, match="header says 10 values, expected 11"):
        decode_vector(blob, expected_size=11)
    with pytest.raises(UpdateRejected, match="payload is 36 bytes, 10 values need 40"):
        decode_vector(blob[:-4], expected_size=10)
    with pytest.raises(UpdateRejected, match="payload is 44 bytes"):
        decode_vector(blob + b"\0\0\0\0", expected_size=10)


def test_decode_rejects_nan_and_inf_with_count_and_index() -> None:
    nan = float("nan")
    inf = float("inf")
    with pytest.raises(UpdateRejected, match=r"2 non-finite values \(first at index 1"):
        decode_vector(_blob([0.0, nan, 1.0, nan]), expected_size=4)
    with pytest.raises(UpdateRejected, match=r"1 non-finite values \(first at index 3"):
        decode_vector(_blob([0.0, 1.0, 2.0, -inf]), expected_size=4)
    assert decode_vector(_blob([0.0, 1.0]), expected_size=2).tolist() == [0.0, 1.0]


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"FSVC\x01", "5 bytes, shorter than the 12-byte header"),
        (b"XXXX" + _blob([1.0])[4:], "bad header: magic b'XXXX'"),
        (_blob([1.0])[:4] + b"\x02" + _blob([1.0])[5:], "bad header: version 2"),
        (_blob([1.0])[:5] + b"\x07" + _blob([1.0])[6:], "bad header: dtype code 7"),
        (_blob([1.0])[:6] + b"\x01\x00" + _blob([1.0])[8:], "reserved field is 1"),
    ],
)
def test_decode_rejects_bad_header(blob: bytes, message: str) -> None:
    with pytest.raises(UpdateRejected, match=message):
        decode_vector(blob, expected_size=1)


def test_decode_rejects_non_bytes() -> None:
    with pytest.raises(UpdateRejected, match="must be bytes, got str"):
        decode_vector("FSVC", expected_size=0)  # type: ignore[arg-type]


def test_encode_rejects_non_finite_and_non_vectors() -> None:
    with pytest.raises(UpdateRejected, match=r"1 non-finite values \(first at index 2"):
        encode_vector(np.array([0.0, 1.0, np.inf]))
    with pytest.raises(UpdateRejected, match="must be 1-D"):
        encode_vector(np.zeros((2, 2)))
