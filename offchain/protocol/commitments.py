"""The digests parties commit to or sign: score commitments and letters.

Computed locally with the contract's encoding, so scores never leave a device before
the reveal and letters can be checked by anyone who knows the sender's address.
"""

from __future__ import annotations

from collections.abc import Sequence

from eth_abi import encode as abi_encode
from eth_utils import keccak

__all__ = ["score_commitment", "letter_digest"]


def score_commitment(task_id: int, round_: int, scores: Sequence[int], salt: bytes,
                     device: str) -> bytes:
    """keccak256(abi.encode(taskId, round, scores, salt, device)): what
    TaskRegistry.commitScores takes and revealScores checks."""
    return keccak(abi_encode(["uint256", "uint64", "uint16[]", "bytes32", "address"],
                             [task_id, round_, list(scores), salt, device]))


_LETTER_TAG = keccak(text="fedshare.letter.v1")


def letter_digest(chain_id: int, task_id: int, round_: int, sender: str,
                  recipient: str, blob: bytes) -> bytes:
    """What the sender of a letter signs (EIP-191): the letter's chain, task, round,
    sender, recipient and the content address of the sealed blob it carries. Binding
    all of them keeps a letter from being replayed into another round, task, chain or
    inbox."""
    return keccak(abi_encode(
        ["bytes32", "uint256", "uint256", "uint64", "address", "address", "bytes32"],
        [_LETTER_TAG, chain_id, task_id, round_, sender, recipient, blob]))
