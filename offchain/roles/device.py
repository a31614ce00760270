"""A device: joins a task, trains with DP-SGD, commits its encrypted update, seals it
to its verifiers, scores its peers, commits and reveals the scores.

As a state machine (:meth:`DeviceRole.decide`) it acts on the current round's phase:
train (until T1), verify (until T2), reveal (until T3), and as a fallback it finalises a
round the aggregator left unsettled past T3 (its reward is credited at finalisation).
What it must not lose lives in its state directory, written before the transaction
that depends on it: the accountant (ε spent), each round's update hash, ε and sealed
letters, and the scores with their salt between commit and reveal.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

import numpy as np

from offchain.chain.accounts import Wallet, recover_signer
from offchain.chain.contracts import Fedshare
from offchain.crypto import PackingSpec, PublicKey, encrypt_vector, prefill, seal, unseal
from offchain.errors import ConfigError, FedshareError, PrivacyBudgetExceeded
from offchain.learning.data import DeviceData
from offchain.learning.evaluate import score_update
from offchain.learning.model import ModelSpec, decode_vector, encode_vector, num_parameters
from offchain.privacy import AccountantStore, DPConfig, PrivacyAccountant, train_local
from offchain.privacy.dp import LocalUpdate
from offchain.protocol.commitments import letter_digest, score_commitment
from offchain.protocol.phases import Phase
from offchain.protocol.terms import NO_HASH, epsilon_from_chain, epsilon_to_chain
from offchain.protocol.types import MemberStatus
from offchain.roles.base import (
    CANCEL_SLACK,
    FALLBACK_STAGGER,
    Progress,
    Role,
    Step,
    TaskView,
)
from offchain.roles.common import load_model, require_task_key
from offchain.storage.exchange import Exchange
from offchain.storage.mailbox import Letter

__all__ = ["DeviceRole"]

log = logging.getLogger(__name__)


class DeviceRole(Role):
    """One IoT device in one task: its micro-wallet, private data and accountant."""

    kind = "device"
    _rank: tuple[object, int] | None = None
    """(round and stage, rank among the participants) when last read."""

    def __init__(self, fs: Fedshare, wallet: Wallet, task_id: int, state_dir: Path, *,
                 exchange: Exchange, data: DeviceData, spec: ModelSpec, dp: DPConfig,
                 paillier_key: PublicKey, seed: int, label: str | None = None,
                 progress: Progress | None = None) -> None:
        super().__init__(fs, wallet, task_id, state_dir, label=label, progress=progress)
        self.exchange = exchange
        self.data = data
        self.spec = spec
        self.dp = dp
        self.paillier_key = paillier_key
        self.seed = seed
        self.accountant_store = AccountantStore(self.state_dir / "privacy")
        self._accountant: PrivacyAccountant | None = None
        self._packing: PackingSpec | None = None

    # ------------------------------------------------------------ set-up
    def _ready(self, view: TaskView) -> None:
        """Checks the task's key and loads the accountant (once)."""
        if self._accountant is not None:
            return
        require_task_key(self.fs, self.task_id, self.paillier_key, "device")
        budget = epsilon_from_chain(view.params.epsilon_budget)
        self._accountant = self.accountant_store.load_or_create(
            self.task_id, self.address, delta=self.dp.delta, budget=budget)
        self._packing = PackingSpec(bound=self.dp.update_bound,
                                    max_summands=view.params.max_participants,
                                    key_bits=self.paillier_key.bits)
        if self._packing.bound < self.dp.update_bound:
            raise ConfigError(f"updates are clipped to ±{self.dp.update_bound} but "
                              f"packing only holds ±{self._packing.bound}")

    @property
    def accountant(self) -> PrivacyAccountant:
        if self._accountant is None:
            raise ConfigError(f"{self.label} has not read task {self.task_id} yet")
        return self._accountant

    @property
    def epsilon(self) -> float:
        """ε spent so far in this task (δ = the DP config's delta)."""
        return self.accountant.epsilon

    def fallback_delay(self, view: TaskView) -> int:
        """Devices step in after the requester, one after the other in the order of
        their addresses among the task's participants (read again whenever the
        round or its stage changes, as participants join or are eliminated)."""
        key = (view.round, None if view.info is None else view.info.stage)
        if self._rank is None or self._rank[0] != key:
            joined = sorted(a.lower() for a in self.fs.tasks.participants(self.task_id))
            mine = self.address.lower()
            rank = joined.index(mine) if mine in joined else len(joined)
            self._rank = (key, rank)
        return CANCEL_SLACK + FALLBACK_STAGGER * self._rank[1]

    # ------------------------------------------------------------ the machine
    def decide(self, view: TaskView) -> Step:
        if not view.state.status.live:
            return Step(done=True)
        self._ready(view)
        tasks = self.fs.tasks
        status = tasks.member_status(self.task_id, self.address)
        if status is MemberStatus.NONE:
            tasks.join(self.wallet, self.task_id, **self.tx("join"))
            self.emit("joined")
            return Step(acted="joined")
        if status is MemberStatus.ELIMINATED or not self.fs.devices.is_active(self.address):
            return Step(done=True)
        stalled = self.maybe_cancel(view)
        if stalled is not None:
            return stalled
        if status is MemberStatus.WAITING or view.info is None:
            return self.wait_for_stall(view)
        assert view.round is not None
        phase = view.phase
        if phase in (Phase.TRAIN, Phase.VERIFY, Phase.REVEAL):
            return self._round_step(view, view.round, phase)
        if phase is Phase.FINALIZE:
            return self.maybe_finalize(view, after_deadline=True) or Step.wait()
        return self.wait_for_stall(view)

    def _round_step(self, view: TaskView, round_: int, phase: Phase) -> Step:
        assert view.info is not None
        sub = self.fs.tasks.submission(self.task_id, round_, self.address)
        if phase is Phase.TRAIN:
            if sub.update_hash == NO_HASH and not self._stopped(round_):
                return self._train_and_commit(view, round_)
            return Step.wait(view.info.commit_deadline)
        if phase is Phase.VERIFY:
            if sub.update_hash != NO_HASH and sub.score_commitment == NO_HASH:
                return self._score_and_commit(view, round_)
            return Step.wait(view.info.verify_deadline)
        if sub.score_commitment != NO_HASH and not sub.revealed:
            return self._reveal(round_)
        return Step.wait(view.info.reveal_deadline)

    def _stopped(self, round_: int) -> bool:
        return bool(self.state.get(f"stopped:{round_}")) or bool(self.state.get("budget_spent"))

    # ------------------------------------------------------------ train
    def _train_and_commit(self, view: TaskView, round_: int) -> Step:
        key = f"round:{round_}"
        saved = self.state.get(key)
        if saved is None:
            saved = self._train(view, round_)
            if saved is None:
                return Step(acted="stopped at its ε budget")
        for verifier, blob in saved["letters"].items():
            self._post(round_, verifier, bytes.fromhex(blob))
        update_hash = bytes.fromhex(saved["update_hash"])
        receipt = self.fs.tasks.commit_update(
            self.wallet, self.task_id, round_, update_hash, saved["epsilon_micro"],
            **self.tx("commitUpdate", round_))
        self.emit("trained", round=round_, epsilon=saved["epsilon"], gas=receipt.gas_used)
        return Step(acted=f"committed its update of round {round_}")

    def _train(self, view: TaskView, round_: int) -> dict | None:
        """Trains, encrypts and seals this round's update, and saves what it will send.
        None when the ε budget is spent (the device stops contributing)."""
        assert view.info is not None and self._packing is not None
        global_vec = load_model(self.exchange, view.info.global_model_hash, self.spec)
        # The encryption randomness is computed while the device trains.
        prefill(self.paillier_key, global_vec.size, self._packing, wait=False)
        update = self.local_update(self.task_id, round_, global_vec)
        if update is None:
            self.state.put(budget_spent=True)
            self.emit("stopped", round=round_, epsilon=self.epsilon)
            return None
        blob = encrypt_vector(self.paillier_key, update.delta, self._packing).to_bytes()
        update_hash = self.exchange.put(blob)
        plain = encode_vector(update.delta)
        letters = {}
        for verifier in self.fs.tasks.verifiers(self.task_id, round_, self.address):
            sealed = seal(self.fs.devices.public_key(verifier), plain)
            letters[verifier] = self.exchange.put(sealed).hex()
        saved = {"update_hash": update_hash.hex(), "epsilon": update.epsilon,
                 "epsilon_micro": epsilon_to_chain(update.epsilon), "letters": letters}
        self.state.put(**{f"round:{round_}": saved})
        return saved

    def _post(self, round_: int, verifier: str, blob: bytes) -> None:
        digest = letter_digest(self.fs.chain.chain_id, self.task_id, round_,
                               self.address, verifier, blob)
        self.exchange.post(self.task_id, round_, Letter(
            self.address, verifier, blob, self.wallet.sign_digest(digest)))

    def local_update(self, task_id: int, round_: int,
                     global_vec: np.ndarray) -> LocalUpdate | None:
        """This round's DP-SGD update of `global_vec` on the device's training data, or
        None when it would exceed the ε budget. The accountant is saved whenever steps
        were taken, even if training then fails, so ε never goes backwards."""
        steps_before = self.accountant.steps
        try:
            return train_local(self.spec, global_vec, self.data.train, self.dp,
                               self.accountant, seed=self.seed * 1_000 + round_)
        except PrivacyBudgetExceeded as exc:
            log.warning("task %s round %s: %s stops contributing: %s",
                        task_id, round_, self.label, exc)
            return None
        finally:
            if self.accountant.steps != steps_before:
                self.accountant_store.save(task_id, self.address, self.accountant)

    # ------------------------------------------------------------ verify and reveal
    def _score_and_commit(self, view: TaskView, round_: int) -> Step:
        key = f"scores:{round_}"
        saved = self.state.get(key)
        if saved is None:
            scores = self.score_peers(self.task_id, round_)
            saved = {"scores": scores, "salt": self.new_salt(round_).hex()}
            # Saved before the commitment leaves: a restart can still reveal.
            self.state.put(**{key: saved})
        commitment = score_commitment(self.task_id, round_, saved["scores"],
                                      bytes.fromhex(saved["salt"]), self.address)
        receipt = self.fs.tasks.commit_scores(self.wallet, self.task_id, round_,
                                              commitment, **self.tx("commitScores", round_))
        self.emit("scored", round=round_, gas=receipt.gas_used)
        return Step(acted=f"committed its scores of round {round_}")

    def new_salt(self, round_: int) -> bytes:
        """A fresh random salt for this round's score commitment."""
        return secrets.token_bytes(32)

    def _reveal(self, round_: int) -> Step:
        saved = self.state.get(f"scores:{round_}")
        if saved is None:
            raise ConfigError(f"{self.label} committed scores in task {self.task_id} "
                              f"round {round_} but its state holds none to reveal")
        receipt = self.fs.tasks.reveal_scores(
            self.wallet, self.task_id, round_, saved["scores"],
            bytes.fromhex(saved["salt"]), **self.tx("revealScores", round_))
        self.emit("revealed", round=round_, gas=receipt.gas_used)
        return Step(acted=f"revealed its scores of round {round_}")

    def score_peers(self, task_id: int, round_: int) -> list[int]:
        """Scores the updates assigned to this device, in assignment order, on its own
        validation data (accuracy in basis points). Peers that committed nothing, sent
        no letter signed by them, signed two different letters, or an update that
        fails to unseal or decode score 0; the problem is logged. Letters in a peer's
        name that it did not sign are ignored."""
        info = self.fs.tasks.round_info(task_id, round_)
        global_vec = load_model(self.exchange, info.global_model_hash, self.spec)
        letters = self.exchange.inbox(task_id, round_, self.address)
        chain_id = self.fs.chain.chain_id
        scores = []
        for peer in self.fs.tasks.assignment(task_id, round_, self.address):
            if self.fs.tasks.submission(task_id, round_, peer).update_hash == NO_HASH:
                scores.append(0)
                continue
            named = [letter for sender, sent in letters.items()
                     if sender.lower() == peer.lower() for letter in sent]
            signed = {letter.blob: letter for letter in named
                      if recover_signer(letter_digest(chain_id, task_id, round_, peer,
                                                      self.address, letter.blob),
                                        letter.signature) == peer}
            if len(signed) != 1:
                if not named:
                    why = f"{peer} sent no update to verify"
                elif not signed:
                    why = f"letter from {peer} refused: not signed by it"
                else:
                    why = f"{peer} signed {len(signed)} different updates (two faces)"
                log.warning("task %s round %s: %s; it scores 0", task_id, round_, why)
                scores.append(0)
                continue
            (letter,) = signed.values()
            try:
                sealed = self.exchange.get(letter.blob)
                delta = decode_vector(unseal(self.wallet.unseal_key(), sealed),
                                      expected_size=num_parameters(self.spec))
                scores.append(score_update(self.spec, global_vec, delta,
                                           self.data.validation))
            except FedshareError as exc:
                log.warning("task %s round %s: update of %s rejected: %s",
                            task_id, round_, peer, exc)
                scores.append(0)
        return scores
