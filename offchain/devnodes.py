"""Local development nodes started for the duration of a run: Anvil (the default),
a Hardhat node and Ganache, all from the project's npm packages."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from offchain.chain.node import Chain
from offchain.errors import ChainError, ConfigError
from offchain.paths import node_bin, project_root

__all__ = ["NODES", "anvil_node", "dev_node", "free_port"]

NODES = ("anvil", "hardhat", "ganache")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _command(kind: str, port: int, state: Path | None) -> list[str]:
    binary = node_bin(kind)
    if not binary.exists():
        raise ChainError(f"{binary} is missing: run 'npm install' in the project root")
    if kind == "anvil":
        args = [str(binary), "--host", "127.0.0.1", "--port", str(port), "--silent"]
        return args + (["--state", str(state)] if state is not None else [])
    if state is not None:
        raise ConfigError(f"only Anvil keeps its state across restarts here, not {kind}")
    if kind == "hardhat":
        return [str(binary), "node", "--hostname", "127.0.0.1", "--port", str(port)]
    return [str(binary), "--server.host", "127.0.0.1", "--server.port", str(port),
            "--logging.quiet", "--miner.blockGasLimit", "30000000",
            "--wallet.defaultBalance", "100000"]


@contextlib.contextmanager
def dev_node(kind: str = "anvil", *, port: int | None = None, state: Path | None = None,
             timeout: float = 60.0) -> Iterator[str]:
    """Runs a development node of `kind` (anvil, hardhat or ganache) on 127.0.0.1 for
    the duration; yields its URL. With `state` (Anvil only) the node loads and dumps
    its state there. Raises ConfigError for an unknown kind, ChainError when the
    binary is missing or the node does not start."""
    if kind not in NODES:
        raise ConfigError(f"unknown node {kind!r}; choose from {', '.join(NODES)}")
    port = port or free_port()
    process = subprocess.Popen(_command(kind, port, state), cwd=project_root(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                Chain.connect(url, timeout=2)
                break
            except ChainError:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    raise ChainError(f"{kind} did not start: "
                                     f"{process.stderr.read().decode()[:500]}") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        if process.stderr is not None:
            process.stderr.close()


def anvil_node(*, port: int | None = None, state: Path | None = None,
               timeout: float = 30.0) -> contextlib.AbstractContextManager[str]:
    """An Anvil node for the duration (see :func:`dev_node`)."""
    return dev_node("anvil", port=port, state=state, timeout=timeout)
