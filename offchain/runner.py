"""One whole task in process: set up the parties, then let the driver step them.

This is what ``fedshare demo`` runs on the embedded chain (or a development node):
deploy, create the parties' wallets, register every device from its own signed
consent, publish, and :func:`offchain.driver.drive` the requester, aggregator, devices
and owners until the task ends. Progress goes to a callback; the result is a
:class:`RunReport` read back from the chain.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from offchain.chain.accounts import Wallet, new_wallet
from offchain.chain.contracts import Fedshare, deploy
from offchain.chain.node import Chain
from offchain.crypto import generate_keypair, save_private_key, save_public_key
from offchain.driver import drive
from offchain.errors import ConfigError
from offchain.learning.data import load_mnist, split_iid
from offchain.learning.evaluate import accuracy
from offchain.learning.model import ModelSpec, initial_vector
from offchain.privacy import DPConfig
from offchain.protocol.plan import TaskPlan
from offchain.protocol.terms import ETHER
from offchain.protocol.types import MemberStatus
from offchain.roles import (
    AggregatorRole,
    DeviceRole,
    Owner,
    OwnerRole,
    RequesterRole,
    Role,
    Step,
    TaskView,
    publish_task,
)
from offchain.status import RoundRecord, task_status
from offchain.storage.exchange import LocalExchange

__all__ = ["RunConfig", "RunReport", "Setup", "run_task", "set_up", "make_report",
           "DeviceFactory"]

Progress = Callable[[str, dict[str, Any]], None]
DeviceFactory = Callable[[int], Callable[..., DeviceRole]]


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """Everything one in-process run needs; validated once here."""

    owners: int = 2
    devices_per_owner: int = 5
    plan: TaskPlan = field(default_factory=TaskPlan)
    model: ModelSpec = field(default_factory=ModelSpec)
    dp: DPConfig = field(default_factory=DPConfig)
    key_bits: int = 2048
    insecure_test_key: bool = False
    seed: int = 0
    home: Path = Path(".fedshare")
    rpc_url: str | None = None
    silent: tuple[int, ...] = ()
    """Indices of devices that register and join but then never act."""

    def __post_init__(self) -> None:
        if self.owners < 1 or self.devices_per_owner < 1:
            raise ConfigError("need at least one owner with at least one device")
        if self.devices < self.plan.min_participants:
            raise ConfigError(
                f"{self.devices} devices cannot fill min_participants="
                f"{self.plan.min_participants}")

    @property
    def devices(self) -> int:
        return self.owners * self.devices_per_owner

    def device_seed(self, i: int) -> int:
        """The seed of device i's training noise."""
        return self.seed * 10_000 + i

    def label(self, i: int) -> str:
        """Device i's name in tables: owner and device number."""
        return f"o{i // self.devices_per_owner + 1}-d{i % self.devices_per_owner + 1}"


@dataclass(frozen=True)
class RunReport:
    """The outcome of a run, written to ``report.json`` in the run directory."""

    task_id: int
    chain: str
    initial_accuracy: float
    final_accuracy: float
    rounds: list[RoundRecord]
    round_seconds: list[float]
    claimed: dict[str, int]
    refund: int
    model_hashes: list[str]
    labels: dict[str, str]
    requester: str
    deployment: dict[str, Any]
    run_dir: str
    seconds: float

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2, default=str))


class _Silent(DeviceRole):
    """A device that joined and then says nothing (a fault the protocol must absorb)."""

    def decide(self, view: TaskView) -> Step:
        if not view.state.status.live:
            return super().decide(view)
        if self.fs.tasks.member_status(self.task_id, self.address) is MemberStatus.NONE:
            return super().decide(view)
        return Step(done=True)


@dataclass
class Setup:
    """A deployed, funded system with registered devices and a published task."""

    run_dir: Path
    chain: Chain
    fs: Fedshare
    exchange: LocalExchange
    requester: Wallet
    aggregator: Wallet
    owners: list[Wallet]
    devices: list[Wallet]
    split: Any
    private_key: Any
    task_id: int
    initial_accuracy: float


def set_up(config: RunConfig, progress: Progress = lambda kind, data: None, *,
           chain: Chain | None = None) -> Setup:
    """Deploys the contracts, creates and funds every party's wallet, the requester's
    Paillier keys and the data split, registers every device from its own signed
    consent, and publishes the task."""
    run_dir = config.home / "runs" / time.strftime("%Y%m%d-%H%M%S")
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = run_dir.with_name(f"{run_dir.name.split('.')[0]}.{suffix}")
    run_dir.mkdir(parents=True)
    exchange = LocalExchange(run_dir)

    progress("setup", {"step": "chain"})
    if chain is None:
        chain = Chain.connect(config.rpc_url) if config.rpc_url else Chain.embedded_chain()
    plan = config.plan
    deployer, requester_w, aggregator_w = new_wallet(), new_wallet(), new_wallet()
    owners_w = [new_wallet() for _ in range(config.owners)]
    devices_w = [new_wallet() for _ in range(config.devices)]
    for wallet in (deployer, aggregator_w, *owners_w, *devices_w):
        chain.fund(wallet.address, 10 * ETHER)
    chain.fund(requester_w.address, plan.escrow + 10 * ETHER)
    fs = deploy(chain, deployer, manifest=run_dir / "deployment.json")

    progress("setup", {"step": "keys"})
    public_key, private_key = generate_keypair(bits=config.key_bits,
                                               insecure_ok=config.insecure_test_key)
    save_public_key(run_dir / "keys" / "paillier.pub.json", public_key)
    save_private_key(run_dir / "keys" / "paillier.key.json", private_key)

    progress("setup", {"step": "data"})
    split = split_iid(load_mnist(), config.devices, seed=config.seed)
    for k, wallet in enumerate(owners_w):
        per = config.devices_per_owner
        Owner(fs, wallet).register_wallets(devices_w[k * per:(k + 1) * per])
    model = initial_vector(config.model, seed=config.seed)
    task_id = publish_task(fs, requester_w, exchange, plan, model, public_key.key_id,
                           aggregator_w.address)
    initial_accuracy = accuracy(config.model, model, split.test)
    progress("published", {"task_id": task_id, "accuracy": initial_accuracy,
                           "escrow": plan.escrow})
    return Setup(run_dir, chain, fs, exchange, requester_w, aggregator_w, owners_w,
                 devices_w, split, private_key, task_id, initial_accuracy)


def run_task(config: RunConfig, progress: Progress = lambda kind, data: None, *,
             chain: Chain | None = None,
             device_factory: DeviceFactory | None = None) -> RunReport:
    """Runs one task end to end on `chain`, or else on a new embedded chain (or the
    node at `config.rpc_url`), every party stepped by the in-process driver.
    `device_factory(i)` gives the class (or a factory with its signature) of device
    i; experiments use it to plant attackers."""
    started = time.perf_counter()
    setup = set_up(config, progress, chain=chain)
    roles = _parties(config, setup, setup.run_dir / "state", device_factory, progress)
    seconds: list[float] = []
    timer = {"opened": time.perf_counter()}

    def on_event(kind: str, data: dict[str, Any]) -> None:
        if kind == "opened":
            timer["opened"] = time.perf_counter()
        elif kind == "published":
            seconds.append(time.perf_counter() - timer["opened"])
        progress(kind, data)

    for role in roles:
        role.progress = on_event
    drive(setup.chain, roles)
    report = make_report(config, setup, seconds, time.perf_counter() - started)
    progress("done", {"report": report})
    return report


def make_report(config: RunConfig, setup: Setup, round_seconds: list[float],
                seconds: float) -> RunReport:
    """The run as the chain tells it (rounds, claims, refund), saved as report.json."""
    fs = setup.fs
    status = task_status(fs, setup.task_id, setup.exchange)
    start = fs.deployment.block
    claimed = {w.address: 0 for w in setup.owners}
    for entry in fs.vault.logs("RewardWithdrawn", from_block=start):
        to = str(entry["args"]["to"])
        if to in claimed:
            claimed[to] += int(entry["args"]["amount"])
    refund = sum(int(e["args"]["amount"]) for e in fs.tasks.logs(
        "RefundWithdrawn", from_block=start, requester=setup.requester.address))
    report = RunReport(
        task_id=setup.task_id,
        chain=setup.chain.where,
        initial_accuracy=setup.initial_accuracy,
        final_accuracy=(status.rounds[-1].accuracy if status.rounds
                        else setup.initial_accuracy),
        rounds=status.rounds,
        round_seconds=round_seconds,
        claimed=claimed,
        refund=refund,
        model_hashes=[v.hex() for v in _model_hashes(fs, setup.task_id)],
        labels={w.address: config.label(i) for i, w in enumerate(setup.devices)},
        requester=setup.requester.address,
        deployment=asdict(fs.deployment),
        run_dir=str(setup.run_dir),
        seconds=seconds,
    )
    report.save(setup.run_dir / "report.json")
    return report


def _parties(config: RunConfig, setup: Setup, state_dir: Path,
             device_factory: DeviceFactory | None, progress: Progress) -> list[Role]:
    """The requester, the aggregator, every device and every owner, in that order."""
    spec, fs, exchange = config.model, setup.fs, setup.exchange
    public_key = setup.private_key.public_key
    test = setup.split.test
    roles: list[Role] = [
        RequesterRole(fs, setup.requester, setup.task_id, state_dir, exchange=exchange,
                      spec=spec, private_key=setup.private_key, progress=progress,
                      evaluate=lambda m: {"test_accuracy": accuracy(spec, m, test)}),
        AggregatorRole(fs, setup.aggregator, setup.task_id, state_dir, exchange=exchange,
                       public_key=public_key, progress=progress),
    ]
    make = device_factory or (lambda i: _Silent if i in config.silent else DeviceRole)
    for i, wallet in enumerate(setup.devices):
        roles.append(make(i)(fs, wallet, setup.task_id, state_dir, exchange=exchange,
                             data=setup.split.devices[i], spec=spec, dp=config.dp,
                             paillier_key=public_key, seed=config.device_seed(i),
                             label=config.label(i), progress=progress))
    roles += [OwnerRole(fs, w, setup.task_id, state_dir, label=f"o{k + 1}",
                        progress=progress) for k, w in enumerate(setup.owners)]
    return roles


def _model_hashes(fs: Fedshare, task_id: int) -> list[bytes]:
    initial = fs.tasks.logs("TaskPublished", from_block=fs.deployment.block,
                            taskId=task_id)[0]["args"]["params"]["modelHash"]
    published = fs.tasks.logs("ModelPublished", from_block=fs.deployment.block,
                              taskId=task_id)
    return [bytes(initial)] + [bytes(e["args"]["modelHash"]) for e in published]
