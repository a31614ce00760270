"""Seal bytes to a secp256k1 public key (ECIES via ``eciespy``).

Used to hand small secrets (e.g. a Paillier private key or a blob key) to one
party.  The configuration is pinned here (secp256k1, uncompressed ephemeral key,
AES-256-GCM with a 16-byte nonce), so a global change to ``ecies.ECIES_CONFIG``
elsewhere cannot change the wire format.
"""

from __future__ import annotations

import coincurve
from ecies import decrypt as _ecies_decrypt
from ecies import encrypt as _ecies_encrypt
from ecies.config import Config as _EciesConfig

from offchain.errors import CryptoError

__all__ = ["seal", "unseal", "generate_seal_keypair", "PUBLIC_KEY_LENGTHS"]

#: Accepted public key encodings: 64 (x || y), 65 (0x04 || x || y), 33 (compressed).
PUBLIC_KEY_LENGTHS = (64, 65, 33)
_SECRET_LENGTH = 32

_CONFIG = _EciesConfig(
    elliptic_curve="secp256k1",
    is_ephemeral_key_compressed=False,
    is_hkdf_key_compressed=False,
    symmetric_algorithm="aes-256-gcm",
    symmetric_nonce_length=16,
)


def _as_bytes(value: object, what: str) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise CryptoError(f"{what} must be bytes, got {type(value).__name__}")
    return bytes(value)


def seal(public_key: bytes, data: bytes) -> bytes:
    """Encrypt ``data`` to a secp256k1 ``public_key`` (64, 65 or 33 bytes).

    Raises :class:`CryptoError` if the key has another length or is not a point
    on the curve, or ``data`` is not bytes.
    """
    key = _as_bytes(public_key, "public key")
    payload = _as_bytes(data, "data")
    if len(key) not in PUBLIC_KEY_LENGTHS:
        raise CryptoError(
            f"cannot seal: public key is {len(key)} bytes, expected one of "
            f"{PUBLIC_KEY_LENGTHS}"
        )
    if len(key) == 65 and key[0] != 0x04 or len(key) == 33 and key[0] not in (2, 3):
        raise CryptoError(
            f"cannot seal: {len(key)}-byte public key has bad prefix 0x{key[0]:02x}"
        )
    try:
        return bytes(_ecies_encrypt(key, payload, _CONFIG))
    except (ValueError, TypeError) as exc:
        raise CryptoError(f"cannot seal: invalid public key ({exc})") from exc


def unseal(private_key: bytes, data: bytes) -> bytes:
    """Decrypt ``data`` sealed by :func:`seal` with the 32-byte ``private_key``.

    Raises :class:`CryptoError` ("cannot unseal ...") if the key is malformed,
    the data is truncated or tampered with, or it was sealed to another key.
    """
    key = _as_bytes(private_key, "private key")
    payload = _as_bytes(data, "data")
    if len(key) != _SECRET_LENGTH:
        raise CryptoError(
            f"cannot unseal: private key is {len(key)} bytes, expected {_SECRET_LENGTH}"
        )
    try:
        return bytes(_ecies_decrypt(key, payload, _CONFIG))
    except Exception as exc:  # noqa: BLE001 - eciespy/coincurve raise many types
        raise CryptoError(
            f"cannot unseal {len(payload)}-byte payload: wrong key or corrupted "
            f"data ({type(exc).__name__})"
        ) from exc


def generate_seal_keypair() -> tuple[bytes, bytes]:
    """Return a fresh ``(public_key, private_key)``: 65-byte uncompressed, 32-byte.

    Raises nothing of its own.
    """
    secret = coincurve.PrivateKey()
    return secret.public_key.format(compressed=False), secret.secret
