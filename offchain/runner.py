"""Run one whole task in process: every role, every round, from publish to claim.

This is what ``fedshare demo`` drives. It reports progress through a callback and
returns a :class:`RunReport`; rendering is the CLI's business.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from offchain.chain.accounts import new_wallet
from offchain.chain.contracts import deploy
from offchain.chain.node import Chain
from offchain.crypto import (
    PackingSpec,
    generate_keypair,
    save_private_key,
    save_public_key,
)
from offchain.errors import ConfigError
from offchain.learning.data import load_mnist, split_iid
from offchain.learning.evaluate import accuracy
from offchain.learning.model import ModelSpec, initial_vector
from offchain.privacy import DPConfig
from offchain.roles import Aggregator, Device, Owner, Requester, TaskPlan
from offchain.storage import BlobStore
from offchain.storage.mailbox import Mailbox

__all__ = ["RunConfig", "RoundRecord", "RunReport", "run_task"]

ETHER = 10**18
NO_HASH = b"\0" * 32
Progress = Callable[[str, dict[str, Any]], None]


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

    def __post_init__(self) -> None:
        if self.owners < 1 or self.devices_per_owner < 1:
            raise ConfigError("need at least one owner with at least one device")
        if self.devices < self.plan.min_participants:
            raise ConfigError(
                f"{self.devices} devices cannot fill min_participants="
                f"{self.plan.min_participants}"
            )

    @property
    def devices(self) -> int:
        return self.owners * self.devices_per_owner


@dataclass(frozen=True)
class RoundRecord:
    """One round as the demo table shows it."""

    round: int
    participants: int
    committed: int
    accepted: int
    accuracy: float
    epsilon: float
    leader: str
    eliminated: str | None
    reward_paid: int
    gas_per_participant: int  # commitUpdate + commitScores + revealScores, mean
    gas_finalize: int
    seconds: float
    accepted_devices: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunReport:
    """The outcome of a run, written to ``report.json`` in the run directory."""

    task_id: int
    chain: str
    initial_accuracy: float
    final_accuracy: float
    rounds: list[RoundRecord]
    claimed: dict[str, int]
    refund: int
    model_hashes: list[str]
    labels: dict[str, str]
    requester: str
    deployment: dict[str, Any]
    run_dir: str
    seconds: float

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))


def _quiet(kind: str, data: dict[str, Any]) -> None:
    return None


def run_task(config: RunConfig, progress: Progress = _quiet, *,
             chain: Chain | None = None,
             device_factory: Callable[[int], Callable[..., Device]] | None = None,
             ) -> RunReport:
    """Runs one task end to end on `chain`, or else on a new embedded chain (or the
    node at `config.rpc_url`). `device_factory(i)` gives the class (or a factory with
    its signature) of device i; experiments use it to plant attackers. Default: Device."""
    started = time.perf_counter()
    run_dir = config.home / "runs" / time.strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    store = BlobStore(run_dir / "blobs")
    mailbox = Mailbox(run_dir / "mailbox")

    progress("setup", {"step": "chain"})
    if chain is None:
        chain = Chain.connect(config.rpc_url) if config.rpc_url else Chain.embedded_chain()
    deployer, requester_w, aggregator_w = new_wallet(), new_wallet(), new_wallet()
    owners_w = [new_wallet() for _ in range(config.owners)]
    devices_w = [new_wallet() for _ in range(config.devices)]
    plan = config.plan
    for wallet in (deployer, aggregator_w, *owners_w, *devices_w):
        chain.fund(wallet.address, 10 * ETHER)
    chain.fund(requester_w.address, plan.rounds * plan.reward_per_round + 10 * ETHER)
    fs = deploy(chain, deployer)
    fs.deployment.save(run_dir / "deployment.json")

    progress("setup", {"step": "keys"})
    (run_dir / "keys").mkdir()
    public_key, private_key = generate_keypair(bits=config.key_bits,
                                               insecure_ok=config.insecure_test_key)
    save_public_key(run_dir / "keys" / "paillier.pub.json", public_key)
    save_private_key(run_dir / "keys" / "paillier.key.json", private_key)

    progress("setup", {"step": "data"})
    split = split_iid(load_mnist(), config.devices, seed=config.seed)
    packing = PackingSpec(bound=config.dp.update_bound, max_summands=plan.max_participants,
                          key_bits=config.key_bits)
    requester = Requester(fs, requester_w, store, spec=config.model,
                          public_key=public_key, private_key=private_key)
    aggregator = Aggregator(fs, aggregator_w, store, public_key=public_key)
    owners = [Owner(fs, w) for w in owners_w]
    make = device_factory or (lambda i: Device)
    devices = [
        make(i)(fs, w, store, mailbox, data=split.devices[i], spec=config.model,
                dp=config.dp, packing=packing, paillier_key=public_key,
                seed=config.seed * 10_000 + i, state_dir=run_dir / "privacy")
        for i, w in enumerate(devices_w)
    ]
    by_address = {d.address: d for d in devices}
    labels = {d.address: f"o{i // config.devices_per_owner + 1}-d{i % config.devices_per_owner + 1}"
              for i, d in enumerate(devices)}
    for k, owner in enumerate(owners):
        per = config.devices_per_owner
        owner.register(devices_w[k * per:(k + 1) * per])

    model = initial_vector(config.model, seed=config.seed)
    task_id = requester.publish(plan, model, aggregator.address)
    for device in devices:
        device.join(task_id)
    initial_accuracy = accuracy(config.model, model, split.test)
    progress("published", {"task_id": task_id, "accuracy": initial_accuracy,
                           "escrow": plan.rounds * plan.reward_per_round})

    records: list[RoundRecord] = []
    model_hashes = [fs.task_state(task_id).current_model.hex()]
    for _ in range(plan.rounds):
        round_started = time.perf_counter()
        round_ = aggregator.open_round(task_id)
        participants = fs.participants(task_id)
        progress("round", {"round": round_, "participants": len(participants)})
        gas = 0
        for address in participants:
            result = by_address[address].train_and_commit(task_id, round_)
            gas += result.commit_gas if result else 0
            progress("trained", {"round": round_, "device": labels[address]})
        committed = [a for a in participants
                     if fs.submission(task_id, round_, a).update_hash != NO_HASH]
        for address in committed:
            device = by_address[address]
            gas += device.commit_scores(task_id, round_, device.score_peers(task_id, round_))
            progress("scored", {"round": round_, "device": labels[address]})
        for address in committed:
            gas += by_address[address].reveal_scores(task_id, round_)
        outcome = fs.finalize_round(aggregator.wallet, task_id, round_)
        if outcome.accepted:
            aggregator.aggregate(task_id, round_, outcome.accepted)
        model = requester.next_model(task_id, round_)
        test_accuracy = accuracy(config.model, model, split.test)
        model_hashes.append(requester.publish_model(
            task_id, round_, model, {"test_accuracy": test_accuracy}).hex())
        info = fs.round_info(task_id, round_)
        record = RoundRecord(
            round=round_,
            participants=len(participants),
            committed=info.committed,
            accepted=len(outcome.accepted),
            accuracy=test_accuracy,
            epsilon=max(by_address[a].epsilon for a in participants),
            leader=labels.get(outcome.leader, outcome.leader),
            eliminated=labels.get(outcome.eliminated) if outcome.eliminated else None,
            reward_paid=outcome.reward_paid,
            gas_per_participant=gas // max(1, len(committed)),
            gas_finalize=outcome.gas_used,
            seconds=time.perf_counter() - round_started,
            accepted_devices=tuple(labels.get(a, a) for a in outcome.accepted),
        )
        records.append(record)
        progress("round_done", {"record": record})

    claimed = {owner.address: owner.claim() for owner in owners}
    refund = requester.withdraw_refund()
    report = RunReport(
        task_id=task_id,
        chain=chain.url or "embedded eth-tester",
        initial_accuracy=initial_accuracy,
        final_accuracy=records[-1].accuracy,
        rounds=records,
        claimed=claimed,
        refund=refund,
        model_hashes=model_hashes,
        labels=labels,
        requester=requester.address,
        deployment=asdict(fs.deployment),
        run_dir=str(run_dir),
        seconds=time.perf_counter() - started,
    )
    report.save(run_dir / "report.json")
    progress("done", {"report": report})
    return report
