"""ECIES sealing to secp256k1 keys, and the package's import boundary."""

from __future__ import annotations

import re
from pathlib import Path

import coincurve
import pytest

from offchain.crypto.sealing import generate_seal_keypair, seal, unseal
from offchain.errors import CryptoError


@pytest.fixture(scope="module")
def pair() -> tuple[bytes, bytes]:
    return generate_seal_keypair()


def test_round_trip_with_every_public_key_form(pair: tuple[bytes, bytes]) -> None:
    public, secret = pair
    assert len(public) == 65 and len(secret) == 32
    compressed = coincurve.PublicKey(public).format(compressed=True)
    for form in (public, public[1:], compressed):
        for data in (b"", b"x", bytes(range(256)) * 40):
            sealed = seal(form, data)
            assert sealed != data
            assert unseal(secret, sealed) == data


def test_sealing_is_randomised(pair: tuple[bytes, bytes]) -> None:
    public, secret = pair
    assert seal(public, b"same") != seal(public, b"same")


def test_wrong_key_or_tampering_raises(pair: tuple[bytes, bytes]) -> None:
    public, secret = pair
    sealed = seal(public, b"secret model key")
    _, other_secret = generate_seal_keypair()
    with pytest.raises(CryptoError, match="cannot unseal"):
        unseal(other_secret, sealed)
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(CryptoError, match="cannot unseal"):
        unseal(secret, tampered)
    with pytest.raises(CryptoError, match="cannot unseal"):
        unseal(secret, sealed[:20])
    with pytest.raises(CryptoError, match="private key is 31 bytes"):
        unseal(secret[:31], sealed)


def test_bad_public_keys(pair: tuple[bytes, bytes]) -> None:
    public, _ = pair
    with pytest.raises(CryptoError, match="public key is 20 bytes"):
        seal(public[:20], b"x")
    with pytest.raises(CryptoError, match="bad prefix 0x05"):
        seal(b"\x05" + public[1:], b"x")
    with pytest.raises(CryptoError, match="cannot seal"):
        seal(bytes(64), b"x")  # not a curve point
    with pytest.raises(CryptoError, match="must be bytes"):
        seal(public.hex(), b"x")  # type: ignore[arg-type]


def test_only_the_crypto_package_imports_phe_and_ecies() -> None:
    root = Path(__file__).resolve().parents[3] / "offchain"
    pattern = re.compile(r"^\s*(from|import)\s+(phe|ecies)\b", re.MULTILINE)
    offenders = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if "crypto" not in path.relative_to(root).parts[:1]
        and pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
