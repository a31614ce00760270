"""The contracts compile with the npm solc, both through py-solc-x and Hardhat 2."""

import json
import os
import subprocess

from offchain.chain.compile import CONTRACT_NAMES, compile_contracts
from offchain.paths import project_root


def test_compiled_artifacts_are_cached_and_rebuilt_on_request():
    first = compile_contracts()
    assert set(first) == set(CONTRACT_NAMES)
    assert all(a.bytecode.startswith("0x") and len(a.bytecode) > 100 for a in first.values())
    assert compile_contracts() == first
    assert compile_contracts(force=True)["TaskRegistry"].abi == first["TaskRegistry"].abi


def test_hardhat_compiles_the_same_contracts_offline():
    root = project_root()
    env = dict(os.environ, HARDHAT_DISABLE_TELEMETRY_PROMPT="true")
    subprocess.run(["npx", "--no-install", "hardhat", "compile", "--quiet"], cwd=root,
                   env=env, check=True, capture_output=True, timeout=300)
    for name in CONTRACT_NAMES:
        path = root / "artifacts" / "contracts" / f"{name}.sol" / f"{name}.json"
        hardhat_abi = json.loads(path.read_text())["abi"]
        assert hardhat_abi == compile_contracts()[name].abi
