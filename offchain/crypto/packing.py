"""Fixed-point quantisation and slot packing of update vectors (pure integer maths).

A model update ``x`` with every ``|x_i| <= bound`` is mapped onto the integers
``0 .. 2**value_bits - 1`` by *offset encoding*::

    q_i = round((x_i + bound) / scale),   scale = 2 * bound / (2**value_bits - 1)

so ``-bound -> 0`` and ``+bound -> 2**value_bits - 1``.  Many ``q_i`` are then
laid side by side in one big integer (one Paillier plaintext), each in a *slot*
of ``slot_bits`` bits, value ``j`` of a plaintext at bits
``[j * slot_bits, (j + 1) * slot_bits)``.  Each slot has enough headroom bits
that adding up to ``max_total_weight`` (by default ``max_summands``) packed
plaintexts never carries from one slot into the next, so the integer sum of
packed plaintexts is the packing of the slot-wise sums.  The sum of ``k``
encodings is decoded by ``sum_i x_i ~= q_sum * scale - k * bound``.

*Weighted sums.*  A sum ``sum_i w_i x_i`` with positive integer weights is the
plain sum of ``W = sum_i w_i`` encodings (vector ``i`` counted ``w_i`` times), so
it needs headroom for ``W`` summands and decodes with ``k = W``:
``q_sum * scale - W * bound``.  ``PackingSpec.max_total_weight`` is that
headroom; the functions below that take ``n_summands`` mean this ``W`` (equal to
the number of vectors when every weight is 1).

*Signed values* never borrow across slots: the offset encoding makes every level
non-negative before packing, so slots only ever add non-negative integers.

Nothing here knows about encryption; :mod:`offchain.crypto.paillier` builds on it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from offchain.errors import PackingError

__all__ = [
    "PackingSpec",
    "quantize",
    "pack",
    "unpack",
    "dequantize_sum",
    "MAX_VALUE_BITS",
    "MAX_SUMMANDS_LIMIT",
    "MAX_TOTAL_WEIGHT_LIMIT",
    "MIN_KEY_BITS",
    "MAX_KEY_BITS",
    "MARGIN_BITS",
]

#: Largest supported ``value_bits``: keeps quantisation exact in float64.
MAX_VALUE_BITS = 32
#: Largest supported ``max_summands`` and ``max_total_weight`` (keeps blob header
#: fields in 32 bits and every slot sum, at most 52 bits, exact in float64).
MAX_SUMMANDS_LIMIT = 2**20
#: Largest supported ``max_total_weight`` (same reasons as ``MAX_SUMMANDS_LIMIT``).
MAX_TOTAL_WEIGHT_LIMIT = MAX_SUMMANDS_LIMIT
#: Smallest / largest Paillier modulus size a spec may describe.
MIN_KEY_BITS = 128
MAX_KEY_BITS = 16384
#: Bits of a ``key_bits``-bit modulus left unused by the slots, on top of the top
#: bit: any integer below ``2**(key_bits - 1)`` is below ``n``, and one more bit
#: is kept back as a safety margin.
MARGIN_BITS = 1

_FLOAT_EPS = float(np.finfo(np.float64).eps)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(
        value, (bool, np.bool_)
    )


@dataclass(frozen=True)
class PackingSpec:
    """How update vectors are quantised and packed into Paillier plaintexts.

    ``bound`` is the clipping bound of every coordinate (``|x_i| <= bound``),
    ``value_bits`` the width of one quantised value, ``max_summands`` the most
    vectors that may ever be added together, ``key_bits`` the bit length of the
    Paillier modulus ``n`` the plaintexts must stay below.  ``max_total_weight``
    is the largest sum of integer weights ``sum_i w_i`` a weighted sum
    ``sum_i w_i x_i`` may have; ``None`` (the default) means ``max_summands``
    (every weight 1, the unweighted layout), and it may not be smaller than
    ``max_summands``.  The slots get headroom for ``max_total_weight``.

    Raises :class:`PackingError` when a field is out of range or the layout does
    not fit a single slot into the key.  Both 2048- and 3072-bit keys (and any
    size in ``[MIN_KEY_BITS, MAX_KEY_BITS]``) are supported.
    """

    bound: float
    value_bits: int = 16
    max_summands: int = 64
    key_bits: int = 2048
    max_total_weight: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.bound, (bool, np.bool_)) or not isinstance(
            self.bound, (int, float, np.integer, np.floating)
        ):
            raise PackingError(f"bound must be a number, got {self.bound!r}")
        bound = float(self.bound)
        if not math.isfinite(bound) or bound <= 0.0:
            raise PackingError(f"bound must be finite and > 0, got {self.bound!r}")
        object.__setattr__(self, "bound", bound)
        for name, low, high in (
            ("value_bits", 1, MAX_VALUE_BITS),
            ("max_summands", 1, MAX_SUMMANDS_LIMIT),
            ("key_bits", MIN_KEY_BITS, MAX_KEY_BITS),
        ):
            value = getattr(self, name)
            if not _is_int(value):
                raise PackingError(f"{name} must be an int, got {value!r}")
            if not low <= value <= high:
                raise PackingError(f"{name} must be in [{low}, {high}], got {value}")
            object.__setattr__(self, name, int(value))
        weight = self.max_total_weight
        if weight is None:
            weight = self.max_summands
        if not _is_int(weight):
            raise PackingError(f"max_total_weight must be an int, got {weight!r}")
        if not self.max_summands <= weight <= MAX_TOTAL_WEIGHT_LIMIT:
            raise PackingError(
                f"max_total_weight must be in [max_summands={self.max_summands}, "
                f"{MAX_TOTAL_WEIGHT_LIMIT}], got {weight}: an unweighted sum of "
                f"{self.max_summands} vectors already has total weight "
                f"{self.max_summands}"
            )
        object.__setattr__(self, "max_total_weight", int(weight))
        if self.slots_per_plaintext < 1:
            weights = (
                ""
                if self.max_total_weight == self.max_summands
                else f", max_total_weight={self.max_total_weight}"
            )
            raise PackingError(
                f"a {self.slot_bits}-bit slot (value_bits={self.value_bits}, "
                f"max_summands={self.max_summands}{weights}) does not fit below a "
                f"{self.key_bits}-bit modulus"
            )

    @property
    def max_level(self) -> int:
        """Largest quantised value, ``2**value_bits - 1`` (encodes ``+bound``)."""
        return (1 << self.value_bits) - 1

    @property
    def scale(self) -> float:
        """Quantisation step: the float value of one integer level.

        ``[-bound, bound]`` maps onto ``0 .. 2**value_bits - 1`` as
        ``q = round((x + bound) / scale)``.
        """
        return 2.0 * self.bound / self.max_level

    @property
    def slot_bits(self) -> int:
        """Bits per slot: ``value_bits`` plus the headroom for ``max_total_weight``.

        The smallest width with ``max_total_weight * (2**value_bits - 1) <
        2**slot_bits``, so a slot-wise (weighted) sum of total weight up to
        ``max_total_weight`` (by default ``max_summands``) never carries into the
        next slot; at most ``value_bits + ceil(log2(max_total_weight))``.
        """
        return (self._weight_limit * self.max_level).bit_length()

    @property
    def _weight_limit(self) -> int:
        # Always an int after __post_init__; typed for the checker.
        return int(self.max_total_weight)  # type: ignore[arg-type]

    @property
    def headroom_bits(self) -> int:
        """``slot_bits - value_bits``: bits reserved for carries of the sum."""
        return self.slot_bits - self.value_bits

    @property
    def usable_bits(self) -> int:
        """Bits of a plaintext the slots may occupy: ``key_bits - 1 - MARGIN_BITS``.

        Every integer below ``2**usable_bits`` is strictly below any modulus of
        exactly ``key_bits`` bits, with ``MARGIN_BITS`` bits to spare.
        """
        return self.key_bits - 1 - MARGIN_BITS

    @property
    def slots_per_plaintext(self) -> int:
        """How many values one Paillier plaintext carries."""
        return self.usable_bits // self.slot_bits

    @property
    def quantisation_error(self) -> float:
        """Largest absolute error of one value after quantise/dequantise.

        Half a step (round-to-nearest) plus ``16 * eps * bound`` of allowance for
        float64 round-off.  For a sum of ``k`` vectors, each decoded coordinate is
        within ``k * quantisation_error`` of the exact sum of the originals; for
        a weighted sum, within ``sum_i w_i * quantisation_error``.
        """
        return 0.5 * self.scale + 16.0 * _FLOAT_EPS * self.bound

    def n_plaintexts(self, n_values: int) -> int:
        """Number of plaintexts needed for ``n_values`` values."""
        return -(-n_values // self.slots_per_plaintext)


def _check_summands(n_summands: Any, spec: PackingSpec) -> int:
    if not _is_int(n_summands):
        raise PackingError(f"n_summands must be an int, got {n_summands!r}")
    limit = spec._weight_limit
    if not 1 <= n_summands <= limit:
        name = "max_summands" if limit == spec.max_summands else "max_total_weight"
        raise PackingError(
            f"n_summands={n_summands} is outside [1, {name}={limit}]; sums of "
            "more vectors would carry between slots"
        )
    return int(n_summands)


def quantize(vec: Any, spec: PackingSpec) -> np.ndarray:
    """Quantise a float vector to ``uint64`` levels ``0 .. 2**value_bits - 1``.

    Raises :class:`PackingError` if ``vec`` is not a non-empty 1-D numeric array,
    contains NaN or Inf (saying how many and the first index), or has any
    ``|x_i| > spec.bound`` (naming the first such index, its value and the
    bound).  Values are never wrapped or clipped.
    """
    try:
        arr = np.asarray(vec, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PackingError(f"cannot read vector as float64: {exc}") from exc
    if arr.ndim != 1:
        raise PackingError(f"vector must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise PackingError("vector is empty")
    bad = ~np.isfinite(arr)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise PackingError(
            f"vector has {int(bad.sum())} non-finite value(s) (NaN/Inf); first at "
            f"index {first}: {float(arr[first])!r}"
        )
    over = np.abs(arr) > spec.bound
    if over.any():
        first = int(np.flatnonzero(over)[0])
        raise PackingError(
            f"value {float(arr[first])!r} at index {first} exceeds bound "
            f"{spec.bound!r} ({int(over.sum())} value(s) out of bounds); clip "
            "before packing"
        )
    levels = np.rint((arr + spec.bound) / spec.scale)
    # Inputs are in bounds, so this only absorbs float round-off at the ends.
    np.clip(levels, 0.0, float(spec.max_level), out=levels)
    return levels.astype(np.uint64)


def _as_levels(q: Any, spec: PackingSpec) -> list[int]:
    arr = np.asarray(q)
    if arr.ndim != 1:
        raise PackingError(f"quantised vector must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise PackingError("quantised vector is empty")
    if arr.dtype == object:
        if not all(_is_int(v) for v in arr):
            raise PackingError("quantised vector must hold integers")
        values = [int(v) for v in arr]
    elif np.issubdtype(arr.dtype, np.integer):
        values = arr.tolist()
    else:
        raise PackingError(f"quantised vector must hold integers, got {arr.dtype}")
    low, high = min(values), max(values)
    if low < 0 or high > spec.max_level:
        first = next(i for i, v in enumerate(values) if not 0 <= v <= spec.max_level)
        raise PackingError(
            f"quantised value {values[first]} at index {first} is outside "
            f"[0, {spec.max_level}] for value_bits={spec.value_bits}"
        )
    return values


def pack(q: Any, spec: PackingSpec) -> list[int]:
    """Pack quantised levels into ``spec.n_plaintexts(len(q))`` integers.

    Value ``i`` goes to plaintext ``i // slots_per_plaintext``, slot
    ``i % slots_per_plaintext`` (slot 0 least significant); unused slots of the
    last plaintext are zero.  Raises :class:`PackingError` if ``q`` is not a
    non-empty 1-D integer array with every value in ``0 .. 2**value_bits - 1``.
    """
    values = _as_levels(q, spec)
    slots, bits = spec.slots_per_plaintext, spec.slot_bits
    packed: list[int] = []
    for start in range(0, len(values), slots):
        acc = 0
        for v in reversed(values[start : start + slots]):
            acc = (acc << bits) | v
        packed.append(acc)
    return packed


def unpack(
    packed: Sequence[int], n_values: int, n_summands: int, spec: PackingSpec
) -> np.ndarray:
    """Split (summed) packed plaintexts back into ``n_values`` slot sums (int64).

    ``n_summands`` is how many packed vectors were added to make ``packed``
    (for a weighted sum: the total weight ``sum_i w_i``).  Raises
    :class:`PackingError` if ``n_summands`` is not in
    ``[1, spec.max_total_weight]``, ``n_values < 1``, the number of plaintexts does
    not match ``n_values``, a plaintext is negative or wider than the slots, a
    slot exceeds ``n_summands * (2**value_bits - 1)``, or an unused slot is not
    zero (the last three mean corruption or the wrong key).
    """
    n_summands = _check_summands(n_summands, spec)
    if not _is_int(n_values) or n_values < 1:
        raise PackingError(f"n_values must be an int >= 1, got {n_values!r}")
    expected = spec.n_plaintexts(n_values)
    if len(packed) != expected:
        raise PackingError(
            f"{len(packed)} plaintext(s) given, but {n_values} values take {expected}"
        )
    slots, bits = spec.slots_per_plaintext, spec.slot_bits
    mask = (1 << bits) - 1
    limit = n_summands * spec.max_level
    top = 1 << (slots * bits)
    out = np.empty(expected * slots, dtype=np.int64)
    pos = 0
    for index, value in enumerate(packed):
        if not _is_int(value):
            raise PackingError(f"plaintext {index} is not an int: {value!r}")
        value = int(value)
        if not 0 <= value < top:
            raise PackingError(
                f"plaintext {index} has {value.bit_length()} bits, more than the "
                f"{slots * bits} bits of {slots} slots"
            )
        for _ in range(slots):
            out[pos] = value & mask
            value >>= bits
            pos += 1
    result = out[:n_values]
    if int(result.max()) > limit:
        first = int(np.flatnonzero(result > limit)[0])
        raise PackingError(
            f"slot sum {int(result[first])} at index {first} exceeds "
            f"{n_summands} x {spec.max_level} = {limit}"
        )
    if n_values < out.size and out[n_values:].any():
        raise PackingError(
            f"unused slots after value {n_values} are not zero: corrupted data or "
            "wrong key"
        )
    return result.copy()


def dequantize_sum(q_sum: Any, n_summands: int, spec: PackingSpec) -> np.ndarray:
    """Decode slot sums of ``n_summands`` quantised vectors into a float64 sum.

    Returns ``q_sum * scale - n_summands * bound``, i.e. removes the offset each
    summand carried (for a weighted sum pass the total weight ``sum_i w_i``).
    Raises :class:`PackingError` if ``q_sum`` is not a 1-D integer array or
    ``n_summands`` is not in ``[1, spec.max_total_weight]``.
    """
    n_summands = _check_summands(n_summands, spec)
    arr = np.asarray(q_sum)
    if arr.ndim != 1:
        raise PackingError(f"q_sum must be 1-D, got shape {arr.shape}")
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.integer):
        if arr.size and not all(_is_int(v) for v in arr.tolist()):
            raise PackingError(f"q_sum must hold integers, got {arr.dtype}")
    return arr.astype(np.float64) * spec.scale - n_summands * spec.bound
