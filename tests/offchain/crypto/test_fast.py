"""Precomputed randomness, short exponents, re-randomisation, CRT decryption."""

from __future__ import annotations

import copy
import math
import os
import pickle

import gmpy2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from offchain.crypto import _obfuscators, fast
from offchain.crypto.fast import (
    RandomnessPool,
    configure,
    current_defaults,
    default_pool,
    prefill,
    security_bits,
    short_base,
    short_exponent_bits,
)
from offchain.crypto.keys import PrivateKey, PublicKey, generate_keypair
from offchain.crypto.packing import PackingSpec
from offchain.crypto.paillier import (
    EncryptedVector,
    aggregate,
    decrypt_sum,
    encrypt_vector,
    rerandomize,
)
from offchain.errors import CryptoError, KeyMismatchError

BITS = 1024


@pytest.fixture(scope="module")
def pair() -> tuple[PublicKey, PrivateKey]:
    return generate_keypair(bits=BITS, insecure_ok=True)


@pytest.fixture(scope="module")
def other() -> tuple[PublicKey, PrivateKey]:
    return generate_keypair(bits=512, insecure_ok=True)


@pytest.fixture(scope="module")
def spec() -> PackingSpec:
    return PackingSpec(bound=1.0, value_bits=16, max_summands=32, key_bits=BITS)


@pytest.fixture
def restore_defaults():
    saved = current_defaults()
    yield
    configure(mode=saved["mode"], workers=0)


def _lambda_mu(sk: PrivateKey) -> tuple[int, int]:
    n = sk.public_key.n
    lam = math.lcm(sk.p - 1, sk.q - 1)
    mu = pow((pow(n + 1, lam, n * n) - 1) // n, -1, n)
    return lam, mu


def _textbook_decrypt(sk: PrivateKey, c: int) -> int:
    """L(c**lambda mod n**2) * mu mod n, without phe or CRT."""
    n = sk.public_key.n
    lam, mu = _lambda_mu(sk)
    return (pow(c, lam, n * n) - 1) // n * mu % n


def _obfuscator_of(pk: PublicKey, c: int, m: int) -> int:
    """rho = c / (1 + m n) mod n**2: the randomness a ciphertext carries."""
    return c * pow(1 + m * pk.n, -1, pk.nsquare) % pk.nsquare


# ----------------------------------------------------------------- the base hs


def test_security_levels_and_exponent_lengths() -> None:
    assert [security_bits(b) for b in (512, 1024, 2048, 3072, 4096, 7680, 15360)] == [
        0, 80, 112, 128, 128, 192, 256,
    ]
    assert short_exponent_bits(2048) == 256 and short_exponent_bits(3072) == 256
    assert short_exponent_bits(7680) == 384 and short_exponent_bits(15360) == 512


def test_short_base_is_public_deterministic_and_decryptable(
    pair: tuple[PublicKey, PrivateKey], other: tuple[PublicKey, PrivateKey]
) -> None:
    pk, sk = pair
    hs = short_base(pk)
    # Derived from n alone: a fresh PublicKey object with the same n agrees.
    assert short_base(PublicKey(pk.n)) == hs
    assert short_base(other[0]) != hs
    # hs = h**n with h = -x**2 mod n, x from SHAKE-256(n, counter).
    x = _obfuscators.derive_x(pk.n)
    h = (-x * x) % pk.n
    assert hs == pow(h, pk.n, pk.nsquare) and 1 < hs < pk.nsquare
    # An n-th residue: hs**lambda = 1 mod n**2, so decryption cannot notice it.
    lam, _ = _lambda_mu(sk)
    assert pow(hs, lam, pk.nsquare) == 1


@pytest.mark.parametrize("mode", ["short", "full"])
def test_textbook_decryption_of_pool_ciphertexts(
    pair: tuple[PublicKey, PrivateKey], mode: str
) -> None:
    pk, sk = pair
    pool = RandomnessPool(pk, mode=mode, workers=1)
    plaintexts = [0, 1, 12345, pk.n - 1, 2**900 + 17]
    cts = fast.encrypt_raw(pk, plaintexts, pool.take(len(plaintexts)))
    for m, c in zip(plaintexts, cts, strict=True):
        assert _textbook_decrypt(sk, c) == m
        assert sk.raw_decrypt(c) == m
        rho = _obfuscator_of(pk, c, m)
        assert rho != 1
        # Every obfuscator is an n-th residue (what decryption needs).
        assert pow(rho, _lambda_mu(sk)[0], pk.nsquare) == 1


def test_encrypt_raw_rejects_bad_input(pair: tuple[PublicKey, PrivateKey]) -> None:
    pk, _ = pair
    pool = RandomnessPool(pk, workers=1)
    with pytest.raises(CryptoError, match=r"plaintext 1 of \d+ bits is not in \[0, n\)"):
        fast.encrypt_raw(pk, [1, pk.n], pool.take(2))
    with pytest.raises(CryptoError, match="2 plaintexts but 1 obfuscators"):
        fast.encrypt_raw(pk, [1, 2], pool.take(1))


# ------------------------------------------------------------------- the pool


@pytest.mark.parametrize("mode", ["short", "full"])
@pytest.mark.parametrize("workers", [1, 2])
def test_pool_never_hands_out_a_value_twice(
    pair: tuple[PublicKey, PrivateKey], mode: str, workers: int
) -> None:
    pk, _ = pair
    pool = RandomnessPool(pk, mode=mode, workers=workers)
    pool.fill(40)
    assert len(pool) == 40 and pool.issued == 0
    first = pool.take(25)
    assert len(pool) == 15 and pool.issued == 25
    second = pool.take(30)  # 15 ready + 15 computed on the spot
    assert len(pool) == 0 and pool.issued == 55
    assert pool.ensure(20) == 20 and pool.ensure(10) == 0
    third = pool.take(20)
    seen = [int(v) for v in first + second + third]
    assert len(seen) == len(set(seen)) == 75
    assert all(1 < v < pk.nsquare for v in seen)


def test_pool_hands_out_each_ready_value_once_across_threads(
    pair: tuple[PublicKey, PrivateKey],
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    pk, _ = pair
    pool = RandomnessPool(pk, workers=1)
    pool.fill(200)
    with ThreadPoolExecutor(4) as ex:
        batches = list(ex.map(lambda _: pool.take(10), range(20)))
    values = [int(v) for batch in batches for v in batch]
    assert len(set(values)) == 200 and len(pool) == 0


def test_fill_async_and_discard(pair: tuple[PublicKey, PrivateKey]) -> None:
    pk, _ = pair
    pool = RandomnessPool(pk, workers=1)
    pool.fill_async(30).result(timeout=60)
    assert len(pool) == 30
    assert pool.discard() == 30 and len(pool) == 0


def test_pool_cannot_be_pickled_or_copied(pair: tuple[PublicKey, PrivateKey]) -> None:
    pool = RandomnessPool(pair[0], workers=1)
    pool.fill(2)
    for clone in (pickle.dumps, copy.copy, copy.deepcopy):
        with pytest.raises(CryptoError, match="cannot be pickled or copied"):
            clone(pool)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_starts_with_empty_pools(pair: tuple[PublicKey, PrivateKey]) -> None:
    pool = RandomnessPool(pair[0], workers=1)
    pool.fill(5)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os.write(write, str(len(pool)).encode())
        finally:
            os._exit(0)
    os.close(write)
    reported = os.read(read, 16)
    os.close(read)
    os.waitpid(pid, 0)
    assert reported == b"0" and len(pool) == 5


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"mode": "tiny"}, "mode must be one of"),
        ({"workers": 0}, "workers must be an int >= 1, got 0"),
        ({"workers": True}, "workers must be an int"),
        ({"exponent_bits": 64}, "exponent_bits must be an int in [128, 2048]"),
    ],
)
def test_pool_arguments(
    pair: tuple[PublicKey, PrivateKey], kwargs: dict[str, object], fragment: str
) -> None:
    with pytest.raises(CryptoError) as info:
        RandomnessPool(pair[0], **kwargs)  # type: ignore[arg-type]
    assert fragment in str(info.value)
    with pytest.raises(CryptoError, match="expected a PublicKey"):
        RandomnessPool(pair[0].n)  # type: ignore[arg-type]
    with pytest.raises(CryptoError, match="count must be in"):
        RandomnessPool(pair[0], workers=1).take(-1)


# ----------------------------------------------------- the default fast path


def test_encrypt_vector_draws_from_the_default_pool(
    pair: tuple[PublicKey, PrivateKey], spec: PackingSpec, restore_defaults: None
) -> None:
    pk, sk = pair
    configure(mode="short", workers=1)
    pool = default_pool(pk)
    assert pool is default_pool(PublicKey(pk.n)) and pool.mode == "short"
    prefill(pk, 100, spec, vectors=2)
    needed = spec.n_plaintexts(100)
    assert len(pool) == 2 * needed
    enc = encrypt_vector(pk, np.full(100, 0.5), spec)
    assert len(pool) == needed and pool.issued == needed
    assert np.allclose(decrypt_sum(sk, enc), 0.5, atol=spec.quantisation_error)
    configure(mode="full")
    assert default_pool(pk) is not pool and default_pool(pk).mode == "full"
    with pytest.raises(CryptoError, match="mode must be one of"):
        configure(mode="fast")


def test_encrypt_vector_rejects_a_pool_of_another_key(
    pair: tuple[PublicKey, PrivateKey],
    other: tuple[PublicKey, PrivateKey],
    spec: PackingSpec,
) -> None:
    with pytest.raises(CryptoError, match="the pool's obfuscators are for key"):
        encrypt_vector(pair[0], [0.0], spec, pool=RandomnessPool(other[0], workers=1))
    with pytest.raises(CryptoError, match="pool must be a RandomnessPool"):
        encrypt_vector(pair[0], [0.0], spec, pool=object())  # type: ignore[arg-type]


def test_every_ciphertext_gets_its_own_fresh_obfuscator(
    pair: tuple[PublicKey, PrivateKey], spec: PackingSpec
) -> None:
    from offchain.crypto.packing import pack, quantize

    pk, _ = pair
    pool = RandomnessPool(pk, workers=1)
    vec = np.zeros(5 * spec.slots_per_plaintext)  # 5 identical plaintexts
    plaintexts = pack(quantize(vec, spec), spec)
    encs = [encrypt_vector(pk, vec, spec, pool=pool) for _ in range(3)]
    rhos = [
        _obfuscator_of(pk, c, m)
        for enc in encs
        for c, m in zip(enc.ciphertexts, plaintexts, strict=True)
    ]
    assert len(set(rhos)) == 15 and 1 not in rhos


@st.composite
def _parties(draw: st.DrawFn) -> tuple[PackingSpec, np.ndarray]:
    spec = PackingSpec(
        bound=draw(st.sampled_from([0.01, 1.0, 37.5])),
        value_bits=draw(st.integers(4, 20)),
        max_summands=draw(st.integers(1, 24)),
        key_bits=BITS,
    )
    n_parties = draw(st.integers(1, spec.max_summands))  # up to the declared max
    length = draw(st.integers(1, 2 * spec.slots_per_plaintext + 1))
    elements = st.floats(-spec.bound, spec.bound, allow_nan=False, width=64)
    xs = draw(hnp.arrays(np.float64, (n_parties, length), elements=elements))
    return spec, xs


@settings(max_examples=15, deadline=None)
@given(case=_parties(), short_first=st.booleans())
def test_short_and_full_ciphertexts_decrypt_to_the_same_sum(
    pair: tuple[PublicKey, PrivateKey],
    case: tuple[PackingSpec, np.ndarray],
    short_first: bool,
) -> None:
    pk, sk = pair
    spec, xs = case
    short = RandomnessPool(pk, mode="short", workers=1)
    full = RandomnessPool(pk, mode="full", workers=1)
    # Mixed modes in one sum: the obfuscator never matters for decryption.
    pools = [short, full] if short_first else [full, short]
    parts = [
        encrypt_vector(pk, x, spec, pool=pools[i % 2]) for i, x in enumerate(xs)
    ]
    only_short = [encrypt_vector(pk, x, spec, pool=short) for x in xs]
    exact = np.array([math.fsum(column) for column in xs.T])
    for group in (parts, only_short):
        got = decrypt_sum(sk, aggregate(pk, group))
        assert np.all(np.abs(got - exact) <= len(xs) * spec.quantisation_error)
    assert all(
        np.array_equal(decrypt_sum(sk, a), decrypt_sum(sk, b))
        for a, b in zip(parts, only_short, strict=True)
    )


# --------------------------------------------------------------- rerandomize


def test_rerandomize_changes_every_ciphertext_but_not_the_sum(
    pair: tuple[PublicKey, PrivateKey], spec: PackingSpec
) -> None:
    pk, sk = pair
    pool = RandomnessPool(pk, workers=1)
    xs = np.random.default_rng(3).uniform(-1, 1, size=(3, 150))
    total = aggregate(pk, [encrypt_vector(pk, x, spec, pool=pool) for x in xs])
    fresh = rerandomize(pk, total, pool=pool)
    assert fresh.n_summands == 3 and fresh.n_values == 150
    assert all(
        a != b for a, b in zip(total.ciphertexts, fresh.ciphertexts, strict=True)
    )
    assert np.array_equal(decrypt_sum(sk, fresh), decrypt_sum(sk, total))
    again = rerandomize(pk, fresh)  # default pool
    assert set(again.ciphertexts).isdisjoint(fresh.ciphertexts)
    assert np.array_equal(decrypt_sum(sk, again), decrypt_sum(sk, total))


def test_rerandomize_checks_the_key(
    pair: tuple[PublicKey, PrivateKey],
    other: tuple[PublicKey, PrivateKey],
    spec: PackingSpec,
) -> None:
    enc = encrypt_vector(pair[0], [0.1], spec, pool=RandomnessPool(pair[0], workers=1))
    with pytest.raises(KeyMismatchError, match="encrypted vector is for key"):
        rerandomize(other[0], enc)
    with pytest.raises(CryptoError, match="expected an EncryptedVector"):
        rerandomize(pair[0], enc.to_bytes())  # type: ignore[arg-type]


# ------------------------------------------------------------ CRT decryption


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_raw_decrypt_many_matches_raw_decrypt(
    pair: tuple[PublicKey, PrivateKey], workers: int
) -> None:
    pk, sk = pair
    pool = RandomnessPool(pk, workers=1)
    plaintexts = [0, 1, pk.n - 1] + [int(v) for v in range(10**6, 10**6 + 30)]
    cts = fast.encrypt_raw(pk, plaintexts, pool.take(len(plaintexts)))
    got = sk.raw_decrypt_many(cts, workers=workers)
    assert got == plaintexts == [sk.raw_decrypt(c) for c in cts]
    assert all(type(m) is int for m in got)
    assert sk.raw_decrypt_many([], workers=workers) == []
    with pytest.raises(CryptoError, match=r"ciphertext 1 is not in \(0, n\*\*2\)"):
        sk.raw_decrypt_many([cts[0], pk.nsquare])
    with pytest.raises(CryptoError, match="workers must be an int >= 1"):
        sk.raw_decrypt_many(cts, workers=0)


def test_3072_bit_keys_work_end_to_end() -> None:
    pk, sk = generate_keypair(bits=3072)
    spec = PackingSpec(bound=0.5, max_summands=50, key_bits=3072)
    assert spec.slot_bits == 22 and spec.slots_per_plaintext == 139  # 139*22 <= 3070
    xs = np.random.default_rng(0).uniform(-0.5, 0.5, size=(2, 300))
    pool = RandomnessPool(pk, workers=2)
    parts = [encrypt_vector(pk, x, spec, pool=pool) for x in xs]
    blob = parts[0].to_bytes()
    assert len(blob) == 66 + 3 * 768  # 300 values, 139 per 768-byte ciphertext
    total = aggregate(pk, [EncryptedVector.from_bytes(blob), parts[1]])
    got = decrypt_sum(sk, total)
    assert np.all(np.abs(got - xs.sum(axis=0)) <= 2 * spec.quantisation_error)
    assert pow(short_base(pk), math.lcm(sk.p - 1, sk.q - 1), pk.nsquare) == 1
    assert gmpy2.is_prime(sk.p) and sk.p.bit_length() == 1536


# ------------------------------------------------- threads and processes


@pytest.mark.parametrize("mode", ["short", "full"])
def test_worker_processes_return_fresh_nth_residues(
    pair: tuple[PublicKey, PrivateKey], mode: str
) -> None:
    pk, sk = pair
    lam, _ = _lambda_mu(sk)
    bits = short_exponent_bits(pk.bits)
    workers = fast._WorkerProcesses()
    try:
        values = workers.compute(pk.n, mode, bits, [5, 7, 9])
        again = workers.compute(pk.n, mode, bits, [3, 4])  # workers persist
    finally:
        workers.close()
    seen = [int(v) for v in values + again]
    assert len(seen) == len(set(seen)) == 28
    assert all(1 < v < pk.nsquare and pow(v, lam, pk.nsquare) == 1 for v in seen)


def test_parallel_backend_choice_and_switch(restore_defaults: None) -> None:
    assert fast.parallel_backend("full") == "threads"
    assert fast.parallel_backend("short") in ("processes", "threads")
    configure(processes=False)
    assert fast.parallel_backend("short") == "threads"
    assert current_defaults()["processes"] is False
    configure(processes=True)


def test_broken_worker_processes_fall_back_to_threads(
    pair: tuple[PublicKey, PrivateKey],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pk, sk = pair
    broken = fast._WorkerProcesses()
    monkeypatch.setattr(fast, "_PROCESSES", broken)
    monkeypatch.setattr(fast.sys, "executable", "/nonexistent/python")
    pool = RandomnessPool(pk, mode="short", workers=2)
    pool.fill(40)
    assert len(pool) == 40 and broken.failed is not None
    assert "using threads" in caplog.text
    assert fast.parallel_backend("short") == "threads"
    cts = fast.encrypt_raw(pk, [7] * 40, pool.take(40))
    assert sk.raw_decrypt_many(cts) == [7] * 40


def test_worker_protocol_in_process(pair: tuple[PublicKey, PrivateKey]) -> None:
    import io

    pk, _ = pair
    n_bytes = pk.n.to_bytes(128, "big")
    good = _obfuscators.REQUEST.pack(b"FSOB", 128, 0, 256, 3) + n_bytes
    bad = _obfuscators.REQUEST.pack(b"XXXX", 128, 0, 256, 3) + n_bytes
    out = io.BytesIO()
    _obfuscators.serve(io.BytesIO(good + bad + good[:5]), out)  # ends at EOF
    reply = out.getvalue()
    assert int.from_bytes(reply[:4], "big") == 3
    rest = reply[4 + 3 * 256 :]
    assert int.from_bytes(rest[:4], "big") == _obfuscators.ERROR
    assert b"bad request" in rest


def test_interrupted_compute_discards_the_workers(
    pair: tuple[PublicKey, PrivateKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replies left unread after an interruption must never be read later (they
    could even belong to another key)."""
    pk, sk = pair
    bits = short_exponent_bits(pk.bits)
    workers = fast._WorkerProcesses()
    real_chunk = _obfuscators.chunk

    def interrupted(*args: object) -> list[object]:
        raise KeyboardInterrupt

    try:
        monkeypatch.setattr(_obfuscators, "chunk", interrupted)
        with pytest.raises(KeyboardInterrupt):
            workers.compute(pk.n, "short", bits, [4, 4])
        assert workers._procs == [] and workers.failed is None
        monkeypatch.setattr(_obfuscators, "chunk", real_chunk)
        values = workers.compute(pk.n, "short", bits, [4, 4])
    finally:
        workers.close()
    lam, _ = _lambda_mu(sk)
    assert len(values) == 8 and all(pow(int(v), lam, pk.nsquare) == 1 for v in values)
