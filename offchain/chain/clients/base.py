"""What every contract client shares: the web3 contract, views, sends, events."""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass
from typing import Any

from eth_abi import encode as abi_encode
from eth_abi.exceptions import EncodingError
from eth_utils import function_signature_to_4byte_selector

from offchain.chain.abi import abi_type, decode_outputs, decode_struct
from offchain.chain.node import Chain, Receipt
from offchain.errors import ConfigError

__all__ = ["ContractClient"]


@dataclass(frozen=True)
class _View:
    selector: str
    inputs: tuple[str, ...]
    outputs: list[dict[str, Any]]


class ContractClient:
    """A typed client of one deployed contract. `functions` and `events` give the raw
    web3 bindings for what the typed methods do not cover."""

    def __init__(self, chain: Chain, address: str, abi: list[dict[str, Any]]) -> None:
        self.chain = chain
        self.contract = chain.w3.eth.contract(address=address, abi=abi)
        self.address = str(self.contract.address)
        self.functions = self.contract.functions
        self.events = self.contract.events

    def _view(self, name: str, *args: Any) -> Any:
        """The decoded outputs of view `name`: one ``eth_call`` whose calldata is
        encoded here from the ABI (web3's contract-function objects cost more to
        build than the call itself)."""
        view = self._views.get(name)
        if view is None:
            return self.chain.view(getattr(self.functions, name)(*args))
        try:
            data = view.selector + abi_encode(view.inputs, args).hex()
        except EncodingError as exc:
            raise ConfigError(f"{name}{args}: {exc}") from None
        return decode_outputs(view.outputs, self.chain.call(self.address, data))

    def _struct(self, cls: type, name: str, *args: Any) -> Any:
        outputs = self._views[name].outputs if name in self._views else \
            getattr(self.functions, name)(*args).abi["outputs"]
        return decode_struct(cls, outputs[0], self._view(name, *args))

    @functools.cached_property
    def _views(self) -> dict[str, "_View"]:
        """Every view function the ABI names once (overloads go through web3)."""
        functions = [item for item in self.contract.abi if item.get("type") == "function"
                     and item.get("stateMutability") in ("view", "pure")]
        names = Counter(item["name"] for item in functions)
        views = {}
        for item in functions:
            if names[item["name"]] != 1:
                continue
            inputs = tuple(abi_type(p) for p in item["inputs"])
            selector = function_signature_to_4byte_selector(
                f"{item['name']}({','.join(inputs)})")
            views[item["name"]] = _View("0x" + selector.hex(), inputs, item["outputs"])
        return views

    def _send(self, wallet: Any, name: str, *args: Any, value: int = 0,
              **tx: Any) -> Receipt:
        return self.chain.transact(wallet, getattr(self.functions, name)(*args),
                                   value=value, **tx)

    def logs(self, event: str, *, from_block: int = 0, **indexed: Any) -> list[Any]:
        """The `event` logs this contract emitted since `from_block`, filtered on
        indexed arguments (by their ABI names)."""
        return list(getattr(self.events, event)().get_logs(
            argument_filters=indexed or None, from_block=from_block))

    def receipt_events(self, event: str, receipt: Receipt) -> list[Any]:
        """The `event` logs this contract emitted in the transaction of `receipt`."""
        from web3.logs import DISCARD

        return list(getattr(self.events, event)().process_receipt(receipt.raw,
                                                                  errors=DISCARD))
