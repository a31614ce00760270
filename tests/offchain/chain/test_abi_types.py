"""The Python mirrors of the contracts' structs and enums (offchain.protocol.types)
against the compiled contracts, and the name-matching decoder the clients use."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from enum import IntEnum
from typing import Any

import pytest
import solcx

from offchain.chain.abi import decode_struct, snake, struct_fields
from offchain.chain.compile import _shim, _sources, compile_contracts
from offchain.protocol import types
from offchain.protocol.types import (
    DeviceInfo,
    DeviceStatus,
    ModelVersion,
    RoundInfo,
    RoundStage,
    Submission,
    TaskParams,
    TaskState,
)

ADDRESS = "0x" + "ab" * 20

# (contract, view function, the dataclass its single struct output decodes into)
STRUCT_VIEWS = [
    ("TaskRegistry", "taskParams", TaskParams),
    ("TaskRegistry", "taskState", TaskState),
    ("TaskRegistry", "roundInfo", RoundInfo),
    ("TaskRegistry", "submissionOf", Submission),
    ("ModelRegistry", "versionOf", ModelVersion),
    ("DeviceRegistry", "deviceOf", DeviceInfo),
]

PY_ENUMS = {
    name: cls
    for name, cls in vars(types).items()
    if inspect.isclass(cls) and issubclass(cls, IntEnum) and cls.__module__ == types.__name__
}


def _function(contract: str, name: str) -> dict[str, Any]:
    (item,) = [i for i in compile_contracts()[contract].abi
               if i.get("type") == "function" and i["name"] == name]
    return item


def _field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


@pytest.fixture(scope="module")
def solidity_enums() -> dict[str, list[str]]:
    """Every enum the contract sources define, as "Contract.Enum" -> member names in
    declaration order (from the compiler's AST, parsing only)."""
    sources = _sources()
    output = solcx.compile_standard(
        {"language": "Solidity",
         "sources": {name: {"urls": [name]} for name in sources},
         "settings": {"stopAfter": "parsing", "outputSelection": {"*": {"": ["ast"]}}}},
        solc_binary=_shim())
    found: dict[str, list[str]] = {}

    def walk(node: Any, scope: str) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item, scope)
        elif isinstance(node, dict):
            kind = node.get("nodeType")
            if kind == "ContractDefinition":
                scope = node["name"]
            elif kind == "EnumDefinition":
                name = f"{scope}.{node['name']}" if scope else node["name"]
                found[name] = [m["name"] for m in node["members"]]
            for value in node.values():
                walk(value, scope)

    for name in sources:
        walk(output["sources"][name]["ast"], "")
    return found


# ---------------------------------------------------------------- structs


@pytest.mark.parametrize("contract, function, cls", STRUCT_VIEWS,
                         ids=[f"{c}.{f}" for c, f, _ in STRUCT_VIEWS])
def test_dataclass_fields_are_the_abi_components_in_snake_case_and_order(
        contract, function, cls):
    (output,) = _function(contract, function)["outputs"]
    assert output["type"] == "tuple", f"{contract}.{function} returns no struct"
    assert _field_names(cls) == struct_fields(output)


def test_task_params_encode_in_the_order_publish_task_takes_them():
    # TaskParams.as_tuple() is sent positionally to publishTask.
    params = _function("TaskRegistry", "publishTask")["inputs"][0]
    assert params["type"] == "tuple"
    assert _field_names(TaskParams) == struct_fields(params)


@pytest.mark.parametrize("contract, function, cls", STRUCT_VIEWS,
                         ids=[f"{c}.{f}" for c, f, _ in STRUCT_VIEWS])
def test_enum_fields_are_enums_in_the_abi_too(contract, function, cls):
    (output,) = _function(contract, function)["outputs"]
    hints = typing.get_type_hints(cls)
    for component in output["components"]:
        hint = hints[snake(component["name"])]
        is_enum = component.get("internalType", "").startswith("enum ")
        assert (inspect.isclass(hint) and issubclass(hint, IntEnum)) == is_enum, (
            f"{cls.__name__}.{snake(component['name'])} is {hint}, the ABI "
            f"{component.get('internalType')}")
        if is_enum:
            assert component["internalType"].rsplit(".", 1)[-1] == hint.__name__


# ---------------------------------------------------------------- enums


def test_every_python_enum_mirrors_a_solidity_enum(solidity_enums):
    by_name = {qualified.rsplit(".", 1)[-1]: members
               for qualified, members in solidity_enums.items()}
    assert set(PY_ENUMS) == set(by_name), (
        f"Python enums {sorted(PY_ENUMS)}, Solidity enums {sorted(solidity_enums)}")
    for name, cls in PY_ENUMS.items():
        members = by_name[name]
        assert len(cls) == len(members), (
            f"{name}: {len(cls)} members in Python, {len(members)} in Solidity")
        assert [m.name for m in cls] == [m.upper() for m in members]
        assert [m.value for m in cls] == list(range(len(members)))


def test_every_enum_the_abis_use_is_defined_in_the_sources(solidity_enums):
    used = set()

    def collect(params):
        for param in params:
            internal = param.get("internalType", "")
            if internal.startswith("enum "):
                used.add(internal.removeprefix("enum "))
            collect(param.get("components", []))

    for artifact in compile_contracts().values():
        for item in artifact.abi:
            collect(item.get("inputs", []))
            collect(item.get("outputs", []))
    assert used, "no ABI uses an enum"
    assert used <= set(solidity_enums)
    assert {u.rsplit(".", 1)[-1] for u in used} <= set(PY_ENUMS)


# ---------------------------------------------------------------- snake, decode_struct


@pytest.mark.parametrize("name, expected", [
    ("commitDeadline", "commit_deadline"),
    ("taskId", "task_id"),
    ("verifiersPerUpdate", "verifiers_per_update"),
    ("paillierKeyHash", "paillier_key_hash"),
    ("round", "round"),
    ("uri", "uri"),
    ("sha256Hash", "sha256_hash"),
    ("MAX_PARTICIPANTS", "max_participants"),
])
def test_snake(name, expected):
    assert snake(name) == expected


DEVICE = {"name": "", "type": "tuple", "internalType": "struct IDeviceRegistry.Device",
          "components": [
              {"name": "owner", "type": "address", "internalType": "address"},
              {"name": "status", "type": "uint8",
               "internalType": "enum IDeviceRegistry.DeviceStatus"},
              {"name": "registeredAt", "type": "uint64", "internalType": "uint64"},
              {"name": "publicKey", "type": "bytes", "internalType": "bytes"},
          ]}


def test_decode_struct_matches_by_name_and_converts_enums():
    info = decode_struct(DeviceInfo, DEVICE, (ADDRESS, 2, 7, b"key"))
    assert info == DeviceInfo(ADDRESS, DeviceStatus.REVOKED, 7, b"key")
    assert info.status is DeviceStatus.REVOKED


def test_decode_struct_decodes_a_real_abi_output():
    (output,) = _function("TaskRegistry", "roundInfo")["outputs"]
    values = (1, 10, 20, 30, 4, 4, 3, 3, 2, 3, 0, ADDRESS, ADDRESS, b"\1" * 32,
              b"\2" * 32, b"\3" * 32, 99)
    info = decode_struct(RoundInfo, output, values)
    assert info.stage is RoundStage.OPEN
    assert (info.commit_deadline, info.reveal_deadline, info.reward_paid) == (10, 30, 99)


@pytest.mark.parametrize("components", [
    ["owner", "status", "registeredAt"],                 # one missing
    ["owner", "status", "registeredAt", "publicKey", "extra"],  # one more
    ["owner", "registeredAt", "status", "publicKey"],    # reordered
    ["owner", "state", "registeredAt", "publicKey"],     # renamed
])
def test_decode_struct_raises_type_error_when_the_names_differ(components):
    param = {**DEVICE, "components": [{"name": n, "type": "uint256"} for n in components]}
    with pytest.raises(TypeError, match="DeviceInfo has fields"):
        decode_struct(DeviceInfo, param, tuple(range(len(components))))
