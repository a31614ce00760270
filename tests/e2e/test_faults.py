"""Faults while a task runs, with every party in its own OS process against a real
Anvil node (README, "Every party runs its own part").

Each party is SIGKILLed in each phase of the round protocol where it has something
to do and started again with the same command; a device stays silent after joining,
another stops at its ε budget; the aggregator vanishes for good; the node is stopped
and started again from its state dump. Each time the task ends as the protocol says,
every wei is where it belongs, no party sent a transaction twice (its nonce equals
its successful actions) and no device's ε went backwards.

``pytest tests/e2e/test_faults.py -s`` prints the fault matrix (role x phase: when the
party was killed, when it was started again, whether it did its part);
``FEDSHARE_WRITE_FAULTS=1`` also writes it to ``benchmarks/results/faults.md``.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from offchain.chain.contracts import Fedshare
from offchain.chain.node import Chain, unreachable
from offchain.learning.data import ArrayDataset, DeviceData
from offchain.learning.datafile import load_device_data, save_device_data
from offchain.paths import project_root
from offchain.privacy import AccountantStore, DPConfig, task_epsilon
from offchain.processes import _write_parties, anvil_node
from offchain.protocol.phases import Phase, phase_of
from offchain.protocol.plan import TaskPlan
from offchain.protocol.terms import ETHER, epsilon_from_chain, epsilon_to_chain
from offchain.protocol.types import MemberStatus, RoundStage, TaskStatus
from offchain.runner import RunConfig, Setup, set_up

pytestmark = pytest.mark.anvil

SEED = 20261201
"""Seeds the data split, the model and the instants of the random kills."""

TASK_EVENTS = ("DeviceJoined", "RoundOpened", "UpdateCommitted", "ScoresCommitted",
               "ScoresRevealed", "RoundFinalized", "AggregateSubmitted", "ModelPublished",
               "TaskCompleted", "TaskCancelled")
ORDER = (Phase.NONE, Phase.TRAIN, Phase.VERIFY, Phase.REVEAL, Phase.FINALIZE,
         Phase.AGGREGATE, Phase.PUBLISH, Phase.CLOSED)
"""A round's phases in the order it goes through them."""


# ---------------------------------------------------------------- parties
@dataclass
class Party:
    """One party's command line, as ``fedshare demo --processes`` writes it, run as
    its own OS process in a session of its own, so that a SIGKILL also takes the
    helper processes it started (the Paillier obfuscator workers)."""

    name: str
    kind: str
    address: str
    args: list[str]
    home: Path
    log: Path
    env: dict[str, str]
    process: subprocess.Popen | None = None
    starts: int = 0
    down: bool = False
    """Killed, waiting to be started again."""

    def start(self) -> None:
        self.starts += 1
        self.down = False
        with self.log.open("a") as out:
            out.write(f"----- start {self.starts} -----\n")
            out.flush()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "offchain.cli", *self.args], env=self.env,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.down = True
        with self.log.open("a") as out:
            out.write("----- SIGKILL -----\n")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def tail(self, chars: int = 2500) -> str:
        text = self.log.read_text() if self.log.exists() else ""
        return f"--- {self.name} ({self.log}) ---\n{text[-chars:]}"


class Cluster:
    """Every party of a set-up task, each with its keystore, home and log."""

    def __init__(self, config: RunConfig, setup: Setup, url: str) -> None:
        password = secrets.token_hex(16)
        folder = setup.run_dir / "parties"
        env = {**os.environ, "FEDSHARE_PASSWORD": password, "FEDSHARE_RPC_URL": url,
               "FEDSHARE_DEPLOYMENT": str(setup.run_dir / "deployment.json"),
               "FEDSHARE_EXCHANGE": str(setup.run_dir)}
        env.pop("FEDSHARE_PRIVATE_KEY", None)
        addresses = {"aggregator": setup.aggregator.address,
                     "requester": setup.requester.address}
        addresses.update({config.label(i): w.address for i, w in enumerate(setup.devices)})
        addresses.update({f"o{k + 1}": w.address for k, w in enumerate(setup.owners)})
        self.parties = {
            p.name: Party(p.name, p.args[0], addresses[p.name], p.args, folder / p.name,
                          folder / f"{p.name}.log", env)
            for p in _write_parties(config, setup, folder, password)}
        self.killed: set[str] = set()

    def __getitem__(self, name: str) -> Party:
        return self.parties[name]

    def of_kind(self, kind: str) -> list[Party]:
        return [p for p in self.parties.values() if p.kind == kind]

    def start(self, names: list[str] | None = None) -> None:
        for name in names or list(self.parties):
            self.parties[name].start()

    def kill(self, name: str) -> None:
        self.parties[name].kill()
        self.killed.add(name)

    def check(self) -> None:
        """Fails with its log's tail when a party exited with an error."""
        for party in self.parties.values():
            if not party.down and party.exit_code not in (None, 0):
                pytest.fail(f"{party.name} exited with {party.exit_code}\n"
                            f"{self.tails([party.name])}")

    def finished(self) -> bool:
        started = [p for p in self.parties.values() if p.process is not None]
        return all(p.exit_code == 0 for p in started)

    def stop(self) -> None:
        for party in self.parties.values():
            if party.running:
                party.kill()

    def tails(self, names: list[str] | None = None) -> str:
        chosen = names if names is not None else sorted(self.killed)
        return "\n".join(self.parties[n].tail() for n in chosen)


# ---------------------------------------------------------------- the chain, followed
class Follower:
    """The task as the chain tells it: its events, read block by block as they are
    mined, and the current round's phase at the last read."""

    def __init__(self, fs: Fedshare, task_id: int) -> None:
        self.fs = fs
        self.task_id = task_id
        self.next_block = fs.deployment.block
        self.events: dict[str, list[Any]] = {name: [] for name in TASK_EVENTS}
        self.refunds: list[Any] = []
        self.claims: list[Any] = []
        self.round: int | None = None
        self.phase = Phase.NONE
        self.status = TaskStatus.OPEN
        self.started = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def poll(self) -> None:
        """Reads new events and the round's phase; a node that does not answer (it
        is restarting) leaves everything as it was."""
        try:
            self._poll()
        except Exception as exc:  # noqa: BLE001 - only an unreachable node is ignored
            if not unreachable(exc):
                raise

    def _poll(self) -> None:
        tasks, chain = self.fs.tasks, self.fs.chain
        head = chain.block_number()
        if head >= self.next_block:
            window = {"from_block": self.next_block, "to_block": head}
            fresh = {name: getattr(tasks.events, name)().get_logs(
                argument_filters={"taskId": self.task_id}, **window)
                for name in TASK_EVENTS}
            refunds = tasks.events.RefundWithdrawn().get_logs(**window)
            claims = self.fs.vault.events.RewardWithdrawn().get_logs(**window)
            for name, logs in fresh.items():
                self.events[name] += logs
            self.refunds += refunds
            self.claims += claims
            self.next_block = head + 1
        state = tasks.state(self.task_id)
        self.status = state.status
        self.round = state.current_round
        if self.round is not None:
            info = tasks.round_info(self.task_id, self.round)
            self.phase = phase_of(info, chain.next_timestamp())

    def of(self, name: str, round_: int | None = None, device: str | None = None) -> list:
        return [e for e in self.events[name]
                if (round_ is None or e["args"]["round"] == round_)
                and (device is None or e["args"]["device"] == device)]

    def did(self, name: str, round_: int | None = None, device: str | None = None) -> bool:
        return bool(self.of(name, round_, device))

    def at(self, round_: int, *phases: Phase) -> bool:
        """Round `round_` is the current one and in one of `phases`."""
        return self.round == round_ and self.phase in phases and self.status.live

    def reached(self, round_: int, phase: Phase) -> bool:
        """Round `round_` got to `phase` or beyond (or the task ended)."""
        if not self.status.live:
            return True
        if self.round is None or self.round < round_:
            return False
        return self.round > round_ or ORDER.index(self.phase) >= ORDER.index(phase)

    def where(self) -> str:
        if not self.status.live:
            return self.status.name.lower()
        if self.round is None:
            return "gathering"
        return f"round {self.round} {self.phase.value}"


# ---------------------------------------------------------------- faults
Condition = Callable[[Follower], bool]


def always(follower: Follower) -> bool:
    return True


@dataclass
class Fault:
    """One SIGKILL: of whom, once `when` holds (then after `delay` seconds); the same
    command starts again once `restart` holds; `did(follower, address)` says whether
    the party did the part the phase asks of it."""

    kind: str
    phase: str
    round: int | None
    party: str
    when: Condition
    did: Callable[[Follower, str], bool] | None = None
    restart: Condition = always
    delay: float = 0.0
    fire_at: float | None = None
    killed_at: float | None = None
    killed_where: str = ""
    pending_at_kill: bool | None = None
    exited_before: bool = False
    restarted_at: float | None = None
    restarted_where: str = ""

    @property
    def done(self) -> bool:
        return self.restarted_at is not None

    def advance(self, cluster: Cluster, follower: Follower) -> None:
        """Takes the fault's next step if it is due."""
        party = cluster[self.party]
        if self.fire_at is None:
            if self.when(follower) and (party.running or party.exit_code == 0):
                self.fire_at = time.monotonic() + self.delay
        elif self.killed_at is None:
            if time.monotonic() >= self.fire_at:
                follower.poll()
                self.killed_where = follower.where()
                if self.did is not None:
                    self.pending_at_kill = not self.did(follower, party.address)
                self.exited_before = not party.running
                if not self.exited_before:
                    cluster.kill(self.party)
                self.killed_at = follower.elapsed
        elif self.restarted_at is None and self.restart(follower):
            party.start()
            self.restarted_at = follower.elapsed
            self.restarted_where = follower.where()

    def row(self, cluster: Cluster, follower: Follower) -> str:
        party = cluster[self.party]
        if self.killed_at is None:
            return (f"| {self.kind} | {self.phase} | {_round(self.round)} | {self.party} "
                    f"| not reached | - | NO |")
        if self.exited_before:
            killed = f"{self.killed_at:.1f} s ({self.killed_where}): had already exited"
        else:
            killed = f"{self.killed_at:.1f} s ({self.killed_where})"
            if self.pending_at_kill is not None:
                killed += ": before its part" if self.pending_at_kill else ": after its part"
        restarted = ("-" if self.restarted_at is None
                     else f"{self.restarted_at:.1f} s ({self.restarted_where})")
        return (f"| {self.kind} | {self.phase} | {_round(self.round)} | {self.party} "
                f"| {killed} | {restarted} | {'yes' if self.survived(cluster, follower) else 'NO'} |")

    def survived(self, cluster: Cluster, follower: Follower) -> bool:
        """Started again, exited cleanly, and did its part when the phase has one."""
        party = cluster[self.party]
        ok = self.done and party.exit_code == 0
        if self.did is not None:
            ok = ok and self.did(follower, party.address)
        return ok


def _round(round_: int | None) -> str:
    return "end" if round_ is None else str(round_)


MATRIX_HEADER = ("| role | phase | round | party | killed at (s since the parties started; "
                 "chain phase) | started again at | survived |\n"
                 "|---|---|---|---|---|---|---|")


def run_until_done(cluster: Cluster, follower: Follower, faults: list[Fault], *,
                   timeout: float, step: Callable[[], None] = lambda: None) -> None:
    """Follows the chain, fires the faults when due and waits until every party has
    exited cleanly. Fails with the killed parties' log tails when a party exits with
    an error or the task does not end within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        follower.poll()
        for fault in faults:
            fault.advance(cluster, follower)
        step()
        cluster.check()
        if cluster.finished() and all(f.done or f.fire_at is None for f in faults):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"the parties did not finish within {timeout:.0f} s "
                        f"({follower.where()})\n{cluster.tails(list(cluster.parties))}")
        time.sleep(0.1)


@contextlib.contextmanager
def explained(cluster: Cluster) -> Iterator[None]:
    """Adds the log tails of the parties that were killed to a failing check."""
    try:
        yield
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n\nlogs of the killed parties:\n"
                             f"{cluster.tails()}") from None


# ---------------------------------------------------------------- what must hold after
def tx_sender(fs: Fedshare, log: Any) -> str:
    return str(fs.chain.w3.eth.get_transaction(log["transactionHash"])["from"])


def assert_every_wei_accounted(fs: Fedshare, setup: Setup, plan: TaskPlan,
                               status: TaskStatus) -> dict[str, int]:
    """The task ended in `status`; the owners claimed exactly the rewards paid, the
    requester withdrew exactly the rest of the escrow, both contracts hold nothing."""
    task_id, start = setup.task_id, fs.deployment.block
    assert fs.tasks.state(task_id).status is status
    paid = sum(int(e["args"]["rewardPaid"])
               for e in fs.tasks.logs("RoundFinalized", from_block=start, taskId=task_id))
    credited = sum(int(e["args"]["amount"])
                   for e in fs.vault.logs("RewardCredited", from_block=start))
    owners = {w.address for w in setup.owners}
    claimed = sum(int(e["args"]["amount"])
                  for e in fs.vault.logs("RewardWithdrawn", from_block=start)
                  if e["args"]["to"] in owners)
    refund = sum(int(e["args"]["amount"]) for e in fs.tasks.logs(
        "RefundWithdrawn", from_block=start, requester=setup.requester.address))
    assert credited == paid
    assert claimed == paid, f"owners claimed {claimed} wei, the rounds paid {paid}"
    assert refund == plan.escrow - paid, (f"refund {refund} wei, escrow {plan.escrow} "
                                          f"- paid {paid}")
    assert fs.tasks.refund_of(setup.requester.address) == 0
    assert fs.chain.balance(fs.tasks.address) == fs.tasks.total_held() == 0
    assert fs.chain.balance(fs.vault.address) == fs.vault.total_owed() == 0
    for device in setup.devices:
        assert fs.vault.balance_of(device.address) == 0
    return {"escrow": plan.escrow, "paid": paid, "claimed": claimed, "refund": refund}


def expected_nonces(fs: Fedshare, setup: Setup) -> dict[str, Counter]:
    """Each party's successful actions, by kind, from the events they caused."""
    task_id, start = setup.task_id, fs.deployment.block
    tasks = fs.tasks
    actions: dict[str, Counter] = {}

    def add(address: str, what: str, count: int = 1) -> None:
        actions.setdefault(str(address), Counter())[what] += count

    for name in ("DeviceJoined", "UpdateCommitted", "ScoresCommitted", "ScoresRevealed"):
        for e in tasks.logs(name, from_block=start, taskId=task_id):
            add(e["args"]["device"], name)
    for name in ("RoundOpened", "AggregateSubmitted"):
        add(setup.aggregator.address, name,
            len(tasks.logs(name, from_block=start, taskId=task_id)))
    for name in ("TaskPublished", "ModelPublished"):
        add(setup.requester.address, name,
            len(tasks.logs(name, from_block=start, taskId=task_id)))
    add(setup.requester.address, "RefundWithdrawn", len(tasks.logs(
        "RefundWithdrawn", from_block=start, requester=setup.requester.address)))
    for name in ("RoundFinalized", "TaskCancelled"):
        for e in tasks.logs(name, from_block=start, taskId=task_id):
            add(tx_sender(fs, e), name)
    for owner in setup.owners:
        add(owner.address, "DeviceRegistered", len(fs.devices.logs(
            "DeviceRegistered", from_block=start, owner=owner.address)))
        claims = {e["transactionHash"] for e in fs.vault.logs(
            "RewardWithdrawn", from_block=start, to=owner.address)}
        add(owner.address, "claim", len(claims))
    return actions


def assert_nothing_sent_twice(fs: Fedshare, setup: Setup, cluster: Cluster) -> None:
    """Every party's nonce equals its successful actions: it sent no transaction
    twice and none that reverted."""
    actions = expected_nonces(fs, setup)
    for party in cluster.parties.values():
        did = actions.get(party.address, Counter())
        nonce = fs.chain.nonce_of(party.address)
        assert nonce == sum(did.values()), (
            f"{party.name} sent {nonce} transactions but did {sum(did.values())} "
            f"things: {dict(did)}")


def assert_epsilon_never_decreases(fs: Fedshare, setup: Setup, cluster: Cluster) -> None:
    """Each device's ε on chain rises strictly from round to round, and the
    accountant it saved holds at least the last ε it reported."""
    task_id = setup.task_id
    budget = epsilon_from_chain(fs.tasks.params(task_id).epsilon_budget)
    for party in cluster.of_kind("device"):
        commits = sorted(fs.tasks.logs("UpdateCommitted", from_block=fs.deployment.block,
                                       taskId=task_id, device=party.address),
                         key=lambda e: e["args"]["round"])
        reported = [int(e["args"]["epsilon"]) for e in commits]
        assert all(a < b for a, b in zip(reported, reported[1:])), (
            f"{party.name} reported ε {reported} (micro-ε) over its rounds")
        if not reported:
            continue
        store = AccountantStore(party.home / "state" / f"device-{party.address.lower()}"
                                / f"task-{task_id}" / "privacy")
        saved = store.load(task_id, party.address, delta=DPConfig().delta, budget=budget)
        assert saved is not None, f"{party.name} reported ε but saved no accountant"
        assert epsilon_to_chain(saved.epsilon) >= reported[-1], (
            f"{party.name} saved ε {saved.epsilon}, reported {reported[-1]} micro-ε")


def report(title: str, rows: list[str], lines: list[str]) -> str:
    text = "\n".join([f"## {title}", "", MATRIX_HEADER, *rows, "", *lines, ""])
    print("\n" + text)
    return text


def write_results(sections: list[str]) -> None:
    """benchmarks/results/faults.md, only when FEDSHARE_WRITE_FAULTS=1."""
    if os.environ.get("FEDSHARE_WRITE_FAULTS") != "1":
        return
    path = project_root() / "benchmarks" / "results" / "faults.md"
    header = ("# Faults while a task runs\n\n"
              "Written by `FEDSHARE_WRITE_FAULTS=1 pytest tests/e2e/test_faults.py -s` "
              "(every party its own OS process, a real Anvil node).\n")
    path.write_text("\n".join([header, *sections]))


# ---------------------------------------------------------------- set-up
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare(url: str, tmp_path: Path, plan: TaskPlan, *, devices: int = 3,
            ) -> tuple[RunConfig, Setup, Cluster, Follower]:
    config = RunConfig(owners=1, devices_per_owner=devices, plan=plan, key_bits=512,
                       insecure_test_key=True, seed=SEED % 1000, home=tmp_path)
    setup = set_up(config, chain=Chain.connect(url))
    cluster = Cluster(config, setup, url)
    return config, setup, cluster, Follower(setup.fs, setup.task_id)


@pytest.fixture(scope="module")
def sections() -> Iterator[list[str]]:
    """The matrices this module's tests print; written to benchmarks/results/faults.md
    at the end when FEDSHARE_WRITE_FAULTS=1."""
    found: list[str] = []
    yield found
    if found:
        write_results(found)


# ---------------------------------------------------------------- 1. the kill matrix
MATRIX_PLAN = TaskPlan(rounds=4, reward_per_round=ETHER // 2, min_participants=3,
                       max_participants=3, train_duration=90, verify_duration=45,
                       reveal_duration=45, grace_period=60)


def kill_plan(cluster: Cluster, rng: random.Random) -> list[Fault]:
    """Every role killed in every phase where it acts, across the task's rounds,
    then a few parties at random instants."""
    a, b, c = (p.name for p in cluster.of_kind("device"))
    addr = {name: cluster[name].address for name in cluster.parties}

    def event(name: str, round_: int, device: str | None = None) -> Condition:
        return lambda f: f.did(name, round_, addr[device] if device else None)

    def mine(name: str, round_: int) -> Callable[[Follower, str], bool]:
        return lambda f, address: f.did(name, round_, address)

    def any_(name: str, round_: int) -> Callable[[Follower, str], bool]:
        return lambda f, address: f.did(name, round_)

    faults: list[Fault] = []
    add = faults.append
    # Round 0: a device while it trains; the aggregator down from the train phase
    # until its round can be finalised; the requester while it decrypts and publishes.
    add(Fault("device", "train", 0, a, when=lambda f: f.at(0, Phase.TRAIN),
              delay=rng.uniform(2.0, 8.0), did=mine("UpdateCommitted", 0)))
    add(Fault("aggregator", "finalise", 0, "aggregator",
              when=lambda f: f.at(0, Phase.TRAIN) and faults[0].done,
              restart=lambda f: f.reached(0, Phase.FINALIZE),
              did=any_("RoundFinalized", 0)))
    add(Fault("requester", "publish", 0, "requester",
              when=event("AggregateSubmitted", 0), did=any_("ModelPublished", 0)))
    # Round 1: a device killed after its commit, down when scoring starts; one killed
    # while it scores; one killed between its score commitment and the reveal phase
    # (it must reveal with the salt it saved); the aggregator while it aggregates.
    add(Fault("device", "verify", 1, a,
              when=lambda f: f.at(1, Phase.TRAIN) and f.did("UpdateCommitted", 1, addr[a]),
              restart=lambda f: f.reached(1, Phase.VERIFY), did=mine("ScoresCommitted", 1)))
    add(Fault("device", "verify", 1, b,
              when=lambda f: f.at(1, Phase.VERIFY), did=mine("ScoresCommitted", 1)))
    add(Fault("device", "reveal", 1, c,
              when=lambda f: f.at(1, Phase.VERIFY) and f.did("ScoresCommitted", 1, addr[c]),
              restart=lambda f: f.reached(1, Phase.REVEAL), did=mine("ScoresRevealed", 1)))
    add(Fault("aggregator", "aggregate", 1, "aggregator",
              when=event("RoundFinalized", 1), did=any_("AggregateSubmitted", 1)))
    # Round 2 opens while the aggregator is down.
    add(Fault("aggregator", "open", 2, "aggregator",
              when=event("AggregateSubmitted", 1),
              restart=event("ModelPublished", 1), did=any_("RoundOpened", 2)))
    # The end: the requester around its refund, the owner before its claim.
    add(Fault("requester", "refund", None, "requester",
              when=lambda f: f.status is TaskStatus.COMPLETED,
              did=lambda f, address: bool(f.refunds)))
    add(Fault("owner", "claim", None, "o1",
              when=lambda f: f.status is TaskStatus.COMPLETED,
              did=lambda f, address: any(e["args"]["to"] == address for e in f.claims)))
    # Random instants of rounds 2 and 3.
    names = sorted(cluster.parties)
    for round_ in (2, 3, 3):
        name = rng.choice(names)
        add(Fault(cluster[name].kind, "random", round_, name,
                  when=lambda f, r=round_: f.reached(r, Phase.TRAIN),
                  delay=rng.uniform(0.0, 30.0)))
    return faults


def test_every_party_killed_in_every_phase_resumes_and_the_task_completes(
        anvil_url, tmp_path, sections):
    plan = MATRIX_PLAN
    config, setup, cluster, follower = prepare(anvil_url, tmp_path, plan)
    fs = setup.fs
    faults = kill_plan(cluster, random.Random(SEED))
    started = time.monotonic()
    try:
        cluster.start()
        follower.started = time.monotonic()
        run_until_done(cluster, follower, faults, timeout=900)
    finally:
        cluster.stop()
    follower.poll()
    rows = [f.row(cluster, follower) for f in faults]
    with explained(cluster):
        money = assert_every_wei_accounted(fs, setup, plan, TaskStatus.COMPLETED)
        assert_nothing_sent_twice(fs, setup, cluster)
        assert_epsilon_never_decreases(fs, setup, cluster)
        finalisers = {tx_sender(fs, e) for e in follower.events["RoundFinalized"]}
        sections.append(report(
            f"Kill matrix: {plan.rounds} rounds, 3 devices, 1 owner",
            rows, [f"- seed {SEED}; {sum(p.starts - 1 for p in cluster.parties.values())} "
                   f"restarts; {time.monotonic() - started:.0f} s in all",
                   f"- escrow {money['escrow']} wei = paid {money['paid']} (claimed "
                   f"{money['claimed']}) + refund {money['refund']}",
                   f"- rounds finalised by: {sorted(finalisers)}"]))
        for fault in faults:
            assert fault.survived(cluster, follower), (
                f"{fault.party} killed in {fault.phase} did not resume:\n{fault.row(cluster, follower)}\n"
                f"{cluster.tails([fault.party])}")
        assert finalisers == {setup.aggregator.address}
