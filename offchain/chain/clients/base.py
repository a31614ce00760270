"""What every contract client shares: the web3 contract, views, sends, events."""

from __future__ import annotations

from typing import Any

from offchain.chain.abi import decode_struct
from offchain.chain.node import Chain, Receipt

__all__ = ["ContractClient"]


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
        return self.chain.view(getattr(self.functions, name)(*args))

    def _struct(self, cls: type, name: str, *args: Any) -> Any:
        fn = getattr(self.functions, name)(*args)
        return decode_struct(cls, fn.abi["outputs"][0], self.chain.view(fn))

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
