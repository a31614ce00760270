"""Computing Paillier obfuscators: stand-alone (stdlib and gmpy2 only).

:mod:`offchain.crypto.fast` imports the functions; run as a script
(``python -P _obfuscators.py``) the module is a worker process that answers
requests on stdin with obfuscators on stdout, so pools can use every core
without the GIL and without importing fedshare (or re-running anybody's
``__main__``) in the worker.  Protocol, big-endian::

    request:  b"FSOB", u32 len(n bytes), u8 mode (0 short, 1 full),
              u16 exponent_bits, u32 count, then n
    reply:    u32 count, then count values of byte-length(n**2) bytes each;
              or u32 0xFFFFFFFF, u32 length, UTF-8 error message

The worker exits when stdin closes.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import struct
import sys
import threading
from typing import Any, BinaryIO

import gmpy2
from gmpy2 import mpz

BASE_DOMAIN = b"fedshare/paillier/djn-base/v1"
#: Comb window: 2**8 precomputed powers per 8 exponent bits.
COMB_WINDOW = 8
REQUEST = struct.Struct(">4sIBHI")
REQUEST_MAGIC = b"FSOB"
REPLY = struct.Struct(">I")
ERROR = 0xFFFFFFFF
MODE_CODES = {"short": 0, "full": 1}


def derive_x(n: int) -> int:
    """``x`` of the short-exponent base: SHAKE-256(domain, n, counter) mod n."""
    width = (n.bit_length() + 7) // 8
    n_bytes = n.to_bytes(width, "big")
    for counter in range(1 << 16):
        stream = hashlib.shake_256(
            BASE_DOMAIN + width.to_bytes(4, "big") + n_bytes
            + counter.to_bytes(4, "big")
        ).digest(width + 16)  # 128 extra bits: x mod n is statistically uniform
        x = int.from_bytes(stream, "big") % n
        if x > 1 and math.gcd(x, n) == 1:
            return x
    raise ValueError("cannot derive the short-exponent base: n is degenerate")


_BASES: dict[int, tuple[int, int]] = {}
_TABLES: dict[tuple[int, int], list[list[Any]]] = {}
_LOCK = threading.Lock()


def base_pair(n: int) -> tuple[int, int]:
    """``(h, hs)``: ``h = -x**2 mod n``, ``hs = h**n mod n**2``; cached."""
    with _LOCK:
        cached = _BASES.get(n)
    if cached is not None:
        return cached
    x = derive_x(n)
    h = (-x * x) % n
    hs = int(gmpy2.powmod(h, n, mpz(n) * n))
    with _LOCK:
        if len(_BASES) > 64:
            _BASES.clear()
        _BASES[n] = (h, hs)
    return h, hs


def comb_table(n: int, exponent_bits: int) -> list[list[Any]]:
    """``T[i][d] = hs**(d * 2**(8 i)) mod n**2`` for ``d < 256``; cached per key."""
    key = (n, exponent_bits)
    with _LOCK:
        table = _TABLES.get(key)
    if table is not None:
        return table
    nsquare = mpz(n) * n
    base = mpz(base_pair(n)[1])
    rows = []
    for _ in range(-(-exponent_bits // COMB_WINDOW)):
        row = [mpz(1), base]
        for _ in range(2, 1 << COMB_WINDOW):
            row.append(row[-1] * base % nsquare)
        rows.append(row)
        base = row[-1] * base % nsquare
    with _LOCK:
        if len(_TABLES) > 8:  # a few MB each: keep only the keys in use
            _TABLES.clear()
        _TABLES[key] = rows
    return rows


def random_unit(n: int) -> int:
    """Uniform ``r`` in ``Z*_n``."""
    while True:
        r = secrets.randbelow(n - 1) + 1
        if math.gcd(r, n) == 1:
            return r


def short_chunk(n: int, exponent_bits: int, count: int) -> list[Any]:
    """``count`` values ``hs**a mod n**2``, ``a`` uniform below ``2**exponent_bits``
    and never 0."""
    table = comb_table(n, exponent_bits)
    nsquare = mpz(n) * n
    mask = (1 << COMB_WINDOW) - 1
    out: list[Any] = []
    with gmpy2.context(allow_release_gil=True):
        while len(out) < count:
            a = secrets.randbits(exponent_bits)
            acc = None
            for row in table:
                digit = a & mask
                a >>= COMB_WINDOW
                if digit:
                    acc = row[digit] if acc is None else acc * row[digit] % nsquare
            if acc is not None:  # a == 0 (probability 2**-bits): draw again
                out.append(acc)
    return out


def full_chunk(n: int, count: int) -> list[Any]:
    """``count`` values ``r**n mod n**2``, ``r`` uniform in ``Z*_n``."""
    bases = [mpz(random_unit(n)) for _ in range(count)]
    return list(gmpy2.powmod_base_list(bases, mpz(n), mpz(n) * n))


def chunk(n: int, mode: str, exponent_bits: int, count: int) -> list[Any]:
    """``count`` fresh obfuscators of ``mode`` (``"short"`` or ``"full"``)."""
    if count <= 0:
        return []
    if mode == "short":
        return short_chunk(n, exponent_bits, count)
    return full_chunk(n, count)


# ------------------------------------------------------------------ worker


def _read_exact(stream: BinaryIO, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        piece = stream.read(size - len(data))
        if not piece:
            return None
        data += piece
    return data


def serve(stdin: BinaryIO, stdout: BinaryIO) -> None:
    """Answer requests until ``stdin`` closes."""
    modes = {code: mode for mode, code in MODE_CODES.items()}
    while True:
        head = _read_exact(stdin, REQUEST.size)
        if head is None:
            return
        magic, n_len, mode_code, exponent_bits, count = REQUEST.unpack(head)
        body = _read_exact(stdin, n_len)
        if body is None:
            return
        try:
            if magic != REQUEST_MAGIC or mode_code not in modes:
                raise ValueError("bad request")
            n = int.from_bytes(body, "big")
            width = (2 * n.bit_length() + 7) // 8
            values = chunk(n, modes[mode_code], exponent_bits, count)
            reply = REPLY.pack(len(values)) + b"".join(
                int(v).to_bytes(width, "big") for v in values
            )
        except Exception as exc:  # noqa: BLE001 - reported to the parent
            message = f"{type(exc).__name__}: {exc}".encode()
            reply = REPLY.pack(ERROR) + REPLY.pack(len(message)) + message
        stdout.write(reply)
        stdout.flush()


if __name__ == "__main__":
    import signal

    # Ctrl-C goes to the whole process group: let the parent handle it (it
    # closes our stdin, which ends the loop).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    serve(sys.stdin.buffer, sys.stdout.buffer)
