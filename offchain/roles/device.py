"""A device: trains with DP-SGD, commits its encrypted update, scores its peers."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from offchain.chain.accounts import Wallet
from offchain.chain.contracts import Fedshare, score_commitment
from offchain.chain.types import EPSILON_UNIT, MemberStatus, epsilon_to_chain
from offchain.crypto import PackingSpec, PublicKey, encrypt_vector, prefill, seal, unseal
from offchain.errors import ConfigError, FedshareError, PrivacyBudgetExceeded
from offchain.learning.data import DeviceData
from offchain.learning.evaluate import score_update
from offchain.learning.model import (
    ModelSpec,
    decode_vector,
    encode_vector,
    num_parameters,
)
from offchain.privacy import AccountantStore, DPConfig, PrivacyAccountant, train_local
from offchain.privacy.dp import LocalUpdate
from offchain.roles.common import load_model, require_task_key
from offchain.storage import BlobStore
from offchain.storage.mailbox import Mailbox

__all__ = ["Device", "DeviceRound"]

log = logging.getLogger(__name__)

_NO_HASH = b"\0" * 32


@dataclass(frozen=True)
class DeviceRound:
    """What one device did in the train phase of one round."""

    update_hash: bytes
    epsilon: float
    steps: int
    train_loss: float
    commit_gas: int


class Device:
    """One IoT device: its micro-wallet, private data and privacy accountant.

    With a `state_dir`, the accountant of each task is kept on disk there (see
    :class:`~offchain.privacy.AccountantStore`): a device restarted with the same
    wallet and `state_dir` goes on from the ε it had already spent instead of from 0.
    Raises ConfigError when `packing` cannot hold updates clipped to the DP
    config's update bound."""

    def __init__(self, fs: Fedshare, wallet: Wallet, store: BlobStore, mailbox: Mailbox,
                 *, data: DeviceData, spec: ModelSpec, dp: DPConfig, packing: PackingSpec,
                 paillier_key: PublicKey, seed: int, state_dir: Path | None = None) -> None:
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
        self.accountant_store = AccountantStore(state_dir) if state_dir is not None else None
        self._task_id: int | None = None
        self._sealed_scores: dict[tuple[int, int], tuple[list[int], bytes]] = {}

    @property
    def address(self) -> str:
        return self.wallet.address

    @property
    def epsilon(self) -> float:
        """ε spent so far in this task (δ = the DP config's delta)."""
        return self.accountant.epsilon

    def join(self, task_id: int) -> None:
        """Joins the task (as participant, or on the waiting list) after checking its
        Paillier key; the task's ε budget becomes this device's budget.

        With a state directory, the ε already spent in the task is loaded from it.
        Joining is idempotent: a device that is already a member of the task (say,
        restarted) sends no transaction and just picks its state up, like
        :meth:`resume`. Raises KeyMismatchError when the task names another Paillier
        key; PrivacyError when the stored accountant is unreadable or does not match
        the DP config and the task's budget; ChainError when joining fails."""
        self._load_accountant(task_id)
        status = self.fs.member_status(task_id, self.address)
        if status is MemberStatus.NONE:
            self.fs.join(self.wallet, task_id)
        else:
            log.info("task %s: %s is already a member (%s), not joining again",
                     task_id, self.address, status.name.lower())

    def resume(self, task_id: int) -> None:
        """Picks a task this device is already a member of up again after a restart,
        sending no transaction: checks the task's Paillier key and loads the ε spent
        so far from the state directory (a fresh accountant without one).

        Raises ConfigError when this device is not a member of the task (join it);
        KeyMismatchError and PrivacyError as :meth:`join` does."""
        status = self.fs.member_status(task_id, self.address)
        if status is MemberStatus.NONE:
            raise ConfigError(
                f"{self.address} is not a member of task {task_id}: join it first"
            )
        self._load_accountant(task_id)

    def _load_accountant(self, task_id: int) -> None:
        require_task_key(self.fs, task_id, self.paillier_key, "device")
        budget = self.fs.task_params(task_id).epsilon_budget / EPSILON_UNIT
        if self.accountant_store is None:
            self.accountant = PrivacyAccountant.for_config(self.dp, budget=budget)
        else:
            self.accountant = self.accountant_store.load_or_create(
                task_id, self.address, delta=self.dp.delta, budget=budget)
            if self.accountant.steps:
                log.info("task %s: %s resumes at ε=%.4f after %d DP-SGD steps",
                         task_id, self.address, self.accountant.epsilon,
                         self.accountant.steps)
        self._task_id = task_id

    def train_and_commit(self, task_id: int, round_: int) -> DeviceRound | None:
        """Train phase: trains on the round's global model with DP-SGD, encrypts the
        update under the requester's key, stores it, seals the DP update to the peers
        that verify it, and commits the blob's hash and the ε spent so far.

        Returns None, committing nothing, when another round would exceed the task's ε
        budget: the device stops contributing. With a state directory, the accountant
        is saved after training and before anything is sent, so the ε spent is on disk
        even if the commit fails (or training fails after taking steps).
        Raises ConfigError unless this device joined (or resumed) `task_id` last;
        PrivacyError when training fails or the accountant cannot be saved."""
        if self._task_id != task_id:
            raise ConfigError(
                f"{self.address} holds the privacy accountant of task {self._task_id}, "
                f"not of task {task_id}: join or resume task {task_id} first"
            )
        info = self.fs.round_info(task_id, round_)
        global_vec = load_model(self.store, info.global_model_hash, self.spec)
        # The encryption randomness is computed while the device trains.
        prefill(self.paillier_key, global_vec.size, self.packing, wait=False)
        update = self.local_update(task_id, round_, global_vec)
        if update is None:
            return None
        blob = encrypt_vector(self.paillier_key, update.delta, self.packing).to_bytes()
        update_hash = self.store.put(blob)
        plain = encode_vector(update.delta)
        for verifier in self.fs.verifiers(task_id, round_, self.address):
            sealed = seal(self.fs.device_public_key(verifier), plain)
            self.mailbox.post(task_id, round_, self.address, verifier, self.store.put(sealed))
        receipt = self.fs.commit_update(self.wallet, task_id, round_, update_hash,
                                        epsilon_to_chain(update.epsilon))
        return DeviceRound(update_hash, update.epsilon, update.steps, update.train_loss,
                           receipt.gas_used)

    def local_update(self, task_id: int, round_: int,
                     global_vec: np.ndarray) -> LocalUpdate | None:
        """This round's DP-SGD update of `global_vec` on the device's training data, or
        None when it would exceed the ε budget. The accountant is saved (with a state
        directory) whenever steps were taken, even if training then fails."""
        steps_before = self.accountant.steps
        try:
            return train_local(self.spec, global_vec, self.data.train, self.dp,
                               self.accountant, seed=self.seed * 1_000 + round_)
        except PrivacyBudgetExceeded as exc:
            log.warning("task %s round %s: %s stops contributing: %s",
                        task_id, round_, self.address, exc)
            return None
        finally:
            if self.accountant_store is not None and self.accountant.steps != steps_before:
                self.accountant_store.save(task_id, self.address, self.accountant)

    def score_peers(self, task_id: int, round_: int) -> list[int]:
        """Scores the updates assigned to this device, in assignment order, on its own
        validation data (accuracy in basis points). Peers that committed nothing and
        updates that fail to unseal or decode score 0; the problem is logged."""
        info = self.fs.round_info(task_id, round_)
        global_vec = load_model(self.store, info.global_model_hash, self.spec)
        letters = self.mailbox.inbox(task_id, round_, self.address)
        scores = []
        for peer in self.fs.assignment(task_id, round_, self.address):
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

    def commit_scores(self, task_id: int, round_: int, scores: list[int]) -> int:
        """Verify phase: commits to `scores` with a fresh random salt (kept for the
        reveal); returns the gas used."""
        salt = secrets.token_bytes(32)
        commitment = score_commitment(task_id, round_, scores, salt, self.address)
        receipt = self.fs.commit_scores(self.wallet, task_id, round_, commitment)
        self._sealed_scores[(task_id, round_)] = (scores, salt)
        return receipt.gas_used

    def reveal_scores(self, task_id: int, round_: int) -> int:
        """Reveal phase: reveals the committed scores and salt; returns the gas used.
        Raises ConfigError when this device committed no scores in the round."""
        try:
            scores, salt = self._sealed_scores.pop((task_id, round_))
        except KeyError:
            raise ConfigError(
                f"{self.address} committed no scores in task {task_id} round {round_}"
            ) from None
        return self.fs.reveal_scores(self.wallet, task_id, round_, scores, salt).gas_used
