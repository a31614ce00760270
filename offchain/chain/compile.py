"""Compile the Solidity sources with the npm solc (solc-js) through py-solc-x.

Artifacts are cached under ``build/contracts`` and rebuilt when a source, the
compiler version or the settings change.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import solcx
from solcx.exceptions import SolcError

from offchain.errors import ChainError
from offchain.paths import build_dir, contracts_dir, project_root

__all__ = ["Artifact", "compile_contracts", "compiler_version", "CONTRACT_NAMES",
           "SOLC_SETTINGS"]

CONTRACT_NAMES = ("DeviceRegistry", "RewardVault", "ModelRegistry", "TaskRegistry")
SOLC_SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "cancun",
    "outputSelection": {
        "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object",
                    "evm.deployedBytecode.immutableReferences"]}
    },
}


@dataclass(frozen=True)
class Artifact:
    """A compiled contract: its ABI, creation bytecode, runtime bytecode and where
    the runtime code holds immutables (byte ranges set by the constructor)."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    runtime: str = "0x"
    immutables: tuple[tuple[int, int], ...] = ()

    def matches_runtime(self, code: bytes) -> bool:
        """Whether `code` (read from a chain) is this contract's runtime code, with
        the immutables it was deployed with masked out."""
        expected = bytes.fromhex(self.runtime.removeprefix("0x"))
        if len(code) != len(expected):
            return False
        actual = bytearray(code)
        wanted = bytearray(expected)
        for start, length in self.immutables:
            actual[start:start + length] = wanted[start:start + length]
        return bytes(actual) == bytes(wanted)


def _shim() -> Path:
    return Path(__file__).with_name("solc-shim")


def _sources() -> dict[str, Path]:
    root = project_root()
    return {
        str(p.relative_to(root)): p for p in sorted(contracts_dir().rglob("*.sol"))
    }


def _fingerprint(sources: dict[str, Path], version: str) -> str:
    digest = hashlib.sha256()
    digest.update(version.encode())
    digest.update(json.dumps(SOLC_SETTINGS, sort_keys=True).encode())
    for name, path in sources.items():
        digest.update(name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def compiler_version() -> str:
    """The version of the npm solc that compiles the contracts."""
    return _compiler_version()


def _compiler_version() -> str:
    try:
        return str(solcx.wrapper.get_solc_version(_shim()))
    except (SolcError, OSError, FileNotFoundError) as exc:
        raise ChainError(
            f"cannot run the npm solc through {_shim().name}: {exc}; run 'npm install'"
        ) from exc


def compile_contracts(*, force: bool = False) -> dict[str, Artifact]:
    """Compile (or load from cache) every contract in ``CONTRACT_NAMES``.

    Raises ChainError when the compiler is missing or the sources do not compile.
    """
    sources = _sources()
    out = build_dir() / "contracts"
    version = _compiler_version()
    stamp = out / "fingerprint"
    fingerprint = _fingerprint(sources, version)
    if not force and stamp.exists() and stamp.read_text() == fingerprint:
        return {name: _load(out / f"{name}.json") for name in CONTRACT_NAMES}

    standard_input = {
        "language": "Solidity",
        "sources": {name: {"urls": [name]} for name in sources},
        "settings": SOLC_SETTINGS,
    }
    try:
        output = solcx.compile_standard(
            standard_input,
            solc_binary=_shim(),
        )
    except SolcError as exc:
        raise ChainError(f"contracts do not compile:\n{_compiler_errors(exc)}") from exc

    found: dict[str, Artifact] = {}
    for file_output in output["contracts"].values():
        for name, data in file_output.items():
            if name in CONTRACT_NAMES:
                runtime = data["evm"]["deployedBytecode"]
                ranges = tuple(sorted(
                    (int(r["start"]), int(r["length"]))
                    for refs in runtime.get("immutableReferences", {}).values()
                    for r in refs))
                found[name] = Artifact(
                    name, data["abi"], "0x" + data["evm"]["bytecode"]["object"],
                    "0x" + runtime["object"], ranges,
                )
    missing = set(CONTRACT_NAMES) - set(found)
    if missing:
        raise ChainError(f"compiler output lacks {sorted(missing)}")
    out.mkdir(parents=True, exist_ok=True)
    for artifact in found.values():
        (out / f"{artifact.name}.json").write_text(json.dumps({
            "abi": artifact.abi, "bytecode": artifact.bytecode,
            "runtime": artifact.runtime, "immutables": artifact.immutables}))
    stamp.write_text(fingerprint)
    return found


def _compiler_errors(exc: SolcError) -> str:
    """The compiler's own error messages, without the JSON it printed around them."""
    try:
        output = json.loads(exc.stdout_data)
    except (TypeError, ValueError):
        return str(exc.message or exc)
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    return "\n".join(e.get("formattedMessage", e.get("message", "")) for e in errors)


def _load(path: Path) -> Artifact:
    data = json.loads(path.read_text())
    return Artifact(path.stem, data["abi"], data["bytecode"], data.get("runtime", "0x"),
                    tuple(tuple(r) for r in data.get("immutables", ())))
