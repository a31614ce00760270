"""Shared helpers of the contract tests, in the spirit of OpenZeppelin's test helpers:
revert expectations with exact custom-error arguments, the steps of a task's life
(register, publish, join, open, commit, commit scores, reveal, finalise, close), time
travel, a Python model of the verifier assignment and of proof of quality to check the
contract's arithmetic against, and a hand-assembled contract wallet to test payments to
contracts and re-entrancy.

Score matrices: tests describe a round's scores as a full table, ``matrix[d][j]`` being
device d's score of the j-th participant (in the order of ``participantsOf`` while the
round is open); the helpers turn each row into what the contract wants, the scores of
the participants assigned to d (see :class:`Assignment`), in assignment order. Own
entries of a row are never used.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from offchain.chain.abi import snake
from offchain.chain.accounts import Wallet
from offchain.chain.clients.base import ContractClient
from offchain.chain.contracts import CREDITOR_ROLE, VERSIONER_ROLE, Fedshare
from offchain.chain.node import Receipt
from offchain.driver import drive
from offchain.errors import TransactionReverted
from offchain.protocol import phases, poq
from offchain.protocol.commitments import score_commitment
from offchain.protocol.phases import Phase
from offchain.protocol.terms import EPSILON_UNIT, MAX_SCORE
from offchain.protocol.types import RoundInfo, RoundOutcome, RoundStage, TaskParams
from offchain.roles.scripted import (
    ScriptedAggregator,
    ScriptedDevice,
    ScriptedRequester,
    Settler,
)
from tests.conftest import task_params

__all__ = [
    "CREDITOR_ROLE",
    "EPSILON_STEP",
    "MODEL",
    "VERSIONER_ROLE",
    "Assignment",
    "ContractWallet",
    "RoundModel",
    "addresses",
    "assert_solvent",
    "assigned_rows",
    "assignment_size",
    "block_time",
    "close_round",
    "commit_scores",
    "commit_updates",
    "epsilon_for",
    "expected_round",
    "finalize",
    "gas_cost",
    "gt",
    "h",
    "join_task",
    "open_round",
    "params_from_event",
    "play_round",
    "publish_task",
    "register_devices",
    "reveal_scores",
    "reverts_with",
    "round_assignment",
    "salt_of",
    "score_round",
    "selector",
    "setup_task",
    "stalled_after",
    "update_hash",
]

MODEL = task_params().model_hash
EPSILON_STEP = EPSILON_UNIT
"""Micro-ε a device reports per round in the helpers (round r: (r + 1) x this)."""


def h(n: int) -> bytes:
    """A distinct non-zero bytes32."""
    return (0xF5_0000 + n).to_bytes(32, "big")


def update_hash(round_: int, device: Wallet | str) -> bytes:
    """The (arbitrary, non-zero) hash `device` commits in a round."""
    return bytes(Web3.keccak(text=f"update:{round_}:{_address(device)}"))


def salt_of(round_: int, device: Wallet | str) -> bytes:
    """The salt `device` uses for its score commitment in a round."""
    return bytes(Web3.keccak(text=f"salt:{round_}:{_address(device)}"))


def epsilon_for(round_: int) -> int:
    """The cumulative ε (micro-ε) the helpers report in `round_`: grows every round."""
    return (round_ + 1) * EPSILON_STEP


def addresses(wallets: Iterable[Wallet]) -> list[str]:
    return [w.address for w in wallets]


def _address(device: Wallet | str) -> str:
    return device if isinstance(device, str) else device.address


def block_time(fs: Fedshare, receipt: Receipt) -> int:
    return int(fs.chain.w3.eth.get_block(receipt.block_number)["timestamp"])


def params_from_event(params: Mapping[str, Any]) -> TaskParams:
    """The :class:`TaskParams` of a ``TaskPublished`` event's ``params`` tuple, field by
    field by name (camelCase in the ABI, snake_case in Python): a field missing on
    either side raises TypeError."""
    return TaskParams(**{snake(name): value for name, value in params.items()})


# ---------------------------------------------------------------- revert expectations


def gt(bound: int) -> Callable[[Any], bool]:
    """Matcher for an error argument that must be strictly greater than `bound`."""
    matcher = lambda value: value > bound
    matcher.__name__ = f"> {bound}"
    return matcher


def _norm(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return value.lower()
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    return value


def _matches(expected: Any, actual: Any) -> bool:
    if callable(expected) and not isinstance(expected, type):
        return bool(expected(actual))
    return _norm(expected) == _norm(actual)


@contextmanager
def reverts_with(error_name: str, *args: Any, **kwargs: Any) -> Iterator[Any]:
    """Expects the block to revert with the custom error `error_name`.

    Positional `args` must be the error's arguments, all of them, in order (like
    ``.withArgs(...)``); keyword `kwargs` name a subset. An expected value may be a
    predicate (e.g. :func:`gt`). Addresses compare case-insensitively.
    """
    with pytest.raises(TransactionReverted) as info:
        yield info
    err = info.value
    assert err.error_name == error_name, f"reverted with {err}, expected {error_name}"
    actual = err.error_args
    if args:
        values = list(actual.values())
        assert len(values) == len(args), f"{err}: expected {len(args)} arguments"
        for name, want, got in zip(actual, args, values):
            assert _matches(want, got), f"{err}: {name} is {got!r}, expected {want!r}"
    for name, want in kwargs.items():
        assert name in actual, f"{err} has no argument {name}"
        assert _matches(want, actual[name]), (
            f"{err}: {name} is {actual[name]!r}, expected {want!r}"
        )


def gas_cost(receipt: Receipt) -> int:
    """Wei the sender paid for gas."""
    return int(receipt.raw["gasUsed"]) * int(receipt.raw["effectiveGasPrice"])


# ---------------------------------------------------------------- time


def stalled_after(fs: Fedshare, task_id: int) -> int:
    """When anyone may cancel the task: last progress + train + verify + reveal + grace."""
    p = fs.tasks.params(task_id)
    return fs.tasks.state(task_id).last_progress_at + p.round_span + p.grace_period


# ---------------------------------------------------------------- verifier assignment


def assignment_size(n: int, k: int) -> int:
    """How many updates each verifier scores (Quality.assignmentSize)."""
    if n < 2:
        return 0
    return n - 1 if k == 0 or k >= n - 1 else k


@dataclass(frozen=True)
class Assignment:
    """The circulant verifier assignment of a round: participant i scores participant
    (i + 1 + (offset + t) mod (n - 1)) mod n for t < size."""

    n: int
    size: int
    offset: int

    def target(self, i: int, t: int) -> int:
        return poq.target(i, t, self.offset, self.n)

    def targets(self, i: int) -> list[int]:
        """Whom participant i scores, in score order."""
        return [self.target(i, t) for t in range(self.size)]

    def verifiers(self, j: int) -> list[int]:
        """Who scores participant j: the t-th is the one whose t-th target is j."""
        return [poq.verifier(j, t, self.offset, self.n) for t in range(self.size)]

    def row(self, i: int, full_row: Sequence[int]) -> list[int]:
        """Participant i's revealed scores from its full row of n scores."""
        return [full_row[j] for j in self.targets(i)]


def round_assignment(fs: Fedshare, task_id: int, round_: int) -> Assignment:
    info = fs.tasks.round_info(task_id, round_)
    return Assignment(info.participants, info.assignment_size, info.assignment_offset)


def assigned_rows(
    fs: Fedshare, task_id: int, round_: int, matrix: Mapping[Wallet, Sequence[int]]
) -> dict[Wallet, list[int]]:
    """Each device's revealed scores (assignment order) from its full row."""
    assignment = round_assignment(fs, task_id, round_)
    order = fs.tasks.participants(task_id)
    return {d: assignment.row(order.index(d.address), row) for d, row in matrix.items()}


# ---------------------------------------------------------------- task life


def register_devices(fs: Fedshare, owner: Wallet, devices: Iterable[Wallet]) -> None:
    for device in devices:
        if not fs.devices.is_active(device.address):
            fs.devices.register_device(owner, device)


def publish_task(
    fs: Fedshare,
    actors,
    *,
    with_aggregator: bool = True,
    allow_list: Sequence[str] = (),
    **overrides,
) -> int:
    task_id, _ = fs.tasks.publish(
        actors.requester,
        task_params(**overrides),
        actors.aggregator.address if with_aggregator else None,
        allow_list,
    )
    return task_id


def join_task(fs: Fedshare, task_id: int, devices: Iterable[Wallet]) -> None:
    for device in devices:
        fs.tasks.join(device, task_id)


def setup_task(
    fs: Fedshare, actors, n: int = 3, **overrides
) -> tuple[int, tuple[Wallet, ...]]:
    """Registers the first `n` devices (to the owner) when they are not yet, publishes a
    task and joins them."""
    devices = actors.devices[:n]
    register_devices(fs, actors.owner, devices)
    task_id = publish_task(fs, actors, **overrides)
    join_task(fs, task_id, devices)
    return task_id, devices


def open_round(fs: Fedshare, actors, task_id: int) -> int:
    """The aggregator opens the next round on the task's current model; returns its index."""
    state = fs.tasks.state(task_id)
    fs.tasks.open_round(actors.aggregator, task_id, state.current_model)
    return state.rounds_opened


def commit_updates(
    fs: Fedshare,
    task_id: int,
    round_: int,
    devices: Iterable[Wallet],
    epsilon: int | None = None,
) -> None:
    """Train phase: each device commits its update with ε = :func:`epsilon_for`."""
    for device in devices:
        fs.tasks.commit_update(
            device,
            task_id,
            round_,
            update_hash(round_, device),
            epsilon_for(round_) if epsilon is None else epsilon,
        )


def _commits_closed(fs: Fedshare, info: RoundInfo) -> bool:
    return phases.commits_closed(info, fs.chain.next_timestamp())


def _verify_closed(fs: Fedshare, info: RoundInfo) -> bool:
    return phases.verify_closed(info, fs.chain.next_timestamp())


def commit_scores(
    fs: Fedshare, task_id: int, round_: int, rows: Mapping[Wallet, Sequence[int]]
) -> None:
    """Verify phase: each device commits to its scores (already in assignment order)
    with its :func:`salt_of`; waits for the commit deadline when commits are still open."""
    info = fs.tasks.round_info(task_id, round_)
    if rows and not _commits_closed(fs, info):
        fs.chain.advance_past(info.commit_deadline)
    for device, scores in rows.items():
        commitment = score_commitment(
            task_id, round_, scores, salt_of(round_, device), device.address
        )
        fs.tasks.commit_scores(device, task_id, round_, commitment)


def reveal_scores(
    fs: Fedshare, task_id: int, round_: int, rows: Mapping[Wallet, Sequence[int]]
) -> None:
    """Reveal phase: each device reveals the scores it committed to; waits for the
    verify deadline when the verify phase is still open."""
    info = fs.tasks.round_info(task_id, round_)
    if rows and not _verify_closed(fs, info):
        fs.chain.advance_past(info.verify_deadline)
    for device, scores in rows.items():
        fs.tasks.reveal_scores(
            device, task_id, round_, list(scores), salt_of(round_, device)
        )


def score_round(
    fs: Fedshare,
    task_id: int,
    round_: int,
    matrix: Mapping[Wallet, Sequence[int]],
    *,
    reveal: Iterable[Wallet] | None = None,
) -> dict[Wallet, list[int]]:
    """Every device of `matrix` (full rows, see the module doc) commits to its assigned
    scores, then those of `reveal` (all by default) reveal them. Returns the revealed
    rows."""
    rows = assigned_rows(fs, task_id, round_, matrix)
    commit_scores(fs, task_id, round_, rows)
    revealers = set(rows if reveal is None else reveal)
    revealed = {d: row for d, row in rows.items() if d in revealers}
    reveal_scores(fs, task_id, round_, revealed)
    return revealed


def finalize(fs: Fedshare, actors, task_id: int, round_: int) -> RoundOutcome:
    """Finalises the round (waiting for the reveal deadline unless every score
    committer revealed after the verify phase closed)."""
    info = fs.tasks.round_info(task_id, round_)
    if not phases.reveals_closed(info, fs.chain.next_timestamp()):
        fs.chain.advance_past(info.reveal_deadline)
    return fs.tasks.finalize_round(actors.stranger, task_id, round_)


def close_round(
    fs: Fedshare, actors, task_id: int, round_: int, new_model: bytes | None = None
) -> Receipt:
    """Aggregates (when anything was accepted) and publishes the round's new model."""
    if fs.tasks.round_info(task_id, round_).stage is RoundStage.FINALIZED:
        fs.tasks.submit_aggregate(actors.aggregator, task_id, round_, h(500 + round_))
    return fs.tasks.publish_model(
        actors.requester, task_id, round_, new_model or h(700 + round_)
    )


def play_round(
    fs: Fedshare,
    actors,
    task_id: int,
    *,
    committers: Sequence[Wallet] | None = None,
    matrix: Mapping[Wallet, Sequence[int]] | None = None,
    reveal: Iterable[Wallet] | None = None,
    close: bool = False,
) -> tuple[int, list[str], RoundOutcome]:
    """Plays one round with the protocol's own driver and state machines: the
    aggregator opens it, `committers` (all participants by default) commit, the
    devices of `matrix` (full rows) commit their scores and those of `reveal` (all by
    default) reveal them, a stranger finalises as soon as the contract allows it,
    and with `close` the aggregator aggregates and the requester publishes. Parties
    that do not act in a phase stay silent; the driver moves the clock past deadlines
    only when nobody can act.

    Returns the round index, the round's participants (the order of the matrix columns)
    and the outcome.
    """
    round_ = open_round(fs, actors, task_id)
    state = Path(tempfile.mkdtemp(prefix="fedshare-round-"))
    participants = fs.tasks.participants(task_id)
    wallets = {d.address: d for d in actors.devices}
    members = [wallets[a] for a in participants]
    committing = set(members if committers is None else committers)
    rows = assigned_rows(fs, task_id, round_, matrix) if matrix else {}
    revealing = set(rows if reveal is None else reveal)

    def acts(device: Wallet):
        return lambda r, phase: (
            (phase is Phase.TRAIN and device in committing)
            or (phase is Phase.VERIFY and device in rows)
            or (phase is Phase.REVEAL and device in revealing))

    outcomes: list[RoundOutcome] = []
    settler = Settler(fs, actors.stranger, task_id, state, progress=lambda kind, data: (
        outcomes.append(data["outcome"]) if kind == "finalized" else None))
    devices = [ScriptedDevice(fs, d, task_id, state,
                              update_hash=lambda r, d=d: update_hash(r, d),
                              epsilon=epsilon_for, scores=lambda r, a, d=d: rows[d],
                              salt=lambda r, d=d: salt_of(r, d), acts=acts(d))
               for d in members]
    drive(fs.chain, [settler, *devices],
          until=lambda: fs.tasks.round_info(task_id, round_).stage is not RoundStage.OPEN)
    if close:
        aggregator = ScriptedAggregator(fs, actors.aggregator, task_id, state,
                                        aggregate_hash=lambda r: h(500 + r))
        requester = ScriptedRequester(fs, actors.requester, task_id, state,
                                      model_hash=lambda r: h(700 + r))
        drive(fs.chain, [aggregator, requester], until=lambda: fs.tasks.round_info(
            task_id, round_).stage is RoundStage.CLOSED)
    (outcome,) = outcomes
    return round_, participants, outcome


# ---------------------------------------------------------------- model of proof of quality


@dataclass(frozen=True)
class RoundModel:
    quality: list[int]
    leader: int | None
    worst: int | None
    accepted: list[bool]
    rewards: list[int]

    @property
    def paid(self) -> int:
        return sum(self.rewards)


def expected_round(
    n: int,
    rows: Mapping[int, Sequence[int]],
    reward: int,
    min_quality: int = 0,
    *,
    quality_gap: int = MAX_SCORE,
    assignment: Assignment | None = None,
) -> RoundModel:
    """What the documented rules (`offchain.protocol.poq`) give for `n` participants
    where participant i (an index) revealed the full row ``rows[i]`` (only participants
    that revealed are keys); the assignment is everyone scoring everyone by default."""
    assignment = assignment or Assignment(n, n - 1, 0)
    settled = poq.settle(
        [assignment.row(i, rows[i]) if i in rows else None for i in range(n)],
        k=assignment.size, offset=assignment.offset, min_quality=min_quality,
        quality_gap=quality_gap)
    return RoundModel(list(settled.quality), settled.leader, settled.worst,
                      list(settled.accepted), settled.rewards(reward))


# ---------------------------------------------------------------- solvency


def assert_solvent(fs: Fedshare, devices: Iterable[str]) -> None:
    """Both contracts hold exactly what they owe."""
    chain = fs.chain
    held = fs.tasks.total_held()
    assert chain.balance(fs.tasks.address) == held
    owed = fs.vault.total_owed()
    assert chain.balance(fs.vault.address) == owed
    assert owed == sum(fs.vault.balance_of(d) for d in set(devices))


# ---------------------------------------------------------------- a contract wallet

_OPCODES = {
    "STOP": 0x00,
    "ADD": 0x01,
    "SUB": 0x03,
    "ISZERO": 0x15,
    "CALLER": 0x33,
    "CALLVALUE": 0x34,
    "CALLDATALOAD": 0x35,
    "CALLDATASIZE": 0x36,
    "CALLDATACOPY": 0x37,
    "CODECOPY": 0x39,
    "RETURNDATASIZE": 0x3D,
    "RETURNDATACOPY": 0x3E,
    "MLOAD": 0x51,
    "MSTORE": 0x52,
    "SLOAD": 0x54,
    "SSTORE": 0x55,
    "JUMPI": 0x57,
    "GAS": 0x5A,
    "JUMPDEST": 0x5B,
    "DUP1": 0x80,
    "DUP4": 0x83,
    "DUP6": 0x85,
    "CALL": 0xF1,
    "RETURN": 0xF3,
    "REVERT": 0xFD,
}


def _assemble(program: Sequence[Any]) -> bytes:
    """Tiny assembler: opcode names, ints (PUSH1), ("label", name), ("jump", name) (PUSH2)."""

    def size(item):
        if isinstance(item, int):
            return 2
        if isinstance(item, tuple):
            return 1 if item[0] == "label" else 3
        return 1

    labels, offset = {}, 0
    for item in program:
        if isinstance(item, tuple) and item[0] == "label":
            labels[item[1]] = offset
        offset += size(item)
    code = bytearray()
    for item in program:
        if isinstance(item, int):
            code += bytes([0x60, item])
        elif isinstance(item, tuple):
            code += (
                bytes([_OPCODES["JUMPDEST"]])
                if item[0] == "label"
                else bytes([0x61]) + labels[item[1]].to_bytes(2, "big")
            )
        else:
            code.append(_OPCODES[item])
    return bytes(code)


# forward(address target, bytes data): calls `target` with `data` and the value sent,
# bubbling its return or revert data. Receiving ETH (empty calldata): reverts when
# storage slot 0 is zero; otherwise, once, calls back its payer with the 4-byte
# selector held in slot 0, records 1 + success in slot 2 and the first word of what
# it returned in slot 3, and accepts the ETH.
_WALLET_RUNTIME = _assemble(
    [
        "CALLDATASIZE",
        "ISZERO",
        ("jump", "receive"),
        "JUMPI",
        68,
        "CALLDATALOAD",
        "DUP1",
        100,
        0,
        "CALLDATACOPY",  # [len]  data -> mem[0:]
        4,
        "CALLDATALOAD",  # [len, target]
        0,
        0,
        "DUP4",
        0,
        "CALLVALUE",
        "DUP6",
        "GAS",
        "CALL",  # [len, target, ok]
        "RETURNDATASIZE",
        0,
        0,
        "RETURNDATACOPY",
        ("jump", "ok"),
        "JUMPI",
        "RETURNDATASIZE",
        0,
        "REVERT",
        ("label", "ok"),
        "RETURNDATASIZE",
        0,
        "RETURN",
        ("label", "receive"),
        0,
        "SLOAD",
        "ISZERO",
        ("jump", "reject"),
        "JUMPI",
        1,
        "SLOAD",
        ("jump", "accept"),
        "JUMPI",
        1,
        1,
        "SSTORE",
        0,
        "SLOAD",
        0,
        "MSTORE",
        0,
        0,
        4,
        0,
        0,
        "CALLER",
        "GAS",
        "CALL",  # [ok]
        1,
        "ADD",
        2,
        "SSTORE",
        0,
        0,
        "MSTORE",
        "RETURNDATASIZE",
        0,
        0,
        "RETURNDATACOPY",
        0,
        "MLOAD",
        3,
        "SSTORE",
        ("label", "accept"),
        "STOP",
        ("label", "reject"),
        0,
        "DUP1",
        "REVERT",
    ]
)

_WALLET_ABI = [
    {
        "type": "function",
        "name": "forward",
        "stateMutability": "payable",
        "outputs": [],
        "inputs": [
            {"name": "target", "type": "address"},
            {"name": "data", "type": "bytes"},
        ],
    }
]


class ContractWallet:
    """A contract account that forwards calls (so it can be a requester, device or
    owner) and either rejects ETH or re-enters its payer once when paid."""

    def __init__(
        self, fs: Fedshare, deployer: Wallet, reenter_selector: bytes | None = None
    ):
        self.fs = fs
        self.deployer = deployer
        word = (reenter_selector or b"").ljust(32, b"\0")
        prefix_len = 51
        init = (
            bytes([0x7F])
            + word
            + bytes([0x60, 0, _OPCODES["SSTORE"]])
            + bytes([0x61])
            + len(_WALLET_RUNTIME).to_bytes(2, "big")
            + bytes([0x61])
            + prefix_len.to_bytes(2, "big")
            + bytes([0x60, 0, _OPCODES["CODECOPY"]])
            + bytes([0x61])
            + len(_WALLET_RUNTIME).to_bytes(2, "big")
            + bytes([0x60, 0, _OPCODES["RETURN"]])
        )
        assert len(init) == prefix_len
        factory = fs.chain.w3.eth.contract(
            abi=_WALLET_ABI, bytecode=init + _WALLET_RUNTIME
        )
        receipt = fs.chain.transact(deployer, factory.constructor())
        self.address = str(receipt.raw["contractAddress"])
        self.contract = fs.chain.w3.eth.contract(address=self.address, abi=_WALLET_ABI)

    def call(
        self, target: ContractClient, function: str, *args: Any, value: int = 0
    ) -> Receipt:
        """Calls `function` of the contract behind the client `target` from this
        contract."""
        data = target.contract.encode_abi(function, list(args))
        return self.fs.chain.transact(
            self.deployer,
            self.contract.functions.forward(target.address, data),
            value=value,
        )

    def slot(self, index: int) -> bytes:
        return bytes(self.fs.chain.w3.eth.get_storage_at(self.address, index))

    @property
    def reentry_attempted(self) -> bool:
        return self.slot(2) != b"\0" * 32

    @property
    def reentry_succeeded(self) -> bool:
        return int.from_bytes(self.slot(2), "big") == 2

    @property
    def reentry_error_selector(self) -> bytes:
        return self.slot(3)[:4]


def selector(signature: str) -> bytes:
    return bytes(Web3.keccak(text=signature))[:4]
