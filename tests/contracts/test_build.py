"""The contracts compile with the npm solc, both through py-solc-x and Hardhat 2; the
task registry is linked to the TaskSettlement library; every contract fits EIP-170; the
ABIs shipped with the package are the compiler's."""

import json
import os
import subprocess

from typer.testing import CliRunner

from offchain.chain.compile import (
    ABI_DIR,
    CONTRACT_NAMES,
    EIP170_LIMIT,
    LIBRARY_NAMES,
    abi_json,
    compile_contracts,
    library_placeholder,
)
from offchain.cli import app
from offchain.paths import project_root

SOURCES = {
    "DeviceRegistry": "contracts/DeviceRegistry.sol",
    "RewardVault": "contracts/RewardVault.sol",
    "ModelRegistry": "contracts/ModelRegistry.sol",
    "TaskRegistry": "contracts/TaskRegistry.sol",
    "TaskSettlement": "contracts/libraries/TaskSettlement.sol",
}


def test_compiled_artifacts_are_cached_and_rebuilt_on_request():
    first = compile_contracts()
    assert set(first) == set(CONTRACT_NAMES + LIBRARY_NAMES) == set(SOURCES)
    assert all(a.bytecode.startswith("0x") and len(a.bytecode) > 100
               for a in first.values())
    assert all(a.deployed_bytecode.startswith("0x") for a in first.values())
    assert compile_contracts() == first
    rebuilt = compile_contracts(force=True)
    assert rebuilt["TaskRegistry"].abi == first["TaskRegistry"].abi
    assert rebuilt == first


def test_every_contract_fits_the_eip170_limit():
    artifacts = compile_contracts()
    sizes = {name: a.runtime_size for name, a in artifacts.items()}
    assert all(0 < size <= EIP170_LIMIT for size in sizes.values()), sizes


def test_only_the_task_registry_needs_a_library_and_its_bytecodes_hold_its_placeholder():
    artifacts = compile_contracts()
    assert {n: a.libraries for n, a in artifacts.items() if a.libraries} == {
        "TaskRegistry": ("TaskSettlement",)}
    registry = artifacts["TaskRegistry"]
    placeholder = library_placeholder(f"{SOURCES['TaskSettlement']}:TaskSettlement")
    for code, refs in ((registry.bytecode, registry.link_references),
                       (registry.deployed_bytecode, registry.deployed_link_references)):
        (ranges,) = [r["TaskSettlement"] for r in refs.values()]
        assert list(refs) == [SOURCES["TaskSettlement"]]
        assert ranges and code.count(placeholder) == len(ranges)


def test_the_deployed_task_registry_delegates_to_the_deployed_library(system):
    """The address linked into TaskRegistry's code holds TaskSettlement's code (which
    starts with PUSH20 of its own address, solc's guard against direct calls)."""
    artifacts = compile_contracts()
    w3 = system.chain.w3
    code = bytes(w3.eth.get_code(system.tasks.address))
    assert len(code) == artifacts["TaskRegistry"].runtime_size
    (ranges,) = [r["TaskSettlement"]
                 for r in artifacts["TaskRegistry"].deployed_link_references.values()]
    linked = {code[r["start"]:r["start"] + 20] for r in ranges}
    assert len(linked) == 1
    library = linked.pop()
    expected = bytes.fromhex(artifacts["TaskSettlement"].deployed_bytecode[2:])
    assert bytes(w3.eth.get_code(w3.to_checksum_address(library))) == (
        expected[:1] + library + expected[21:])


def test_the_committed_abis_are_the_compilers():
    """`fedshare compile` rewrites offchain/chain/abi/; run it when this fails."""
    artifacts = compile_contracts()
    assert sorted(p.name for p in ABI_DIR.glob("*.json")) == sorted(
        f"{n}.json" for n in CONTRACT_NAMES)
    for name in CONTRACT_NAMES:
        committed = (ABI_DIR / f"{name}.json").read_text()
        assert committed == abi_json(artifacts[name].abi), (
            f"{name}.json is stale: run 'fedshare compile'")


def test_fedshare_compile_writes_the_abis_and_prints_deployed_sizes(tmp_path):
    result = CliRunner().invoke(app, ["compile", "--abi-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    size = compile_contracts()["TaskRegistry"].runtime_size
    assert f"TaskRegistry: {size:,} bytes deployed (limit 24,576)" in result.output
    for name in CONTRACT_NAMES:
        written = (tmp_path / f"{name}.json").read_text()
        assert written == (ABI_DIR / f"{name}.json").read_text()


def test_hardhat_compiles_the_same_contracts_offline():
    root = project_root()
    env = dict(os.environ, HARDHAT_DISABLE_TELEMETRY_PROMPT="true")
    subprocess.run(["npx", "--no-install", "hardhat", "compile", "--quiet"], cwd=root,
                   env=env, check=True, capture_output=True, timeout=300)
    artifacts = compile_contracts()
    for name, source in SOURCES.items():
        path = root / "artifacts" / source / f"{name}.json"
        hardhat = json.loads(path.read_text())
        assert hardhat["abi"] == artifacts[name].abi
        linked = artifacts[name].deployed_link_references
        assert hardhat["deployedLinkReferences"] == linked
