"""What every command shares: the console, options, connecting, errors."""

from __future__ import annotations

import functools
import logging
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

import typer
from rich.console import Console

from offchain.errors import ChainError, FedshareError
from offchain.paths import default_home

__all__ = ["console", "fail", "handles_errors", "RpcUrl", "DeploymentFile", "Keystore",
           "Home", "ExchangeDir", "connect", "attach", "wallet", "quiet_warnings",
           "DEFAULT_RPC_URL", "print_progress"]

console = Console(width=None if sys.stdout.isatty() else 132)

DEFAULT_RPC_URL = "http://127.0.0.1:8545"

F = TypeVar("F", bound=Callable[..., Any])


def fail(exc: FedshareError) -> None:
    """Prints `exc` as one line naming the problem and exits with its code."""
    console.print(f"[bold red]error:[/] {type(exc).__name__}: {exc}", markup=True,
                  highlight=False)
    raise typer.Exit(exc.exit_code)


def handles_errors(fn: F) -> F:
    """Turns every fedshare error a command raises into :func:`fail`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except FedshareError as exc:
            fail(exc)

    return wrapper  # type: ignore[return-value]


def quiet_warnings() -> None:
    """Logging for long-running commands; Opacus' notes on secure RNG etc. hidden."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    warnings.simplefilter("ignore", UserWarning)


RpcUrl = typer.Option(DEFAULT_RPC_URL, "--rpc-url", envvar="FEDSHARE_RPC_URL",
                      help="JSON-RPC URL of the node (env FEDSHARE_RPC_URL).")
DeploymentFile = typer.Option(default_home() / "deployment.json", "--deployment",
                              envvar="FEDSHARE_DEPLOYMENT",
                              help="Deployment manifest written by 'fedshare deploy'.")
Keystore = typer.Option(None, "--keystore", help="V3 keystore of this party (password in "
                        "FEDSHARE_PASSWORD); default: the key in FEDSHARE_PRIVATE_KEY.")
Home = typer.Option(default_home(), "--home", help="Where this party keeps its state "
                    "(journal, salts, accountant).")
ExchangeDir = typer.Option(default_home() / "exchange", "--exchange",
                           envvar="FEDSHARE_EXCHANGE",
                           help="Directory of blobs and letters the parties share "
                           "(one machine).")


def connect(rpc_url: str):
    """A connection to the node at `rpc_url`. Raises ChainError."""
    from offchain.chain.node import Chain

    return Chain.connect(rpc_url)


def attach(rpc_url: str, deployment: Path, *, wait: bool = False):
    """Clients for the deployment in `deployment` after checking it is on the node
    (chain id, code at every address). With `wait` (a party that runs until its task
    ends), a node that does not answer yet is waited for, with back-off, rather than
    refused. Raises ChainError/DeploymentError."""
    from offchain.chain.contracts import Fedshare
    from offchain.chain.node import unreachable

    delay = 0.2
    while True:
        try:
            return Fedshare.attach(connect(rpc_url), deployment)
        except ChainError as exc:
            if not (wait and unreachable(exc)):
                raise
            logging.getLogger("fedshare").warning(
                "node unreachable at %s (%s); retrying in %.1f s", rpc_url, exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def wallet(keystore: Optional[Path]):
    """The party's wallet from its keystore (or FEDSHARE_PRIVATE_KEY). Raises
    ConfigError."""
    from offchain.chain.accounts import load_wallet

    return load_wallet(keystore)


def print_progress(kind: str, data: dict[str, Any]) -> None:
    """One line per thing a long-running party did."""
    shown = {k: v for k, v in data.items() if k not in ("role", "label", "outcome")}
    console.print(f"{data.get('label', '')} {kind} {shown}", highlight=False)
