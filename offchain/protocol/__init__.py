"""The protocol's rules and terms in one place: units and task defaults, the Python
mirrors of the contracts' structs, a task plan, phase and deadline logic, the digests
parties commit to, and proof of quality as the contract settles it.

Pure: nothing here talks to a chain, a disk or a network.
"""

from offchain.protocol.commitments import letter_digest, score_commitment
from offchain.protocol.phases import Phase, phase_of
from offchain.protocol.plan import TaskPlan
from offchain.protocol.terms import DEFAULTS, ETHER, EPSILON_UNIT, MAX_SCORE, NO_HASH
from offchain.protocol.types import (
    DeviceInfo,
    DeviceStatus,
    MemberStatus,
    ModelVersion,
    RoundInfo,
    RoundOutcome,
    RoundStage,
    Submission,
    TaskParams,
    TaskState,
    TaskStatus,
)

__all__ = [
    "DEFAULTS", "ETHER", "EPSILON_UNIT", "MAX_SCORE", "NO_HASH", "DeviceInfo",
    "DeviceStatus", "MemberStatus", "ModelVersion", "Phase", "RoundInfo",
    "RoundOutcome", "RoundStage", "Submission", "TaskParams", "TaskPlan", "TaskState",
    "TaskStatus", "letter_digest", "phase_of", "score_commitment",
]
