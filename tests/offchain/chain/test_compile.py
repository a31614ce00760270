"""Linking library addresses into bytecode, and the exported ABIs (no compiler)."""

from __future__ import annotations

import json

import pytest
from eth_utils import keccak

from offchain.chain.compile import (
    CONTRACT_NAMES,
    Artifact,
    abi_json,
    export_abis,
    library_placeholder,
    link_bytecode,
    load_abi,
)
from offchain.errors import ChainError

SOURCE = "contracts/libraries/Lib.sol"
QUALIFIED = f"{SOURCE}:Lib"
PLACEHOLDER = library_placeholder(QUALIFIED)
ADDRESS = "0x00000000000000000000000000000000DeaDBeef"
LINKED = "00000000000000000000000000000000deadbeef"


def _code(*parts: str) -> tuple[str, dict]:
    """Bytecode of hex `parts` and placeholders (None), with its link references."""
    code, starts = "", []
    for part in parts:
        if part is None:
            starts.append(len(code) // 2)
            code += PLACEHOLDER
        else:
            code += part
    refs = {SOURCE: {"Lib": [{"start": s, "length": 20} for s in starts]}}
    return "0x" + code, refs


def test_placeholder_is_solcs_hash_of_the_qualified_name():
    assert PLACEHOLDER == "__$" + keccak(text=QUALIFIED).hex()[:34] + "$__"
    assert len(PLACEHOLDER) == 40


@pytest.mark.parametrize("key", ["Lib", QUALIFIED])
def test_link_writes_the_address_over_every_placeholder(key):
    bytecode, refs = _code("6080", None, "5b", None, "00")
    assert link_bytecode(bytecode, refs, {key: ADDRESS}) == (
        "0x6080" + LINKED + "5b" + LINKED + "00")


def test_link_keeps_a_missing_prefix_and_leaves_plain_bytecode_alone():
    bytecode, refs = _code("60", None)
    assert link_bytecode(bytecode[2:], refs, {"Lib": ADDRESS}) == "60" + LINKED
    assert link_bytecode("0x6080", {}, {}) == "0x6080"


def test_link_without_the_libraries_address_raises():
    bytecode, refs = _code("60", None)
    with pytest.raises(ChainError, match="needs the address of library .*Lib.sol:Lib"):
        link_bytecode(bytecode, refs, {"Other": ADDRESS})


def test_link_with_a_malformed_address_raises():
    bytecode, refs = _code("60", None)
    with pytest.raises(ChainError, match="is not an address"):
        link_bytecode(bytecode, refs, {"Lib": "0x1234"})


def test_link_refuses_references_that_miss_the_placeholder():
    bytecode, refs = _code("60", None)
    refs[SOURCE]["Lib"][0]["start"] = 0
    with pytest.raises(ChainError, match="no placeholder of .*Lib at byte 0"):
        link_bytecode(bytecode, refs, {"Lib": ADDRESS})


def test_link_refuses_to_leave_a_placeholder_behind():
    bytecode, refs = _code("60", None, "00", None)
    refs[SOURCE]["Lib"].pop()  # references that forget one occurrence
    with pytest.raises(ChainError, match="unlinked library placeholder at byte 22"):
        link_bytecode(bytecode, refs, {"Lib": ADDRESS})


def test_artifact_links_both_bytecodes_and_names_its_libraries():
    creation, refs = _code("6080", None)
    runtime, runtime_refs = _code("60", None, "00")
    artifact = Artifact("C", [], creation, runtime, refs, runtime_refs)
    assert artifact.libraries == ("Lib",)
    assert artifact.runtime_size == 22
    linked = artifact.linked({"Lib": ADDRESS})
    assert (linked.bytecode, linked.deployed_bytecode) == (
        "0x6080" + LINKED, "0x60" + LINKED + "00")
    assert linked.libraries == () and linked.runtime_size == 22


def test_exported_abis_are_plain_json_one_file_per_contract(tmp_path):
    abi = [{"type": "event", "name": "E", "inputs": [], "anonymous": False}]
    artifacts = {name: Artifact(name, abi, "0x") for name in CONTRACT_NAMES}
    written = export_abis(artifacts, tmp_path)
    assert [p.name for p in written] == [f"{n}.json" for n in CONTRACT_NAMES]
    for path in written:
        assert path.read_text() == abi_json(abi)
        assert json.loads(path.read_text()) == abi


def test_exporting_without_every_contract_raises(tmp_path):
    with pytest.raises(ChainError, match="no artifacts for"):
        export_abis({"TaskRegistry": Artifact("TaskRegistry", [], "0x")}, tmp_path)


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_the_package_ships_each_contracts_abi(name):
    abi = load_abi(name)
    assert any(item["type"] == "function" for item in abi)


def test_load_abi_of_an_unknown_contract_raises():
    with pytest.raises(ChainError, match="no exported ABI for 'Nope'"):
        load_abi("Nope")
