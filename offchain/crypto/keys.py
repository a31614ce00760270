"""Paillier key pairs: generation, identity, and JSON files.

:class:`PublicKey` and :class:`PrivateKey` are thin frozen wrappers around
``phe``'s keys, so the rest of the project never imports ``phe``.  The private
key's ``repr``/``str`` shows only the key size and id, never ``p``, ``q`` or
``lambda``.

Key sizes: 2048 bits (the default) and 3072 bits are the supported production
sizes (any even size from 1024 works; smaller ones only with ``insecure_ok`` for
tests).  2048 is the default because NIST SP 800-57 Part 1 (Rev. 5) rates a
2048-bit modulus at 112 bits of security, acceptable for protecting data
through 2030, and model updates are short-lived secrets.  3072 bits gives
128-bit security (needed beyond 2030) at a cost: a ciphertext takes 2-3.4x
longer to decrypt and to encrypt with a fresh ``r**n`` ((3072/2048)**3 = 3.4
for schoolbook arithmetic; 2.0-3.3x measured on the 2-core test machine, where
GMP's faster multiplication helps), and 1.5x the bytes (768 instead of 512),
though each ciphertext also carries 1.5x the packed values (139 instead of
93), so the bytes per parameter stay the same (``benchmarks/he_bench.py
--key-bits 3072``).

Decryption uses the Chinese remainder theorem with precomputed ``hp``, ``hq``
and ``p**-1 mod q`` (``phe`` does the same for :meth:`PrivateKey.raw_decrypt`);
:meth:`PrivateKey.raw_decrypt_many` runs it on ``gmpy2`` values directly, in
several threads (``gmpy2.powmod_base_list`` releases the GIL).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gmpy2
from phe import paillier as _phe

from offchain.errors import CryptoError
from offchain.storage.atomic import write_atomic

__all__ = [
    "PublicKey",
    "PrivateKey",
    "generate_keypair",
    "key_id",
    "save_public_key",
    "load_public_key",
    "save_private_key",
    "load_private_key",
    "MIN_SECURE_BITS",
]

#: Smallest modulus size accepted without ``insecure_ok=True``.
MIN_SECURE_BITS = 1024
#: Smallest modulus size accepted at all (tests only).
_MIN_INSECURE_BITS = 128

_PUBLIC_KIND = "fedshare.paillier.public"
_PRIVATE_KIND = "fedshare.paillier.private"
_FILE_VERSION = 1


def _int_bytes(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


@dataclass(frozen=True)
class PublicKey:
    """A Paillier public key, the modulus ``n`` (generator ``g = n + 1``).

    Raises :class:`CryptoError` if ``n`` is not an odd int of at least 128 bits.
    """

    n: int

    def __post_init__(self) -> None:
        n = self.n
        if not isinstance(n, int) or isinstance(n, bool):
            raise CryptoError(
                f"Paillier modulus must be an int, got {type(n).__name__}"
            )
        if n.bit_length() < _MIN_INSECURE_BITS or n % 2 == 0:
            raise CryptoError(
                f"Paillier modulus must be odd and >= {_MIN_INSECURE_BITS} bits, "
                f"got a {n.bit_length()}-bit {'even' if n % 2 == 0 else 'odd'} value"
            )
        object.__setattr__(self, "_phe", _phe.PaillierPublicKey(n))
        object.__setattr__(self, "_id", hashlib.sha256(_int_bytes(n)).digest())

    @property
    def bits(self) -> int:
        """Bit length of ``n``."""
        return self.n.bit_length()

    @property
    def nsquare(self) -> int:
        """``n**2``, the ciphertext modulus."""
        return self._phe.nsquare  # type: ignore[attr-defined, no-any-return]

    @property
    def key_id(self) -> bytes:
        """Same as :func:`key_id` (32 bytes)."""
        return self._id  # type: ignore[attr-defined, no-any-return]

    def raw_encrypt(self, plaintext: int) -> int:
        """Encrypt ``0 <= plaintext < n`` with fresh randomness; returns ``c < n**2``.

        Low level: no encoding.  Raises :class:`CryptoError` if ``plaintext`` is
        out of range.
        """
        if not 0 <= plaintext < self.n:
            raise CryptoError(
                f"plaintext of {plaintext.bit_length()} bits is not in [0, n) for a "
                f"{self.bits}-bit key"
            )
        return int(self._phe.raw_encrypt(plaintext))  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"PublicKey(bits={self.bits}, key_id={self.key_id.hex()[:16]}...)"


@dataclass(frozen=True, repr=False)
class PrivateKey:
    """A Paillier private key: the public key plus its primes ``p`` and ``q``.

    ``repr``/``str`` never show ``p``, ``q`` or ``lambda``.  Raises
    :class:`CryptoError` if ``p * q != n`` or ``p == q``.
    """

    public_key: PublicKey
    p: int
    q: int

    def __post_init__(self) -> None:
        if not isinstance(self.public_key, PublicKey):
            raise CryptoError(
                f"public_key must be a PublicKey, got {type(self.public_key).__name__}"
            )
        p, q = self.p, self.q
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (p, q)):
            raise CryptoError("private key primes must be ints")
        if p <= 1 or q <= 1 or p == q or p * q != self.public_key.n:
            # Deliberately no values in this message: they are secret.
            raise CryptoError(
                f"private key primes do not match public key {self.public_key!r}"
            )
        phe_key = _phe.PaillierPrivateKey(self.public_key._phe, p, q)
        object.__setattr__(self, "_phe", phe_key)
        # CRT constants as gmpy2 values: p, q, p**2, q**2, hp, hq, p**-1 mod q.
        object.__setattr__(
            self,
            "_crt",
            tuple(
                gmpy2.mpz(v)
                for v in (
                    phe_key.p,
                    phe_key.q,
                    phe_key.psquare,
                    phe_key.qsquare,
                    phe_key.hp,
                    phe_key.hq,
                    phe_key.p_inverse,
                )
            ),
        )

    @property
    def key_id(self) -> bytes:
        """The public key's id (32 bytes)."""
        return self.public_key.key_id

    def raw_decrypt(self, ciphertext: int) -> int:
        """Decrypt ``0 < ciphertext < n**2`` to the raw plaintext in ``[0, n)``.

        Raises :class:`CryptoError` if ``ciphertext`` is out of range.
        """
        if not 0 < ciphertext < self.public_key.nsquare:
            raise CryptoError(
                f"ciphertext of {ciphertext.bit_length()} bits is not in (0, n**2) "
                f"for a {self.public_key.bits}-bit key"
            )
        return int(self._phe.raw_decrypt(ciphertext))  # type: ignore[attr-defined]

    def raw_decrypt_many(
        self, ciphertexts: Sequence[int], *, workers: int | None = None
    ) -> list[int]:
        """Decrypt many ciphertexts (CRT, ``workers`` threads); same results as
        :meth:`raw_decrypt`.

        ``workers`` defaults to :func:`os.cpu_count`.  Raises
        :class:`CryptoError` naming the first ciphertext not in ``(0, n**2)``.
        """
        nsquare = self.public_key.nsquare
        values = []
        for index, c in enumerate(ciphertexts):
            if isinstance(c, bool) or not 0 < c < nsquare:
                raise CryptoError(
                    f"ciphertext {index} is not in (0, n**2) for a "
                    f"{self.public_key.bits}-bit key"
                )
            values.append(gmpy2.mpz(c))
        if workers is None:
            workers = os.cpu_count() or 1
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise CryptoError(f"workers must be an int >= 1, got {workers!r}")
        chunks = max(1, min(workers, len(values) // 4))
        if chunks == 1:
            return self._crt_decrypt(values)
        size = -(-len(values) // chunks)
        parts = [values[i : i + size] for i in range(0, len(values), size)]
        with ThreadPoolExecutor(max_workers=len(parts)) as pool:
            return [m for part in pool.map(self._crt_decrypt, parts) for m in part]

    def _crt_decrypt(self, values: list[object]) -> list[int]:
        p, q, psq, qsq, hp, hq, p_inv = self._crt  # type: ignore[attr-defined]
        # powmod_base_list releases the GIL: threads run these in parallel.
        mod_p = gmpy2.powmod_base_list(values, p - 1, psq)
        mod_q = gmpy2.powmod_base_list(values, q - 1, qsq)
        out = []
        for up, uq in zip(mod_p, mod_q, strict=True):
            mp = (up - 1) // p * hp % p
            mq = (uq - 1) // q * hq % q
            out.append(int(mp + (mq - mp) * p_inv % q * p))
        return out

    def __repr__(self) -> str:
        bits, short = self.public_key.bits, self.key_id.hex()[:16]
        return f"PrivateKey(bits={bits}, key_id={short}...)"

    __str__ = __repr__


def generate_keypair(
    *, bits: int = 2048, insecure_ok: bool = False
) -> tuple[PublicKey, PrivateKey]:
    """Generate a Paillier key pair whose modulus ``n`` has exactly ``bits`` bits.

    Raises :class:`CryptoError` if ``bits`` is not an even int, is below
    ``MIN_SECURE_BITS`` (1024) without ``insecure_ok=True``, or below 128 at all.
    """
    if not isinstance(bits, int) or isinstance(bits, bool):
        raise CryptoError(f"bits must be an int, got {bits!r}")
    if bits % 2:
        raise CryptoError(f"bits must be even (n = p * q of bits/2 each), got {bits}")
    if bits < _MIN_INSECURE_BITS:
        raise CryptoError(f"bits={bits} is below the minimum {_MIN_INSECURE_BITS}")
    if bits < MIN_SECURE_BITS and not insecure_ok:
        raise CryptoError(
            f"bits={bits} is below {MIN_SECURE_BITS}; pass insecure_ok=True "
            "(tests only)"
        )
    phe_pk, phe_sk = _phe.generate_paillier_keypair(n_length=bits)
    public = PublicKey(int(phe_pk.n))
    return public, PrivateKey(public, int(phe_sk.p), int(phe_sk.q))


def key_id(public_key: PublicKey) -> bytes:
    """Return ``sha256(n)`` (32 bytes), ``n`` as minimal-length big-endian bytes.

    This is the task's Paillier public-key hash on chain.  Raises
    :class:`CryptoError` if ``public_key`` is not a :class:`PublicKey`.
    """
    if not isinstance(public_key, PublicKey):
        raise CryptoError(f"expected a PublicKey, got {type(public_key).__name__}")
    return public_key.key_id


def _save(path: str | os.PathLike[str], payload: dict[str, Any], mode: int) -> None:
    target = Path(path)
    try:
        write_atomic(target, json.dumps(payload, indent=2) + "\n", mode=mode)
    except OSError as exc:
        raise CryptoError(f"cannot write key file {str(target)!r}: {exc}") from exc


def _load(path: str | os.PathLike[str], kind: str) -> tuple[Path, dict[str, Any]]:
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CryptoError(f"cannot read key file {str(source)!r}: {exc}") from exc
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CryptoError(f"key file {str(source)!r} is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("kind") != kind:
        found = payload.get("kind") if isinstance(payload, dict) else type(payload)
        raise CryptoError(
            f"key file {str(source)!r} is not a {kind} key (kind={found!r})"
        )
    if payload.get("version") != _FILE_VERSION:
        raise CryptoError(
            f"key file {str(source)!r} has version {payload.get('version')!r}, "
            f"expected {_FILE_VERSION}"
        )
    return source, payload


def _read_int(source: Path, payload: dict[str, Any], field: str) -> int:
    raw = payload.get(field)
    if not isinstance(raw, str) or not raw.startswith("0x"):
        raise CryptoError(
            f"key file {str(source)!r}: field {field!r} must be a 0x-hex string"
        )
    try:
        return int(raw, 16)
    except ValueError:
        raise CryptoError(
            f"key file {str(source)!r}: field {field!r} is not valid hex"
        ) from None


def save_public_key(path: str | os.PathLike[str], pk: PublicKey) -> None:
    """Write ``pk`` as JSON (``kind``, ``version``, ``n`` as 0x-hex, ``key_id``).

    The file is replaced atomically with mode 0644.  Raises :class:`CryptoError`
    if ``pk`` is not a :class:`PublicKey` or the file cannot be written.
    """
    if not isinstance(pk, PublicKey):
        raise CryptoError(f"expected a PublicKey, got {type(pk).__name__}")
    payload = {
        "kind": _PUBLIC_KIND,
        "version": _FILE_VERSION,
        "bits": pk.bits,
        "key_id": "0x" + pk.key_id.hex(),
        "n": hex(pk.n),
    }
    _save(path, payload, 0o644)


def load_public_key(path: str | os.PathLike[str]) -> PublicKey:
    """Read a public key written by :func:`save_public_key`.

    Raises :class:`CryptoError` naming the file if it cannot be read, is not a
    fedshare Paillier public key file, or its ``key_id`` does not match ``n``.
    """
    source, payload = _load(path, _PUBLIC_KIND)
    try:
        pk = PublicKey(_read_int(source, payload, "n"))
    except CryptoError as exc:
        raise CryptoError(f"key file {str(source)!r}: {exc}") from exc
    _check_id(source, payload, pk)
    return pk


def _check_id(source: Path, payload: dict[str, Any], pk: PublicKey) -> None:
    stored = payload.get("key_id")
    if stored is not None and stored != "0x" + pk.key_id.hex():
        raise CryptoError(
            f"key file {str(source)!r}: key_id {stored!r} does not match n "
            f"(0x{pk.key_id.hex()})"
        )


def save_private_key(path: str | os.PathLike[str], sk: PrivateKey) -> None:
    """Write ``sk`` as JSON (``n``, ``p``, ``q`` as 0x-hex) with file mode 0600.

    The file is created 0600 before any secret is written and replaced
    atomically.  Raises :class:`CryptoError` if ``sk`` is not a
    :class:`PrivateKey` or the file cannot be written.
    """
    if not isinstance(sk, PrivateKey):
        raise CryptoError(f"expected a PrivateKey, got {type(sk).__name__}")
    payload = {
        "kind": _PRIVATE_KIND,
        "version": _FILE_VERSION,
        "bits": sk.public_key.bits,
        "key_id": "0x" + sk.key_id.hex(),
        "n": hex(sk.public_key.n),
        "p": hex(sk.p),
        "q": hex(sk.q),
    }
    _save(path, payload, 0o600)


def load_private_key(path: str | os.PathLike[str]) -> PrivateKey:
    """Read a private key written by :func:`save_private_key`.

    Raises :class:`CryptoError` naming the file if it cannot be read, is not a
    fedshare Paillier private key file, or ``p * q != n``.
    """
    source, payload = _load(path, _PRIVATE_KIND)
    n, p, q = (_read_int(source, payload, f) for f in ("n", "p", "q"))
    try:
        pk = PublicKey(n)
        sk = PrivateKey(pk, p, q)
    except CryptoError as exc:
        raise CryptoError(f"key file {str(source)!r}: {exc}") from exc
    _check_id(source, payload, pk)
    return sk

