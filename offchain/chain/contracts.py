"""Deploy the fedshare contracts, check a deployment, and bind clients to it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from web3 import Web3

from offchain.chain.accounts import Wallet
from offchain.chain.clients import (
    DeviceRegistryClient,
    ModelRegistryClient,
    RewardVaultClient,
    TaskRegistryClient,
)
from offchain.chain.compile import Artifact, compile_contracts, compiler_version
from offchain.chain.node import Chain
from offchain.errors import ChainError, DeploymentError, InsufficientFunds
from offchain.storage.atomic import write_atomic

__all__ = ["Deployment", "Fedshare", "deploy", "CREDITOR_ROLE", "VERSIONER_ROLE"]

CREDITOR_ROLE = Web3.keccak(text="CREDITOR_ROLE")
VERSIONER_ROLE = Web3.keccak(text="VERSIONER_ROLE")

_CONTRACTS = {"device_registry": "DeviceRegistry", "reward_vault": "RewardVault",
              "model_registry": "ModelRegistry", "task_registry": "TaskRegistry"}
_DEPLOY_GAS = 20_000_000
"""About what a whole deployment costs (four contracts and two role grants), with
headroom: the least a deployer must be able to pay before anything is sent."""


@dataclass(frozen=True)
class Deployment:
    """One deployment of the contracts: where they are and how to talk to them.

    Besides the addresses it records the chain id, the block of the first deployment
    transaction (where event logs start), every transaction hash, the compiler and the
    ABI files shipped with the package, so that another client needs nothing else."""

    chain_id: int
    device_registry: str
    reward_vault: str
    model_registry: str
    task_registry: str
    task_settlement: str = ""
    block: int = 0
    transactions: dict[str, str] = field(default_factory=dict)
    compiler: str = ""
    abi: dict[str, str] = field(default_factory=dict)

    def addresses(self) -> dict[str, str]:
        """Contract (and library) name -> address."""
        found = {name: getattr(self, key) for key, name in _CONTRACTS.items()}
        if self.task_settlement:
            found["TaskSettlement"] = self.task_settlement
        return found

    def save(self, path: Path) -> None:
        """Writes the manifest atomically. Raises DeploymentError when it cannot."""
        _write_manifest(Path(path), asdict(self))

    @classmethod
    def load(cls, path: Path) -> "Deployment":
        """Reads a manifest. Raises DeploymentError when missing, malformed or left
        incomplete by a failed deployment."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise DeploymentError(f"deployment file {path} does not exist") from None
        except (OSError, ValueError) as exc:
            raise DeploymentError(f"deployment file {path} is unreadable: {exc}") from None
        if not isinstance(data, dict):
            raise DeploymentError(f"deployment file {path} is not a JSON object")
        if data.pop("complete", True) is False:
            raise DeploymentError(
                f"deployment file {path} records a deployment that did not finish "
                f"(contracts so far: {data.get('deployed', {})})")
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as exc:
            raise DeploymentError(f"deployment file {path} is malformed: {exc}") from None

    def verify(self, chain: Chain, artifacts: dict[str, Artifact] | None = None) -> None:
        """Checks that this deployment is on `chain`: the chain id, and that every
        address holds the contract's code. Raises DeploymentError naming the first
        mismatch (say, a manifest left from an earlier development node)."""
        if self.chain_id != chain.chain_id:
            raise DeploymentError(
                f"deployment is for chain {self.chain_id}, {chain.where} is chain "
                f"{chain.chain_id}")
        artifacts = artifacts or compile_contracts()
        if not self.task_settlement:
            raise DeploymentError("the deployment file names no TaskSettlement library: "
                                  "it is from an older version; deploy again")
        linked = dict(artifacts, TaskRegistry=artifacts["TaskRegistry"].linked(
            {"TaskSettlement": self.task_settlement}))
        for name, address in self.addresses().items():
            code = chain.code_at(address)
            if not code:
                raise DeploymentError(
                    f"{name} address {address} holds no code on {chain.where}: the "
                    f"deployment file is from another chain or an earlier node; deploy "
                    f"again")
            if not linked[name].matches_runtime(code):
                raise DeploymentError(
                    f"{name} address {address} on {chain.where} holds other code than "
                    f"this version of {name}")


def _write_manifest(path: Path, data: dict[str, Any]) -> None:
    try:
        write_atomic(path, json.dumps(data, indent=2))
    except OSError as exc:
        raise DeploymentError(f"cannot write deployment file {path}: {exc}") from None


def _deploy_one(chain: Chain, wallet: Wallet, artifact: Artifact, *args: Any) -> tuple[str, Any]:
    factory = chain.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = chain.transact(wallet, factory.constructor(*args))
    address = receipt.raw["contractAddress"]
    if not address:
        raise ChainError(f"deploying {artifact.name} created no contract")
    return str(address), receipt


def deploy(chain: Chain, deployer: Wallet, *, manifest: Path | None = None) -> "Fedshare":
    """Deploys the TaskSettlement library, then DeviceRegistry, RewardVault,
    ModelRegistry and TaskRegistry (linked to the library), and lets the task registry
    credit the vault and register model versions. Returns clients bound to the new
    deployment.

    With `manifest`, the path is checked writable before anything is sent, and the
    addresses are written after every step, so a failure never loses a deployed
    contract. Raises InsufficientFunds when the deployer cannot pay for the whole
    deployment, DeploymentError when the manifest cannot be written."""
    artifacts = compile_contracts()
    chain.require_cancun()
    if manifest is not None:
        _write_manifest(Path(manifest), {"complete": False, "chain_id": chain.chain_id,
                                         "deployed": {}})
    price = int(chain.w3.eth.gas_price)
    have = chain.balance(deployer.address)
    if have < _DEPLOY_GAS * price:
        raise InsufficientFunds(
            f"deployer {deployer.address} holds {have} wei; deploying needs about "
            f"{_DEPLOY_GAS * price} wei for gas. Fund it first (on a development node: "
            f"'fedshare wallet fund {deployer.address}')")
    _use_abis(chain, artifacts)
    deployed: dict[str, str] = {}
    transactions: dict[str, str] = {}
    first_block: list[int] = []

    def step(name: str, *args: Any, artifact: Artifact | None = None) -> str:
        address, receipt = _deploy_one(chain, deployer, artifact or artifacts[name],
                                       *args)
        deployed[name] = address
        transactions[name] = receipt.tx_hash
        first_block.append(receipt.block_number)
        if manifest is not None:
            _write_manifest(Path(manifest), {"complete": False, "chain_id": chain.chain_id,
                                             "deployed": deployed,
                                             "transactions": transactions})
        return address

    settlement = step("TaskSettlement")
    registry = step("DeviceRegistry")
    vault = step("RewardVault", deployer.address, registry)
    models = step("ModelRegistry", deployer.address)
    tasks = step("TaskRegistry", registry, vault, models,
                 artifact=artifacts["TaskRegistry"].linked({"TaskSettlement": settlement}))
    deployment = Deployment(chain.chain_id, registry, vault, models, tasks, settlement,
                            block=min(first_block), transactions=transactions,
                            compiler=compiler_version(), abi=abi_files())
    system = Fedshare(chain, deployment, artifacts)
    transactions["grantCreditor"] = chain.transact(
        deployer, system.vault.functions.grantRole(CREDITOR_ROLE, tasks)).tx_hash
    transactions["grantVersioner"] = chain.transact(
        deployer, system.models.functions.grantRole(VERSIONER_ROLE, tasks)).tx_hash
    if manifest is not None:
        deployment.save(Path(manifest))
    return system


def abi_files() -> dict[str, str]:
    """Contract name -> the ABI file shipped with the package (relative to the
    repository root)."""
    return {name: f"offchain/chain/abi/{name}.json" for name in _CONTRACTS.values()}


def _use_abis(chain: Chain, artifacts: dict[str, Artifact]) -> None:
    from offchain.chain.revert import RevertDecoder

    chain.decoder = RevertDecoder((a.name, a.abi) for a in artifacts.values())


class Fedshare:
    """One deployment: a typed client per contract (`devices`, `vault`, `models`,
    `tasks`) on one chain."""

    def __init__(self, chain: Chain, deployment: Deployment,
                 artifacts: dict[str, Artifact] | None = None) -> None:
        if deployment.chain_id != chain.chain_id:
            raise DeploymentError(
                f"deployment is for chain {deployment.chain_id}, "
                f"connected to chain {chain.chain_id}"
            )
        artifacts = artifacts or compile_contracts()
        _use_abis(chain, artifacts)
        self.chain = chain
        self.deployment = deployment
        self.devices = DeviceRegistryClient(chain, deployment.device_registry,
                                            artifacts["DeviceRegistry"].abi)
        self.vault = RewardVaultClient(chain, deployment.reward_vault,
                                       artifacts["RewardVault"].abi)
        self.models = ModelRegistryClient(chain, deployment.model_registry,
                                          artifacts["ModelRegistry"].abi)
        self.tasks = TaskRegistryClient(chain, deployment.task_registry,
                                        artifacts["TaskRegistry"].abi)

    @classmethod
    def attach(cls, chain: Chain, manifest: Path) -> "Fedshare":
        """Clients for the deployment recorded in `manifest`, after checking that it is
        on `chain` (chain id, code at every address). Raises DeploymentError."""
        deployment = Deployment.load(manifest)
        artifacts = compile_contracts()
        chain.require_cancun()
        deployment.verify(chain, artifacts)
        return cls(chain, deployment, artifacts)
