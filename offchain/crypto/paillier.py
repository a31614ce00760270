"""Packed Paillier encryption of update vectors, homomorphic sums, and blobs.

A device calls :func:`encrypt_vector`, the aggregator (holding only the public
key) calls :func:`aggregate`, and the requester calls :func:`decrypt_sum` on the
aggregate.  :class:`EncryptedVector` travels between them as a compact binary
blob (:meth:`EncryptedVector.to_bytes`), laid out big-endian as::

    offset  size  field
    0       4     magic b"FSPV"
    4       1     version (1)
    5       32    key_id (sha256 of n, see keys.key_id)
    37      8     spec.bound (IEEE-754 float64)
    45      1     spec.value_bits
    46      4     spec.max_summands
    50      4     spec.key_bits
    54      4     n_values
    58      4     n_summands
    62      4     count (number of ciphertexts)
    66      ...   count ciphertexts, each (2 * key_bits + 7) // 8 bytes,
                  the byte length of n**2
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from offchain.crypto.keys import PrivateKey, PublicKey
from offchain.crypto.packing import (
    PackingSpec,
    dequantize_sum,
    pack,
    quantize,
    unpack,
)
from offchain.errors import (
    AggregationError,
    BlobFormatError,
    CryptoError,
    KeyMismatchError,
    PackingError,
)

try:  # gmpy2 is a declared dependency; plain ints are only a slow fallback.
    from gmpy2 import mpz as _mpz
except ImportError:  # pragma: no cover
    _mpz = int

__all__ = [
    "EncryptedVector",
    "encrypt_vector",
    "aggregate",
    "decrypt_sum",
    "BLOB_MAGIC",
    "BLOB_VERSION",
]

BLOB_MAGIC = b"FSPV"
BLOB_VERSION = 1
_HEADER = struct.Struct(">4sB32sdBIIIII")
_U32_MAX = 2**32 - 1
_KEY_ID_BYTES = 32


def _short(key_id: bytes) -> str:
    return key_id.hex()[:16] + "..."


def _ciphertext_bytes(key_bits: int) -> int:
    return (2 * key_bits + 7) // 8


@dataclass(frozen=True, repr=False)
class EncryptedVector:
    """Packed Paillier ciphertexts of the sum of ``n_summands`` vectors.

    ``key_id`` names the public key, ``spec`` the packing, ``n_values`` the
    vector length.  Raises :class:`BlobFormatError` if the fields are
    inconsistent: wrong ``key_id`` length, ``n_summands`` outside
    ``[1, spec.max_summands]``, a ciphertext count that does not match
    ``n_values``, or a ciphertext that is not a positive int of at most
    ``2 * key_bits`` bits.
    """

    key_id: bytes
    spec: PackingSpec
    n_values: int
    n_summands: int
    ciphertexts: tuple[int, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.key_id, (bytes, bytearray)):
            raise BlobFormatError(f"key_id must be bytes, got {self.key_id!r}")
        if len(self.key_id) != _KEY_ID_BYTES:
            raise BlobFormatError(
                f"key_id must be {_KEY_ID_BYTES} bytes, got {len(self.key_id)}"
            )
        object.__setattr__(self, "key_id", bytes(self.key_id))
        if not isinstance(self.spec, PackingSpec):
            raise BlobFormatError(f"spec must be a PackingSpec, got {self.spec!r}")
        for name, low, high in (
            ("n_values", 1, _U32_MAX),
            ("n_summands", 1, self.spec.max_summands),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise BlobFormatError(f"{name} must be an int, got {value!r}")
            if not low <= value <= high:
                raise BlobFormatError(f"{name}={value} is outside [{low}, {high}]")
        cts = tuple(self.ciphertexts)
        expected = self.spec.n_plaintexts(self.n_values)
        if len(cts) != expected:
            raise BlobFormatError(
                f"{len(cts)} ciphertext(s), but {self.n_values} values at "
                f"{self.spec.slots_per_plaintext} per plaintext take {expected}"
            )
        top = 1 << (2 * self.spec.key_bits)
        for index, c in enumerate(cts):
            if isinstance(c, bool) or not isinstance(c, int):
                try:
                    c = int(c)  # gmpy2.mpz and numpy ints
                except (TypeError, ValueError):
                    raise BlobFormatError(
                        f"ciphertext {index} is not an int: {type(c).__name__}"
                    ) from None
            if not 0 < c < top:
                raise BlobFormatError(
                    f"ciphertext {index} ({c.bit_length()} bits) is not in "
                    f"(0, 2**{2 * self.spec.key_bits})"
                )
        object.__setattr__(self, "ciphertexts", tuple(int(c) for c in cts))

    @property
    def ciphertext_bytes(self) -> int:
        """Width of one serialised ciphertext: byte length of ``n**2``."""
        return _ciphertext_bytes(self.spec.key_bits)

    def to_bytes(self) -> bytes:
        """Serialise to the binary blob format described in the module docstring."""
        header = _HEADER.pack(
            BLOB_MAGIC,
            BLOB_VERSION,
            self.key_id,
            self.spec.bound,
            self.spec.value_bits,
            self.spec.max_summands,
            self.spec.key_bits,
            self.n_values,
            self.n_summands,
            len(self.ciphertexts),
        )
        width = self.ciphertext_bytes
        return header + b"".join(c.to_bytes(width, "big") for c in self.ciphertexts)

    @classmethod
    def from_bytes(
        cls, data: bytes, *, expected_key_id: bytes | None = None
    ) -> EncryptedVector:
        """Parse a blob made by :meth:`to_bytes`.

        Raises :class:`BlobFormatError` for bad magic or version, a truncated
        header or body, trailing bytes, or inconsistent fields, and
        :class:`KeyMismatchError` when ``expected_key_id`` is given and differs
        from the blob's key id.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise BlobFormatError(f"blob must be bytes, got {type(data).__name__}")
        view = memoryview(data).cast("B")
        if len(view) < _HEADER.size:
            raise BlobFormatError(
                f"blob truncated: {len(view)} bytes, header alone is {_HEADER.size}"
            )
        (
            magic,
            version,
            blob_key_id,
            bound,
            value_bits,
            max_summands,
            key_bits,
            n_values,
            n_summands,
            count,
        ) = _HEADER.unpack_from(view)
        if magic != BLOB_MAGIC:
            raise BlobFormatError(f"bad magic {magic!r}, expected {BLOB_MAGIC!r}")
        if version != BLOB_VERSION:
            raise BlobFormatError(
                f"unsupported blob version {version}, expected {BLOB_VERSION}"
            )
        try:
            spec = PackingSpec(
                bound=bound,
                value_bits=value_bits,
                max_summands=max_summands,
                key_bits=key_bits,
            )
        except PackingError as exc:
            raise BlobFormatError(f"blob has an invalid packing spec: {exc}") from exc
        width = _ciphertext_bytes(key_bits)
        expected_len = _HEADER.size + count * width
        if len(view) < expected_len:
            raise BlobFormatError(
                f"blob truncated: {len(view)} bytes, {count} ciphertexts of {width} "
                f"bytes need {expected_len}"
            )
        if len(view) > expected_len:
            raise BlobFormatError(
                f"blob has {len(view) - expected_len} trailing byte(s) after "
                f"{count} ciphertexts ({expected_len} bytes expected)"
            )
        if expected_key_id is not None:
            _require_key_id(expected_key_id)
            if bytes(expected_key_id) != blob_key_id:
                raise KeyMismatchError(
                    f"blob is for key {_short(blob_key_id)}, expected key "
                    f"{_short(bytes(expected_key_id))}"
                )
        body = view[_HEADER.size :]
        cts = tuple(
            int.from_bytes(body[i * width : (i + 1) * width], "big")
            for i in range(count)
        )
        return cls(
            key_id=blob_key_id,
            spec=spec,
            n_values=n_values,
            n_summands=n_summands,
            ciphertexts=cts,
        )

    def __repr__(self) -> str:
        return (
            f"EncryptedVector(key_id={_short(self.key_id)}, spec={self.spec!r}, "
            f"n_values={self.n_values}, n_summands={self.n_summands}, "
            f"ciphertexts=<{len(self.ciphertexts)} x {self.ciphertext_bytes} B>)"
        )


def _require_key_id(value: Any) -> None:
    if not isinstance(value, (bytes, bytearray)) or len(value) != _KEY_ID_BYTES:
        raise CryptoError(
            f"expected_key_id must be {_KEY_ID_BYTES} bytes, got {value!r}"
        )


def _require_public(public_key: Any) -> PublicKey:
    if not isinstance(public_key, PublicKey):
        raise CryptoError(f"expected a PublicKey, got {type(public_key).__name__}")
    return public_key


def encrypt_vector(
    public_key: PublicKey, vec: Any, spec: PackingSpec
) -> EncryptedVector:
    """Quantise, pack and encrypt ``vec`` under ``public_key`` (one summand).

    Each plaintext gets fresh randomness.  Raises :class:`CryptoError` if
    ``spec.key_bits`` differs from the key's bit length, and
    :class:`PackingError` if ``vec`` is not a finite 1-D vector within
    ``spec.bound``.
    """
    public_key = _require_public(public_key)
    if not isinstance(spec, PackingSpec):
        raise CryptoError(f"spec must be a PackingSpec, got {type(spec).__name__}")
    if spec.key_bits != public_key.bits:
        raise CryptoError(
            f"spec.key_bits={spec.key_bits} but the public key has "
            f"{public_key.bits} bits"
        )
    levels = quantize(vec, spec)
    plaintexts = pack(levels, spec)
    return EncryptedVector(
        key_id=public_key.key_id,
        spec=spec,
        n_values=int(levels.size),
        n_summands=1,
        ciphertexts=tuple(public_key.raw_encrypt(m) for m in plaintexts),
    )


def aggregate(
    public_key: PublicKey, parts: Sequence[EncryptedVector]
) -> EncryptedVector:
    """Homomorphically add ``parts``: the ciphertext-wise product mod ``n**2``.

    Raises :class:`AggregationError` if ``parts`` is empty, holds something
    other than :class:`EncryptedVector`, a part's key id is not the public
    key's, the parts' specs or ``n_values`` differ, a ciphertext is not below
    ``n**2``, or the total ``n_summands`` exceeds ``spec.max_summands``.
    """
    public_key = _require_public(public_key)
    parts = list(parts)
    if not parts:
        raise AggregationError("nothing to aggregate: no encrypted vectors given")
    for index, part in enumerate(parts):
        if not isinstance(part, EncryptedVector):
            raise AggregationError(
                f"part {index} is a {type(part).__name__}, not an EncryptedVector"
            )
        if part.key_id != public_key.key_id:
            raise AggregationError(
                f"part {index} is encrypted under key {_short(part.key_id)}, not "
                f"the aggregation key {_short(public_key.key_id)}"
            )
    first = parts[0]
    spec = first.spec
    if spec.key_bits != public_key.bits:
        raise AggregationError(
            f"spec.key_bits={spec.key_bits} but the public key has "
            f"{public_key.bits} bits"
        )
    for index, part in enumerate(parts[1:], start=1):
        if part.spec != spec:
            raise AggregationError(
                f"part {index} has spec {part.spec!r}, part 0 has {spec!r}"
            )
        if part.n_values != first.n_values:
            raise AggregationError(
                f"part {index} has {part.n_values} values, part 0 {first.n_values}"
            )
    total = sum(part.n_summands for part in parts)
    if total > spec.max_summands:
        raise AggregationError(
            f"{len(parts)} parts carry {total} summands in all, more than "
            f"max_summands={spec.max_summands}"
        )
    nsquare = public_key.nsquare
    for index, part in enumerate(parts):
        for j, c in enumerate(part.ciphertexts):
            if c >= nsquare:
                raise AggregationError(
                    f"part {index}: ciphertext {j} is not below n**2"
                )
    modulus = _mpz(nsquare)
    sums = []
    for column in zip(*(part.ciphertexts for part in parts), strict=True):
        acc = _mpz(column[0])
        for c in column[1:]:
            acc = acc * c % modulus
        sums.append(int(acc))
    return EncryptedVector(
        key_id=public_key.key_id,
        spec=spec,
        n_values=first.n_values,
        n_summands=total,
        ciphertexts=tuple(sums),
    )


def decrypt_sum(private_key: PrivateKey, enc: EncryptedVector) -> np.ndarray:
    """Decrypt ``enc`` and return the float64 sum of its ``n_summands`` vectors.

    Each coordinate is within ``enc.n_summands * spec.quantisation_error`` of
    the exact sum.  Raises :class:`KeyMismatchError` if ``enc.key_id`` is not
    the private key's, :class:`BlobFormatError` if ``spec.key_bits`` is not the
    key's size or a ciphertext is not below ``n**2``, and :class:`PackingError`
    if the decrypted slots are inconsistent (corruption).
    """
    if not isinstance(private_key, PrivateKey):
        raise CryptoError(f"expected a PrivateKey, got {type(private_key).__name__}")
    if not isinstance(enc, EncryptedVector):
        raise CryptoError(f"expected an EncryptedVector, got {type(enc).__name__}")
    if enc.key_id != private_key.key_id:
        raise KeyMismatchError(
            f"encrypted vector is for key {_short(enc.key_id)}, this private key "
            f"is {_short(private_key.key_id)}"
        )
    if enc.spec.key_bits != private_key.public_key.bits:
        raise BlobFormatError(
            f"spec.key_bits={enc.spec.key_bits} but the key has "
            f"{private_key.public_key.bits} bits"
        )
    nsquare = private_key.public_key.nsquare
    for j, c in enumerate(enc.ciphertexts):
        if c >= nsquare:
            raise BlobFormatError(f"ciphertext {j} is not below n**2")
    plaintexts = [private_key.raw_decrypt(c) for c in enc.ciphertexts]
    slot_sums = unpack(plaintexts, enc.n_values, enc.n_summands, enc.spec)
    return dequantize_sum(slot_sums, enc.n_summands, enc.spec)
