"""`fedshare owner`: register devices from their consents, revoke them, list them
with their balances, claim their rewards."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from offchain.cli.common import (
    DeploymentFile,
    Keystore,
    RpcUrl,
    attach,
    console,
    handles_errors,
    print_progress,
    quiet_warnings,
    wallet,
    Home,
)
from offchain.errors import ConfigError
from offchain.protocol.terms import eth

__all__ = ["owner_app", "read_consent"]

owner_app = typer.Typer(help="A device owner's master wallet: register, revoke, list, "
                        "claim.", no_args_is_help=True)


def read_consent(path: Path) -> dict:
    """A consent file written by 'fedshare device consent'. Raises ConfigError."""
    try:
        data = json.loads(path.read_text())
        return {"device": str(data["device"]), "owner": str(data["owner"]),
                "public_key": bytes.fromhex(data["public_key"].removeprefix("0x")),
                "consent": bytes.fromhex(data["consent"].removeprefix("0x")),
                "chain_id": int(data["chain_id"]),
                "device_registry": str(data["device_registry"])}
    except FileNotFoundError:
        raise ConfigError(f"consent file {path} does not exist") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"consent file {path} is malformed: {exc}") from None


@owner_app.command("register")
@handles_errors
def register(consents: list[Path] = typer.Argument(..., help="Consent files of the "
                                                   "devices."),
             keystore: Optional[Path] = Keystore, rpc_url: str = RpcUrl,
             deployment: Path = DeploymentFile) -> None:
    """Register devices from their signed consents (each checked before sending)."""
    from offchain.roles import Owner

    owner = Owner(attach(rpc_url, deployment), wallet(keystore))
    fs = owner.fs
    for path in consents:
        c = read_consent(path)
        if c["owner"].lower() != owner.address.lower():
            raise ConfigError(f"{path} lets {c['owner']} register {c['device']}, not "
                              f"this owner {owner.address}")
        if (c["chain_id"], c["device_registry"].lower()) != (
                fs.chain.chain_id, fs.deployment.device_registry.lower()):
            raise ConfigError(f"{path} is for registry {c['device_registry']} on chain "
                              f"{c['chain_id']}, not this deployment")
        receipt = owner.register(c["device"], c["public_key"], c["consent"])
        state = "already registered" if receipt is None else "registered"
        console.print(f"{c['device']} {state} to {owner.address}")


@owner_app.command("revoke")
@handles_errors
def revoke(device: str = typer.Argument(..., help="Device address."),
           keystore: Optional[Path] = Keystore, rpc_url: str = RpcUrl,
           deployment: Path = DeploymentFile) -> None:
    """Revoke a device: it can no longer join or commit; its rewards stay claimable."""
    from offchain.roles import Owner

    Owner(attach(rpc_url, deployment), wallet(keystore)).revoke(device)
    console.print(f"{device} revoked")


@owner_app.command("list")
@handles_errors
def list_devices(keystore: Optional[Path] = Keystore, rpc_url: str = RpcUrl,
                 deployment: Path = DeploymentFile) -> None:
    """The owner's devices with their status and unclaimed rewards."""
    from offchain.roles import Owner

    owner = Owner(attach(rpc_url, deployment), wallet(keystore))
    table = Table(title=f"devices of {owner.address}")
    for name in ("device", "status", "unclaimed (ETH)"):
        table.add_column(name)
    for device, wei in owner.balances().items():
        table.add_row(device, owner.fs.devices.status(device).name.lower(), eth(wei))
    console.print(table)


@owner_app.command("claim")
@handles_errors
def claim(keystore: Optional[Path] = Keystore, rpc_url: str = RpcUrl,
          deployment: Path = DeploymentFile) -> None:
    """Claim every device's rewards to the master wallet in one transaction."""
    from offchain.roles import Owner

    owner = Owner(attach(rpc_url, deployment), wallet(keystore))
    balances = owner.unclaimed()
    claimed = owner.claim()
    for device, wei in balances.items():
        console.print(f"{device}: {eth(wei)} ETH")
    console.print(f"claimed {eth(claimed)} ETH to {owner.address}")


@owner_app.command("run")
@handles_errors
def run(task: int = typer.Option(..., "--task", help="Task id."),
        keystore: Optional[Path] = Keystore, rpc_url: str = RpcUrl,
        deployment: Path = DeploymentFile, home: Path = Home) -> None:
    """Follow task `--task` until it ends, then claim what the owner's devices earned."""
    from offchain.driver import run_role
    from offchain.roles import OwnerRole

    quiet_warnings()
    fs = attach(rpc_url, deployment, wait=True)
    role = OwnerRole(fs, wallet(keystore), task, home / "state", progress=print_progress)
    run_role(role, max_poll=2.0)
    console.print(f"owner {role.address}: task {task} is over, claimed "
                  f"{eth(role.state.get('claimed', 0))} ETH")
