"""Paillier key generation, key ids and key files."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest

from offchain.crypto.keys import (
    PrivateKey,
    PublicKey,
    generate_keypair,
    key_id,
    load_private_key,
    load_public_key,
    save_private_key,
    save_public_key,
)
from offchain.errors import CryptoError


@pytest.fixture(scope="module")
def pair() -> tuple[PublicKey, PrivateKey]:
    return generate_keypair(bits=512, insecure_ok=True)


def test_generate_sizes_and_insecure_guard() -> None:
    with pytest.raises(CryptoError, match="bits=512 is below 1024; pass insecure_ok"):
        generate_keypair(bits=512)
    with pytest.raises(CryptoError, match="bits must be even"):
        generate_keypair(bits=1025)
    with pytest.raises(CryptoError, match="below the minimum 128"):
        generate_keypair(bits=64, insecure_ok=True)
    with pytest.raises(CryptoError, match="bits must be an int"):
        generate_keypair(bits=1024.0)  # type: ignore[arg-type]
    pk, sk = generate_keypair(bits=1024)
    assert pk.bits == 1024 and sk.public_key == pk
    assert sk.p * sk.q == pk.n


def test_key_id_is_sha256_of_n_and_stable(pair: tuple[PublicKey, PrivateKey]) -> None:
    pk, sk = pair
    kid = key_id(pk)
    assert isinstance(kid, bytes) and len(kid) == 32
    assert kid == hashlib.sha256(pk.n.to_bytes(64, "big")).digest()
    assert kid == key_id(PublicKey(pk.n)) == pk.key_id == sk.key_id
    other, _ = generate_keypair(bits=512, insecure_ok=True)
    assert key_id(other) != kid
    with pytest.raises(CryptoError, match="expected a PublicKey"):
        key_id(pk.n)  # type: ignore[arg-type]


def test_round_trip_and_modes(
    tmp_path: Path, pair: tuple[PublicKey, PrivateKey]
) -> None:
    pk, sk = pair
    pub_path, priv_path = tmp_path / "pk.json", tmp_path / "sk.json"
    save_public_key(pub_path, pk)
    save_private_key(priv_path, sk)
    assert load_public_key(pub_path) == pk
    loaded = load_private_key(str(priv_path))
    assert loaded == sk and key_id(loaded.public_key) == key_id(pk)
    assert stat.S_IMODE(priv_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(pub_path.stat().st_mode) == 0o644
    assert json.loads(pub_path.read_text())["key_id"] == "0x" + key_id(pk).hex()
    assert "p" not in json.loads(pub_path.read_text())
    # Overwriting an existing, looser file still leaves it 0600.
    priv_path.chmod(0o644)
    save_private_key(priv_path, sk)
    assert stat.S_IMODE(priv_path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pk.json", "sk.json"]


def test_private_key_repr_hides_secrets(pair: tuple[PublicKey, PrivateKey]) -> None:
    _, sk = pair
    lam = (sk.p - 1) * (sk.q - 1)
    for shown in (repr(sk), str(sk), f"{sk}", repr([sk]), repr({"k": sk})):
        for secret in (sk.p, sk.q, lam):
            assert str(secret) not in shown and hex(secret)[2:] not in shown
        assert "lambda" not in shown and "p=" not in shown and "q=" not in shown
    assert "bits=512" in repr(sk) and key_id(sk.public_key).hex()[:16] in repr(sk)
    assert str(sk.public_key.n) not in repr(sk.public_key)


def test_mismatched_primes_do_not_leak(pair: tuple[PublicKey, PrivateKey]) -> None:
    pk, sk = pair
    with pytest.raises(CryptoError) as info:
        PrivateKey(pk, sk.p, sk.q + 2)
    assert str(sk.p) not in str(info.value) and "do not match" in str(info.value)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "is not a fedshare.paillier.private key"),
        ('{"kind": "fedshare.paillier.public", "version": 1}', "kind="),
        ('{"kind": "fedshare.paillier.private", "version": 9}', "version 9"),
        ('{"kind": "fedshare.paillier.private", "version": 1}', "field 'n'"),
        (
            '{"kind": "fedshare.paillier.private", "version": 1, '
            '"n": "0xzz", "p": "0x3", "q": "0x5"}',
            "field 'n' is not valid hex",
        ),
        (
            '{"kind": "fedshare.paillier.private", "version": 1, '
            '"n": 15, "p": "0x3", "q": "0x5"}',
            "field 'n' must be a 0x-hex string",
        ),
    ],
)
def test_malformed_private_key_file(
    tmp_path: Path, content: str, fragment: str
) -> None:
    path = tmp_path / "broken.json"
    path.write_text(content)
    with pytest.raises(CryptoError) as info:
        load_private_key(path)
    assert str(path) in str(info.value) and fragment in str(info.value)


def test_private_key_file_with_wrong_primes(
    tmp_path: Path, pair: tuple[PublicKey, PrivateKey]
) -> None:
    pk, sk = pair
    path = tmp_path / "sk.json"
    save_private_key(path, sk)
    payload = json.loads(path.read_text())
    payload["q"] = hex(sk.q + 2)
    path.write_text(json.dumps(payload))
    with pytest.raises(CryptoError, match="do not match") as info:
        load_private_key(path)
    assert str(path) in str(info.value)


def test_malformed_public_key_files(
    tmp_path: Path, pair: tuple[PublicKey, PrivateKey]
) -> None:
    pk, _ = pair
    path = tmp_path / "pk.json"
    save_public_key(path, pk)
    payload = json.loads(path.read_text())
    payload["key_id"] = "0x" + "00" * 32
    path.write_text(json.dumps(payload))
    with pytest.raises(CryptoError, match="does not match n") as info:
        load_public_key(path)
    assert str(path) in str(info.value)
    payload.update(n="0x10", key_id=None)
    path.write_text(json.dumps(payload))
    with pytest.raises(CryptoError, match="must be odd"):
        load_public_key(path)
    with pytest.raises(CryptoError, match="cannot read key file") as info:
        load_public_key(tmp_path / "missing.json")
    assert "missing.json" in str(info.value)
    save_private_key(tmp_path / "sk.json", pair[1])
    with pytest.raises(CryptoError, match="is not a fedshare.paillier.public key"):
        load_public_key(tmp_path / "sk.json")


def test_wrappers_are_frozen(pair: tuple[PublicKey, PrivateKey]) -> None:
    pk, sk = pair
    with pytest.raises(AttributeError):
        pk.n = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        sk.p = 5  # type: ignore[misc]
    with pytest.raises(CryptoError):
        PublicKey(2**512)
