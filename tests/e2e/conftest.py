"""A real Anvil node (npm @foundry-rs/anvil), started and stopped by the tests."""

from __future__ import annotations

import pytest

from offchain.devnodes import anvil_node
from offchain.errors import ChainError


@pytest.fixture(scope="session")
def anvil_url():
    try:
        node = anvil_node()
        url = node.__enter__()
    except ChainError as exc:
        pytest.fail(f"{exc} (the README's test command installs it)")
    yield url
    node.__exit__(None, None, None)
