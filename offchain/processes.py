"""The demo with every party in its own OS process against a real Anvil node.

`fedshare demo --processes` sets up the same task as the embedded demo (same wallets'
roles, data split, seeds and terms), then starts the aggregator, the requester, every
device and every owner as separate `fedshare ... run` processes, each with its own
keystore and state directory, sharing the node and a local exchange directory. The
parent only watches the chain to report progress and reads the result back from it.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offchain.chain.accounts import Wallet, save_keystore
from offchain.chain.node import Chain
from offchain.errors import FedshareError
from offchain.learning.datafile import save_dataset, save_device_data
from offchain.devnodes import anvil_node
from offchain.runner import Progress, RunConfig, RunReport, Setup, make_report, set_up
from offchain.storage.exchange import LocalExchange

__all__ = ["run_processes", "PartyFailed"]


class PartyFailed(FedshareError):
    """A party's process exited with an error (its log names the problem)."""


@dataclass
class _Party:
    name: str
    args: list[str]
    process: subprocess.Popen | None = None
    log: Path | None = None


def _write_parties(config: RunConfig, setup: Setup, folder: Path,
                   password: str) -> list[_Party]:
    """Keystores and data files of every party, and the command each one runs."""
    folder.mkdir(parents=True)
    keys = setup.run_dir / "keys"
    task = ["--task", str(setup.task_id)]

    def keystore(name: str, wallet: Wallet) -> list[str]:
        path = folder / f"{name}.json"
        save_keystore(path, wallet, password)
        return ["--keystore", str(path), "--home", str(folder / name)]

    save_dataset(folder / "test.npz", setup.split.test)
    parties = [
        _Party("aggregator", ["aggregator", "run", *task, "--paillier-key",
                              str(keys / "paillier.pub.json"),
                              *keystore("aggregator", setup.aggregator)]),
        _Party("requester", ["requester", "run", *task, "--private-key",
                             str(keys / "paillier.key.json"), "--test-data",
                             str(folder / "test.npz"),
                             *keystore("requester", setup.requester)]),
    ]
    for i, wallet in enumerate(setup.devices):
        name = config.label(i)
        save_device_data(folder / f"{name}.npz", setup.split.devices[i])
        parties.append(_Party(name, ["device", "run", *task, "--data",
                                     str(folder / f"{name}.npz"), "--paillier-key",
                                     str(keys / "paillier.pub.json"), "--seed",
                                     str(config.device_seed(i)),
                                     *keystore(name, wallet)]))
    for k, wallet in enumerate(setup.owners):
        parties.append(_Party(f"o{k + 1}", ["owner", "run", *task,
                                            *keystore(f"o{k + 1}", wallet)]))
    return parties


class _Watcher:
    """Turns the task's events into the same progress events the driver's roles
    emit, and times each round from its opening to its model."""

    def __init__(self, setup: Setup, progress: Progress) -> None:
        self.setup = setup
        self.progress = progress
        self.seen: dict[str, int] = {}
        self.opened_at: dict[int, float] = {}
        self.seconds: list[float] = []

    def poll(self) -> None:
        tasks, start = self.setup.fs.tasks, self.setup.fs.deployment.block
        for name, kind in (("RoundOpened", "opened"), ("UpdateCommitted", "trained"),
                           ("ScoresCommitted", "scored"), ("ModelPublished", "published")):
            logs = tasks.logs(name, from_block=start, taskId=self.setup.task_id)
            for entry in logs[self.seen.get(name, 0):]:
                self._emit(kind, entry["args"])
            self.seen[name] = len(logs)

    def _emit(self, kind: str, args: Any) -> None:
        round_ = int(args["round"])
        data: dict[str, Any] = {"round": round_}
        if kind == "opened":
            self.opened_at[round_] = time.perf_counter()
        elif kind == "published":
            self.seconds.append(time.perf_counter() - self.opened_at.get(round_, 0.0))
            version = self.setup.fs.models.version(int(args["versionId"]))
            try:
                data["metrics"] = json.loads(self.setup.exchange.get(version.metrics_hash))
            except (FedshareError, ValueError):
                data["metrics"] = {}
        self.progress(kind, data)


def run_processes(config: RunConfig, progress: Progress = lambda kind, data: None,
                  *, timeout: float = 3600.0) -> RunReport:
    """Runs the demo task with one OS process per party against a new Anvil node;
    returns the same report as the in-process demo. Raises PartyFailed naming the
    party (and its log) when one exits with an error."""
    started = time.perf_counter()
    with anvil_node() as url:
        setup = set_up(config, progress, chain=Chain.connect(url))
        # Devices join in index order, as in the in-process demo, so that the same
        # devices take part in the same rounds.
        for wallet in setup.devices:
            setup.fs.tasks.join(wallet, setup.task_id)
        password = secrets.token_hex(16)
        parties = _write_parties(config, setup, setup.run_dir / "parties", password)
        env = {**os.environ, "FEDSHARE_PASSWORD": password, "FEDSHARE_RPC_URL": url,
               "FEDSHARE_DEPLOYMENT": str(setup.run_dir / "deployment.json"),
               "FEDSHARE_EXCHANGE": str(setup.run_dir)}
        env.pop("FEDSHARE_PRIVATE_KEY", None)
        watcher = _Watcher(setup, progress)
        try:
            for party in parties:
                party.log = setup.run_dir / "parties" / f"{party.name}.log"
                with party.log.open("w") as log:
                    party.process = subprocess.Popen(
                        [sys.executable, "-m", "offchain.cli", *party.args], env=env,
                        stdout=log, stderr=subprocess.STDOUT)
            _wait(parties, watcher, timeout)
        finally:
            for party in parties:
                if party.process is not None and party.process.poll() is None:
                    party.process.kill()
        watcher.poll()
        return make_report(config, setup, watcher.seconds, time.perf_counter() - started)


def _wait(parties: list[_Party], watcher: _Watcher, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        watcher.poll()
        codes = {p.name: p.process.poll() for p in parties if p.process is not None}
        failed = [p for p in parties if codes.get(p.name) not in (None, 0)]
        if failed:
            party = failed[0]
            tail = party.log.read_text()[-800:] if party.log else ""
            raise PartyFailed(f"{party.name} exited with {codes[party.name]}; "
                              f"its log {party.log} ends:\n{tail}")
        if all(code == 0 for code in codes.values()):
            return
        if time.monotonic() > deadline:
            raise PartyFailed(f"the parties did not finish within {timeout:.0f} s")
        time.sleep(0.25)
