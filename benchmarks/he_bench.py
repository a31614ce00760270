"""Encrypted aggregation at the speed of the hardware: what each step costs.

For 10k and 100k parameters and N = 10 and 50 devices, measures per-device
encryption, aggregation of N ciphertext vectors, decryption of the sum and the
bytes per parameter on the wire, for

  (a) phe, one value per ciphertext (``phe``'s ``raw_encrypt`` / ``raw_decrypt``
      on a quantised value; measured on a sample and extrapolated linearly),
  (b) packed: the current packing, a fresh ``r**n`` per ciphertext (``phe``'s
      ``raw_encrypt``), one core, ``phe``'s CRT ``raw_decrypt``,
  (c) packed + precomputed short-exponent randomness + all cores: online
      encryption from a warm :class:`~offchain.crypto.fast.RandomnessPool`,
      and, separately, the offline time to fill the pool for one device;
      CRT decryption on all cores.

It also measures how fast obfuscators come out of one core, of all cores as
threads (the pool's choice) and of all cores as processes.

    .venv/bin/python benchmarks/he_bench.py                   # full table
    .venv/bin/python benchmarks/he_bench.py --quick           # 10k params, N = 10
    .venv/bin/python benchmarks/he_bench.py --key-bits 3072
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import gmpy2
import numpy as np

from offchain.crypto import _obfuscators as ob
from offchain.crypto import fast
from offchain.crypto.fast import RandomnessPool
from offchain.crypto.keys import PrivateKey, PublicKey, generate_keypair
from offchain.crypto.packing import (
    PackingSpec,
    dequantize_sum,
    pack,
    quantize,
    unpack,
)
from offchain.crypto.paillier import (
    EncryptedVector,
    aggregate,
    decrypt_sum,
    encrypt_vector,
)

PARAMS = (10_000, 100_000)
DEVICES = (10, 50)
QUICK_PARAMS = (10_000,)
QUICK_DEVICES = (10,)
BOUND = 0.5
MAX_SUMMANDS = 50
DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "he.md"
COMMAND = ".venv/bin/python benchmarks/he_bench.py"


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def _fmt_s(seconds: float) -> str:
    if seconds >= 100:
        return f"{seconds:,.0f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


def _fmt_x(ratio: float) -> str:
    return f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:.1f}x"


@dataclass(frozen=True)
class Row:
    params: int
    devices: int
    method: str
    encrypt: float  # online, per device
    offline: float | None  # pool fill per device (c only)
    aggregate: float
    decrypt: float
    bytes_per_param: float
    extrapolated: bool
    speedup_online: float
    speedup_total: float


@dataclass(frozen=True)
class PerValue:
    """Costs of (a), per value, from a sample."""

    encrypt: float
    decrypt: float
    aggregate: dict[int, float]  # per value column of N ciphertexts
    ciphertext_bytes: int


def _measure_per_value(
    pk: PublicKey, sk: PrivateKey, spec: PackingSpec, sample: int,
    devices: Sequence[int], rng: np.random.Generator,
) -> PerValue:
    levels = [int(v) for v in quantize(rng.uniform(-BOUND, BOUND, sample), spec)]
    t_enc, cts = _timed(lambda: [pk.raw_encrypt(m) for m in levels])
    agg = {}
    nsquare = gmpy2.mpz(pk.nsquare)
    for n in devices:
        # Column i: N distinct sampled ciphertexts (the cost does not depend on
        # which ones).
        columns = [[cts[(i + j) % sample] for j in range(n)] for i in range(sample)]

        def product(columns: list[list[int]] = columns) -> list[int]:
            out = []
            for column in columns:
                acc = gmpy2.mpz(column[0])
                for c in column[1:]:
                    acc = acc * c % nsquare
                out.append(int(acc))
            return out

        t_agg, _ = _timed(product)
        agg[n] = t_agg / sample
    t_dec, plain = _timed(lambda: [sk.raw_decrypt(c) for c in cts])
    assert plain == levels
    return PerValue(t_enc / sample, t_dec / sample, agg, 2 * ((pk.bits + 7) // 8))


def _encrypt_b(pk: PublicKey, x: np.ndarray, spec: PackingSpec) -> EncryptedVector:
    """The pre-pool path: pack, then phe's raw_encrypt (fresh r**n) per plaintext."""
    levels = quantize(x, spec)
    plaintexts = pack(levels, spec)
    return EncryptedVector(
        key_id=pk.key_id, spec=spec, n_values=int(levels.size), n_summands=1,
        ciphertexts=tuple(pk.raw_encrypt(m) for m in plaintexts),
    )


def _decrypt_b(sk: PrivateKey, enc: EncryptedVector) -> np.ndarray:
    """The pre-pool path: phe's CRT raw_decrypt, one ciphertext after another."""
    plaintexts = [sk.raw_decrypt(c) for c in enc.ciphertexts]
    sums = unpack(plaintexts, enc.n_values, enc.n_summands, enc.spec)
    return dequantize_sum(sums, enc.n_summands, enc.spec)


def _check(got: np.ndarray, xs: np.ndarray, spec: PackingSpec) -> None:
    err = float(np.max(np.abs(got - xs.sum(axis=0))))
    limit = len(xs) * spec.quantisation_error
    if err > limit:
        raise SystemExit(f"decrypted sum off by {err} > {limit}")


def _bench_params(
    pk: PublicKey, sk: PrivateKey, spec: PackingSpec, params: int,
    devices: Sequence[int], workers: int, per_value: PerValue,
    rng: np.random.Generator, log: Callable[[str], None],
) -> list[Row]:
    xs = rng.uniform(-BOUND, BOUND, size=(max(devices), params))
    n_ct = spec.n_plaintexts(params)

    # (b): fresh r**n per ciphertext, one core.
    log(f"  (b) encrypting {params} values = {n_ct} ciphertexts with fresh r^n ...")
    t_b, enc_b = _timed(lambda: _encrypt_b(pk, xs[0], spec))
    bytes_b = len(enc_b.to_bytes()) / params

    # (c): offline pool fill for one device, then online encryption.
    pool = RandomnessPool(pk, mode="short", workers=workers)
    # Once per key and process: comb table, worker processes (see the last table).
    pool.fill(4 * fast._MIN_PARALLEL * workers)
    pool.discard()
    t_fill, _ = _timed(lambda: pool.fill(n_ct))
    log(f"  (c) filled {n_ct} obfuscators in {_fmt_s(t_fill)}; filling for "
        f"{max(devices) - 1} more devices ...")
    pool.fill(n_ct * (max(devices) - 1))
    online = []
    parts = []
    for x in xs:
        t, enc = _timed(lambda x=x: encrypt_vector(pk, x, spec, pool=pool))
        online.append(t)
        parts.append(enc)
    assert len(pool) == 0
    t_c = statistics.median(online)
    bytes_c = len(parts[0].to_bytes()) / params
    # (b)'s ciphertext must decrypt like the others.
    _check(_decrypt_b(sk, enc_b), xs[:1], spec)

    rows = []
    for n in devices:
        log(f"  N={n}: aggregating and decrypting ...")
        t_agg, total = _timed(lambda n=n: aggregate(pk, parts[:n]))
        t_dec_b, got_b = _timed(lambda total=total: _decrypt_b(sk, total))
        t_dec_c, got_c = _timed(lambda total=total: decrypt_sum(sk, total, workers=workers))
        _check(got_b, xs[:n], spec)
        _check(got_c, xs[:n], spec)
        t_a = per_value.encrypt * params
        rows += [
            Row(params, n, "(a) phe, 1 value/ciphertext", t_a, None,
                per_value.aggregate[n] * params, per_value.decrypt * params,
                per_value.ciphertext_bytes, True, 1.0, 1.0),
            Row(params, n, "(b) packed, fresh r^n, 1 core", t_b, None, t_agg,
                t_dec_b, bytes_b, False, t_a / t_b, t_a / t_b),
            Row(params, n, f"(c) packed + short-exp pool + {workers} cores", t_c,
                t_fill, t_agg, t_dec_c, bytes_c, False, t_a / t_c,
                t_a / (t_c + t_fill)),
        ]
    return rows


# ------------------------------------------------------- threads vs processes


def _rate(fn: Callable[[], Any], count: int) -> float:
    t, _ = _timed(fn)
    return count / t


def _backend_rows(
    n: int, bits: int, mode: str, count: int, workers: int
) -> list[tuple[str, str, float, str]]:
    chosen = fast.parallel_backend(mode)
    sizes = fast._split(count, workers)
    rows = [
        (mode, "1 core", _rate(lambda: ob.chunk(n, mode, bits, count), count), ""),
        (mode, f"{workers} threads",
         _rate(lambda: fast._threads(n, mode, bits, sizes), count),
         "yes" if chosen == "threads" else ""),
    ]
    if workers > 1:
        # The first call starts the worker processes and builds their tables.
        fast._PROCESSES.close()
        warm = fast._split(workers, workers)
        start, _ = _timed(lambda: fast._PROCESSES.compute(n, mode, bits, warm))
        rate = _rate(lambda: fast._PROCESSES.compute(n, mode, bits, sizes), count)
        how = (f"{workers} processes (1 here + {workers - 1} workers; first call "
               f"{_fmt_s(start)})")
        rows.append((mode, how, rate, "yes" if chosen == "processes" else ""))
    return rows


def _backends(
    pk: PublicKey, workers: int, quick: bool
) -> list[tuple[str, str, float, str]]:
    """Obfuscators per second: 1 core, all cores as threads, as processes."""
    bits = fast.short_exponent_bits(pk.bits)
    ob.comb_table(pk.n, bits)
    return [
        *_backend_rows(pk.n, bits, "short", 1000 if quick else 4000, workers),
        *_backend_rows(pk.n, bits, "full", 40 if quick else 160, workers),
    ]


# ------------------------------------------------------------------- output


def _table(rows: Sequence[Row]) -> list[str]:
    header = (
        "| params | N | method | encrypt / device (online) | pool fill / device "
        "(offline) | aggregate N vectors | decrypt sum | bytes / param | "
        "encrypt speed-up vs (a): online | online + offline |"
    )
    lines = [header, "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        star = " *" if r.extrapolated else ""
        offline = "—" if r.offline is None else _fmt_s(r.offline)
        lines.append(
            f"| {r.params:,} | {r.devices} | {r.method} | {_fmt_s(r.encrypt)}{star} | "
            f"{offline} | {_fmt_s(r.aggregate)}{star} | {_fmt_s(r.decrypt)}{star} | "
            f"{r.bytes_per_param:.2f} | {_fmt_x(r.speedup_online)} | "
            f"{_fmt_x(r.speedup_total)} |"
        )
    return lines


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:  # pragma: no cover
        return "?"


def _accuracy(pk: PublicKey, sk: PrivateKey, rounds: int,
              log: Callable[[str], None]) -> list[str]:
    """The demo task (10 devices, default model and DP settings, every update averaged)
    trained twice: averaging the plaintext deltas, and through (c) -- each device
    encrypts from the pool, the aggregate is the ciphertext product, the sum is
    decrypted. Each run follows its own global model."""
    import warnings

    from offchain.learning import initial_vector, load_mnist, split_iid
    from offchain.learning.evaluate import accuracy
    from offchain.learning.fedavg import apply_update, average
    from offchain.learning.model import ModelSpec, num_parameters
    from offchain.privacy import DPConfig, PrivacyAccountant, train_local

    model, dp = ModelSpec(), DPConfig()
    split = split_iid(load_mnist(), 10, seed=0)
    spec = PackingSpec(bound=dp.update_bound, max_summands=10, key_bits=pk.bits)
    start = initial_vector(model, seed=0)
    curves = {}
    for how in ("plaintext", "encrypted"):
        vec = start
        accountants = [PrivacyAccountant() for _ in split.devices]
        curve = []
        for r in range(rounds):
            fast.prefill(pk, num_parameters(model), spec, vectors=len(split.devices))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                deltas = [train_local(model, vec, d.train, dp, a, seed=i * 1_000 + r).delta
                          for i, (d, a) in enumerate(zip(split.devices, accountants))]
            if how == "plaintext":
                mean = average(deltas)
            else:
                total = aggregate(pk, [encrypt_vector(pk, d, spec) for d in deltas])
                mean = (decrypt_sum(sk, total) / len(deltas)).astype(np.float32)
            vec = apply_update(vec, mean)
            curve.append(accuracy(model, vec, split.test))
        curves[how] = curve
        log(f"accuracy {how}: {curves[how]}")
    plain, enc = curves["plaintext"], curves["encrypted"]
    return [
        "## Accuracy through (c)",
        "",
        f"The demo task (10 devices, logistic regression, DP-SGD σ = {dp.noise_multiplier}, "
        f"{rounds} rounds, every update averaged), trained once on plaintext averages and "
        "once through encryption (c), each following its own global model:",
        "",
        "| round | plaintext FedAvg | through (c) | difference (points) |",
        "|---:|---:|---:|---:|",
        *[f"| {r} | {100 * a:.1f} % | {100 * b:.1f} % | {100 * (b - a):+.1f} |"
          for r, (a, b) in enumerate(zip(plain, enc))],
        "",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--key-bits", type=int, default=2048, choices=(2048, 3072))
    parser.add_argument("--quick", action="store_true",
                        help="10k parameters and N = 10 only (under a minute)")
    parser.add_argument("--sample", type=int, default=200,
                        help="values measured for (a) before extrapolating")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--params", type=int, nargs="*", default=None,
                        help="override the parameter counts")
    parser.add_argument("--devices", type=int, nargs="*", default=None,
                        help="override the device counts N (at most 50)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    params = args.params or (QUICK_PARAMS if args.quick else PARAMS)
    devices = args.devices or (QUICK_DEVICES if args.quick else DEVICES)
    if max(devices) > MAX_SUMMANDS:
        parser.error(f"N is at most {MAX_SUMMANDS}")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    started = time.perf_counter()
    load_before = os.getloadavg()
    rng = np.random.default_rng(2026)
    log(f"generating a {args.key_bits}-bit key ...")
    t_key, (pk, sk) = _timed(lambda: generate_keypair(bits=args.key_bits))
    spec = PackingSpec(bound=BOUND, max_summands=MAX_SUMMANDS, key_bits=args.key_bits)
    log(f"(a) sampling {args.sample} values ...")
    per_value = _measure_per_value(pk, sk, spec, args.sample, devices, rng)
    rows: list[Row] = []
    for p in params:
        log(f"{p} parameters:")
        rows += _bench_params(pk, sk, spec, p, devices, args.workers, per_value, rng, log)
    log("threads vs processes ...")
    backends = _backends(pk, args.workers, args.quick)
    log("accuracy through (c) ...")
    accuracy_lines = _accuracy(pk, sk, 2 if args.quick else 5, log)
    elapsed = time.perf_counter() - started
    load_after = os.getloadavg()

    command = COMMAND + (" --quick" if args.quick else "") + (
        f" --key-bits {args.key_bits}" if args.key_bits != 2048 else ""
    )
    if args.params or args.devices:
        command += "".join(
            [f" --params {' '.join(map(str, params))}" if args.params else "",
             f" --devices {' '.join(map(str, devices))}" if args.devices else ""]
        )
    enc_a_ms = per_value.encrypt * 1e3
    made = (
        f"Made by `{command}` on {time.strftime('%Y-%m-%d %H:%M')} in "
        f"{elapsed:.0f} s: {platform.machine()}, {os.cpu_count()} cores "
        f"(load average {load_before[0]:.2f} before, {load_after[0]:.2f} after), "
        f"Python {platform.python_version()}, phe {_version('phe')}, gmpy2 "
        f"{_version('gmpy2')}, numpy {np.__version__}. Key generation took "
        f"{_fmt_s(t_key)}."
    )
    packing = (
        f"Packing: bound ±{BOUND}, {spec.value_bits}-bit values, max_summands = "
        f"{spec.max_summands}: {spec.slot_bits}-bit slots, "
        f"{spec.slots_per_plaintext} values per {2 * args.key_bits // 8}-byte "
        "ciphertext (66-byte blob header included in bytes / param). "
        f"(c) uses {args.workers} workers and "
        f"{fast.short_exponent_bits(args.key_bits)}-bit short exponents."
    )
    notes = (
        f"\\* (a) is extrapolated linearly from {args.sample} values: phe "
        f"`raw_encrypt` {enc_a_ms:.2f} ms and `raw_decrypt` "
        f"{per_value.decrypt * 1e3:.2f} ms per value, aggregation per value "
        "column of N ciphertexts; its bytes / param count one fixed-width "
        f"{per_value.ciphertext_bytes}-byte ciphertext per value (phe's own JSON "
        "serialisation, decimal digits, is about 2.4x that). (b) and (c) are "
        "measured on whole vectors; their aggregation is the same operation "
        "(ciphertext-wise products), measured once per row. Online = from a "
        "warm pool (quantise, pack, one multiplication per ciphertext); offline "
        "= filling the pool with one device's obfuscators, which a device can "
        "do while it trains. Speed-ups are (a)'s encryption time over the "
        "row's, from the same run."
    )
    backend_notes = (
        "`short` = `hs^a` by a fixed-base comb (about 32 multiplications mod "
        "n², many short GMP calls); `full` = `r^n` by `gmpy2.powmod_base_list` "
        "(one GMP call per batch, GIL released). Processes are persistent "
        "`python -P offchain/crypto/_obfuscators.py` workers, timed warm (their "
        "first call, which starts them and builds their comb tables, is shown "
        "apart). *used* marks what `RandomnessPool` picks for the mode."
    )
    lines = [
        f"# Encrypted aggregation: {args.key_bits}-bit Paillier",
        "",
        made,
        "",
        packing,
        "",
        notes,
        "",
        *_table(rows),
        "",
        "## Obfuscators per second: threads or processes",
        "",
        backend_notes,
        "",
        "| mode | how | obfuscators / s | ms each | used |",
        "|---|---|---:|---:|---|",
        *[f"| {mode} | {how} | {rate:,.0f} | {1e3 / rate:.3f} | {used} |"
          for mode, how, rate, used in backends],
        "",
        *accuracy_lines,
    ]
    text = "\n".join(lines)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    log(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
