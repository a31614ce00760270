"""A device: trains with DP-SGD, commits its encrypted update, scores its peers."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from offchain.chain.accounts import Wallet
from offchain.chain.contracts import Fedshare
from offchain.crypto import PackingSpec, PublicKey, encrypt_vector, seal, unseal
from offchain.errors import ConfigError, FedshareError
from offchain.learning.data import DeviceData
from offchain.learning.evaluate import score_update
from offchain.learning.model import (
    ModelSpec,
    decode_vector,
    encode_vector,
    num_parameters,
)
from offchain.privacy import DPConfig, PrivacyAccountant, train_local
from offchain.roles.common import load_model, require_task_key
from offchain.storage import BlobStore
from offchain.storage.mailbox import Mailbox

__all__ = ["Device", "DeviceRound"]

log = logging.getLogger(__name__)

_NO_HASH = b"\0" * 32


@dataclass(frozen=True)
class DeviceRound:
    """What one device did in one round."""

    update_hash: bytes
    epsilon: float
    steps: int
    train_loss: float
    commit_gas: int


class Device:
    """One IoT device: its micro-wallet, private data and privacy accountant."""

    def __init__(self, fs: Fedshare, wallet: Wallet, store: BlobStore, mailbox: Mailbox,
                 *, data: DeviceData, spec: ModelSpec, dp: DPConfig, packing: PackingSpec,
                 paillier_key: PublicKey, seed: int) -> None:
        if packing.bound < dp.update_bound:
            raise ConfigError(
                f"updates are clipped to ±{dp.update_bound} but packing only holds "
                f"±{packing.bound}: raise PackingSpec.bound"
            )
        self.fs = fs
        self.wallet = wallet
        self.store = store
        self.mailbox = mailbox
        self.data = data
        self.spec = spec
        self.dp = dp
        self.packing = packing
        self.paillier_key = paillier_key
        self.seed = seed
        self.accountant = PrivacyAccountant.for_config(dp)

    @property
    def address(self) -> str:
        return self.wallet.address

    @property
    def epsilon(self) -> float:
        """ε spent so far in this task (δ = the DP config's delta)."""
        return self.accountant.epsilon

    def join(self, task_id: int) -> None:
        """Joins the task (as participant, or on the waiting list)."""
        require_task_key(self.fs, task_id, self.paillier_key, "device")
        self.fs.join(self.wallet, task_id)

    def train_and_commit(self, task_id: int, round_: int,
                         participants: list[str]) -> DeviceRound:
        """Trains on the round's global model with DP-SGD, encrypts the update under
        the requester's key, stores it, seals the DP update to each peer for
        verification, and commits the encrypted blob's hash on chain."""
        info = self.fs.round_info(task_id, round_)
        global_vec = load_model(self.store, info.global_model_hash, self.spec)
        update = train_local(self.spec, global_vec, self.data.train, self.dp,
                             self.accountant, seed=self.seed * 1_000 + round_)
        blob = encrypt_vector(self.paillier_key, update.delta, self.packing).to_bytes()
        update_hash = self.store.put(blob)
        plain = encode_vector(update.delta)
        for peer in participants:
            if peer != self.address:
                sealed = seal(self.fs.device_public_key(peer), plain)
                self.mailbox.post(task_id, round_, self.address, peer, self.store.put(sealed))
        receipt = self.fs.commit_update(self.wallet, task_id, round_, update_hash)
        return DeviceRound(update_hash, update.epsilon, update.steps, update.train_loss,
                           receipt.gas_used)

    def score_peers(self, task_id: int, round_: int, participants: list[str]) -> list[int]:
        """Scores each participant's sealed DP update on this device's validation data
        (accuracy in basis points). Its own entry, peers that committed nothing and
        updates that fail to unseal or decode score 0; the problem is logged."""
        info = self.fs.round_info(task_id, round_)
        global_vec = load_model(self.store, info.global_model_hash, self.spec)
        letters = self.mailbox.inbox(task_id, round_, self.address)
        scores = []
        for peer in participants:
            if peer == self.address:
                scores.append(0)
                continue
            if self.fs.submission(task_id, round_, peer).update_hash == _NO_HASH:
                scores.append(0)
                continue
            try:
                sealed = self.store.get(letters[peer])
                delta = decode_vector(unseal(self.wallet.unseal_key(), sealed),
                                      expected_size=num_parameters(self.spec))
                scores.append(score_update(self.spec, global_vec, delta,
                                           self.data.validation))
            except KeyError:
                log.warning("task %s round %s: %s sent no update to verify",
                            task_id, round_, peer)
                scores.append(0)
            except FedshareError as exc:
                log.warning("task %s round %s: update of %s rejected: %s",
                            task_id, round_, peer, exc)
                scores.append(0)
        return scores

    def submit_scores(self, task_id: int, round_: int, scores: list[int]) -> int:
        """Submits the scores on chain; returns the gas used."""
        return self.fs.submit_scores(self.wallet, task_id, round_, scores).gas_used
