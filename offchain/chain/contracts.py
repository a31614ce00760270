"""Deploy the fedshare contracts and talk to them through typed clients."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from eth_abi import encode as abi_encode
from web3 import Web3
from web3.logs import DISCARD

from offchain.chain.accounts import Wallet
from offchain.chain.compile import Artifact, compile_contracts
from offchain.chain.node import Chain, Receipt
from offchain.chain.types import (
    MemberStatus,
    ModelVersion,
    RoundInfo,
    RoundOutcome,
    RoundStage,
    Submission,
    TaskParams,
    TaskState,
    TaskStatus,
)
from offchain.errors import ChainError, ConfigError

__all__ = ["Deployment", "Fedshare", "deploy", "score_commitment"]


def score_commitment(task_id: int, round_: int, scores: Sequence[int], salt: bytes,
                     device: str) -> bytes:
    """keccak256(abi.encode(taskId, round, scores, salt, device)), computed locally so the
    scores never leave the device before the reveal."""
    return bytes(Web3.keccak(abi_encode(
        ["uint256", "uint64", "uint16[]", "bytes32", "address"],
        [task_id, round_, list(scores), salt, device])))

ZERO_ADDRESS = "0x" + "00" * 20
CREDITOR_ROLE = Web3.keccak(text="CREDITOR_ROLE")
VERSIONER_ROLE = Web3.keccak(text="VERSIONER_ROLE")


@dataclass(frozen=True)
class Deployment:
    """Addresses of one deployment of the contracts."""

    chain_id: int
    device_registry: str
    reward_vault: str
    model_registry: str
    task_registry: str

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> "Deployment":
        """Reads a deployment file. Raises ConfigError when missing or malformed."""
        try:
            return cls(**json.loads(Path(path).read_text()))
        except FileNotFoundError as exc:
            raise ConfigError(f"deployment file {path} does not exist") from exc
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"deployment file {path} is malformed: {exc}") from exc


def _deploy_one(chain: Chain, wallet: Wallet, artifact: Artifact, *args: Any) -> str:
    factory = chain.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = chain.transact(wallet, factory.constructor(*args))
    address = receipt.raw["contractAddress"]
    if not address:
        raise ChainError(f"deploying {artifact.name} created no contract")
    return str(address)


def deploy(chain: Chain, deployer: Wallet) -> "Fedshare":
    """Deploys the TaskSettlement library, then DeviceRegistry, RewardVault,
    ModelRegistry and TaskRegistry (linked to the library), and lets the task registry
    credit the vault and register model versions. Returns clients bound to the new
    deployment. Raises ChainError when a deployment fails."""
    artifacts = compile_contracts()
    _use_abis(chain, artifacts)
    settlement = _deploy_one(chain, deployer, artifacts["TaskSettlement"])
    registry = _deploy_one(chain, deployer, artifacts["DeviceRegistry"])
    vault = _deploy_one(chain, deployer, artifacts["RewardVault"], deployer.address,
                        registry)
    models = _deploy_one(chain, deployer, artifacts["ModelRegistry"], deployer.address)
    task_registry = artifacts["TaskRegistry"].linked({"TaskSettlement": settlement})
    tasks = _deploy_one(chain, deployer, task_registry, registry, vault, models)
    system = Fedshare(chain, Deployment(chain.chain_id, registry, vault, models, tasks),
                      artifacts)
    chain.transact(deployer, system.vault.functions.grantRole(CREDITOR_ROLE, tasks))
    chain.transact(deployer, system.models.functions.grantRole(VERSIONER_ROLE, tasks))
    return system


def _use_abis(chain: Chain, artifacts: dict[str, Artifact]) -> None:
    from offchain.chain.revert import RevertDecoder

    chain.decoder = RevertDecoder((a.name, a.abi) for a in artifacts.values())


class Fedshare:
    """Typed access to one deployment: every contract call the workers make."""

    def __init__(self, chain: Chain, deployment: Deployment,
                 artifacts: dict[str, Artifact] | None = None) -> None:
        if deployment.chain_id != chain.chain_id:
            raise ConfigError(
                f"deployment is for chain {deployment.chain_id}, "
                f"connected to chain {chain.chain_id}"
            )
        artifacts = artifacts or compile_contracts()
        _use_abis(chain, artifacts)
        self.chain = chain
        self.deployment = deployment
        eth = chain.w3.eth
        self.devices = eth.contract(address=deployment.device_registry,
                                    abi=artifacts["DeviceRegistry"].abi)
        self.vault = eth.contract(address=deployment.reward_vault,
                                  abi=artifacts["RewardVault"].abi)
        self.models = eth.contract(address=deployment.model_registry,
                                   abi=artifacts["ModelRegistry"].abi)
        self.tasks = eth.contract(address=deployment.task_registry,
                                  abi=artifacts["TaskRegistry"].abi)

    # ------------------------------------------------------------ device registry
    def register_device(self, owner: Wallet, device: Wallet) -> Receipt:
        """The owner registers `device`; the device signs its consent."""
        digest = self.chain.call(self.devices.functions.consentDigest(
            owner.address, device.address, device.public_key))
        consent = device.sign_digest(bytes(digest))
        return self.chain.transact(owner, self.devices.functions.registerDevice(
            device.address, device.public_key, consent))

    def rotate_key(self, owner: Wallet, device: Wallet, public_key: bytes) -> Receipt:
        """The owner replaces `device`'s sealing key; the device signs its consent."""
        digest = self.chain.call(self.devices.functions.consentDigest(
            owner.address, device.address, public_key))
        consent = device.sign_digest(bytes(digest))
        return self.chain.transact(owner, self.devices.functions.rotateKey(
            device.address, public_key, consent))

    def revoke_device(self, owner: Wallet, device: str) -> Receipt:
        return self.chain.transact(owner, self.devices.functions.revokeDevice(device))

    def device_owner(self, device: str) -> str:
        return str(self.chain.call(self.devices.functions.ownerOf(device)))

    def device_active(self, device: str) -> bool:
        return bool(self.chain.call(self.devices.functions.isActive(device)))

    def device_public_key(self, device: str) -> bytes:
        return bytes(self.chain.call(self.devices.functions.deviceOf(device))[3])

    def devices_of(self, owner: str) -> list[str]:
        return list(self.chain.call(self.devices.functions.devicesOf(owner)))

    # ------------------------------------------------------------ reward vault
    def reward_balance(self, device: str) -> int:
        return int(self.chain.call(self.vault.functions.balanceOf(device)))

    def total_owed(self) -> int:
        return int(self.chain.call(self.vault.functions.totalOwed()))

    def withdraw_reward(self, device: Wallet) -> Receipt:
        return self.chain.transact(device, self.vault.functions.withdraw())

    def claim_rewards(self, owner: Wallet, devices: Sequence[str]) -> Receipt:
        return self.chain.transact(owner, self.vault.functions.claim(list(devices)))

    # ------------------------------------------------------------ task registry
    def publish_task(self, requester: Wallet, params: TaskParams,
                     aggregator: str | None = None,
                     allow_list: Sequence[str] = ()) -> tuple[int, Receipt]:
        """Publishes a task with its escrow; returns the new task id. A non-empty
        `allow_list` (devices or owners) restricts who may join."""
        receipt = self.chain.transact(
            requester,
            self.tasks.functions.publishTask(params.as_tuple(), aggregator or ZERO_ADDRESS,
                                             list(allow_list)),
            value=params.escrow,
        )
        (event,) = self.tasks.events.TaskPublished().process_receipt(receipt.raw, errors=DISCARD)
        return int(event["args"]["taskId"]), receipt

    def set_aggregator(self, requester: Wallet, task_id: int, aggregator: str) -> Receipt:
        return self.chain.transact(
            requester, self.tasks.functions.setAggregator(task_id, aggregator))

    def join(self, device: Wallet, task_id: int) -> Receipt:
        return self.chain.transact(device, self.tasks.functions.join(task_id))

    def open_round(self, aggregator: Wallet, task_id: int, model_hash: bytes) -> Receipt:
        return self.chain.transact(
            aggregator, self.tasks.functions.openRound(task_id, model_hash))

    def commit_update(self, device: Wallet, task_id: int, round_: int,
                      update_hash: bytes, epsilon: int) -> Receipt:
        """Train phase: the update's hash and the device's ε spent so far (micro-ε)."""
        return self.chain.transact(
            device, self.tasks.functions.commitUpdate(task_id, round_, update_hash, epsilon))

    def commit_scores(self, device: Wallet, task_id: int, round_: int,
                      commitment: bytes) -> Receipt:
        """Verify phase: the commitment to the scores (see :func:`score_commitment`)."""
        return self.chain.transact(
            device, self.tasks.functions.commitScores(task_id, round_, commitment))

    def reveal_scores(self, device: Wallet, task_id: int, round_: int,
                      scores: Sequence[int], salt: bytes) -> Receipt:
        """Reveal phase: the scores of the assigned updates and the salt."""
        return self.chain.transact(
            device, self.tasks.functions.revealScores(task_id, round_, list(scores), salt))

    def verifiers(self, task_id: int, round_: int, device: str) -> list[str]:
        """The participants that score `device`'s update in the open round."""
        return [str(a) for a in self.chain.call(
            self.tasks.functions.verifiersOf(task_id, round_, device))]

    def assignment(self, task_id: int, round_: int, device: str) -> list[str]:
        """The participants whose updates `device` scores in the open round, in order."""
        return [str(a) for a in self.chain.call(
            self.tasks.functions.assignmentOf(task_id, round_, device))]

    def finalize_round(self, caller: Wallet, task_id: int, round_: int) -> RoundOutcome:
        """Finalises a round and returns what the contract decided."""
        receipt = self.chain.transact(
            caller, self.tasks.functions.finalizeRound(task_id, round_))
        (final,) = self.tasks.events.RoundFinalized().process_receipt(receipt.raw, errors=DISCARD)
        assessed = self.tasks.events.QualityAssessed().process_receipt(receipt.raw, errors=DISCARD)
        args = final["args"]
        return RoundOutcome(
            leader=str(args["leader"]),
            eliminated=None if args["eliminated"] == ZERO_ADDRESS else str(args["eliminated"]),
            accepted=tuple(str(a) for a in args["accepted"]),
            reward_paid=int(args["rewardPaid"]),
            quality={str(e["args"]["device"]): int(e["args"]["quality"]) for e in assessed},
            rewards={str(e["args"]["device"]): int(e["args"]["reward"]) for e in assessed},
            gas_used=receipt.gas_used,
        )

    def submit_aggregate(self, aggregator: Wallet, task_id: int, round_: int,
                         aggregate_hash: bytes) -> Receipt:
        return self.chain.transact(
            aggregator, self.tasks.functions.submitAggregate(task_id, round_, aggregate_hash))

    def publish_model(self, requester: Wallet, task_id: int, round_: int,
                      model_hash: bytes, uri: str = "",
                      metrics_hash: bytes = b"\0" * 32) -> Receipt:
        """Records the round's new global model; it becomes a model-registry version."""
        return self.chain.transact(
            requester, self.tasks.functions.publishModel(task_id, round_, model_hash, uri,
                                                         metrics_hash))

    def cancel_task(self, caller: Wallet, task_id: int) -> Receipt:
        return self.chain.transact(caller, self.tasks.functions.cancelTask(task_id))

    def withdraw_refund(self, requester: Wallet) -> Receipt:
        return self.chain.transact(requester, self.tasks.functions.withdrawRefund())

    # ------------------------------------------------------------ task views
    def task_count(self) -> int:
        return int(self.chain.call(self.tasks.functions.taskCount()))

    def task_params(self, task_id: int) -> TaskParams:
        raw = self.chain.call(self.tasks.functions.taskParams(task_id))
        return TaskParams(*(bytes(v) if isinstance(v, bytes) else v for v in raw))

    def task_state(self, task_id: int) -> TaskState:
        r = self.chain.call(self.tasks.functions.taskState(task_id))
        return TaskState(str(r[0]), str(r[1]), TaskStatus(r[2]), bool(r[3]), int(r[4]),
                         int(r[5]), int(r[6]), bytes(r[7]), int(r[8]))

    def round_info(self, task_id: int, round_: int) -> RoundInfo:
        r = self.chain.call(self.tasks.functions.roundInfo(task_id, round_))
        return RoundInfo(RoundStage(r[0]), *[int(v) for v in r[1:11]], str(r[11]),
                         str(r[12]), bytes(r[13]), bytes(r[14]), bytes(r[15]), int(r[16]))

    def submission(self, task_id: int, round_: int, device: str) -> Submission:
        r = self.chain.call(self.tasks.functions.submissionOf(task_id, round_, device))
        return Submission(bytes(r[0]), bytes(r[1]), int(r[2]), int(r[3]), bool(r[4]),
                          bool(r[5]), int(r[6]))

    def epsilon_of(self, task_id: int, device: str) -> int:
        """The device's ε spent in the task as recorded on chain (micro-ε)."""
        return int(self.chain.call(self.tasks.functions.epsilonOf(task_id, device)))

    def is_allowed(self, task_id: int, device: str) -> bool:
        return bool(self.chain.call(self.tasks.functions.isAllowed(task_id, device)))

    # ------------------------------------------------------------ model registry
    def model_version(self, version_id: int) -> ModelVersion:
        r = self.chain.call(self.models.functions.versionOf(version_id))
        return ModelVersion(bytes(r[0]), bytes(r[1]), int(r[2]), int(r[3]), int(r[4]),
                            int(r[5]), str(r[6]), str(r[7]))

    def model_version_count(self) -> int:
        return int(self.chain.call(self.models.functions.versionCount()))

    def participants(self, task_id: int) -> list[str]:
        return list(self.chain.call(self.tasks.functions.participantsOf(task_id)))

    def waiting(self, task_id: int) -> list[str]:
        return list(self.chain.call(self.tasks.functions.waitingOf(task_id)))

    def member_status(self, task_id: int, device: str) -> MemberStatus:
        return MemberStatus(self.chain.call(self.tasks.functions.memberStatus(task_id, device)))

    def refund_of(self, requester: str) -> int:
        return int(self.chain.call(self.tasks.functions.refundOf(requester)))

    def total_held(self) -> int:
        return int(self.chain.call(self.tasks.functions.totalHeld()))
