"""The README's multi-party section, run as it stands against a real Anvil node: every
party in its own OS process, then the scripts and the errors a user meets."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from offchain.chain.contracts import Fedshare
from offchain.chain.node import Chain
from offchain.paths import project_root
from offchain.protocol.types import TaskStatus

pytestmark = pytest.mark.anvil

MARKER = "<!-- walkthrough:"


def readme_walkthrough() -> str:
    """The shell block that follows the walkthrough marker in the README."""
    text = (project_root() / "README.md").read_text()
    after = text[text.index(MARKER):]
    match = re.search(r"```sh\n(.*?)```", after, flags=re.S)
    assert match, "the README's walkthrough block is missing"
    return match.group(1)


def _run(script: str, env: dict, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


def test_the_readme_walkthrough_runs_every_party_in_its_own_process(anvil_url, tmp_path):
    home = tmp_path / "walkthrough"
    script = readme_walkthrough()
    assert "export FEDSHARE_RPC_URL=http://127.0.0.1:8545" in script
    # The one change: this test's node and folder instead of the defaults.
    script = script.replace("http://127.0.0.1:8545", anvil_url).replace(
        "$PWD/.fedshare/walkthrough", str(home))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDSHARE_")}
    done = _run(script, env, project_root())
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "task 1 published" in out
    assert "task 1: completed, 2/2 rounds opened" in out
    assert "claimed 1.0000 ETH" in out
    assert "change-me" not in out + done.stderr

    fs = Fedshare.attach(Chain.connect(anvil_url), home / "deployment.json")
    assert fs.tasks.state(1).status is TaskStatus.COMPLETED
    assert fs.chain.balance(fs.tasks.address) == fs.tasks.total_held() == 0
    assert fs.chain.balance(fs.vault.address) == fs.vault.total_owed() == 0
    # Each device sent exactly its transactions: join, then per round commit,
    # score commitment and reveal — nothing twice, nothing reverted.
    for d in (1, 2, 3):
        address = "0x" + json.loads((home / f"device{d}.json").read_text())["address"]
        assert fs.chain.nonce_of(address) == 1 + 3 * 2

    # The scripts are the same commands; errors are one clear line with an exit code.
    env.update(FEDSHARE_PASSWORD="change-me", FEDSHARE_RPC_URL=anvil_url,
               FEDSHARE_HOME=str(home))
    claim = subprocess.run([sys.executable, str(project_root() / "scripts" /
                                                "claim_rewards.py"),
                            "--keystore", "owner.json"], cwd=home, env=env,
                           capture_output=True, text=True, timeout=120)
    assert claim.returncode == 0, claim.stdout + claim.stderr
    assert "claimed 0.0000 ETH" in claim.stdout
    env["FEDSHARE_PASSWORD"] = "wrong"
    claim = subprocess.run([sys.executable, str(project_root() / "scripts" /
                                                "claim_rewards.py"),
                            "--keystore", "owner.json"], cwd=home, env=env,
                           capture_output=True, text=True, timeout=120)
    assert claim.returncode == 2
    assert "ConfigError" in claim.stdout and "wrong password" in claim.stdout
    assert "Traceback" not in claim.stdout + claim.stderr
