"""The one exception hierarchy of fedshare.

Every error the package raises on purpose derives from :class:`FedshareError`.
Each subsystem has its own subclass, and each subclass carries an ``exit_code``
that the ``fedshare`` CLI maps to its process exit status.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "FedshareError",
    "ConfigError",
    "ChainError",
    "TransactionReverted",
    "CryptoError",
    "PackingError",
    "KeyMismatchError",
    "BlobFormatError",
    "PrivacyError",
    "PrivacyBudgetExceeded",
    "LearningError",
    "UpdateRejected",
    "AggregationError",
    "StorageError",
    "BlobIntegrityError",
    "BlobNotFound",
    "StateError",
    "ProtocolError",
    "LetterRejected",
    "TaskStalled",
    "DeploymentError",
    "InsufficientFunds",
    "NotDevelopmentChain",
    "NodeUnreachable",
]


class FedshareError(Exception):
    """Root of every error fedshare raises on purpose."""

    exit_code = 1


class ConfigError(FedshareError):
    """A configuration value or command-line option is invalid."""

    exit_code = 2


class ChainError(FedshareError):
    """Talking to the chain failed (compile, deploy, connect, transact)."""

    exit_code = 3


class DeploymentError(ChainError):
    """A deployment manifest does not match the chain: another chain id, an address
    without the expected contract code, an unreadable or unwritable manifest."""


class InsufficientFunds(ChainError):
    """A wallet cannot pay for what it is about to send."""


class NotDevelopmentChain(ChainError):
    """A development-only operation (funding from the node's accounts, moving time)
    was asked of a node that does not offer it."""


class NodeUnreachable(ChainError):
    """The node does not answer (stopped, restarting, network down)."""


class TransactionReverted(ChainError):
    """A transaction or call reverted; ``error_name`` is the contract's custom error."""

    def __init__(self, error_name: str, args: dict[str, Any] | None = None,
                 *, contract: str | None = None) -> None:
        self.error_name = error_name
        self.error_args = dict(args or {})
        self.contract = contract
        shown = ", ".join(f"{k}={_show(v)}" for k, v in self.error_args.items())
        super().__init__(f"{error_name}({shown})")


def _show(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    return str(value)


class CryptoError(FedshareError):
    """Encryption, packing or key handling failed."""

    exit_code = 4


class PackingError(CryptoError):
    """A vector cannot be packed: out of the declared bounds, NaN, or wrong shape."""


class KeyMismatchError(CryptoError):
    """A ciphertext blob belongs to a different Paillier key than the one in use."""


class BlobFormatError(CryptoError):
    """A ciphertext blob is malformed (bad magic, truncated, wrong lengths)."""


class PrivacyError(FedshareError):
    """Differentially private training failed or was misconfigured."""

    exit_code = 5


class PrivacyBudgetExceeded(PrivacyError):
    """Training further would spend more ε than the budget allows."""


class LearningError(FedshareError):
    """Data, model or evaluation failed."""

    exit_code = 6


class UpdateRejected(LearningError):
    """A model update has the wrong shape or non-finite values."""


class AggregationError(FedshareError):
    """Homomorphic aggregation failed (no inputs, mismatched layouts)."""

    exit_code = 7


class StorageError(FedshareError):
    """The blob store failed."""

    exit_code = 8


class BlobIntegrityError(StorageError):
    """A stored blob's content does not match its content address."""


class BlobNotFound(StorageError):
    """No blob is stored under the given content address."""


class StateError(StorageError):
    """A role's saved state is unreadable, from another task or wallet, or cannot be
    written."""


class ProtocolError(FedshareError):
    """A party broke a rule of the round protocol, or a message breaks one."""

    exit_code = 9


class LetterRejected(ProtocolError):
    """A letter between devices is not signed by its sender, or is addressed to
    another round, task, chain or recipient."""


class TaskStalled(ProtocolError):
    """Nobody can act and no deadline is left to wait for."""
