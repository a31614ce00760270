"""Connections to a chain: the embedded eth-tester chain or any JSON-RPC node.

A view is one ``eth_call``; a transaction is estimated (which surfaces a revert as the
contract's custom error before anything is paid), signed locally, journalled when the
sender keeps a journal, sent, and its receipt polled promptly.
"""

from __future__ import annotations

import ast
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Callable

from eth.vm.spoof import SpoofTransaction
from eth_utils import to_bytes
from web3 import EthereumTesterProvider, Web3
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    ContractPanicError,
    TransactionNotFound,
    Web3RPCError,
)

from offchain.chain.abi import decode_outputs
from offchain.chain.accounts import Wallet
from offchain.chain.journal import JournalEntry, TxJournal
from offchain.chain.revert import RevertDecoder
from offchain.errors import (
    ChainError,
    InsufficientFunds,
    NodeUnreachable,
    NotDevelopmentChain,
    TransactionReverted,
)

__all__ = ["Chain", "Receipt", "DEVELOPMENT_NODES", "unreachable"]

DEVELOPMENT_NODES = ("anvil", "hardhat", "ganache", "ethereumjs testrpc")
"""Client names (``web3_clientVersion``) of development nodes: they hold unlocked,
funded accounts and let a test move time."""


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
        self._chain_id: int | None = None
        self._client: str | None = None
        self._nonces: dict[str, int] = {}
        self._cancun = False
        self._caller: str | None = None
        self._pins = 0
        self._pin: tuple[int, bytes, int] | None = None
        """(number, hash, timestamp) of the block views are pinned to, if any."""
        self._cache: dict[tuple[bytes, str, str], bytes] = {}
        self._cache_block: bytes | None = None

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
        if not url.startswith(("http://", "https://")):
            raise ChainError(f"{url!r} is not an http(s) JSON-RPC URL")
        w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout}))
        if not w3.is_connected():
            raise NodeUnreachable(f"no Ethereum node answers at {url}")
        return cls(w3, embedded=False, url=url)

    def __repr__(self) -> str:
        return f"Chain({self.where}, chain_id={self.chain_id})"

    @property
    def where(self) -> str:
        """The embedded chain or the node's URL, for people."""
        return "embedded eth-tester" if self.embedded else str(self.url)

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self.w3.eth.chain_id)
        return self._chain_id

    @property
    def client(self) -> str:
        """The node's client version string (``web3_clientVersion``)."""
        if self._client is None:
            self._client = "eth-tester" if self.embedded else str(self.w3.client_version)
        return self._client

    @property
    def is_development(self) -> bool:
        """The embedded chain, Anvil, a Hardhat node or Ganache."""
        return self.embedded or self.client.lower().startswith(DEVELOPMENT_NODES)

    # ------------------------------------------------------------------ reads
    def block_number(self) -> int:
        return int(self.w3.eth.block_number)

    def now(self) -> int:
        """Timestamp of the latest block (of the pinned block, while pinned)."""
        if self._pins and self._pin is not None:
            return self._pin[2]
        block = self.w3.eth.get_block("latest")
        if self._pins:
            self._pin = (int(block["number"]), bytes(block["hash"]), int(block["timestamp"]))
        return int(block["timestamp"])

    @contextlib.contextmanager
    def pinned(self) -> Iterator[None]:
        """Within it, views and the clock read one block, the latest when first read,
        and a view asked twice of that block is answered from memory: one step of a
        party decides from one consistent state, and parties stepped in turn in one
        process share the reads. Whatever this chain sends or mines unpins it (later
        reads see the new latest block)."""
        self._pins += 1
        try:
            yield
        finally:
            self._pins -= 1
            if not self._pins:
                self._pin = None

    def _moved(self) -> None:
        """This chain sent a transaction or moved the clock: the pinned block, if
        any, is no longer the latest."""
        self._pin = None

    def next_timestamp(self) -> int:
        """The earliest timestamp the next block can carry: what a contract will
        compare deadlines against when a transaction is sent now."""
        latest = self.now()
        if self.embedded:
            tester = self.w3.provider.ethereum_tester  # type: ignore[attr-defined]
            pending = int(tester.get_block_by_number("pending")["timestamp"])
            return max(latest + 1, pending)
        return max(latest, int(time.time()))

    def balance(self, address: str) -> int:
        return int(self.w3.eth.get_balance(Web3.to_checksum_address(address)))

    def code_at(self, address: str) -> bytes:
        """The runtime code at `address` (empty for an account without code)."""
        return bytes(self.w3.eth.get_code(Web3.to_checksum_address(address)))

    def nonce_of(self, address: str, block: str = "latest") -> int:
        return int(self.w3.eth.get_transaction_count(Web3.to_checksum_address(address),
                                                     block))

    def view(self, fn: Any) -> Any:
        """Runs the bound contract function `fn` as one ``eth_call`` on the latest
        block and decodes its outputs (structs as tuples, in ABI order). A revert
        raises TransactionReverted with the contract's custom error."""
        return decode_outputs(fn.abi["outputs"],
                              self.call(fn.address, fn._encode_transaction_data()))

    def call(self, to: str, data: str) -> bytes:
        """One ``eth_call`` of `data` to `to` on the latest block (the pinned one
        while :meth:`pinned`, answered from memory when asked before), sent straight
        to the provider: web3's middleware would ask the node for its chain id (and
        eth-tester for its accounts) again on every call. A revert raises
        TransactionReverted with the contract's custom error."""
        if self._pins and self._pin is None:
            self.now()
        pin = self._pin if self._pins else None
        if pin is None:
            return self._call(to, data, "latest")
        if self._cache_block != pin[1]:
            self._cache.clear()
            self._cache_block = pin[1]
        key = (pin[1], to, data)
        raw = self._cache.get(key)
        if raw is None:
            raw = self._cache[key] = self._call(to, data, pin[0])
        return raw

    def _call(self, to: str, data: str, block: int | str) -> bytes:
        if self.embedded:
            tester = self.w3.provider.ethereum_tester  # type: ignore[attr-defined]
            if self._caller is None:
                self._caller = tester.get_accounts()[0]
            call = {"from": self._caller, "to": to, "data": data}
            return to_bytes(hexstr=self._guard(lambda: tester.call(call, block)))
        at = block if isinstance(block, str) else hex(block)
        response = self.w3.provider.make_request(  # type: ignore[attr-defined]
            "eth_call", [{"to": to, "data": data}, at])
        error = response.get("error")
        if error is None:
            return to_bytes(hexstr=response["result"])
        message = str(error.get("message", error))
        revert = error.get("data")
        if isinstance(revert, dict):  # some nodes nest it: {"data": "0x..."}
            revert = revert.get("data")
        if isinstance(revert, str) and revert.startswith("0x"):
            raise self.decoder.decode(revert, fallback=message)
        if "revert" in message.lower():
            raise self.decoder.decode(None, fallback=message)
        raise ChainError(f"{self.where}: eth_call failed: {message}")

    def require_cancun(self) -> None:
        """Checks that the node runs the EVM the contracts are compiled for (Cancun:
        OpenZeppelin 5 copies memory with MCOPY) by running a three-byte MCOPY in an
        ``eth_call``. Raises ChainError naming the node when it cannot."""
        if self._cancun:
            return
        probe = "0x" + "600060006000" + "5e" + "00"  # MCOPY(0, 0, 0); STOP
        try:
            self.w3.eth.call({"data": probe}, "latest")
        except Exception as exc:  # noqa: BLE001 - any failure means no Cancun EVM
            if unreachable(exc):
                raise
            raise ChainError(
                f"{self.where} ({self.client}) does not run the Cancun EVM the contracts "
                f"are compiled for (MCOPY fails: {str(exc)[:120]}); use Anvil, a Hardhat "
                f"node or another Cancun-ready chain") from None
        self._cancun = True

    # ------------------------------------------------------------------ development
    def _require_development(self, what: str) -> None:
        if not self.is_development:
            raise NotDevelopmentChain(
                f"{what} needs a development node (Anvil, Hardhat, Ganache or the "
                f"embedded chain); {self.where} is {self.client}")

    def fund(self, address: str, wei: int) -> Receipt:
        """Sends `wei` from the node's first unlocked development account. Raises
        NotDevelopmentChain on any other node, InsufficientFunds when that account
        cannot pay."""
        self._require_development("funding from a development account")
        accounts = self.w3.eth.accounts
        if not accounts:
            raise NotDevelopmentChain(f"{self.where} offers no unlocked account to fund from")
        source = accounts[0]
        if self.balance(source) < wei:
            raise InsufficientFunds(
                f"development account {source} holds {self.balance(source)} wei, "
                f"cannot send {wei}")
        self._moved()
        tx_hash = self.w3.eth.send_transaction(
            {"from": source, "to": Web3.to_checksum_address(address), "value": wei})
        receipt = self._wait(tx_hash)
        return Receipt(tx_hash.hex(), int(receipt["gasUsed"]), int(receipt["blockNumber"]),
                       receipt)

    def advance_time(self, seconds: int) -> None:
        """Moves the chain's clock at least `seconds` forward and mines a block
        (development chains only; NotDevelopmentChain elsewhere)."""
        self._require_development("moving the clock")
        self._moved()
        if self.embedded:
            tester = self.w3.provider.ethereum_tester  # type: ignore[attr-defined]
            # eth-tester's pending block follows the wall clock: travel from the later
            # of it and the latest block, so the clock always moves by `seconds`.
            pending = int(tester.get_block_by_number("pending")["timestamp"])
            tester.time_travel(max(pending, self.now()) + seconds)
        else:
            self.w3.provider.make_request("evm_increaseTime", [seconds])
            self.w3.provider.make_request("evm_mine", [])

    def advance_past(self, timestamp: int) -> None:
        """Moves the clock so that the next block is strictly after `timestamp`."""
        now = self.next_timestamp()
        if now <= timestamp:
            self.advance_time(timestamp + 1 - now + (1 if self.embedded else 0))

    def snapshot(self) -> Any:
        """Takes a snapshot of the chain state (development chains only)."""
        if self.embedded:
            return self.w3.provider.ethereum_tester.take_snapshot()  # type: ignore[attr-defined]
        return self.w3.provider.make_request("evm_snapshot", [])["result"]

    def revert(self, snapshot_id: Any) -> None:
        """Returns the chain to `snapshot_id`."""
        self._nonces.clear()
        self._moved()
        if self.embedded:
            self.w3.provider.ethereum_tester.revert_to_snapshot(snapshot_id)  # type: ignore[attr-defined]
            self._fast_estimates()  # a revert to genesis rebuilds the py-evm chain
        else:
            self.w3.provider.make_request("evm_revert", [snapshot_id])

    # ------------------------------------------------------------------ transactions
    def transact(self, wallet: Wallet, call: Any, *, value: int = 0,
                 journal: TxJournal | None = None, label: str = "",
                 _retried: bool = False) -> Receipt:
        """Signs and sends a contract call from `wallet` and waits for it.

        With a `journal`, a transaction left in flight by an earlier run is settled
        first; if it carried the same `label` (the same action), its receipt is
        returned and nothing new is sent. Raises TransactionReverted with the
        contract's custom error when the call would revert (found before sending) or
        did; InsufficientFunds when the wallet cannot pay."""
        if journal is not None:
            earlier = self.settle(wallet, journal)
            if earlier is not None and earlier[0] == label:
                return self._checked(earlier[1], call, wallet, value)
        nonce = self._next_nonce(wallet.address)
        params = {"from": wallet.address, "value": value, "nonce": nonce,
                  "chainId": self.chain_id}
        # Estimated on the pending block, which carries the time the transaction will
        # be mined at: a node that mines only on demand (Anvil) leaves the latest
        # block's clock behind, and a phase that closed by time alone would seem open.
        # (The embedded chain's clock only moves with mined blocks anyway.)
        block = "latest" if self.embedded else "pending"
        gas = self._guard(lambda: call.estimate_gas(params, block_identifier=block))
        # Some nodes (Anvil) estimate net of storage refunds, which is short of what
        # the transaction needs before the refund: leave headroom. Unused gas is not paid.
        tx = self._guard(lambda: call.build_transaction(
            {**params, "gas": gas * 5 // 4 + _GAS_HEADROOM}))
        self._require_funds(wallet.address, tx, value)
        raw = wallet.sign_transaction(tx)
        tx_hash = Web3.keccak(raw)
        if journal is not None:
            journal.record(JournalEntry(label, wallet.address, nonce, tx_hash.hex(),
                                        raw.hex()))
        self._moved()
        try:
            self.w3.eth.send_raw_transaction(raw)
        except Web3RPCError as exc:
            self._nonces.pop(wallet.address, None)
            if journal is not None:
                journal.clear()
            if "nonce" in str(exc).lower() and not _retried:
                # The wallet also sent from elsewhere: start again from the node's count.
                return self.transact(wallet, call, value=value, journal=journal,
                                     label=label, _retried=True)
            raise ChainError(f"{self.where} refused the transaction: {exc}") from None
        self._nonces[wallet.address] = nonce + 1
        receipt = self._wait(tx_hash)
        if journal is not None:
            journal.clear()
        return self._checked(receipt, call, wallet, value, gas=tx["gas"])

    def settle(self, wallet: Wallet, journal: TxJournal) -> tuple[str, Any] | None:
        """Settles the transaction `journal` holds, if any: waits for it, sending its
        signed bytes again when the node no longer knows it and its nonce is still
        free. Returns (label, receipt), or None when nothing was in flight or the
        transaction can no longer be mined."""
        entry = journal.pending()
        if entry is None:
            return None
        tx_hash = bytes.fromhex(entry.tx_hash.removeprefix("0x"))
        receipt = self._receipt(tx_hash)
        self._moved()
        if receipt is None and self.nonce_of(entry.sender) <= entry.nonce:
            try:
                self.w3.eth.send_raw_transaction(bytes.fromhex(entry.raw))
            except Web3RPCError:
                pass  # already known to the node, or the nonce was used meanwhile
            if self.nonce_of(entry.sender, "pending") > entry.nonce:
                receipt = self._wait(tx_hash, give_up=30.0)
        journal.clear()
        self._nonces.pop(wallet.address, None)
        return None if receipt is None else (entry.label, receipt)

    def _checked(self, receipt: Any, call: Any, wallet: Wallet, value: int,
                 gas: int | None = None) -> Receipt:
        if receipt["status"] != 1:
            # Replay the call at the failing block to learn why it reverted.
            params = {"from": wallet.address, "value": value}
            self._guard(lambda: call.call(params, block_identifier=receipt["blockNumber"]))
            raise TransactionReverted(
                "Reverted", {"tx": receipt["transactionHash"].hex(),
                             "gas_used": receipt["gasUsed"], "gas_limit": gas})
        return Receipt(receipt["transactionHash"].hex(), int(receipt["gasUsed"]),
                       int(receipt["blockNumber"]), receipt)

    def _next_nonce(self, address: str) -> int:
        if address not in self._nonces:
            self._nonces[address] = self.nonce_of(address, "pending")
        return self._nonces[address]

    def _require_funds(self, address: str, tx: dict, value: int) -> None:
        price = int(tx.get("maxFeePerGas") or tx.get("gasPrice") or 0)
        need = value + tx["gas"] * price
        have = self.balance(address)
        if have < need:
            raise InsufficientFunds(
                f"{address} holds {have} wei but the transaction needs up to {need} wei "
                f"({value} sent + gas); fund it first (on a development node: "
                f"'fedshare wallet fund {address}')")

    def _receipt(self, tx_hash: bytes) -> Any | None:
        try:
            return self.w3.eth.get_transaction_receipt(tx_hash)
        except TransactionNotFound:
            return None

    def _wait(self, tx_hash: bytes, *, give_up: float = 120.0) -> Any:
        """Polls for the receipt: at once, then with a delay doubling from 2 ms to
        100 ms (a node with automine answers within milliseconds)."""
        delay, deadline = 0.002, time.monotonic() + give_up
        while True:
            receipt = self._receipt(tx_hash)
            if receipt is not None:
                return receipt
            if time.monotonic() > deadline:
                raise ChainError(f"transaction 0x{bytes(tx_hash).hex()} was not mined "
                                 f"within {give_up:.0f} s")
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

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
        except Web3RPCError as exc:
            message = str(exc)
            if "insufficient funds" in message.lower():
                raise InsufficientFunds(f"{self.where}: {message}") from None
            raise ChainError(f"{self.where}: {message}") from None
        except Exception as exc:  # noqa: BLE001 - eth-tester's own revert exception
            data = _tester_revert_data(exc)
            if data is not None:
                raise self.decoder.decode(data) from None
            if "revert" in str(exc).lower():
                raise TransactionReverted("Reverted", {"reason": str(exc)}) from None
            raise


_GAS_HEADROOM = 20_000


def unreachable(exc: BaseException) -> bool:
    """Whether `exc` only says the node did not answer (connection refused or reset,
    timeout): the request may be retried once it is back."""
    import requests

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (NodeUnreachable, requests.exceptions.ConnectionError,
                             requests.exceptions.Timeout, ConnectionError)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


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
        # Through web3 the data follows "execution reverted: "; straight from
        # eth-tester (a call sent past web3) the message is the literal itself.
        literal = message[len("execution reverted: "):] \
            if message.startswith(_TESTER_PREFIX) else message
        if literal.startswith(("b'", 'b"')):
            try:
                data = ast.literal_eval(literal)
            except (ValueError, SyntaxError):
                data = None
            if isinstance(data, bytes):
                return data
        seen = first if isinstance(first, BaseException) else seen.__context__
    return None
