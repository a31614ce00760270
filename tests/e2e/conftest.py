"""A real Anvil node (npm @foundry-rs/anvil), started and stopped by the tests."""

from __future__ import annotations

import socket
import subprocess
import time

import pytest

from offchain.chain.node import Chain
from offchain.errors import ChainError
from offchain.paths import node_bin


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def anvil_url():
    binary = node_bin("anvil")
    if not binary.exists():
        pytest.fail(f"{binary} is missing: run 'npm install' (the README's test command does)")
    port = _free_port()
    process = subprocess.Popen([str(binary), "--host", "127.0.0.1", "--port", str(port),
                                "--silent"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            Chain.connect(url, timeout=2)
            break
        except ChainError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"anvil did not start: {process.stderr.read().decode()[:500]}")
            time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(timeout=10)
    process.stderr.close()
