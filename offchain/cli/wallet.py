"""`fedshare wallet`: create a keystore, show an address and balance, fund on a
development node."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import typer

from offchain.cli.common import RpcUrl, console, connect, handles_errors, wallet
from offchain.errors import ConfigError
from offchain.protocol.terms import ETHER, eth

__all__ = ["wallet_app", "create_keystore"]

wallet_app = typer.Typer(help="Wallets: V3 keystores, balances, development funding.",
                         no_args_is_help=True)


def create_keystore(path: Path, *, force: bool = False) -> str:
    """Creates a new wallet as an encrypted V3 keystore at `path` (password from
    FEDSHARE_PASSWORD, or asked for); returns its address. Refuses to overwrite a
    key file unless `force`. Raises ConfigError."""
    from offchain.chain.accounts import new_wallet, save_keystore

    if path.exists() and not force:
        raise ConfigError(f"{path} already exists; not overwriting a key (pass --force "
                          f"to replace it)")
    password = os.environ.get("FEDSHARE_PASSWORD") or typer.prompt(
        "password", hide_input=True, confirmation_prompt=True)
    created = new_wallet()
    try:
        save_keystore(path, created, password)
    except OSError as exc:
        raise ConfigError(f"cannot write keystore {path}: {exc}") from None
    return created.address


@wallet_app.command("create")
@handles_errors
def create(keystore: Path = typer.Argument(..., help="Keystore file to create."),
           force: bool = typer.Option(False, help="Replace an existing key file.")) -> None:
    """Create a wallet as an encrypted V3 keystore (password from FEDSHARE_PASSWORD or
    asked for). Prints only the address."""
    console.print(f"{create_keystore(keystore, force=force)} -> {keystore}")


@wallet_app.command("show")
@handles_errors
def show(keystore: Optional[Path] = typer.Argument(
            None, help="Keystore (default: FEDSHARE_PRIVATE_KEY)."),
         balance: bool = typer.Option(False, "--balance", help="Also show the balance."),
         rpc_url: str = RpcUrl) -> None:
    """Print a wallet's address (with --balance, also its balance on the node)."""
    owner = wallet(keystore)
    if not balance:
        console.print(owner.address)
        return
    console.print(f"{owner.address} {eth(connect(rpc_url).balance(owner.address))} ETH")


def resolve_address(target: str) -> str:
    """An address given as such, or read from a V3 keystore file (its public
    ``address`` field: no password needed). Raises ConfigError."""
    from web3 import Web3

    if Web3.is_address(target):
        return Web3.to_checksum_address(target)
    path = Path(target)
    try:
        found = json.loads(path.read_text()).get("address", "")
    except FileNotFoundError:
        raise ConfigError(f"{target!r} is neither an address nor a keystore file") from None
    except (OSError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{target}: not a V3 keystore ({exc})") from None
    if not Web3.is_address("0x" + str(found).removeprefix("0x")):
        raise ConfigError(f"{target}: the keystore names no address")
    return Web3.to_checksum_address("0x" + str(found).removeprefix("0x"))


@wallet_app.command("fund")
@handles_errors
def fund(target: str = typer.Argument(..., help="Address, or keystore file, to fund."),
         amount: float = typer.Option(10.0, "--eth", help="Ether to send."),
         rpc_url: str = RpcUrl) -> None:
    """Send ether from a development node's unlocked account (Anvil, Hardhat, Ganache);
    refused on any other node."""
    if not (amount > 0 and amount < 1e9):
        raise ConfigError(f"--eth must be a positive amount, got {amount}")
    address = resolve_address(target)
    chain = connect(rpc_url)
    chain.fund(address, int(amount * ETHER))
    console.print(f"{address} now holds {eth(chain.balance(address))} ETH")
