"""Faults while a task runs, with every party in its own OS process against a real
Anvil node (README, "Every party runs its own part").

Each party is SIGKILLed in each phase of the round protocol where it has something
to do, and at random instants, and started again with the same command; the node is
stopped and started again from its state dump; a device stays silent after joining
and others stop at their ε budget; the aggregator vanishes for good. Each time the
task ends as the protocol says, every wei is where it belongs, no party sent a
transaction twice or one that reverted (its nonce equals its successful actions) and
no device's ε went backwards.

``pytest tests/e2e/test_faults.py -m anvil -s`` prints each fault matrix (role x
phase: when the party was killed, when it was started again, whether it then did its
part); ``FEDSHARE_WRITE_FAULTS=1`` also writes them to
``benchmarks/results/faults.md``.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import pytest
from eth_utils import event_abi_to_log_topic

from offchain.chain.contracts import Fedshare
from offchain.chain.node import Chain, unreachable
from offchain.devnodes import anvil_node, free_port
from offchain.learning.data import ArrayDataset, DeviceData
from offchain.learning.datafile import load_device_data, save_device_data
from offchain.paths import project_root
from offchain.privacy import AccountantStore, DPConfig, task_epsilon
from offchain.processes import _write_parties
from offchain.protocol.phases import Phase, phase_of
from offchain.protocol.plan import TaskPlan
from offchain.protocol.terms import ETHER, epsilon_from_chain, epsilon_to_chain
from offchain.protocol.types import MemberStatus, RoundStage, TaskStatus
from offchain.roles.base import CANCEL_SLACK
from offchain.runner import RunConfig, Setup, set_up

# The kill matrix and the node that is down at start run by default; the silent and
# spent devices and the vanished aggregator (minutes of deadlines each) in the slow
# suite.
pytestmark = pytest.mark.anvil

SEED = 20261201
"""Seeds the data split, the model, training noise and the random kills."""

TASK_EVENTS = ("DeviceJoined", "RoundOpened", "UpdateCommitted", "ScoresCommitted",
               "ScoresRevealed", "RoundFinalized", "AggregateSubmitted",
               "ModelPublished", "TaskCompleted", "TaskCancelled")
ORDER = (Phase.NONE, Phase.TRAIN, Phase.VERIFY, Phase.REVEAL, Phase.FINALIZE,
         Phase.AGGREGATE, Phase.PUBLISH, Phase.CLOSED)
"""A round's phases in the order it goes through them."""
BOOT = 30.0
"""Seconds a party's process may take, on a busy machine, from its start to its
first request to the node."""


# ---------------------------------------------------------------- parties
@dataclass
class Party:
    """One party's command line, as ``fedshare demo --processes`` writes it, run as
    its own OS process in a session of its own, so that a SIGKILL also takes the
    helper processes it started (Paillier obfuscator workers)."""

    name: str
    kind: str
    address: str
    args: list[str]
    home: Path
    log: Path
    env: dict[str, str]
    process: subprocess.Popen | None = None
    starts: int = 0
    started_at: float = 0.0
    down: bool = False
    """Killed and not started again (yet)."""
    gone: bool = False
    """Killed for good."""

    def start(self) -> None:
        self.starts += 1
        self.down = False
        self.started_at = time.monotonic()
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
    """Every party of a set-up task with its keystore, home, log and command."""

    def __init__(self, config: RunConfig, setup: Setup, url: str) -> None:
        password = secrets.token_hex(16)
        folder = setup.run_dir / "parties"
        env = {**os.environ, "FEDSHARE_PASSWORD": password, "FEDSHARE_RPC_URL": url,
               "FEDSHARE_DEPLOYMENT": str(setup.run_dir / "deployment.json"),
               "FEDSHARE_EXCHANGE": str(setup.run_dir)}
        env.pop("FEDSHARE_PRIVATE_KEY", None)
        addresses = {"aggregator": setup.aggregator.address,
                     "requester": setup.requester.address}
        for i, wallet in enumerate(setup.devices):
            addresses[config.label(i)] = wallet.address
        for k, wallet in enumerate(setup.owners):
            addresses[f"o{k + 1}"] = wallet.address
        self.parties = {
            p.name: Party(p.name, p.args[0], addresses[p.name], p.args,
                          folder / p.name, folder / f"{p.name}.log", env)
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

    def connected(self, follower: Follower) -> bool:
        """Every running party is past its start-up: it acted on chain since it
        started, or started more than BOOT seconds ago."""
        now = time.monotonic()
        return all(now - p.started_at >= BOOT
                   or follower.acted.get(p.address, -1.0) > p.started_at
                   for p in self.parties.values() if p.running)

    def check(self) -> None:
        """Fails with its log's tail when a party exited with an error."""
        for party in self.parties.values():
            if not party.down and party.exit_code not in (None, 0):
                pytest.fail(f"{party.name} exited with {party.exit_code}\n"
                            f"{party.tail()}")

    def finished(self) -> bool:
        """Every party started (and not gone for good) exited cleanly."""
        return all(p.exit_code == 0 for p in self.parties.values()
                   if p.process is not None and not p.gone)

    def stop(self) -> None:
        for party in self.parties.values():
            if party.running:
                party.kill()

    def tails(self, names: list[str] | None = None) -> str:
        chosen = sorted(self.killed) if names is None else names
        return "\n".join(self.parties[n].tail() for n in chosen)


class Node:
    """An Anvil node on a fixed port that keeps its state across restarts: stopped
    (SIGTERM) it dumps its state to `state`, from which it starts again."""

    def __init__(self, state: Path) -> None:
        self.port = free_port()
        self.state = state
        self._running: contextlib.AbstractContextManager[str] | None = None

    def start(self) -> str:
        self._running = anvil_node(port=self.port, state=self.state)
        return self._running.__enter__()

    def stop(self) -> None:
        running, self._running = self._running, None
        if running is not None:
            running.__exit__(None, None, None)

    @property
    def up(self) -> bool:
        return self._running is not None


# ---------------------------------------------------------------- the chain, followed
class Follower:
    """The task as the chain tells it: its events, read block by block as they are
    mined (and who acted when), and the current round's phase at the last read."""

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
        self.head = -1
        self.head_since = time.monotonic()
        self.acted: dict[str, float] = {}
        """When (monotonic) each address was last seen acting on chain."""
        state = fs.tasks.state(task_id)
        self._actors = {"RoundOpened": state.aggregator,
                        "AggregateSubmitted": state.aggregator,
                        "ModelPublished": state.requester}
        self._decoders = {
            event_abi_to_log_topic(abi): getattr(client.events, abi["name"])()
            for client in (fs.tasks, fs.vault) for abi in client.contract.abi
            if abi["type"] == "event"}

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def poll(self) -> None:
        """Reads new events and the round's phase; while the node does not answer
        (it is restarting) everything stays as it was."""
        try:
            self._poll()
        except Exception as exc:  # noqa: BLE001 - only an unreachable node is ignored
            if not unreachable(exc):
                raise

    def _poll(self) -> None:
        tasks, chain = self.fs.tasks, self.fs.chain
        head = chain.block_number()
        if head != self.head:
            self.head, self.head_since = head, time.monotonic()
        if head >= self.next_block:
            logs = chain.w3.eth.get_logs({
                "address": [tasks.address, self.fs.vault.address],
                "fromBlock": self.next_block, "toBlock": head})
            for log in logs:
                self._add(log)
            self.next_block = head + 1
        state = tasks.state(self.task_id)
        self.status = state.status
        self.round = state.current_round
        if self.round is not None:
            info = tasks.round_info(self.task_id, self.round)
            self.phase = phase_of(info, chain.next_timestamp())

    def _add(self, log: Any) -> None:
        decoder = self._decoders.get(bytes(log["topics"][0]))
        if decoder is None:
            return
        event = decoder.process_log(log)
        name, args = event["event"], event["args"]
        if name == "RefundWithdrawn":
            self.refunds.append(event)
        elif name == "RewardWithdrawn":
            self.claims.append(event)
        elif name in self.events and args["taskId"] == self.task_id:
            self.events[name].append(event)
            actor = args.get("device") or self._actors.get(name)
            if actor is not None:
                self.acted[str(actor)] = time.monotonic()

    def of(self, name: str, round_: int | None = None,
           device: str | None = None) -> list[Any]:
        return [e for e in self.events[name]
                if (round_ is None or e["args"]["round"] == round_)
                and (device is None or e["args"]["device"] == device)]

    def did(self, name: str, round_: int | None = None,
            device: str | None = None) -> bool:
        return bool(self.of(name, round_, device))

    def deadline(self, round_: int, which: str) -> int:
        """The round's `which` deadline (commitDeadline, verifyDeadline,
        revealDeadline) from its RoundOpened event."""
        opened = self.of("RoundOpened", round_)
        return int(opened[0]["args"][which]) if opened else 2**64

    def at(self, round_: int, *phases: Phase) -> bool:
        """Round `round_` is the current one and in one of `phases`."""
        return self.status.live and self.round == round_ and self.phase in phases

    def reached(self, round_: int, phase: Phase) -> bool:
        """Round `round_` got to `phase` or beyond, or the task ended."""
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
Did = Callable[[Follower, str], bool]
Who = Union[str, Callable[[Follower, Cluster], Union[str, None]]]


def always(follower: Follower) -> bool:
    return True


@dataclass
class Fault:
    """One SIGKILL of a party (`who`: its name, or a choice made once `when`
    holds), `delay` seconds after `when` holds. The same command starts again once
    `restart` holds, or never (None). `did(follower, address)` says whether the
    party did what the phase asks of it."""

    role: str
    phase: str
    round: int | None
    who: Who
    when: Condition
    did: Did | None = None
    restart: Condition | None = always
    delay: float = 0.0
    party: str | None = None
    fire_at: float | None = None
    killed_at: float | None = None
    killed_where: str = ""
    pending: bool | None = None
    exited_before: bool = False
    restarted_at: float | None = None
    restarted_where: str = ""

    @property
    def settled(self) -> bool:
        """Fired and, unless it is for good, started again."""
        return self.killed_at is not None and (
            self.restart is None or self.restarted_at is not None)

    def advance(self, cluster: Cluster, follower: Follower) -> None:
        """Takes the fault's next step when it is due."""
        if self.fire_at is None:
            if not self.when(follower):
                return
            who = self.who
            name = who if isinstance(who, str) else who(follower, cluster)
            if name is not None:
                self.party, self.fire_at = name, time.monotonic() + self.delay
        elif self.killed_at is None:
            if time.monotonic() >= self.fire_at and not self._down(cluster):
                follower.poll()
                self.killed_where = follower.where()
                self._kill(cluster, follower)
                self.killed_at = follower.elapsed
        elif self.restart is not None and self.restarted_at is None \
                and self.restart(follower):
            self._start(cluster)
            self.restarted_at = follower.elapsed
            follower.poll()
            self.restarted_where = follower.where()

    def _down(self, cluster: Cluster) -> bool:
        assert self.party is not None
        return cluster[self.party].down

    def _kill(self, cluster: Cluster, follower: Follower) -> None:
        assert self.party is not None
        party = cluster[self.party]
        if self.did is not None:
            self.pending = not self.did(follower, party.address)
        self.exited_before = not party.running
        if not self.exited_before:
            cluster.kill(self.party)
            party.gone = self.restart is None

    def _start(self, cluster: Cluster) -> None:
        assert self.party is not None
        cluster.start([self.party])

    def survived(self, cluster: Cluster, follower: Follower) -> bool:
        """Started again, exited cleanly, and did its part where the phase has
        one."""
        if self.killed_at is None or self.party is None:
            return False
        if self.restart is None:
            return True
        party = cluster[self.party]
        ok = self.restarted_at is not None and party.exit_code == 0
        return ok and (self.did is None or self.did(follower, party.address))

    def row(self, cluster: Cluster, follower: Follower) -> str:
        round_ = "end" if self.round is None else str(self.round)
        cells = [self.role, self.phase, round_, self.party or "-"]
        if self.killed_at is None:
            return "| " + " | ".join([*cells, "not reached", "-", "NO"]) + " |"
        killed = f"{self.killed_at:.1f} s, {self.killed_where}"
        if self.exited_before:
            killed += ", had already exited"
        elif self.pending is not None:
            killed += ", before its part" if self.pending else ", after its part"
        if self.restart is None:
            again, survived = "never (gone for good)", "-"
        else:
            again = ("-" if self.restarted_at is None
                     else f"{self.restarted_at:.1f} s, {self.restarted_where}")
            survived = "yes" if self.survived(cluster, follower) else "NO"
        return "| " + " | ".join([*cells, killed, again, survived]) + " |"


@dataclass
class NodeRestart(Fault):
    """The node stopped with SIGTERM (it dumps its state) and, `downtime` seconds
    later, started again on the same port from that state."""

    node: Node | None = None
    downtime: float = 4.0

    def __post_init__(self) -> None:
        self.restart = self._after_downtime

    def _after_downtime(self, follower: Follower) -> bool:
        return self.killed_at is not None and \
            follower.elapsed - self.killed_at >= self.downtime

    def _down(self, cluster: Cluster) -> bool:
        return False

    def _kill(self, cluster: Cluster, follower: Follower) -> None:
        assert self.node is not None
        self.node.stop()

    def _start(self, cluster: Cluster) -> None:
        assert self.node is not None
        self.node.start()

    def survived(self, cluster: Cluster, follower: Follower) -> bool:
        return self.restarted_at is not None and self.node is not None \
            and self.node.up


class NoBlocks(AssertionError):
    """The task is live but no block was mined for longer than any phase lasts:
    every party waits for a chain that does not move."""


def run_until_done(cluster: Cluster, follower: Follower, faults: list[Fault], *,
                   timeout: float, idle_limit: float) -> None:
    """Follows the chain and fires the faults when due, until every party has
    exited cleanly. Fails with the log tail of a party that exits with an error;
    with every log's tail when the task does not end within `timeout` seconds, and
    (NoBlocks) when no block is mined for `idle_limit` seconds of a live task."""
    deadline = time.monotonic() + timeout
    while True:
        follower.poll()
        for fault in faults:
            fault.advance(cluster, follower)
        cluster.check()
        if cluster.finished() and all(f.settled or f.fire_at is None for f in faults):
            return
        idle = time.monotonic() - follower.head_since
        if follower.status.live and idle > idle_limit:
            raise NoBlocks(f"no block was mined for {idle:.0f} s ({follower.where()}): "
                           f"the parties are stuck\n"
                           f"{cluster.tails(list(cluster.parties))}")
        if time.monotonic() > deadline:
            pytest.fail(f"the parties did not finish within {timeout:.0f} s "
                        f"({follower.where()})\n{cluster.tails(list(cluster.parties))}")
        time.sleep(0.05)


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
    """The task ended in `status`; the owners claimed exactly the rewards the
    rounds paid, the requester withdrew exactly the rest of the escrow, and neither
    contract holds a wei. Returns the breakdown."""
    task_id, start, tasks = setup.task_id, fs.deployment.block, fs.tasks
    assert tasks.state(task_id).status is status
    paid = sum(int(e["args"]["rewardPaid"])
               for e in tasks.logs("RoundFinalized", from_block=start, taskId=task_id))
    credited = sum(int(e["args"]["amount"])
                   for e in fs.vault.logs("RewardCredited", from_block=start))
    owners = {w.address for w in setup.owners}
    claimed = sum(int(e["args"]["amount"])
                  for e in fs.vault.logs("RewardWithdrawn", from_block=start)
                  if e["args"]["to"] in owners)
    refund = sum(int(e["args"]["amount"]) for e in tasks.logs(
        "RefundWithdrawn", from_block=start, requester=setup.requester.address))
    assert credited == paid, f"the vault got {credited} wei, the rounds paid {paid}"
    assert claimed == paid, f"the owners claimed {claimed} wei, the rounds paid {paid}"
    assert refund == plan.escrow - paid, (
        f"the requester withdrew {refund} wei of escrow {plan.escrow} - paid {paid}")
    assert tasks.refund_of(setup.requester.address) == 0
    assert fs.chain.balance(tasks.address) == tasks.total_held() == 0
    assert fs.chain.balance(fs.vault.address) == fs.vault.total_owed() == 0
    for device in setup.devices:
        assert fs.vault.balance_of(device.address) == 0
    return {"escrow": plan.escrow, "paid": paid, "claimed": claimed, "refund": refund}


def successful_actions(fs: Fedshare, setup: Setup) -> dict[str, Counter]:
    """What each address did, by kind, from the events its transactions left."""
    task_id, start, tasks = setup.task_id, fs.deployment.block, fs.tasks
    actions: dict[str, Counter] = {}

    def add(address: str, what: str, count: int = 1) -> None:
        actions.setdefault(str(address), Counter())[what] += count

    for name in ("DeviceJoined", "UpdateCommitted", "ScoresCommitted",
                 "ScoresRevealed"):
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


def sent_by(fs: Fedshare, address: str) -> list[str]:
    """Every transaction `address` sent since the deployment: block, nonce,
    function and outcome (reads every block: for failure messages)."""
    w3 = fs.chain.w3
    contracts = {c.address: c.contract
                 for c in (fs.tasks, fs.vault, fs.devices, fs.models)}
    lines = []
    for number in range(fs.deployment.block, w3.eth.block_number + 1):
        block = w3.eth.get_block(number, full_transactions=True)
        for tx in block["transactions"]:
            if tx["from"] != address:
                continue
            ok = w3.eth.get_transaction_receipt(tx["hash"])["status"] == 1
            contract = contracts.get(tx["to"])
            name = "?" if contract is None else \
                contract.decode_function_input(tx["input"])[0].fn_name
            lines.append(f"  block {number} (t={block['timestamp']}) nonce "
                         f"{tx['nonce']} {name}: {'ok' if ok else 'REVERTED'}")
    return lines


def assert_nothing_sent_twice(fs: Fedshare, setup: Setup, cluster: Cluster) -> None:
    """Every party's nonce equals its successful actions: it sent no transaction
    twice and none that reverted."""
    actions = successful_actions(fs, setup)
    for party in cluster.parties.values():
        did = actions.get(party.address, Counter())
        nonce = fs.chain.nonce_of(party.address)
        if nonce != sum(did.values()):
            sent = "\n".join(sent_by(fs, party.address))
            raise AssertionError(
                f"{party.name} sent {nonce} transactions but did "
                f"{sum(did.values())} things: {dict(did)}; what it sent:\n{sent}\n"
                f"{party.tail()}")


def device_dir(party: Party, task_id: int) -> Path:
    """Where a device keeps its state for the task (journal, state, accountant)."""
    return party.home / "state" / f"device-{party.address.lower()}" / f"task-{task_id}"


def device_state(party: Party, task_id: int) -> dict[str, Any]:
    """The state a device saved for the task (what it sent, its scores, salts)."""
    path = device_dir(party, task_id) / "state.json"
    return json.loads(path.read_text()) if path.exists() else {}


def saved_epsilon(fs: Fedshare, setup: Setup, party: Party) -> float | None:
    """The ε of the accountant the device saved in its state directory."""
    task_id = setup.task_id
    budget = epsilon_from_chain(fs.tasks.params(task_id).epsilon_budget)
    store = AccountantStore(device_dir(party, task_id) / "privacy")
    saved = store.load(task_id, party.address, delta=DPConfig().delta, budget=budget)
    return None if saved is None else saved.epsilon


def assert_epsilon_never_decreases(fs: Fedshare, setup: Setup,
                                   cluster: Cluster) -> None:
    """Each device's ε on chain rises strictly from round to round within the
    task's budget, and the accountant it saved holds at least the last ε it
    reported."""
    task_id = setup.task_id
    budget = fs.tasks.params(task_id).epsilon_budget
    for party in cluster.of_kind("device"):
        commits = sorted(fs.tasks.logs("UpdateCommitted",
                                       from_block=fs.deployment.block,
                                       taskId=task_id, device=party.address),
                         key=lambda e: e["args"]["round"])
        reported = [int(e["args"]["epsilon"]) for e in commits]
        assert all(a < b for a, b in zip(reported, reported[1:])), (
            f"{party.name} reported ε {reported} (micro-ε) over its rounds")
        assert all(e <= budget for e in reported)
        if reported:
            saved = saved_epsilon(fs, setup, party)
            assert saved is not None, f"{party.name} saved no accountant"
            assert epsilon_to_chain(saved) >= reported[-1], (
                f"{party.name} saved ε {saved}, reported {reported[-1]} micro-ε")


# ---------------------------------------------------------------- set-up and report
def prepare(url: str, tmp_path: Path, plan: TaskPlan, *, devices: int = 3
            ) -> tuple[Setup, Cluster, Follower]:
    """A deployed system with a published task (512-bit test Paillier key) and
    every party's command, for one owner of `devices` devices."""
    config = RunConfig(owners=1, devices_per_owner=devices, plan=plan, key_bits=512,
                       insecure_test_key=True, seed=SEED % 1000, home=tmp_path)
    setup = set_up(config, chain=Chain.connect(url))
    return setup, Cluster(config, setup, url), Follower(setup.fs, setup.task_id)


def run(cluster: Cluster, follower: Follower, faults: list[Fault], *,
        idle_limit: float, names: list[str] | None = None,
        timeout: float = 900) -> None:
    """Starts the parties (`names`, or all) and runs them through `faults`."""
    try:
        cluster.start(names)
        follower.started = time.monotonic()
        run_until_done(cluster, follower, faults, timeout=timeout,
                       idle_limit=idle_limit)
    finally:
        cluster.stop()
    follower.poll()


MATRIX_HEADER = ("| role | phase | round | party | killed at (s after the parties "
                 "started, chain) | started again at | survived |\n"
                 "|---|---|---|---|---|---|---|")


def report(title: str, faults: list[Fault], cluster: Cluster,
           follower: Follower) -> str:
    """The fault matrix as a markdown section, printed (shown with -s)."""
    rows = [f.row(cluster, follower) for f in faults]
    restarts = sum(max(p.starts - 1, 0) for p in cluster.parties.values())
    text = "\n".join([f"## {title}", "", MATRIX_HEADER, *rows, "",
                      f"- {restarts} restarts of parties; the parties ran "
                      f"{follower.elapsed:.0f} s", ""])
    print("\n" + text, end="")
    return text


def note(line: str) -> str:
    """One more line under the matrix just printed."""
    print(f"- {line}")
    return f"- {line}\n"


def assert_every_fault_survived(faults: list[Fault], cluster: Cluster,
                                follower: Follower) -> None:
    for fault in faults:
        tail = cluster.tails([fault.party]) if fault.party in cluster.parties else ""
        assert fault.survived(cluster, follower), (
            f"{fault.party} killed in {fault.phase} did not resume:\n{MATRIX_HEADER}\n"
            f"{fault.row(cluster, follower)}\n{tail}")


@pytest.fixture(scope="module")
def sections() -> Iterator[list[str]]:
    """The matrices of this module's tests that passed; written to
    benchmarks/results/faults.md at the end when FEDSHARE_WRITE_FAULTS=1."""
    found: list[str] = []
    yield found
    if found and os.environ.get("FEDSHARE_WRITE_FAULTS") == "1":
        path = project_root() / "benchmarks" / "results" / "faults.md"
        path.write_text("\n".join([
            "# Faults while a task runs", "",
            "Written by `FEDSHARE_WRITE_FAULTS=1 .venv/bin/pytest "
            "tests/e2e/test_faults.py -m anvil -s`: every party its own OS process "
            f"(`fedshare ... run`), a real Anvil node, 512-bit test Paillier key, seed "
            f"{SEED}. Times are seconds after the parties started; \"chain\" is the "
            "task's state when the fault hit; \"before/after its part\" says whether "
            "the party had already done what the phase asks of it.", "", *found]))


# ---------------------------------------------------------------- 1, 4. kill matrix
MATRIX_PLAN = TaskPlan(rounds=3, reward_per_round=ETHER // 2, min_participants=3,
                       max_participants=3, train_duration=60, verify_duration=20,
                       reveal_duration=20, grace_period=60)


def its(name: str, round_: int) -> Did:
    """The party's own `name` event of `round_` is on chain."""
    return lambda f, address: f.did(name, round_, address)


def happened(name: str, round_: int) -> Did:
    """The round's `name` event is on chain (whoever sent it)."""
    return lambda f, address: f.did(name, round_)


def kill_plan(cluster: Cluster, node: Node, rng: random.Random) -> list[Fault]:
    """Every role killed in every phase where it acts, across the task's rounds,
    and at random instants; the node restarted twice."""
    devices = [p.name for p in cluster.of_kind("device")]
    owner = cluster.of_kind("owner")[0].name

    def device(f: Follower, c: Cluster, *, scored: bool) -> str | None:
        """A running device that has (not) committed its scores of the round."""
        for name in devices:
            if c[name].running and not c[name].down and \
                    f.did("ScoresCommitted", f.round, c[name].address) == scored:
                return name
        return None

    def random_kill(round_: int, longest: float) -> Fault:
        name = rng.choice([*devices, "requester"])
        return Fault(cluster[name].kind, "random", round_, name,
                     when=lambda f: f.reached(round_, Phase.TRAIN),
                     delay=rng.uniform(0.0, longest))

    faults: list[Fault] = []
    add = faults.append
    # Round 0: a device while it trains; the aggregator down from the train phase
    # until the round can be finalised; the requester while it decrypts and
    # publishes; the aggregator down when the next round is due to open.
    add(Fault("device", "train", 0, devices[0], when=lambda f: f.at(0, Phase.TRAIN),
              delay=rng.uniform(2.0, 8.0), did=its("UpdateCommitted", 0)))
    add(Fault("aggregator", "finalise", 0, "aggregator",
              when=lambda f: f.at(0, Phase.TRAIN) and faults[0].settled,
              restart=lambda f: f.reached(0, Phase.FINALIZE),
              did=happened("RoundFinalized", 0)))
    add(Fault("requester", "publish", 0, "requester",
              when=lambda f: f.did("AggregateSubmitted", 0),
              did=happened("ModelPublished", 0)))
    add(Fault("aggregator", "open", 1, "aggregator",
              when=lambda f: f.did("AggregateSubmitted", 0),
              restart=lambda f: f.did("ModelPublished", 0),
              did=happened("RoundOpened", 1)))
    add(random_kill(0, 10.0))
    # Round 1: the node, once every party is connected (while the devices train);
    # a device while it scores; another between its score commitment and the
    # reveal phase (it must reveal with the salt it saved).
    first = NodeRestart("node", "restart", 1, "anvil", node=node,
                        when=lambda f: f.reached(1, Phase.TRAIN)
                        and cluster.connected(f), delay=rng.uniform(0.5, 3.0))
    add(first)
    add(Fault("device", "verify", 1, lambda f, c: device(f, c, scored=False),
              when=lambda f: f.at(1, Phase.VERIFY), did=its("ScoresCommitted", 1)))
    add(Fault("device", "reveal", 1, lambda f, c: device(f, c, scored=True),
              when=lambda f: f.at(1, Phase.VERIFY),
              restart=lambda f: f.reached(1, Phase.REVEAL),
              did=its("ScoresRevealed", 1)))
    # Round 2: the aggregator down from the verify phase; past the reveal deadline
    # a device or the requester finalises in its place (the node restarts just
    # then), and the aggregator, back, aggregates.
    add(Fault("aggregator", "aggregate", 2, "aggregator",
              when=lambda f: f.at(2, Phase.VERIFY),
              restart=lambda f: f.reached(2, Phase.AGGREGATE),
              did=happened("AggregateSubmitted", 2)))
    second = NodeRestart(
        "node", "restart", 2, "anvil", node=node,
        when=lambda f: f.at(2, Phase.FINALIZE) and cluster.connected(f)
        and time.time() >= f.deadline(2, "revealDeadline") - 1)
    add(second)
    add(random_kill(2, 10.0))
    # The end: the requester after completing the task (around its refund), the
    # owner before its claim.
    add(Fault("requester", "end", None, "requester",
              when=lambda f: f.status is TaskStatus.COMPLETED,
              did=lambda f, address: f.fs.tasks.refund_of(address) == 0))
    add(Fault("owner", "claim", None, owner,
              when=lambda f: f.status is TaskStatus.COMPLETED,
              did=lambda f, address: any(e["args"]["to"] == address
                                         for e in f.claims)))
    # Nobody is started again while the node is down or about to go down (a party
    # started while the node is down exits: see
    # test_a_party_started_while_the_node_is_down_waits_for_it).
    for fault in faults:
        if not isinstance(fault, NodeRestart) and fault.restart is not None:
            fault.restart = lambda f, again=fault.restart: node.up and again(f) and \
                all(r.fire_at is None or r.settled for r in (first, second))
    return faults


def test_parties_killed_in_every_phase_and_node_restarts_leave_the_task_exact(
        tmp_path, sections):
    node = Node(tmp_path / "anvil-state.json")
    url = node.start()
    try:
        plan = MATRIX_PLAN
        setup, cluster, follower = prepare(url, tmp_path, plan)
        fs = setup.fs
        faults = kill_plan(cluster, node, random.Random(SEED))
        # The longest wait without a block: round 2's, until its reveal deadline.
        span = plan.train_duration + plan.verify_duration + plan.reveal_duration
        run(cluster, follower, faults, idle_limit=span + 30)

        text = report(f"Kill matrix and node restarts: {plan.rounds} rounds, "
                      "3 devices, 1 owner", faults, cluster, follower)
        with explained(cluster):
            money = assert_every_wei_accounted(fs, setup, plan, TaskStatus.COMPLETED)
            names = {p.address: p.name for p in cluster.parties.values()}
            finalisers = [names[tx_sender(fs, e)] for e in sorted(
                follower.events["RoundFinalized"], key=lambda e: e["args"]["round"])]
            text += note(
                f"rounds finalised by {', '.join(finalisers)} (round 2 past its "
                f"reveal deadline, the aggregator being down); escrow "
                f"{money['escrow']} wei = paid {money['paid']} (claimed "
                f"{money['claimed']}) + refund {money['refund']}")
            assert_nothing_sent_twice(fs, setup, cluster)
            assert_epsilon_never_decreases(fs, setup, cluster)
            assert_every_fault_survived(faults, cluster, follower)
            assert finalisers[:2] == ["aggregator", "aggregator"]
            assert finalisers[2] != "aggregator"
            assert len(follower.events["ModelPublished"]) == plan.rounds
        sections.append(text)
    finally:
        node.stop()


def test_a_party_started_while_the_node_is_down_waits_for_it(tmp_path):
    node = Node(tmp_path / "anvil-state.json")
    url = node.start()
    try:
        plan = TaskPlan(rounds=1, reward_per_round=ETHER // 2, min_participants=3,
                        max_participants=3)
        _, cluster, follower = prepare(url, tmp_path, plan)
        node.stop()
        owner = cluster.of_kind("owner")[0]
        cluster.start([owner.name])
        deadline = time.monotonic() + 2 * BOOT
        while owner.running and "unreachable" not in owner.log.read_text() \
                and time.monotonic() < deadline:
            time.sleep(0.2)
        node.start()
        time.sleep(5)
        assert owner.running, (f"{owner.name} exited with {owner.exit_code} while "
                               f"the node was down:\n{owner.tail()}")
        follower.poll()
        assert follower.status is TaskStatus.OPEN
    finally:
        cluster.stop()
        node.stop()


# ---------------------------------------------------------------- 2. silent and spent
def budget_between(small: int, large: int) -> float:
    """An ε budget that lets a device with `small` training samples train one
    round and a device with `large` ones two, but neither a round more."""
    dp = DPConfig()
    low = max(task_epsilon(dp, samples=small, rounds=1),
              task_epsilon(dp, samples=large, rounds=2))
    high = min(task_epsilon(dp, samples=small, rounds=2),
               task_epsilon(dp, samples=large, rounds=3))
    assert low < high, f"no budget fits: [{low}, {high})"
    return round((low + high) / 2, 6)


@pytest.mark.slow
def test_a_silent_device_and_devices_at_their_budget_stall_nobody(
        anvil_url, tmp_path, sections):
    small = 320
    budget = budget_between(small, 800)
    plan = TaskPlan(rounds=3, reward_per_round=ETHER // 2, min_participants=4,
                    max_participants=4, train_duration=30, verify_duration=20,
                    reveal_duration=20, grace_period=30, epsilon_budget=budget)
    setup, cluster, follower = prepare(anvil_url, tmp_path, plan, devices=4)
    fs, task_id = setup.fs, setup.task_id
    silent, frugal, *others = cluster.of_kind("device")
    # The frugal device holds fewer samples: each of its rounds costs more ε.
    data_file = Path(frugal.args[frugal.args.index("--data") + 1])
    data = load_device_data(data_file)
    save_device_data(data_file, DeviceData(
        ArrayDataset(data.train.x[:small], data.train.y[:small]), data.validation))
    # The silent device joins and never says another word.
    fs.tasks.join(setup.devices[0], task_id)

    def stopped(f: Follower, address: str) -> bool:
        return bool(device_state(frugal, task_id).get("budget_spent")) and \
            not f.did("UpdateCommitted", 1, address)

    # Killed about when it finds its budget spent; started again, it stays stopped.
    faults = [Fault("device", "at budget", 1, frugal.name,
                    when=lambda f: f.at(1, Phase.TRAIN), delay=1.0, did=stopped)]
    run(cluster, follower, faults, idle_limit=2 * plan.train_duration,
        names=[n for n in cluster.parties if n != silent.name])

    text = report("A silent device and devices at their ε budget: 3 rounds, "
                  "4 devices", faults, cluster, follower)
    with explained(cluster):
        money = assert_every_wei_accounted(fs, setup, plan, TaskStatus.COMPLETED)
        committers = [{e["args"]["device"] for e in follower.of("UpdateCommitted", r)}
                      for r in range(plan.rounds)]
        text += note(
            f"ε budget {budget}: the device with {small} samples trained round 0 "
            f"only, the others rounds 0-1, the silent one none (committers per "
            f"round: {[len(c) for c in committers]}); escrow {money['escrow']} wei "
            f"= paid {money['paid']} + refund {money['refund']}")
        assert_nothing_sent_twice(fs, setup, cluster)
        assert_epsilon_never_decreases(fs, setup, cluster)
        everyone = {frugal.address, *(p.address for p in others)}
        assert committers == [everyone, everyone - {frugal.address}, set()]
        # Every round settled; the last, with nobody left to train, paid nothing.
        stages = [fs.tasks.round_info(task_id, r).stage for r in range(plan.rounds)]
        assert stages == [RoundStage.CLOSED] * plan.rounds
        paid = [int(e["args"]["rewardPaid"])
                for e in follower.events["RoundFinalized"]]
        assert paid == [plan.reward_per_round] * 2 + [0]
        assert money["refund"] == plan.reward_per_round
        # The silent device is still a participant; it sent its join, nothing else.
        assert fs.tasks.member_status(task_id, silent.address) is MemberStatus.ACTIVE
        assert fs.chain.nonce_of(silent.address) == 1
        # Devices at their budget stopped there, with ε within it.
        for party in (frugal, *others):
            spent = saved_epsilon(fs, setup, party)
            assert spent is not None and spent <= budget
            assert device_state(party, task_id).get("budget_spent") is True
        assert_every_fault_survived(faults, cluster, follower)
    sections.append(text)


# ---------------------------------------------------------------- 3. aggregator gone
@pytest.mark.slow
def test_a_vanished_aggregator_ends_in_a_cancel_that_returns_every_wei(
        anvil_url, tmp_path, sections):
    plan = TaskPlan(rounds=2, reward_per_round=ETHER // 2, min_participants=3,
                    max_participants=3, train_duration=30, verify_duration=10,
                    reveal_duration=10, grace_period=5)
    setup, cluster, follower = prepare(anvil_url, tmp_path, plan)
    fs = setup.fs
    faults = [
        Fault("aggregator", "for good", 0, "aggregator",
              when=lambda f: f.did("AggregateSubmitted", 0), restart=None),
        # The requester is down when the task is cancelled (a device does it, past
        # the grace period) and withdraws the refund once it is back.
        Fault("requester", "refund", None, "requester",
              when=lambda f: f.did("ModelPublished", 0),
              restart=lambda f: f.status is TaskStatus.CANCELLED,
              did=lambda f, address: any(e["args"]["requester"] == address
                                         for e in f.refunds)),
    ]
    stall = plan.train_duration + plan.verify_duration + plan.reveal_duration + \
        plan.grace_period
    run(cluster, follower, faults, idle_limit=stall + CANCEL_SLACK + 30)

    text = report("The aggregator gone for good after round 0 of 2", faults, cluster,
                  follower)
    with explained(cluster):
        money = assert_every_wei_accounted(fs, setup, plan, TaskStatus.CANCELLED)
        (cancel,) = follower.events["TaskCancelled"]
        names = {p.address: p.name for p in cluster.parties.values()}
        text += note(
            f"cancelled by {names[cancel['args']['by']]} past the grace period; "
            f"escrow {money['escrow']} wei = round 0's rewards {money['paid']} "
            f"(claimed by the owner) + refund {money['refund']} (withdrawn by the "
            f"requester's restarted process)")
        assert_nothing_sent_twice(fs, setup, cluster)
        assert_epsilon_never_decreases(fs, setup, cluster)
        assert cancel["args"]["by"] in {p.address for p in cluster.of_kind("device")}
        assert money["paid"] == plan.reward_per_round
        assert len(follower.events["RoundOpened"]) == 1
        assert_every_fault_survived(faults, cluster, follower)
    sections.append(text)
