"""Letters between devices: a verifier trusts a letter only when its sender signed it
for this chain, task, round, recipient and blob; anything else scores 0 and is
logged. A letter once posted stays: the same letter again is a no-op; a forged letter
in a device's name cannot crowd out its own, and two different letters signed by the
same device are two faces and score 0."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from offchain.chain.accounts import Wallet
from offchain.crypto import seal
from offchain.learning.evaluate import score_update
from offchain.learning.model import encode_vector, initial_vector, num_parameters
from offchain.protocol.commitments import letter_digest
from offchain.roles import Step
from offchain.storage.mailbox import Letter
from tests.offchain.roles.test_roles import SPEC, World, device_split, make_world


@pytest.fixture
def world(fs, actors, tmp_path) -> World:
    w = make_world(fs, actors, tmp_path)
    w.open_first_round()
    return w


def _sealed_zero_update(world: World, recipient: str) -> bytes:
    """A valid update (no change to the model) sealed to `recipient`."""
    plain = encode_vector(np.zeros(num_parameters(SPEC), dtype=np.float32))
    return world.exchange.put(seal(world.fs.devices.public_key(recipient), plain))


def _signed(world: World, signer: Wallet, blob: bytes, **overrides) -> bytes:
    """`signer`'s signature of the letter from device 1 to device 2 carrying `blob`,
    with any field of the digest overridden."""
    fields = dict(chain_id=world.chain.chain_id, task_id=world.task_id, round_=0,
                  sender=world.devices[1].address, recipient=world.devices[2].address,
                  blob=blob)
    fields.update(overrides)
    return signer.sign_digest(letter_digest(**fields))


FORGERIES = {
    "by-another-wallet": lambda w, blob: _signed(w, w.devices[0].wallet, blob),
    "for-another-round": lambda w, blob: _signed(
        w, w.devices[1].wallet, blob, round_=1),
    "for-another-recipient": lambda w, blob: _signed(
        w, w.devices[1].wallet, blob, recipient=w.devices[0].address),
    "for-another-task": lambda w, blob: _signed(
        w, w.devices[1].wallet, blob, task_id=w.task_id + 1),
    "for-another-chain": lambda w, blob: _signed(
        w, w.devices[1].wallet, blob, chain_id=w.chain.chain_id + 1),
    "for-another-blob": lambda w, blob: _signed(w, w.devices[1].wallet, b"\x01" * 32),
    "malformed": lambda w, blob: b"\x00" * 65,
}


@pytest.mark.parametrize("forge", FORGERIES.values(), ids=FORGERIES.keys())
def test_a_letter_not_signed_by_its_sender_for_this_round_scores_zero(world, caplog,
                                                                       forge):
    sender, verifier = world.devices[1], world.devices[2]
    blob = _sealed_zero_update(world, verifier.address)
    letter = Letter(sender.address, verifier.address, blob, forge(world, blob))
    world.exchange.post(world.task_id, 0, letter)
    world.fs.tasks.commit_update(sender.wallet, world.task_id, 0, b"\x01" * 32, 1)

    with caplog.at_level(logging.WARNING):
        scores = verifier.score_peers(world.task_id, 0)

    by_peer = dict(zip(world.fs.tasks.assignment(world.task_id, 0, verifier.address),
                       scores))
    assert by_peer[sender.address] == 0
    assert f"letter from {sender.address} refused: not signed by it" in caplog.text


def test_a_letter_its_sender_signed_for_this_round_is_scored(world, caplog):
    sender, verifier = world.devices[1], world.devices[2]
    blob = _sealed_zero_update(world, verifier.address)
    world.exchange.post(world.task_id, 0, Letter(
        sender.address, verifier.address, blob, _signed(world, sender.wallet, blob)))
    world.fs.tasks.commit_update(sender.wallet, world.task_id, 0, b"\x01" * 32, 1)

    with caplog.at_level(logging.WARNING):
        scores = verifier.score_peers(world.task_id, 0)

    by_peer = dict(zip(world.fs.tasks.assignment(world.task_id, 0, verifier.address),
                       scores))
    unchanged = initial_vector(SPEC, seed=0)
    validation = device_split().devices[2].validation
    assert by_peer[sender.address] == score_update(
        SPEC, unchanged, np.zeros_like(unchanged), validation) > 0
    assert "refused" not in caplog.text and "rejected" not in caplog.text


def test_a_device_that_signs_two_different_letters_scores_zero(world, caplog):
    """A letter once posted stays; a second, different update signed by the same
    sender for the same verifier and round is two faces: the verifier scores it 0."""
    sender, verifier = world.devices[0], world.devices[2]
    assert sender.step() == Step(acted="committed its update of round 0")
    (original,) = world.exchange.inbox(world.task_id, 0, verifier.address)[sender.address]

    world.exchange.post(world.task_id, 0, original)  # the same letter again: a no-op
    assert world.exchange.inbox(world.task_id, 0, verifier.address) == {
        sender.address: [original]}
    other = _sealed_zero_update(world, verifier.address)
    digest = letter_digest(world.chain.chain_id, world.task_id, 0, sender.address,
                           verifier.address, other)
    world.exchange.post(world.task_id, 0, Letter(sender.address, verifier.address, other,
                                                 sender.wallet.sign_digest(digest)))

    world.fs.tasks.commit_update(world.devices[1].wallet, world.task_id, 0,
                                 b"\x01" * 32, 1)
    scores = dict(zip(world.fs.tasks.assignment(world.task_id, 0, verifier.address),
                      verifier.score_peers(world.task_id, 0)))
    assert scores[sender.address] == 0
    assert f"{sender.address} signed 2 different updates (two faces)" in caplog.text


def test_a_letter_forged_in_a_devices_name_does_not_keep_it_from_committing(world):
    victim, verifier = world.devices[0], world.devices[2]
    squat = _sealed_zero_update(world, verifier.address)
    forged = world.devices[1].wallet.sign_digest(letter_digest(
        world.chain.chain_id, world.task_id, 0, victim.address, verifier.address,
        squat))
    world.exchange.post(world.task_id, 0,
                        Letter(victim.address, verifier.address, squat, forged))

    assert victim.step() == Step(acted="committed its update of round 0")
    world.fs.tasks.commit_update(world.devices[1].wallet, world.task_id, 0,
                                 b"\x01" * 32, 1)
    scores = dict(zip(world.fs.tasks.assignment(world.task_id, 0, verifier.address),
                      verifier.score_peers(world.task_id, 0)))
    assert scores[victim.address] > 5_000
