"""`fedshare device`: a device's identity, its consent for its owner, its data, and
its part in a task."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from offchain.cli.common import (
    DeploymentFile,
    ExchangeDir,
    Home,
    Keystore,
    RpcUrl,
    attach,
    console,
    handles_errors,
    print_progress,
    quiet_warnings,
    wallet,
)
from offchain.cli.wallet import create_keystore
from offchain.errors import ConfigError
from offchain.storage.atomic import write_atomic

__all__ = ["device_app"]

device_app = typer.Typer(help="A device: identity, consent, data, taking part in tasks.",
                         no_args_is_help=True)


@device_app.command("create")
@handles_errors
def create(keystore: Path = typer.Argument(..., help="Keystore file for the device's "
                                          "micro-wallet."),
           force: bool = typer.Option(False, help="Replace an existing key file.")) -> None:
    """Create a device identity: its micro-wallet, whose secp256k1 key also unseals the
    updates peers seal to it. Prints the address and the public sealing key."""
    address = create_keystore(keystore, force=force)
    console.print(f"device {address} -> {keystore}")
    console.print(f"sealing key 0x{wallet(keystore).public_key.hex()}")


@device_app.command("consent")
@handles_errors
def consent(owner: str = typer.Option(..., "--owner", help="The owner's master-wallet "
                                      "address that may register this device."),
            out: Path = typer.Option(..., "--out", help="Consent file to write."),
            keystore: Optional[Path] = Keystore,
            rpc_url: str = RpcUrl, deployment: Path = DeploymentFile) -> None:
    """Sign this device's consent to be registered by `--owner`. The file holds the
    device's address, public sealing key and signature; the key never leaves the
    device. Give the file to the owner ('fedshare owner register')."""
    from web3 import Web3

    if not Web3.is_address(owner):
        raise ConfigError(f"--owner {owner!r} is not an address")
    owner = Web3.to_checksum_address(owner)
    device = wallet(keystore)
    fs = attach(rpc_url, deployment)
    signature = fs.devices.sign_consent(owner, device)
    document = {"device": device.address, "owner": owner,
                "public_key": "0x" + device.public_key.hex(),
                "consent": "0x" + signature.hex(), "chain_id": fs.chain.chain_id,
                "device_registry": fs.deployment.device_registry}
    try:
        write_atomic(out, json.dumps(document, indent=2))
    except OSError as exc:
        raise ConfigError(f"cannot write consent file {out}: {exc}") from None
    console.print(f"consent of {device.address} for owner {owner} -> {out}")


@device_app.command("export-data")
@handles_errors
def export_data(out: Path = typer.Argument(..., help="Folder for device-N.npz files "
                                           "and test.npz."),
                dataset: str = typer.Option("mnist", help="mnist or autompg."),
                devices: int = typer.Option(10, help="Devices to split the data over."),
                seed: int = typer.Option(0, help="Seed of the split.")) -> None:
    """Split a bundled data set (5,000 MNIST digits or the Auto-MPG cars) IID into
    device data files (the format 'device run --data' reads) and a test set for the
    requester, as the demo does."""
    from offchain.learning.data import load_autompg, load_mnist, split_iid
    from offchain.learning.datafile import save_dataset, save_device_data

    loaders = {"mnist": load_mnist, "autompg": load_autompg}
    if dataset not in loaders:
        raise ConfigError(f"unknown data set {dataset!r}; choose mnist or autompg")
    split = split_iid(loaders[dataset](), devices, seed=seed)
    for i, data in enumerate(split.devices, start=1):
        save_device_data(out / f"device-{i}.npz", data)
    save_dataset(out / "test.npz", split.test)
    console.print(f"{devices} device files and test.npz -> {out}")


@device_app.command("run")
@handles_errors
def run(task: int = typer.Option(..., "--task", help="Task id."),
        data: Path = typer.Option(..., "--data", help="The device's data file (.npz: "
                                  "train_x, train_y, validation_x, validation_y)."),
        paillier_key: Path = typer.Option(..., "--paillier-key", help="The requester's "
                                          "Paillier public-key file."),
        seed: int = typer.Option(0, help="Seed of the device's training noise stream."),
        keystore: Optional[Path] = Keystore, rpc_url: str = RpcUrl,
        deployment: Path = DeploymentFile, home: Path = Home,
        exchange: Path = ExchangeDir) -> None:
    """Take part in task `--task` until it ends: join, train with DP-SGD, commit the
    encrypted update, seal it to the verifiers, score peers, commit and reveal the
    scores. Resumes where it stopped after a restart."""
    from offchain.crypto import load_public_key
    from offchain.driver import run_role
    from offchain.learning.datafile import load_device_data
    from offchain.learning.model import ModelSpec
    from offchain.privacy import DPConfig
    from offchain.roles import DeviceRole
    from offchain.storage import LocalExchange

    quiet_warnings()
    device = wallet(keystore)
    fs = attach(rpc_url, deployment, wait=True)
    role = DeviceRole(fs, device, task, home / "state",
                      exchange=LocalExchange(exchange), data=load_device_data(data),
                      spec=ModelSpec(), dp=DPConfig(),
                      paillier_key=load_public_key(paillier_key), seed=seed,
                      progress=print_progress)
    run_role(role)
    console.print(f"device {device.address}: task {task} is over")

