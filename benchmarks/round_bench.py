"""Seconds per federated round: the protocol next to plain DP-FedAvg, all in one run.

For N = 10 and N = 50 participants (N devices, minParticipants = maxParticipants = N,
two owners, the demo's model, DP settings, data split and seeds, a 2048-bit Paillier
key) it times every round of

  floor          the same DP training and averaging with no chain and no crypto: N
                 devices run ``offchain.privacy.train_local`` on the round's global
                 model (the demo's seeds), then plain FedAvg of the N deltas;
  embedded       ``offchain.runner.run_task`` on the embedded eth-tester chain;
  Anvil          ``run_task`` on an Anvil node (``offchain.processes.anvil_node``);
  processes      ``offchain.processes.run_processes``: one OS process per party,
                 on Anvil;

and divides each mean by the floor's at the same N. A round runs from the aggregator's
``openRound`` to the requester's ``publishModel`` (``RunReport.round_seconds``). The
first round also starts the encryption workers and builds their tables (and, for the
processes, waits for every party to start), so it is shown apart; mean, min and max
are over the later rounds. The in-process runs are instrumented (each call of the
functions below timed, nested calls subtracted; views, transactions and JSON-RPC
requests counted) and the breakdown is written below the table.

    .venv/bin/python benchmarks/round_bench.py          # N = 10, 50; 3 rounds (40+ min)
    .venv/bin/python benchmarks/round_bench.py --quick  # N = 10, 2 rounds, 2 modes
    .venv/bin/python benchmarks/round_bench.py --rounds 4 --sizes 10
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from web3 import EthereumTesterProvider, HTTPProvider

import offchain.roles.aggregator as aggregator_module
import offchain.roles.device as device_module
import offchain.roles.requester as requester_module
import offchain.runner as runner_module
from offchain.chain.accounts import Wallet
from offchain.chain.clients.base import ContractClient
from offchain.chain.journal import TxJournal
from offchain.chain.node import Chain
from offchain.crypto.paillier import EncryptedVector
from offchain.errors import FedshareError
from offchain.learning.data import load_mnist, split_iid
from offchain.learning.fedavg import apply_update, average
from offchain.learning.model import initial_vector, num_parameters
from offchain.paths import node_bin
from offchain.privacy import PrivacyAccountant, train_local
from offchain.privacy.ledger import AccountantStore
from offchain.processes import anvil_node, run_processes
from offchain.protocol.plan import TaskPlan
from offchain.protocol.terms import MAX_VERIFIERS
from offchain.roles.base import Role, RoleState
from offchain.runner import RunConfig, RunReport, run_task
from offchain.storage.exchange import LocalExchange

SIZES = (10, 50)
QUICK_SIZES = (10,)
ROUNDS = 3
QUICK_ROUNDS = 2
OWNERS = 2
WIDE_VERIFIERS = 4
"""Verifiers per update where every-other verification is refused (N - 1 > 16): the
experiments' choice for 50 devices."""
GOAL = {10: 1.5, 50: 2.0}
"""In process, at most this many times the floor's seconds per round."""
DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "round.md"
COMMAND = ".venv/bin/python benchmarks/round_bench.py"
MEMORY_HEADROOM = 0.85
"""The processes row runs only if its estimated memory fits in this share of what the
machine has available."""

MODES = ("floor", "embedded", "anvil", "processes")
MODE_NAMES = {
    "floor": "floor: DP training + FedAvg, no chain, no crypto",
    "embedded": "in process, embedded eth-tester",
    "anvil": "in process, Anvil node",
    "processes": "multi-process, Anvil (1 OS process per party)",
}


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def verifiers_for(n: int) -> int:
    """0 (every other participant, the demo's default) while that is allowed, else 4."""
    return 0 if n - 1 <= MAX_VERIFIERS else WIDE_VERIFIERS


def config_for(n: int, rounds: int, home: Path) -> RunConfig:
    """The demo's task with N devices, all of them participants of every round."""
    return RunConfig(
        owners=OWNERS, devices_per_owner=n // OWNERS,
        plan=TaskPlan(rounds=rounds, min_participants=n, max_participants=n,
                      verifiers_per_update=verifiers_for(n)),
        key_bits=2048, seed=0, home=home)


# ------------------------------------------------------------------ instrumentation


@dataclass
class RoundProfile:
    """What one round spent: exclusive seconds per category, calls, requests."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: Counter = field(default_factory=Counter)
    views: Counter = field(default_factory=Counter)
    transactions: Counter = field(default_factory=Counter)
    rpc: Counter = field(default_factory=Counter)
    rpc_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    steps: Counter = field(default_factory=Counter)
    distinct_views: set = field(default_factory=set)
    """(chain state, contract, calldata) of each view: the views a cache that lives
    until the next transaction or clock move would not answer."""
    wall: float = 0.0
    cpu: float = 0.0


CATEGORIES: list[tuple[str, list[tuple[Any, str]]]] = [
    ("DP training (`train_local`)", [(device_module, "train_local")]),
    ("Paillier encryption (`encrypt_vector`)", [(device_module, "encrypt_vector")]),
    ("randomness prefill call (fills in the background)", [(device_module, "prefill")]),
    ("sealing letters (ECIES `seal`)", [(device_module, "seal")]),
    ("unsealing letters (ECIES `unseal`)", [(device_module, "unseal")]),
    ("scoring peers (`score_update`)", [(device_module, "score_update")]),
    ("letter signatures (sign, recover)", [(Wallet, "sign_digest"),
                                          (device_module, "recover_signer")]),
    ("exchange: blob and letter files", [(LocalExchange, "put"), (LocalExchange, "get"),
                                         (LocalExchange, "post"),
                                         (LocalExchange, "inbox")]),
    ("ciphertext (de)serialisation", [(EncryptedVector, "to_bytes"),
                                      (EncryptedVector, "from_bytes")]),
    ("homomorphic sum (`aggregate`)", [(aggregator_module, "aggregate")]),
    ("decryption (`decrypt_sum`)", [(requester_module, "decrypt_sum")]),
    ("FedAvg (`apply_update`)", [(requester_module, "apply_update")]),
    ("test accuracy of the new model", [(runner_module, "accuracy")]),
    ("state, journal, accountant writes (fsync)", [(RoleState, "put"),
                                                   (TxJournal, "record"),
                                                   (TxJournal, "clear"),
                                                   (AccountantStore, "save")]),
    ("chain: views (`Chain.call`)", [(Chain, "call")]),
    ("chain: transactions (`Chain.transact`)", [(Chain, "transact")]),
    ("chain: event logs (`ContractClient.logs`)", [(ContractClient, "logs")]),
    ("chain: clock reads (`Chain.next_timestamp`)", [(Chain, "next_timestamp")]),
    ("chain: journal settle (`Chain.settle`)", [(Chain, "settle")]),
    ("chain: clock moves when idle (`Chain.advance_past`)", [(Chain, "advance_past")]),
    ("roles' own Python (`Role.step`, decide)", [(Role, "step")]),
]
REST = "driver loop, progress, not attributed"


def _view_names() -> dict[str, str]:
    """Function name by 4-byte selector ("0x" + 8 hex digits), from the exported ABIs."""
    import json

    from eth_utils import function_signature_to_4byte_selector

    from offchain.chain.abi import abi_type
    from offchain.chain.contracts import abi_files

    names = {}
    for path in abi_files().values():
        for item in json.loads((ROOT / path).read_text()):
            if item.get("type") == "function":
                inputs = ",".join(abi_type(p) for p in item["inputs"])
                selector = function_signature_to_4byte_selector(f"{item['name']}({inputs})")
                names["0x" + selector.hex()] = item["name"]
    return names


VIEW_NAMES = _view_names()


class Probe:
    """Times the functions of CATEGORIES (exclusive of nested timed calls), counts views
    and transactions by contract function and JSON-RPC requests by method, per round,
    between the `opened` and `published` progress events of a run."""

    def __init__(self) -> None:
        self.rounds: dict[int, RoundProfile] = {}
        self.current: RoundProfile | None = None
        self._stack: list[float] = []
        self._main = threading.main_thread()
        self._undo: list[Callable[[], None]] = []
        self._opened = 0.0
        self._cpu = 0.0
        self.epoch = 0  # transactions and clock moves so far: the chain state's version

    # the progress callback of run_task
    def progress(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "opened":
            self.current = self.rounds.setdefault(int(data["round"]), RoundProfile())
            self._opened, self._cpu = time.perf_counter(), time.process_time()
        elif kind == "published" and "task_id" not in data and self.current is not None:
            self.current.wall += time.perf_counter() - self._opened
            self.current.cpu += time.process_time() - self._cpu
            self.current = None

    def _recording(self) -> RoundProfile | None:
        if self.current is None or threading.current_thread() is not self._main:
            return None
        return self.current

    def _timed(self, category: str, fn: Callable[..., Any],
               count: Callable[[RoundProfile, tuple, dict], None] | None
               ) -> Callable[..., Any]:
        probe = self

        def timed(*args: Any, **kwargs: Any) -> Any:
            profile = probe._recording()
            if profile is None:
                return fn(*args, **kwargs)
            stack = probe._stack
            stack.append(0.0)
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                nested = stack.pop()
                profile.seconds[category] += elapsed - nested
                profile.calls[category] += 1
                if stack:
                    stack[-1] += elapsed
                if count is not None:
                    count(profile, args, kwargs)

        return timed

    def _patch(self, owner: Any, name: str, make: Callable[[Callable[..., Any]],
                                                         Callable[..., Any]]) -> None:
        raw = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        if isinstance(raw, classmethod):
            wrapped = make(raw.__func__)
            setattr(owner, name, classmethod(wrapped))
        else:
            setattr(owner, name, make(raw))
        self._undo.append(lambda: setattr(owner, name, raw))

    def install(self) -> None:
        def view_count(p: RoundProfile, args: tuple, kwargs: dict) -> None:
            to, data = args[1], args[2]
            p.views[VIEW_NAMES.get(data[:10], "?")] += 1
            p.distinct_views.add((self.epoch, to, data))

        def tx_count(p: RoundProfile, args: tuple, kwargs: dict) -> None:
            p.transactions[getattr(args[2], "fn_name", "?")] += 1
            self.epoch += 1

        def advance_count(p: RoundProfile, args: tuple, kwargs: dict) -> None:
            self.epoch += 1

        def log_count(p: RoundProfile, args: tuple, kwargs: dict) -> None:
            p.views[f"getLogs {args[1]}"] += 1

        def step_count(p: RoundProfile, args: tuple, kwargs: dict) -> None:
            p.steps[args[0].kind] += 1

        counters = {(Chain, "call"): view_count, (Chain, "transact"): tx_count,
                    (ContractClient, "logs"): log_count, (Role, "step"): step_count,
                    (Chain, "advance_past"): advance_count}
        for category, targets in CATEGORIES:
            for owner, name in targets:
                count = counters.get((owner, name))
                self._patch(owner, name,
                            lambda fn, c=category, k=count: self._timed(c, fn, k))
        for provider in (EthereumTesterProvider, HTTPProvider):
            self._patch(provider, "make_request", self._counted_rpc)

    def _counted_rpc(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        probe = self

        def make_request(provider: Any, method: str, params: Any) -> Any:
            profile = probe._recording()
            if profile is None:
                return fn(provider, method, params)
            start = time.perf_counter()
            try:
                return fn(provider, method, params)
            finally:
                profile.rpc[str(method)] += 1
                profile.rpc_seconds[str(method)] += time.perf_counter() - start

        return make_request

    def remove(self) -> None:
        while self._undo:
            self._undo.pop()()

    def steady(self) -> tuple[RoundProfile, int]:
        """The later rounds (all of them when there is only one) summed, and their
        count."""
        keys = sorted(self.rounds)
        keys = keys[1:] if len(keys) > 1 else keys
        total = RoundProfile()
        for k in keys:
            p = self.rounds[k]
            for name, s in p.seconds.items():
                total.seconds[name] += s
            for name, s in p.rpc_seconds.items():
                total.rpc_seconds[name] += s
            total.calls.update(p.calls)
            total.views.update(p.views)
            total.transactions.update(p.transactions)
            total.rpc.update(p.rpc)
            total.steps.update(p.steps)
            total.distinct_views |= p.distinct_views
            total.wall += p.wall
            total.cpu += p.cpu
        return total, len(keys)


@contextlib.contextmanager
def probing() -> Iterator[Probe]:
    probe = Probe()
    probe.install()
    try:
        yield probe
    finally:
        probe.remove()


def _family() -> list[int]:
    """This process and all its descendants (Linux /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    family = {os.getpid()}
    grew = True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in family and pid not in family:
                family.add(pid)
                grew = True
    return sorted(family)


_TICK = os.sysconf("SC_CLK_TCK")


def family_cpu() -> float:
    """CPU seconds used so far by this process and its descendants, the children they
    have reaped included (those that exited are gone from /proc: theirs is counted by
    the parent that reaped them)."""
    total = 0
    for pid in _family():
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return total / _TICK


class MemorySampler:
    """Peak memory of this process and all its descendants (proportional set size:
    shared pages split between the processes that map them), and the most processes
    seen at once, sampled every `interval` seconds."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.peak_bytes = 0
        self.peak_processes = 0
        self.rounds_peak: int | None = None
        """Peak since :meth:`mark` (the later rounds), None before."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "MemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            family = _family()
            total = 0
            for pid in family:
                try:
                    with open(f"/proc/{pid}/smaps_rollup") as handle:
                        for line in handle:
                            if line.startswith("Pss:"):
                                total += int(line.split()[1]) * 1024
                                break
                except OSError:
                    continue
            self.peak_bytes = max(self.peak_bytes, total)
            self.peak_processes = max(self.peak_processes, len(family))
            if self.rounds_peak is not None:
                self.rounds_peak = max(self.rounds_peak, total)

    def mark(self) -> None:
        """Starts the second peak (what the rounds need, start-up left out)."""
        if self.rounds_peak is None:
            self.rounds_peak = 0


def available_memory() -> int:
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


# ------------------------------------------------------------------ the runs


@dataclass
class RoundTimes:
    """One round as the progress events tell it (perf_counter seconds), and the CPU
    seconds of this process and its descendants at its opening and its end."""

    opened: float
    cpu_opened: float
    trained: float | None = None
    scored: float | None = None
    published: float | None = None
    cpu_published: float | None = None

    @property
    def cpu(self) -> float | None:
        if self.cpu_published is None:
            return None
        return self.cpu_published - self.cpu_opened

    @property
    def phases(self) -> tuple[float, float, float] | None:
        """Opening to the last update committed, to the last scores committed, to the
        new model."""
        if None in (self.trained, self.scored, self.published):
            return None
        assert self.trained is not None and self.scored is not None
        assert self.published is not None
        return (self.trained - self.opened, self.scored - self.trained,
                self.published - self.scored)


class RoundClock:
    """A progress callback: logs each round and keeps its RoundTimes."""

    def __init__(self, n: int, mode: str) -> None:
        self.n, self.mode = n, mode
        self.rounds: dict[int, RoundTimes] = {}
        self.started = time.perf_counter()
        self.task_published: float | None = None

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "published" and "task_id" in data:
            self.task_published = time.perf_counter()
        if "round" not in data or "task_id" in data:
            return
        r = int(data["round"])
        now = time.perf_counter()
        if kind == "opened":
            self.rounds[r] = RoundTimes(now, family_cpu())
            return
        times = self.rounds.get(r)
        if times is None:
            return
        if kind == "trained":
            times.trained = now
        elif kind == "scored":
            times.scored = now
        elif kind == "published":
            times.published, times.cpu_published = now, family_cpu()
            _log(f"  {self.mode} N={self.n} round {r}: {now - times.opened:.2f} s, "
                 f"{times.cpu:.1f} CPU s")

    def cpu(self) -> list[float]:
        return [t.cpu for _, t in sorted(self.rounds.items()) if t.cpu is not None]

    def phases(self) -> list[tuple[float, float, float]]:
        return [t.phases for _, t in sorted(self.rounds.items())
                if t.phases is not None]

    def outside(self) -> tuple[float, float, float] | None:
        """Seconds of set-up (to the task's publication), from there to the first
        round's opening, and from the last round's model to now."""
        rounds = [t for _, t in sorted(self.rounds.items())]
        if self.task_published is None or not rounds or rounds[-1].published is None:
            return None
        return (self.task_published - self.started,
                rounds[0].opened - self.task_published,
                time.perf_counter() - rounds[-1].published)


@dataclass
class Row:
    mode: str
    n: int
    rounds: list[float]
    run_seconds: float
    load: tuple[float, float]
    cpu: list[float] = field(default_factory=list)
    phases: list[tuple[float, float, float]] = field(default_factory=list)
    outside: tuple[float, float, float] | None = None
    note: str = ""
    profile: Probe | None = None
    memory: tuple[int, int, int] | None = None
    """Peak bytes, most processes at once, peak bytes from round 2 on."""

    @property
    def steady(self) -> list[float]:
        return self.rounds[1:] if len(self.rounds) > 1 else self.rounds

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.steady) if self.steady else None

    @property
    def cpu_mean(self) -> float | None:
        steady = self.cpu[1:] if len(self.cpu) > 1 else self.cpu
        return statistics.fmean(steady) if steady else None


def _quiet() -> contextlib.AbstractContextManager[Any]:
    stack = contextlib.ExitStack()
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    return stack


def run_floor(n: int, rounds: int, load: float) -> Row:
    """N devices train the round's global model with the demo's seeds, then plain
    FedAvg of their deltas."""
    config = config_for(n, rounds, Path(tempfile.gettempdir()))
    started = time.perf_counter()
    split = split_iid(load_mnist(), n, seed=config.seed)
    vec = initial_vector(config.model, seed=config.seed)
    accountants = [PrivacyAccountant(delta=config.dp.delta,
                                     budget=config.plan.epsilon_budget)
                   for _ in range(n)]
    seconds, cpu = [], []
    for r in range(rounds):
        start, cpu_start = time.perf_counter(), family_cpu()
        with _quiet():
            deltas = [train_local(config.model, vec, split.devices[i].train, config.dp,
                                  accountants[i],
                                  seed=config.device_seed(i) * 1_000 + r).delta
                      for i in range(n)]
        vec = apply_update(vec, average(deltas))
        seconds.append(time.perf_counter() - start)
        cpu.append(family_cpu() - cpu_start)
        _log(f"  floor N={n} round {r}: {seconds[-1]:.2f} s, {cpu[-1]:.1f} CPU s")
    return Row("floor", n, seconds, time.perf_counter() - started,
               (load, os.getloadavg()[0]), cpu=cpu)


def run_in_process(n: int, rounds: int, home: Path, anvil: bool, load: float) -> Row:
    config = config_for(n, rounds, home)
    mode = "anvil" if anvil else "embedded"
    clock = RoundClock(n, mode)
    with probing() as probe, _quiet():
        def progress(kind: str, data: dict[str, Any]) -> None:
            probe.progress(kind, data)
            clock(kind, data)

        if anvil:
            with anvil_node() as url:
                report = run_task(config, progress, chain=Chain.connect(url))
        else:
            report = run_task(config, progress)
    return Row(mode, n, report.round_seconds, report.seconds,
               (load, os.getloadavg()[0]), cpu=clock.cpu(), phases=clock.phases(),
               outside=clock.outside(),
               profile=probe)


def run_multi(n: int, rounds: int, home: Path, timeout: float, load: float) -> Row:
    config = config_for(n, rounds, home)
    clock = RoundClock(n, "processes")
    with MemorySampler() as memory, _quiet():
        def progress(kind: str, data: dict[str, Any]) -> None:
            clock(kind, data)
            if kind == "opened" and data.get("round") == 1:
                memory.mark()

        report = run_processes(config, progress, timeout=timeout)
    return Row("processes", n, report.round_seconds, report.seconds,
               (load, os.getloadavg()[0]), cpu=clock.cpu(), phases=clock.phases(),
               outside=clock.outside(),
               memory=(memory.peak_bytes, memory.peak_processes,
                       memory.rounds_peak or 0))


def _failure(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = " / ".join(lines)
    if len(text) > 700:
        text = text[:300] + " … " + text[-380:]
    return f"{type(exc).__name__}: {text}"


def _parties(n: int) -> int:
    return n + OWNERS + 2  # devices, owners, aggregator, requester


def _multi_row(n: int, rounds: int, home: Path, timeout: float, load: float,
               per_party: float | None) -> Row:
    """The multi-process run, retried once (a party can fail under heavy load), or
    a row saying why it was not run: when the memory measured per party at a smaller
    N, times this N's parties, would not fit in what the machine has available."""
    if per_party is not None:
        need, have = per_party * _parties(n), available_memory()
        if need > MEMORY_HEADROOM * have:
            return Row("processes", n, [], 0.0, (load, load), note=(
                f"not run: {_parties(n)} parties (each with its encryption worker) "
                f"would need about {need / 2**30:.1f} GiB ({per_party / 2**20:.0f} MiB "
                "per party with its share of the node, measured at a smaller N), "
                f"{have / 2**30:.1f} GiB is available"))
    attempts = []
    for _ in range(2):
        try:
            row = run_multi(n, rounds, home, timeout, load)
            break
        except (FedshareError, OSError, subprocess.SubprocessError) as exc:
            attempts.append(_failure(exc))
            _log(f"  processes N={n} failed: {exc}")
    else:
        row = Row("processes", n, [], 0.0, (load, os.getloadavg()[0]))
    if attempts:
        row.note = " ".join(f"attempt {i + 1} failed: {a}."
                            for i, a in enumerate(attempts))
        row.note += f" Logs kept under {home}."
    return row


def bench(sizes: Sequence[int], rounds: int, modes: Sequence[str],
          timeout: float) -> list[Row]:
    rows: list[Row] = []
    per_party: float | None = None  # peak bytes per party at the last processes run
    home = Path(tempfile.mkdtemp(prefix="fedshare-round-bench-"))
    for n in sizes:
        floor: Row | None = None
        floors = 0
        for mode in modes:
            _log(f"{mode} N={n} ...")
            load = os.getloadavg()[0]
            if mode == "floor":
                row = floor = run_floor(n, rounds, load)
                floors = 1
            elif mode in ("embedded", "anvil"):
                row = run_in_process(n, rounds, home, mode == "anvil", load)
            else:
                row = _multi_row(n, rounds, home, timeout, load, per_party)
                if row.memory is not None:
                    per_party = row.memory[0] / _parties(n)
            rows.append(row)
            if row.mean is not None:
                _log(f"  {mode} N={n}: {row.mean:.2f} s per round after the first "
                     f"(first {row.rounds[0]:.2f} s), whole run "
                     f"{row.run_seconds:.0f} s")
            if floor is not None and mode != "floor" and row.mean is not None:
                # The floor again after every chain row, so that it samples the
                # machine's load over the same stretch of time as the chain rows.
                _log(f"floor N={n} again ...")
                again = run_floor(n, rounds, os.getloadavg()[0])
                floor.rounds += again.rounds[1:]
                floor.cpu += again.cpu[1:]
                floor.run_seconds += again.run_seconds
                floor.load = (floor.load[0], again.load[1])
                floors += 1
        if floor is not None and floors > 1:
            floor.note = (f"run {floors} times, before the chain rows of N = {n} and "
                          "after each of them; mean and min–max over the later rounds "
                          "of all runs, round 1 of the first")
    if any("failed" in r.note for r in rows):
        _log(f"the runs' files (logs of the failed parties) are kept under {home}")
    else:
        shutil.rmtree(home, ignore_errors=True)
    return rows


# ------------------------------------------------------------------ output


def _s(x: float) -> str:
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def _table(rows: Sequence[Row], rounds: int) -> list[str]:
    floors = {r.n: r for r in rows if r.mode == "floor" and r.mean}
    later = f"rounds 2-{rounds}" if rounds > 2 else "round 2"
    lines = [
        f"| mode | N | k | round 1 (s) | s / round, {later}: mean | min–max "
        "| ratio to floor | goal | CPU s / round (busy cores) | CPU ratio to floor "
        "| whole run (s) | load avg before → after |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    for r in rows:
        k = verifiers_for(r.n)
        k_text = "—" if r.mode == "floor" else ("N − 1" if k == 0 else str(k))
        load = f"{r.load[0]:.1f} → {r.load[1]:.1f}"
        name = MODE_NAMES[r.mode]
        if r.mean is None:
            lines.append(f"| {name} | {r.n} | {k_text} | — | — | — | — | — | — | — | — "
                         f"| {load} |")
            continue
        floor = floors.get(r.n)
        ratio, goal, cpu_ratio = "—", "—", "—"
        if floor is not None and floor.mean:
            ratio = f"{r.mean / floor.mean:.2f}x"
            cpu_met = None
            if r.cpu_mean is not None and floor.cpu_mean:
                cpu_ratio = f"{r.cpu_mean / floor.cpu_mean:.2f}x"
                cpu_met = r.cpu_mean / floor.cpu_mean <= GOAL.get(r.n, 0)
            if r.mode in ("embedded", "anvil") and r.n in GOAL:
                met = r.mean / floor.mean <= GOAL[r.n]
                goal = f"≤ {GOAL[r.n]}x: {'met' if met else 'not met'}"
                if cpu_met is not None and cpu_met != met:
                    goal += f" (on CPU: {'met' if cpu_met else 'not met'})"
        cpu = "—"
        if r.cpu_mean is not None:
            cpu = f"{_s(r.cpu_mean)} ({r.cpu_mean / r.mean:.1f})"
        lines.append(
            f"| {name} | {r.n} | {k_text} | {_s(r.rounds[0])} | {_s(r.mean)} "
            f"| {_s(min(r.steady))}–{_s(max(r.steady))} | {ratio} | {goal} | {cpu} "
            f"| {cpu_ratio} | {r.run_seconds:.0f} | {load} |")
    return lines


def _phases(rows: Sequence[Row]) -> list[str]:
    timed = [r for r in rows if r.phases]
    if not timed:
        return []
    lines = [
        "## Phases of a round, and outside the rounds",
        "",
        "Seconds (mean over the rounds after the first) from `openRound` to the last "
        "`commitUpdate` (train, encrypt, seal, commit), from there to the last "
        "`commitScores` (unseal, score, commit), and from there to `publishModel` "
        "(reveal, finalise, aggregate, decrypt, evaluate, publish); then, once per "
        "run, the set-up to the task's publication (deployment, funding, keys, "
        "registration), from there to the first `openRound` (the multi-process run "
        "writes every party's keystore and starts the parties), and from the last "
        "model to the end (claims, refund, the report read back from the chain). The "
        "multi-process times are when the parent, polling the chain's events every "
        "0.25 s, saw them.",
        "",
        "| mode | N | train | score | reveal to model | set-up | to round 1 "
        "| after the last round |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in timed:
        steady = r.phases[1:] if len(r.phases) > 1 else r.phases
        means = [statistics.fmean(p[i] for p in steady) for i in range(3)]
        outside = ["—"] * 3 if r.outside is None else [_s(x) for x in r.outside]
        lines.append(f"| {MODE_NAMES[r.mode]} | {r.n} | "
                     + " | ".join([*(_s(m) for m in means), *outside]) + " |")
    return lines + [""]


def _breakdown(rows: Sequence[Row]) -> list[str]:
    runs = [r for r in rows if r.profile is not None and r.profile.rounds]
    if not runs:
        return []
    summed = []
    for r in runs:
        assert r.profile is not None
        summed.append(r.profile.steady())
    heads = [f"{MODE_NAMES[r.mode].removeprefix('in process, ')}, N = {r.n}"
             for r in runs]
    lines = [
        "## Where the in-process round goes",
        "",
        "Seconds per round (mean over the rounds after the first), exclusive: a timed "
        "function's time excludes the timed functions it calls (so `Chain.transact` "
        "includes gas estimation, signing, sending and waiting for the receipt, but "
        "not the journal writes it makes; `score_peers`' views are under views). "
        "Percentages are of the round.",
        "",
        "| where | " + " | ".join(heads) + " |",
        "|---|" + "---:|" * len(runs),
    ]
    names = [c for c, _ in CATEGORIES]
    per_round = []
    for total, count in summed:
        wall = total.wall / count
        values = {name: total.seconds.get(name, 0.0) / count for name in names}
        values[REST] = wall - sum(values.values())
        per_round.append((wall, values))
    for name in [*names, REST]:
        cells = []
        for (total, count), (wall, values) in zip(summed, per_round):
            calls = total.calls.get(name, 0) / count
            calls_text = f", {calls:,.0f} calls" if name != REST and calls else ""
            cells.append(f"{values[name]:.2f} s ({100 * values[name] / wall:.0f} %"
                         f"{calls_text})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("| **round** | " + " | ".join(
        f"**{wall:.2f} s** (CPU of this process {total.cpu / total.wall:.0%} of it)"
        for (total, _), (wall, _) in zip(summed, per_round)) + " |")
    lines += ["", "Per round (mean over the rounds after the first): role steps, views "
              "and transactions by contract function, JSON-RPC requests by method with "
              "the "
              "time spent in the provider (eth-tester runs py-evm in this process; on "
              "Anvil it is the HTTP round trip to the node).", ""]
    lines += ["| count per round | " + " | ".join(heads) + " |",
              "|---|" + "---:|" * len(runs)]

    def count_rows(label: str, get: Callable[[RoundProfile], Counter]) -> None:
        keys: Counter = Counter()
        for total, count in summed:
            for key, value in get(total).items():
                keys[key] += value / count
        lines.append(f"| **{label}** | " + " | ".join(
            f"**{sum(get(total).values()) / count:,.0f}**" for total, count in summed)
            + " |")
        for key, _ in keys.most_common():
            lines.append(f"| {key} | " + " | ".join(
                f"{get(total).get(key, 0) / count:,.0f}" for total, count in summed)
                + " |")

    count_rows("role steps", lambda p: p.steps)
    count_rows("views and log queries", lambda p: p.views)
    lines.append("| distinct views: same call on the same chain state counted once | "
                 + " | ".join(f"{len(total.distinct_views) / count:,.0f}"
                              for total, count in summed) + " |")
    count_rows("transactions", lambda p: p.transactions)
    lines += ["", "| JSON-RPC method: requests per round (ms each) | "
              + " | ".join(heads) + " |", "|---|" + "---:|" * len(runs)]
    methods: Counter = Counter()
    for total, count in summed:
        for key, value in total.rpc_seconds.items():
            methods[key] += value / count
    lines.append("| **all requests** | " + " | ".join(
        f"**{sum(total.rpc.values()) / count:,.0f}** "
        f"({sum(total.rpc_seconds.values()) / count:.2f} s)" for total, count in summed)
        + " |")
    for method, _ in methods.most_common():
        cells = []
        for total, count in summed:
            calls = total.rpc.get(method, 0)
            each = 1e3 * total.rpc_seconds[method] / calls if calls else 0.0
            cells.append("—" if not calls else f"{calls / count:,.0f} ({each:.1f})")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines + [""]


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


def _anvil_version() -> str:
    try:
        out = subprocess.run([str(node_bin("anvil")), "--version"], capture_output=True,
                             text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"
    return out.splitlines()[0] if out else "?"


def render(rows: Sequence[Row], command: str, seconds: float, rounds: int,
           loads: tuple[float, float]) -> str:
    params = num_parameters(RunConfig().model)
    made = (
        f"Made by `{command}` on {time.strftime('%Y-%m-%d %H:%M')} in "
        f"{seconds / 60:.0f} min: {platform.machine()}, {os.cpu_count()} cores shared "
        f"with other work (load average {loads[0]:.2f} before, {loads[1]:.2f} after; "
        f"each row's is in the table), Python {platform.python_version()}, torch "
        f"{_version('torch')}, opacus {_version('opacus')}, web3 {_version('web3')}, "
        f"py-evm {_version('py-evm')}, {_anvil_version()}.")
    setting = (
        f"The demo's task with N devices of {OWNERS} owners, all of them participants "
        f"(minParticipants = maxParticipants = N), {rounds} rounds: logistic "
        f"regression ({params:,} parameters), the default DP-SGD settings, the IID "
        "split of the 5,000 MNIST digits with seed 0, device i's noise seeded as in "
        "the demo, a 2048-bit Paillier key. k is the verifiers per update: every other "
        f"participant (N − 1) where allowed, {WIDE_VERIFIERS} at N = 50 (at most "
        f"{MAX_VERIFIERS} verifiers per update). A round is timed from the "
        "aggregator's `openRound` to the requester's `publishModel` "
        "(`RunReport.round_seconds`), the floor's from the first device's training to "
        "the averaged model. Round 1 is shown apart: in process it starts the "
        "encryption workers and builds their tables, in the multi-process run it waits "
        "for every party to start, and the floor's warms torch and Opacus up. Mean and "
        "min–max are over the later rounds; ratios divide means at the same N. CPU s / "
        "round: CPU time of this process and everything it started (Anvil, the "
        "parties, the encryption workers) during the round, mean over the later "
        "rounds; busy cores = CPU s ÷ wall s (the machine has "
        f"{os.cpu_count()}, shared with other work, so wall times carry its load and "
        "the CPU ratio is the steadier comparison). Whole run: set-up (deployment, "
        "registration, keys) and the report read back from the chain included.")
    goal = ("Goal: in process at most 1.5x the floor at N = 10 and 2x at N = 50 "
            "(the *goal* column; the Anvil row is held to it too), judged on seconds "
            "per round; where CPU seconds per round judge otherwise, the column says "
            "so. The floor and the in-process round keep one core busy at a time, so "
            "on an idle machine their wall and CPU ratios would agree; here the other "
            "work's load moves the wall times of whichever ran while it peaked.")
    notes = []
    for r in rows:
        if r.note:
            notes.append(f"- {MODE_NAMES[r.mode]}, N = {r.n}: {r.note}")
        if r.memory is not None:
            notes.append(
                f"- {MODE_NAMES[r.mode]}, N = {r.n}: at most {r.memory[1]} processes "
                "at once (this one, the node, the parties and their encryption "
                f"workers), peak memory {r.memory[0] / 2**30:.1f} GiB in all "
                f"(proportional set size), {r.memory[2] / 2**30:.1f} GiB from round 2 "
                "on.")
    lines = ["# Seconds per round", "", made, "", setting, "", goal, "",
             *_table(rows, rounds), ""]
    if notes:
        lines += [*notes, ""]
    lines += _phases(rows)
    lines += _breakdown(rows)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"N = 10, {QUICK_ROUNDS} rounds, floor and embedded only")
    parser.add_argument("--rounds", type=int, default=None,
                        help=f"rounds per run (default {ROUNDS}; the first is shown "
                        "apart)")
    parser.add_argument("--sizes", type=int, nargs="*", default=None,
                        help="participant counts N (even; default 10 50)")
    parser.add_argument("--modes", nargs="*", choices=MODES, default=None,
                        help="which rows (default: all four)")
    parser.add_argument("--timeout", type=float, default=3600.0,
                        help="seconds the multi-process run may take (default "
                        "%(default)s)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help="markdown file to write (default: %(default)s)")
    args = parser.parse_args(argv)
    sizes = args.sizes or (QUICK_SIZES if args.quick else SIZES)
    rounds = args.rounds or (QUICK_ROUNDS if args.quick else ROUNDS)
    modes = args.modes or (("floor", "embedded") if args.quick else MODES)
    if any(n < 2 * OWNERS or n % OWNERS for n in sizes):
        parser.error(f"every N must be a multiple of {OWNERS} and at least "
                     f"{2 * OWNERS}")
    if rounds < 2:
        parser.error("at least 2 rounds: the first one is shown apart")
    logging.getLogger("offchain").setLevel(logging.ERROR)

    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    rows = bench(sizes, rounds, modes, args.timeout)
    command = COMMAND + (" --quick" if args.quick else "")
    if args.rounds and args.rounds != (QUICK_ROUNDS if args.quick else ROUNDS):
        command += f" --rounds {args.rounds}"
    if args.sizes:
        command += " --sizes " + " ".join(map(str, sizes))
    if args.modes:
        command += " --modes " + " ".join(modes)
    report = render(rows, command, time.perf_counter() - started, rounds,
                    (load_before, os.getloadavg()[0]))
    print(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    _log(f"written to {args.output}")
    return rows


if __name__ == "__main__":
    main()
