"""Turn revert data into :class:`TransactionReverted` with the custom error's name and values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from eth_abi import decode as abi_decode
from eth_utils import function_signature_to_4byte_selector, to_bytes

from offchain.chain.abi import abi_type
from offchain.errors import TransactionReverted

__all__ = ["RevertDecoder"]

_PANIC_CODES = {
    0x01: "assertion failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division by zero",
    0x21: "invalid enum value",
    0x31: "pop on empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
}


@dataclass(frozen=True)
class _ErrorSpec:
    contract: str
    name: str
    names: tuple[str, ...]
    types: tuple[str, ...]


class RevertDecoder:
    """Knows every custom error of a set of ABIs, by 4-byte selector."""

    def __init__(self, abis: Iterable[tuple[str, list[dict[str, Any]]]]) -> None:
        self._errors: dict[bytes, _ErrorSpec] = {}
        for contract, abi in abis:
            for item in abi:
                if item.get("type") != "error":
                    continue
                types = tuple(abi_type(p) for p in item["inputs"])
                selector = function_signature_to_4byte_selector(
                    f"{item['name']}({','.join(types)})"
                )
                names = tuple(p["name"] or f"arg{i}" for i, p in enumerate(item["inputs"]))
                self._errors.setdefault(
                    selector, _ErrorSpec(contract, item["name"], names, types)
                )

    def decode(self, data: str | bytes | None, *, fallback: str = "") -> TransactionReverted:
        """The error that `data` (selector + ABI-encoded arguments) encodes."""
        raw = to_bytes(hexstr=data) if isinstance(data, str) else bytes(data or b"")
        if len(raw) < 4:
            return TransactionReverted("Reverted", {"reason": fallback or "no revert data"})
        selector, payload = raw[:4], raw[4:]
        if selector == function_signature_to_4byte_selector("Error(string)"):
            (reason,) = abi_decode(["string"], payload)
            return TransactionReverted("Error", {"reason": reason})
        if selector == function_signature_to_4byte_selector("Panic(uint256)"):
            (code,) = abi_decode(["uint256"], payload)
            return TransactionReverted(
                "Panic", {"code": hex(code), "reason": _PANIC_CODES.get(code, "unknown")}
            )
        spec = self._errors.get(selector)
        if spec is None:
            return TransactionReverted("UnknownError", {"data": "0x" + raw.hex()})
        values = abi_decode(list(spec.types), payload)
        return TransactionReverted(
            spec.name, dict(zip(spec.names, values)), contract=spec.contract
        )
