"""Packed Paillier encryption of update vectors, homomorphic sums, and blobs.

A device calls :func:`encrypt_vector`, the aggregator (holding only the public
key) calls :func:`aggregate`, and the requester calls :func:`decrypt_sum` on the
aggregate.

Speed: :func:`encrypt_vector` takes its obfuscators from a
:class:`~offchain.crypto.fast.RandomnessPool` (by default the process-wide pool
of the key, :func:`~offchain.crypto.fast.default_pool`), so with a filled pool
encrypting is one multiplication per ciphertext; every ciphertext gets its own
fresh obfuscator.  :func:`rerandomize` multiplies every ciphertext of a vector
by fresh ones.  :func:`decrypt_sum` decrypts with CRT on all cores.  Values
use fixed-point quantisation (:mod:`offchain.crypto.packing`), never ``phe``'s
floating ``EncodedNumber`` exponents.

Weighted sums: :func:`aggregate` with integer ``weights`` raises each part's
ciphertexts to its weight, so the result decrypts to ``sum_i w_i x_i``; its
``total_weight`` (``sum_i w_i``) must stay within ``spec.max_total_weight``.

:class:`EncryptedVector` travels as a compact binary blob of fixed-width
big-endian integers (:meth:`EncryptedVector.to_bytes`), laid out as::

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

That is version 1, written whenever ``spec.max_total_weight ==
spec.max_summands`` and the vector is an unweighted sum.  Otherwise version 2
is written: the same fields (with version 2) followed by::

    66      4     spec.max_total_weight
    70      4     total_weight (sum of the weights of the summands)
    74      ...   count ciphertexts as above
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from gmpy2 import mpz as _mpz
from gmpy2 import powmod as _powmod

from offchain.crypto.fast import (
    RandomnessPool,
    default_pool,
    encrypt_raw,
    rerandomize_raw,
)
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

__all__ = [
    "EncryptedVector",
    "encrypt_vector",
    "aggregate",
    "decrypt_sum",
    "rerandomize",
    "BLOB_MAGIC",
    "BLOB_VERSION",
    "BLOB_VERSIONS",
]

BLOB_MAGIC = b"FSPV"
#: Version of unweighted blobs (the common case; see the module docstring).
BLOB_VERSION = 1
#: Versions :meth:`EncryptedVector.from_bytes` reads.
BLOB_VERSIONS = (1, 2)
_HEADER = struct.Struct(">4sB32sdBIIIII")
_WEIGHTS = struct.Struct(">II")
_U32_MAX = 2**32 - 1
_KEY_ID_BYTES = 32


def _short(key_id: bytes) -> str:
    return key_id.hex()[:16] + "..."


def _ciphertext_bytes(key_bits: int) -> int:
    return (2 * key_bits + 7) // 8


@dataclass(frozen=True, repr=False)
class EncryptedVector:
    """Packed Paillier ciphertexts of the (weighted) sum of ``n_summands`` vectors.

    ``key_id`` names the public key, ``spec`` the packing, ``n_values`` the
    vector length.  ``total_weight`` is the sum of the integer weights of the
    summands for a weighted sum; ``None`` (the default) means every weight is 1
    and it is normalised to ``None`` when it equals ``n_summands``.
    :attr:`weight` gives the effective value either way.  Raises
    :class:`BlobFormatError` if the fields are inconsistent: wrong ``key_id``
    length, ``n_summands`` outside ``[1, spec.max_summands]``,
    ``total_weight`` outside ``[n_summands, spec.max_total_weight]``, a
    ciphertext count that does not match ``n_values``, or a ciphertext that is
    not a positive int of at most ``2 * key_bits`` bits.
    """

    key_id: bytes
    spec: PackingSpec
    n_values: int
    n_summands: int
    ciphertexts: tuple[int, ...]
    total_weight: int | None = None

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
        weight = self.total_weight
        if weight is not None:
            if not isinstance(weight, int) or isinstance(weight, bool):
                raise BlobFormatError(f"total_weight must be an int, got {weight!r}")
            high = self.spec.max_total_weight
            if not self.n_summands <= weight <= high:  # type: ignore[operator]
                raise BlobFormatError(
                    f"total_weight={weight} is outside [n_summands="
                    f"{self.n_summands}, max_total_weight={high}]"
                )
            if weight == self.n_summands:
                object.__setattr__(self, "total_weight", None)
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

    @property
    def weight(self) -> int:
        """Sum of the summands' weights: ``total_weight``, or ``n_summands``."""
        return self.n_summands if self.total_weight is None else self.total_weight

    def to_bytes(self) -> bytes:
        """Serialise to the binary blob format described in the module docstring.

        Version 1 for unweighted sums under a spec without extra weight
        headroom, version 2 otherwise.
        """
        weighted = (
            self.total_weight is not None
            or self.spec.max_total_weight != self.spec.max_summands
        )
        header = _HEADER.pack(
            BLOB_MAGIC,
            2 if weighted else BLOB_VERSION,
            self.key_id,
            self.spec.bound,
            self.spec.value_bits,
            self.spec.max_summands,
            self.spec.key_bits,
            self.n_values,
            self.n_summands,
            len(self.ciphertexts),
        )
        if weighted:
            header += _WEIGHTS.pack(self.spec.max_total_weight, self.weight)
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
        if version not in BLOB_VERSIONS:
            raise BlobFormatError(
                f"unsupported blob version {version}, expected one of "
                f"{BLOB_VERSIONS}"
            )
        header_size = _HEADER.size
        max_total_weight = total_weight = None
        if version == 2:
            if len(view) < header_size + _WEIGHTS.size:
                raise BlobFormatError(
                    f"blob truncated: {len(view)} bytes, a version 2 header alone "
                    f"is {header_size + _WEIGHTS.size}"
                )
            max_total_weight, total_weight = _WEIGHTS.unpack_from(view, header_size)
            header_size += _WEIGHTS.size
        try:
            spec = PackingSpec(
                bound=bound,
                value_bits=value_bits,
                max_summands=max_summands,
                key_bits=key_bits,
                max_total_weight=max_total_weight,
            )
        except PackingError as exc:
            raise BlobFormatError(f"blob has an invalid packing spec: {exc}") from exc
        width = _ciphertext_bytes(key_bits)
        expected_len = header_size + count * width
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
        body = view[header_size:]
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
            total_weight=total_weight,
        )

    def __repr__(self) -> str:
        weight = "" if self.total_weight is None else f", total_weight={self.weight}"
        return (
            f"EncryptedVector(key_id={_short(self.key_id)}, spec={self.spec!r}, "
            f"n_values={self.n_values}, n_summands={self.n_summands}{weight}, "
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


def _require_pool(pool: Any, public_key: PublicKey) -> RandomnessPool:
    if pool is None:
        return default_pool(public_key)
    if not isinstance(pool, RandomnessPool):
        raise CryptoError(f"pool must be a RandomnessPool, got {type(pool).__name__}")
    if pool.public_key != public_key:
        raise CryptoError(
            f"the pool's obfuscators are for key {_short(pool.public_key.key_id)}, "
            f"not {_short(public_key.key_id)}"
        )
    return pool


def encrypt_vector(
    public_key: PublicKey,
    vec: Any,
    spec: PackingSpec,
    *,
    pool: RandomnessPool | None = None,
) -> EncryptedVector:
    """Quantise, pack and encrypt ``vec`` under ``public_key`` (one summand).

    Each plaintext gets its own fresh obfuscator from ``pool`` (default: the
    key's :func:`~offchain.crypto.fast.default_pool`; a filled pool makes this
    one multiplication per ciphertext, an empty one computes them now on all
    cores).  Raises :class:`CryptoError` if ``spec.key_bits`` differs from the
    key's bit length or ``pool`` belongs to another key, and
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
    pool = _require_pool(pool, public_key)
    levels = quantize(vec, spec)
    plaintexts = pack(levels, spec)
    ciphertexts = encrypt_raw(public_key, plaintexts, pool.take(len(plaintexts)))
    return EncryptedVector(
        key_id=public_key.key_id,
        spec=spec,
        n_values=int(levels.size),
        n_summands=1,
        ciphertexts=tuple(ciphertexts),
    )


def rerandomize(
    public_key: PublicKey,
    enc: EncryptedVector,
    *,
    pool: RandomnessPool | None = None,
) -> EncryptedVector:
    """Multiply every ciphertext of ``enc`` by a fresh obfuscator.

    The result decrypts to the same sum but shares no ciphertext with ``enc``
    (nobody can tell which input it came from without the private key).
    Raises :class:`CryptoError` if ``enc`` is not an :class:`EncryptedVector`
    or the pool belongs to another key, and :class:`KeyMismatchError` if
    ``enc`` is under another key.
    """
    public_key = _require_public(public_key)
    if not isinstance(enc, EncryptedVector):
        raise CryptoError(f"expected an EncryptedVector, got {type(enc).__name__}")
    if enc.key_id != public_key.key_id:
        raise KeyMismatchError(
            f"encrypted vector is for key {_short(enc.key_id)}, not "
            f"{_short(public_key.key_id)}"
        )
    pool = _require_pool(pool, public_key)
    fresh = pool.take(len(enc.ciphertexts))
    cts = tuple(rerandomize_raw(public_key, enc.ciphertexts, fresh))
    return EncryptedVector(
        key_id=enc.key_id,
        spec=enc.spec,
        n_values=enc.n_values,
        n_summands=enc.n_summands,
        ciphertexts=cts,
        total_weight=enc.total_weight,
    )


def _check_weights(weights: Any, count: int) -> list[int]:
    weights = list(weights)
    if len(weights) != count:
        raise AggregationError(f"{len(weights)} weights for {count} parts")
    for index, w in enumerate(weights):
        if not isinstance(w, (int, np.integer)) or isinstance(w, (bool, np.bool_)):
            raise AggregationError(f"weight {index} is not an int: {w!r}")
        if w < 1:
            raise AggregationError(
                f"weight {index} is {int(w)}; weights must be integers >= 1"
            )
    return [int(w) for w in weights]


def aggregate(
    public_key: PublicKey,
    parts: Sequence[EncryptedVector],
    weights: Sequence[int] | None = None,
) -> EncryptedVector:
    """Homomorphically add ``parts``: the ciphertext-wise product mod ``n**2``.

    With ``weights`` (one integer ``>= 1`` per part) part ``i``'s ciphertexts
    are raised to ``w_i`` first, so the result decrypts to ``sum_i w_i x_i``;
    its ``total_weight`` is ``sum_i w_i * parts[i].weight``.  The result is a
    deterministic function of the parts (anyone can recompute and check it).

    Raises :class:`AggregationError` if ``parts`` is empty, holds something
    other than :class:`EncryptedVector`, a part's key id is not the public
    key's, the parts' specs or ``n_values`` differ, a ciphertext is not below
    ``n**2``, the total ``n_summands`` exceeds ``spec.max_summands``, a weight
    is not an int ``>= 1``, or the total weight exceeds
    ``spec.max_total_weight`` (the slots' headroom).
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
    factors = [1] * len(parts) if weights is None else _check_weights(
        weights, len(parts)
    )
    total_weight = sum(w * part.weight for w, part in zip(factors, parts, strict=True))
    limit = spec.max_total_weight
    if total_weight > limit:  # type: ignore[operator]
        shown = ", ".join(str(w) for w in factors[:8])
        more = ", ..." if len(factors) > 8 else ""
        raise AggregationError(
            f"weights [{shown}{more}] give a total weight of {total_weight} "
            f"over {total} summands, more than max_total_weight={limit}: slots of "
            f"{spec.slot_bits} bits hold sums up to {limit} x {spec.max_level} and "
            "would carry into each other; raise PackingSpec.max_total_weight"
        )
    nsquare = public_key.nsquare
    for index, part in enumerate(parts):
        for j, c in enumerate(part.ciphertexts):
            if c >= nsquare:
                raise AggregationError(
                    f"part {index}: ciphertext {j} is not below n**2"
                )
    modulus = _mpz(nsquare)
    columns = [part.ciphertexts for part in parts]
    if any(w != 1 for w in factors):
        columns = [
            cts if w == 1 else tuple(_powmod(c, w, modulus) for c in cts)
            for w, cts in zip(factors, columns, strict=True)
        ]
    sums = []
    for column in zip(*columns, strict=True):
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
        total_weight=total_weight,
    )


def decrypt_sum(
    private_key: PrivateKey, enc: EncryptedVector, *, workers: int | None = None
) -> np.ndarray:
    """Decrypt ``enc`` and return the float64 (weighted) sum of its vectors.

    Each coordinate is within ``enc.weight * spec.quantisation_error`` of the
    exact sum ``sum_i w_i x_i`` (``enc.n_summands * quantisation_error`` for an
    unweighted sum).  Decrypts with CRT in ``workers`` threads (default
    :func:`os.cpu_count`).  Raises :class:`KeyMismatchError` if ``enc.key_id``
    is not the private key's, :class:`BlobFormatError` if ``spec.key_bits`` is
    not the key's size or a ciphertext is not below ``n**2``, and
    :class:`PackingError` if the decrypted slots are inconsistent (corruption).
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
    plaintexts = private_key.raw_decrypt_many(enc.ciphertexts, workers=workers)
    slot_sums = unpack(plaintexts, enc.n_values, enc.weight, enc.spec)
    return dequantize_sum(slot_sums, enc.weight, enc.spec)
