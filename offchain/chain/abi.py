"""Decoding of call results and structs by the names the ABI gives them."""

from __future__ import annotations

import dataclasses
import functools
import re
import typing
from enum import IntEnum
from typing import Any, Sequence

from eth_abi import decode as abi_decode
from eth_utils import to_checksum_address

__all__ = ["snake", "abi_type", "decode_outputs", "decode_struct", "struct_fields"]

_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def snake(name: str) -> str:
    """`commitDeadline` -> `commit_deadline`."""
    return _CAMEL.sub(r"_\1", name).lower()


def abi_type(param: dict[str, Any]) -> str:
    """The canonical type of an ABI parameter (tuples spelled out)."""
    kind = param["type"]
    if kind.startswith("tuple"):
        inner = ",".join(abi_type(c) for c in param["components"])
        return f"({inner}){kind[len('tuple'):]}"
    return kind


def _normalise(param: dict[str, Any], value: Any) -> Any:
    kind = param["type"]
    if kind.startswith("tuple") and kind != "tuple":  # arrays of structs
        return [_normalise({**param, "type": "tuple"}, v) for v in value]
    if kind == "tuple":
        return tuple(_normalise(c, v) for c, v in zip(param["components"], value))
    if kind == "address":
        return to_checksum_address(value)
    if kind == "address[]":
        return [to_checksum_address(v) for v in value]
    if kind.endswith("[]"):
        return list(value)
    return value


def decode_outputs(outputs: Sequence[dict[str, Any]], data: bytes) -> Any:
    """The values `data` encodes for a function's `outputs`: one value for one
    output, a tuple otherwise; addresses checksummed, arrays as lists."""
    values = abi_decode([abi_type(o) for o in outputs], data)
    decoded = tuple(_normalise(o, v) for o, v in zip(outputs, values))
    return decoded[0] if len(decoded) == 1 else decoded


def struct_fields(param: dict[str, Any]) -> list[str]:
    """The snake-case field names of a struct-typed ABI parameter."""
    return [snake(c["name"]) for c in param["components"]]


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def decode_struct(cls: type, param: dict[str, Any], value: Sequence[Any]) -> Any:
    """An instance of the dataclass `cls` from a decoded struct `value`, matching
    fields by name (snake case of the ABI's), enums converted by their annotation.
    Raises TypeError when the names differ (a test checks every struct)."""
    hints = _hints(cls)
    names = struct_fields(param)
    fields = [f.name for f in dataclasses.fields(cls)]
    if names != fields:
        raise TypeError(f"{cls.__name__} has fields {fields}, the ABI {names}")
    kwargs = {}
    for name, item in zip(names, value):
        hint = hints[name]
        if isinstance(hint, type) and issubclass(hint, IntEnum):
            item = hint(item)
        kwargs[name] = item
    return cls(**kwargs)
