"""The aggregator: opens rounds and sums accepted ciphertexts without any key."""

from __future__ import annotations

from offchain.chain.accounts import Wallet
from offchain.chain.contracts import Fedshare
from offchain.crypto import EncryptedVector, PublicKey, aggregate
from offchain.errors import AggregationError
from offchain.roles.common import require_task_key
from offchain.storage import BlobStore

__all__ = ["Aggregator"]


class Aggregator:
    """Holds only the requester's public key."""

    def __init__(self, fs: Fedshare, wallet: Wallet, store: BlobStore, *,
                 public_key: PublicKey) -> None:
        self.fs = fs
        self.wallet = wallet
        self.store = store
        self.public_key = public_key

    @property
    def address(self) -> str:
        return self.wallet.address

    def open_round(self, task_id: int) -> int:
        """Opens the task's next round on its current global model; returns its index."""
        state = self.fs.task_state(task_id)
        require_task_key(self.fs, task_id, self.public_key, "aggregator")
        self.fs.open_round(self.wallet, task_id, state.current_model)
        return state.rounds_opened

    def aggregate(self, task_id: int, round_: int, accepted: tuple[str, ...]) -> bytes:
        """Sums the committed ciphertexts of `accepted`, stores the sum and posts its
        hash. Every blob is verified against its on-chain hash and the task's key."""
        if not accepted:
            raise AggregationError(f"round {round_} of task {task_id} accepted nobody")
        parts = []
        for device in accepted:
            digest = self.fs.submission(task_id, round_, device).update_hash
            parts.append(EncryptedVector.from_bytes(
                self.store.get(digest), expected_key_id=self.public_key.key_id))
        total = aggregate(self.public_key, parts)
        digest = self.store.put(total.to_bytes())
        self.fs.submit_aggregate(self.wallet, task_id, round_, digest)
        return digest
