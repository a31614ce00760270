"""Compile the Solidity sources with the npm solc (solc-js) through py-solc-x.

Artifacts are cached under ``build/contracts`` and rebuilt when a source, the
compiler version or the settings change. ``TaskRegistry`` calls the external
library ``TaskSettlement``: its bytecode holds solc's ``__$<34 hex>$__``
placeholders until :meth:`Artifact.linked` writes the library's address into
them. The ABIs of the deployed contracts are also kept, as plain JSON, in
``offchain/chain/abi/`` (package data), so that other clients need nothing else;
:func:`export_abis` rewrites them (``fedshare compile``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import solcx
from eth_utils import is_address, keccak
from solcx.exceptions import SolcError

from offchain.errors import ChainError
from offchain.paths import build_dir, contracts_dir, project_root
from offchain.storage.atomic import write_atomic

__all__ = [
    "ABI_DIR",
    "Artifact",
    "CONTRACT_NAMES",
    "EIP170_LIMIT",
    "LIBRARY_NAMES",
    "LinkReferences",
    "SOLC_SETTINGS",
    "abi_json",
    "compile_contracts",
    "export_abis",
    "library_placeholder",
    "link_bytecode",
    "load_abi",
    "compiler_version",
]

CONTRACT_NAMES = ("DeviceRegistry", "RewardVault", "ModelRegistry", "TaskRegistry")
"""The contracts a deployment holds and clients call; their ABIs are exported."""
LIBRARY_NAMES = ("TaskSettlement",)
"""External libraries, deployed before the contracts that link them."""
EIP170_LIMIT = 24_576
"""Largest deployed (runtime) code a contract may have (EIP-170), in bytes."""
SOLC_SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "cancun",
    "outputSelection": {
        "*": {
            "*": [
                "abi",
                "evm.bytecode.object",
                "evm.bytecode.linkReferences",
                "evm.deployedBytecode.object",
                "evm.deployedBytecode.linkReferences",
                "evm.deployedBytecode.immutableReferences",
            ]
        }
    },
}
ABI_DIR = Path(__file__).with_name("abi")
"""Where the exported ABIs live in the source tree (shipped as package data)."""

_CACHE_FORMAT = "3"  # bump when the cached artifact files change shape

LinkReferences = dict[str, dict[str, list[dict[str, int]]]]
"""solc's ``linkReferences``: source file -> library name -> byte ranges
(``start``, ``length``) of the placeholders in the bytecode."""


def library_placeholder(qualified_name: str) -> str:
    """The 40-character placeholder solc leaves for the address of the library
    ``qualified_name`` (``"path/File.sol:Name"``): ``__$`` + the first 34 hex
    digits of keccak256(qualified_name) + ``$__``."""
    return "__$" + keccak(text=qualified_name).hex()[:34] + "$__"


def link_bytecode(bytecode: str, link_references: LinkReferences,
                  addresses: Mapping[str, str]) -> str:
    """Writes library addresses into `bytecode` (hex, with or without ``0x``).

    `link_references` is solc's map of where each library's placeholder sits;
    `addresses` maps library names (``"TaskSettlement"``) or fully qualified names
    (``"contracts/libraries/TaskSettlement.sol:TaskSettlement"``) to addresses.
    Returns the linked bytecode with the same prefix. Raises ChainError when an
    address is missing or malformed, when a placeholder is not where the
    references say, or when any placeholder is left.
    """
    prefix = "0x" if bytecode.startswith("0x") else ""
    code = bytecode[len(prefix):]
    for source, libraries in link_references.items():
        for name, ranges in libraries.items():
            qualified = f"{source}:{name}"
            address = addresses.get(qualified, addresses.get(name))
            if address is None:
                raise ChainError(f"bytecode needs the address of library {qualified}")
            if not is_address(address):
                raise ChainError(f"library {qualified}: {address!r} is not an address")
            placeholder = library_placeholder(qualified)
            for where in ranges:
                start, length = 2 * where["start"], 2 * where["length"]
                found = code[start:start + length]
                if length != len(placeholder) or found != placeholder:
                    raise ChainError(
                        f"no placeholder of {qualified} at byte {where['start']}")
                code = code[:start] + address[-40:].lower() + code[start + length:]
    if "__$" in code:
        offset = code.index("__$") // 2
        raise ChainError(
            f"bytecode still has an unlinked library placeholder at byte {offset}")
    return prefix + code


@dataclass(frozen=True)
class Artifact:
    """A compiled contract or library: its ABI, its creation and runtime (deployed)
    bytecode, and where each holds library placeholders."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str = ""
    link_references: LinkReferences = field(default_factory=dict)
    deployed_link_references: LinkReferences = field(default_factory=dict)
    immutables: tuple[tuple[int, int], ...] = ()
    """Byte ranges (start, length) of the runtime code that the constructor fills
    in (immutables); a library's own address is one too."""

    def matches_runtime(self, code: bytes) -> bool:
        """Whether `code` (read from a chain) is this (linked) artifact's runtime
        code, with the immutables it was deployed with masked out."""
        expected = bytes.fromhex(self.deployed_bytecode.removeprefix("0x"))
        if len(code) != len(expected):
            return False
        actual, wanted = bytearray(code), bytearray(expected)
        for start, length in self.immutables:
            actual[start:start + length] = wanted[start:start + length]
        return actual == wanted

    @property
    def libraries(self) -> tuple[str, ...]:
        """Names of the libraries the bytecode must be linked with, sorted."""
        return tuple(sorted({name for libs in self.link_references.values()
                             for name in libs}))

    @property
    def runtime_size(self) -> int:
        """Bytes of deployed code (what EIP-170 limits)."""
        return len(self.deployed_bytecode.removeprefix("0x")) // 2

    def linked(self, addresses: Mapping[str, str]) -> "Artifact":
        """This artifact with the library `addresses` (by name) written into both
        bytecodes (see :func:`link_bytecode`). Raises ChainError when one is missing."""
        return replace(
            self,
            bytecode=link_bytecode(self.bytecode, self.link_references, addresses),
            deployed_bytecode=link_bytecode(self.deployed_bytecode,
                                            self.deployed_link_references, addresses),
            link_references={},
            deployed_link_references={},
        )


def _shim() -> Path:
    return Path(__file__).with_name("solc-shim")


def _sources() -> dict[str, Path]:
    root = project_root()
    return {
        str(p.relative_to(root)): p for p in sorted(contracts_dir().rglob("*.sol"))
    }


def _fingerprint(sources: dict[str, Path], version: str) -> str:
    digest = hashlib.sha256()
    digest.update(_CACHE_FORMAT.encode())
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
    """Compile (or load from cache) every contract in ``CONTRACT_NAMES`` and every
    library in ``LIBRARY_NAMES``, by name.

    Raises ChainError when the compiler is missing or the sources do not compile.
    """
    sources = _sources()
    out = build_dir() / "contracts"
    version = _compiler_version()
    stamp = out / "fingerprint"
    fingerprint = _fingerprint(sources, version)
    names = CONTRACT_NAMES + LIBRARY_NAMES
    if not force and stamp.exists() and stamp.read_text() == fingerprint:
        return {name: _load(out / f"{name}.json") for name in names}

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
            if name in names:
                found[name] = _artifact(name, data)
    missing = set(names) - set(found)
    if missing:
        raise ChainError(f"compiler output lacks {sorted(missing)}")
    out.mkdir(parents=True, exist_ok=True)
    for artifact in found.values():
        # Atomic writes, the fingerprint last: parties starting at the same time
        # read either the old cache (and compile themselves) or the whole new one.
        write_atomic(out / f"{artifact.name}.json", json.dumps({
            "abi": artifact.abi,
            "bytecode": artifact.bytecode,
            "deployedBytecode": artifact.deployed_bytecode,
            "linkReferences": artifact.link_references,
            "deployedLinkReferences": artifact.deployed_link_references,
            "immutables": artifact.immutables,
        }))
    write_atomic(stamp, fingerprint)
    return {name: found[name] for name in names}


def _artifact(name: str, data: dict[str, Any]) -> Artifact:
    evm = data["evm"]
    ranges = {(int(r["start"]), int(r["length"]))
              for refs in evm["deployedBytecode"].get("immutableReferences", {}).values()
              for r in refs}
    if name in LIBRARY_NAMES:
        ranges.add((1, 20))  # PUSH20 <own address>: the call guard of a library
    return Artifact(
        name,
        data["abi"],
        "0x" + evm["bytecode"]["object"],
        "0x" + evm["deployedBytecode"]["object"],
        evm["bytecode"].get("linkReferences", {}),
        evm["deployedBytecode"].get("linkReferences", {}),
        tuple(sorted(ranges)),
    )


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
    return Artifact(path.stem, data["abi"], data["bytecode"], data["deployedBytecode"],
                    data["linkReferences"], data["deployedLinkReferences"],
                    tuple(tuple(r) for r in data.get("immutables", ())))


# ---------------------------------------------------------------- exported ABIs


def abi_json(abi: list[dict[str, Any]]) -> str:
    """The text of an exported ABI file: the ABI as solc gives it, indented, with a
    final newline (stable, so a diff shows only real changes)."""
    return json.dumps(abi, indent=2) + "\n"


def export_abis(artifacts: Mapping[str, Artifact],
                directory: Path = ABI_DIR) -> list[Path]:
    """Writes ``<Contract>.json`` (the bare ABI) for every contract of
    ``CONTRACT_NAMES`` into `directory`; returns the files written.

    Raises ChainError when `artifacts` lacks one of them.
    """
    missing = [name for name in CONTRACT_NAMES if name not in artifacts]
    if missing:
        raise ChainError(f"no artifacts for {missing}")
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in CONTRACT_NAMES:
        path = directory / f"{name}.json"
        path.write_text(abi_json(artifacts[name].abi))
        written.append(path)
    return written


def load_abi(name: str) -> list[dict[str, Any]]:
    """The exported ABI of contract `name` as shipped with the package (no compiler
    needed). Raises ChainError for an unknown contract."""
    if name not in CONTRACT_NAMES:
        known = ", ".join(CONTRACT_NAMES)
        raise ChainError(f"no exported ABI for {name!r}; known: {known}")
    text = resources.files("offchain.chain").joinpath("abi", f"{name}.json").read_text()
    abi: list[dict[str, Any]] = json.loads(text)
    return abi
