"""Connections to a chain: the embedded eth-tester chain or any JSON-RPC node."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any, Callable

from eth.vm.spoof import SpoofTransaction
from web3 import EthereumTesterProvider, Web3
from web3.exceptions import ContractCustomError, ContractLogicError, ContractPanicError

from offchain.chain.accounts import Wallet
from offchain.chain.revert import RevertDecoder
from offchain.errors import ChainError, TransactionReverted

__all__ = ["Chain", "Receipt"]


@dataclass(frozen=True)
class Receipt:
    """What a mined transaction left: its hash, gas and raw receipt."""

    tx_hash: str
    gas_used: int
    block_number: int
    raw: Any


class Chain:
    """One chain connection plus the revert decoder for the contracts deployed on it."""

    def __init__(self, w3: Web3, *, embedded: bool, url: str | None = None) -> None:
        self.w3 = w3
        self.embedded = embedded
        self.url = url
        self.decoder = RevertDecoder([])

    @classmethod
    def embedded_chain(cls) -> "Chain":
        """A fresh in-process eth-tester chain (py-evm), estimating gas in one run."""
        chain = cls(Web3(EthereumTesterProvider()), embedded=True)
        chain._fast_estimates()
        return chain

    def _fast_estimates(self) -> None:
        backend = self.w3.provider.ethereum_tester.backend  # type: ignore[attr-defined]
        backend.chain.gas_estimator = _single_run_gas_estimate

    @classmethod
    def connect(cls, url: str, *, timeout: float = 30.0) -> "Chain":
        """Connects to a JSON-RPC node. Raises ChainError when it does not answer."""
        w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout}))
        if not w3.is_connected():
            raise ChainError(f"no Ethereum node answers at {url}")
        return cls(w3, embedded=False, url=url)

    def __repr__(self) -> str:
        where = "embedded eth-tester" if self.embedded else self.url
        return f"Chain({where}, chain_id={self.chain_id})"

    @property
    def chain_id(self) -> int:
        return int(self.w3.eth.chain_id)

    def now(self) -> int:
        """Timestamp of the latest block."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def balance(self, address: str) -> int:
        return int(self.w3.eth.get_balance(Web3.to_checksum_address(address)))

    def fund(self, address: str, wei: int) -> None:
        """Sends `wei` from the node's first unlocked development account."""
        source = self.w3.eth.accounts[0]
        tx_hash = self.w3.eth.send_transaction(
            {"from": source, "to": Web3.to_checksum_address(address), "value": wei}
        )
        self.w3.eth.wait_for_transaction_receipt(tx_hash)

    def advance_time(self, seconds: int) -> None:
        """Moves the chain's clock at least `seconds` forward (development chains only)
        and mines a block."""
        if self.embedded:
            tester = self.w3.provider.ethereum_tester  # type: ignore[attr-defined]
            # eth-tester's pending block follows the wall clock: travel from the later
            # of it and the latest block, so the clock always moves by `seconds`.
            pending = int(tester.get_block_by_number("pending")["timestamp"])
            tester.time_travel(max(pending, self.now()) + seconds)
        else:
            self.w3.provider.make_request("evm_increaseTime", [seconds])
            self.w3.provider.make_request("evm_mine", [])

    def snapshot(self) -> Any:
        """Takes a snapshot of the chain state (development chains only)."""
        if self.embedded:
            return self.w3.provider.ethereum_tester.take_snapshot()  # type: ignore[attr-defined]
        return self.w3.provider.make_request("evm_snapshot", [])["result"]

    def revert(self, snapshot_id: Any) -> None:
        """Returns the chain to `snapshot_id`."""
        if self.embedded:
            self.w3.provider.ethereum_tester.revert_to_snapshot(snapshot_id)  # type: ignore[attr-defined]
            self._fast_estimates()  # a revert to genesis rebuilds the py-evm chain
        else:
            self.w3.provider.make_request("evm_revert", [snapshot_id])

    def transact(self, wallet: Wallet, call: Any, *, value: int = 0) -> Receipt:
        """Signs and sends a contract call from `wallet` and waits for it.

        Raises TransactionReverted with the contract's custom error when it reverts.
        """
        params = {
            "from": wallet.address,
            "value": value,
            "nonce": self.w3.eth.get_transaction_count(wallet.address, "pending"),
            "chainId": self.chain_id,
        }
        tx = self._guard(lambda: call.build_transaction(params))
        # Some nodes (Anvil) estimate net of storage refunds, which is short of what
        # the transaction needs before the refund: leave headroom. Unused gas is not paid.
        tx["gas"] = tx["gas"] * 5 // 4 + _GAS_HEADROOM
        tx_hash = self.w3.eth.send_raw_transaction(wallet.sign_transaction(tx))
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash)
        if receipt["status"] != 1:
            # Replay the call at the failing block to learn why it reverted.
            self._guard(lambda: call.call(params, block_identifier=receipt["blockNumber"]))
            raise TransactionReverted(
                "Reverted", {"tx": tx_hash.hex(), "gas_used": receipt["gasUsed"],
                             "gas_limit": tx["gas"]})
        return Receipt(tx_hash.hex(), int(receipt["gasUsed"]), int(receipt["blockNumber"]),
                       receipt)

    def call(self, call: Any) -> Any:
        """Runs a view call; a revert raises TransactionReverted."""
        return self._guard(call.call)

    def _guard(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except ContractPanicError as exc:
            raise self.decoder.decode(exc.data) from None
        except ContractCustomError as exc:
            raise self.decoder.decode(exc.data) from None
        except ContractLogicError as exc:
            data = exc.data if isinstance(exc.data, str) else None
            raise self.decoder.decode(data, fallback=str(exc.message)) from None
        except TransactionReverted:
            raise
        except Exception as exc:  # noqa: BLE001 - eth-tester's own revert exception
            data = _tester_revert_data(exc)
            if data is not None:
                raise self.decoder.decode(data) from None
            if "revert" in str(exc).lower():
                raise TransactionReverted("Reverted", {"reason": str(exc)}) from None
            raise


_GAS_HEADROOM = 20_000


def _single_run_gas_estimate(state: Any, transaction: Any) -> int:
    """Gas estimate for the embedded chain: one run at the block gas limit instead of
    py-evm's bisection (about a dozen runs per transaction). A failing run raises the
    revert exactly as the default estimator does; the estimate is generous, and a
    transaction is only charged the gas it uses."""
    probe = SpoofTransaction(transaction, gas=state.gas_limit, gas_price=0)
    snapshot = state.snapshot()
    try:
        computation = state.apply_transaction(probe)
        if computation.is_error:
            raise computation.error
        used = state.gas_limit - computation.get_gas_remaining()
    finally:
        state.revert(snapshot)
    return int(min(state.gas_limit // 2, 2 * used + 50_000))
_TESTER_PREFIX = "execution reverted: b"


def _tester_revert_data(exc: BaseException) -> bytes | None:
    """Revert data from eth-tester's TransactionFailed.

    web3's eth-tester provider re-raises it with the revert data written as a Python
    bytes literal ("execution reverted: b'..."); web3 itself parses it back the same
    way for EIP-3668. When web3's own attempt to read the data as a revert string
    fails (it can raise OverflowError for custom errors whose first argument looks
    like an offset), the original exception with the raw bytes is its context.
    """
    seen: BaseException | None = exc
    while seen is not None:
        first = seen.args[0] if seen.args else None
        if isinstance(first, bytes) and type(seen).__name__ in ("TransactionFailed", "Revert"):
            return first
        message = str(first) if first is not None else ""
        if message.startswith(_TESTER_PREFIX):
            try:
                data = ast.literal_eval(message[len("execution reverted: "):])
            except (ValueError, SyntaxError):
                data = None
            if isinstance(data, bytes):
                return data
        seen = first if isinstance(first, BaseException) else seen.__context__
    return None
