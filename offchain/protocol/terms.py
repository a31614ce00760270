"""The protocol's units, limits and task defaults, typed once.

Every other module (roles, CLI, scripts, tests, benchmarks) takes these from here; the
contracts hold the same numbers (``TaskRegistry``, ``TaskSettlement``, ``Quality``).
"""

from __future__ import annotations

import math

__all__ = [
    "ETHER",
    "GWEI",
    "MAX_SCORE",
    "EPSILON_UNIT",
    "DEFAULT_DELTA",
    "NO_HASH",
    "ZERO_ADDRESS",
    "MAX_PARTICIPANTS",
    "MAX_VERIFIERS",
    "MAX_ALLOW_LIST",
    "MAX_PHASE_DURATION",
    "DEFAULT_QUALITY_GAP",
    "TaskDefaults",
    "DEFAULTS",
    "epsilon_to_chain",
    "epsilon_from_chain",
    "eth",
]

ETHER = 10**18
"""Wei per ether."""
GWEI = 10**9
"""Wei per gwei."""

MAX_SCORE = 10_000
"""The highest score or quality: 100 % in basis points."""

EPSILON_UNIT = 1_000_000
"""On chain, ε is an integer number of micro-ε."""

DEFAULT_DELTA = 1e-5
"""The δ at which ε is reported unless a task says otherwise."""

NO_HASH = b"\0" * 32
"""The zero bytes32: no update, commitment, aggregate or model."""

ZERO_ADDRESS = "0x" + "00" * 20

MAX_PARTICIPANTS = 64
"""TaskSettlement.MAX_PARTICIPANTS: bounds every loop of a transaction."""
MAX_VERIFIERS = 16
"""TaskRegistry.MAX_VERIFIERS: most verifiers per update."""
MAX_ALLOW_LIST = 256
"""TaskRegistry.MAX_ALLOW_LIST: longest allow-list accepted at publication."""
MAX_PHASE_DURATION = 365 * 24 * 3600
"""TaskRegistry.MAX_PHASE_DURATION: longest phase or grace period (seconds)."""

DEFAULT_QUALITY_GAP = 1_000
"""How far (basis points) below the round's median quality an update may score and
still be accepted, unless a task says otherwise. Ten points of accuracy: in the
experiments (50 nodes, four verifiers of 16 validation samples each) it rejected every
sign-flipped and scaled update and nearly every label-flipped one, while turning away
3-4 honest ones per round besides the worst."""


class TaskDefaults:
    """The terms a task gets unless its requester says otherwise (seconds, wei,
    basis points, ε at δ = 1e-5)."""

    category = "mnist-digits"
    rounds = 5
    train_duration = 600
    verify_duration = 300
    reveal_duration = 300
    grace_period = 900
    epsilon_budget = 10.0
    reward_per_round = ETHER // 2
    min_participants = 3
    max_participants = 8
    min_quality = 0
    quality_gap = DEFAULT_QUALITY_GAP
    verifiers_per_update = 0


DEFAULTS = TaskDefaults()


def epsilon_to_chain(epsilon: float) -> int:
    """ε as the contract counts it: micro-ε, rounded up so the chain never
    under-reports."""
    return int(math.ceil(epsilon * EPSILON_UNIT))


def epsilon_from_chain(micro: int) -> float:
    """ε from the contract's micro-ε."""
    return micro / EPSILON_UNIT


def eth(wei: int) -> str:
    """`wei` as ether with four decimals, for people."""
    return f"{wei / ETHER:.4f}"
