"""A device joins, trains once per round, commits its update with the ε it spent and
seals the very same update to its verifiers; it scores a bad update 0 and says why,
refuses a task under another Paillier key before sending anything, and stops
contributing at its ε budget."""

from __future__ import annotations

import logging
import struct

import numpy as np
import pytest

from offchain.chain.accounts import recover_signer
from offchain.crypto import EncryptedVector, decrypt_sum, seal, unseal
from offchain.errors import ConfigError, KeyMismatchError, TransactionReverted
from offchain.learning.model import decode_vector, encode_vector, num_parameters
from offchain.privacy import task_epsilon
from offchain.protocol.commitments import letter_digest
from offchain.protocol.plan import TaskPlan
from offchain.protocol.terms import ETHER, NO_HASH, epsilon_to_chain
from offchain.protocol.types import MemberStatus
from offchain.roles import DeviceRole, Step
from offchain.storage.mailbox import Letter
from tests.offchain.roles.test_roles import (
    SPEC,
    World,
    device_split,
    make_world,
    paillier_keys,
)

SIZE = num_parameters(SPEC)


@pytest.fixture
def world(fs, actors, tmp_path) -> World:
    return make_world(fs, actors, tmp_path)


def _letter(world: World, sender: int, recipient: int, blob: bytes) -> Letter:
    """A round-0 letter from device `sender` to device `recipient`, duly signed."""
    wallet, to = world.devices[sender].wallet, world.devices[recipient].address
    digest = letter_digest(world.chain.chain_id, world.task_id, 0, wallet.address, to,
                           blob)
    return Letter(wallet.address, to, blob, wallet.sign_digest(digest))


def _nan_vector(world: World, verifier: str) -> bytes:
    # A well-formed vector whose last value is NaN (encode_vector itself refuses NaN).
    poisoned = bytearray(encode_vector(np.zeros(SIZE, dtype=np.float32)))
    poisoned[-4:] = struct.pack("<f", float("nan"))
    sealed = seal(world.fs.devices.public_key(verifier), bytes(poisoned))
    return world.exchange.put(sealed)


def _short_vector(world: World, verifier: str) -> bytes:
    plain = encode_vector(np.zeros(SIZE - 1, dtype=np.float32))
    return world.exchange.put(seal(world.fs.devices.public_key(verifier), plain))


def _not_sealed_to_it(world: World, verifier: str) -> bytes:
    other = world.fs.devices.public_key(world.devices[0].address)
    plain = encode_vector(np.zeros(SIZE, dtype=np.float32))
    return world.exchange.put(seal(other, plain))


def _missing(world: World, verifier: str) -> bytes:
    return b"\x77" * 32


@pytest.mark.parametrize(("bad_blob", "why"), [
    (_nan_vector, "1 non-finite values"),
    (_short_vector, f"wrong size: header says {SIZE - 1} values, expected {SIZE}"),
    (_not_sealed_to_it, "cannot unseal"),
    (_missing, f"no blob 0x{'77' * 32}"),
], ids=["nan", "wrong-size", "sealed-to-another", "missing-blob"])
def test_a_nan_or_malformed_update_from_a_peer_scores_zero_and_is_logged(
        world, caplog, bad_blob, why):
    honest, liar, verifier = world.devices
    world.open_first_round()
    world.commit_updates((0,))
    world.exchange.post(world.task_id, 0,
                        _letter(world, 1, 2, bad_blob(world, verifier.address)))
    world.fs.tasks.commit_update(liar.wallet, world.task_id, 0, b"\x01" * 32, 1)

    with caplog.at_level(logging.WARNING):
        scores = verifier.score_peers(world.task_id, 0)

    by_peer = dict(zip(world.fs.tasks.assignment(world.task_id, 0, verifier.address),
                       scores))
    assert set(by_peer) == {liar.address, honest.address}
    assert by_peer[liar.address] == 0
    assert by_peer[honest.address] > 5_000
    assert f"update of {liar.address} rejected" in caplog.text
    assert why in caplog.text
    assert honest.address not in caplog.text


def test_a_peer_that_sent_no_letter_scores_zero_and_is_logged(world, caplog):
    honest, silent, verifier = world.devices
    world.open_first_round()
    world.commit_updates((0,))
    world.fs.tasks.commit_update(silent.wallet, world.task_id, 0, b"\x01" * 32, 1)
    with caplog.at_level(logging.WARNING):
        scores = verifier.score_peers(world.task_id, 0)
    by_peer = dict(zip(world.fs.tasks.assignment(world.task_id, 0, verifier.address),
                       scores))
    assert by_peer[silent.address] == 0 and by_peer[honest.address] > 5_000
    assert f"{silent.address} sent no update to verify" in caplog.text


def test_a_device_commits_the_update_it_seals_to_its_verifiers_and_then_waits(world):
    device = world.devices[0]
    world.open_first_round()
    nonce = world.nonce(device)

    assert device.step() == Step(acted="committed its update of round 0")

    assert world.nonce(device) == nonce + 1
    saved = device.state.get("round:0")
    (event,) = world.logs("UpdateCommitted", round=0, device=device.address)
    assert event["args"]["updateHash"] == bytes.fromhex(saved["update_hash"])
    assert event["args"]["epsilon"] == epsilon_to_chain(device.epsilon) > 0
    assert world.fs.tasks.epsilon_of(world.task_id, device.address) == \
        saved["epsilon_micro"]
    # Every verifier got a letter signed by the device carrying the same update, and
    # the ciphertext under the task's key decrypts to it (within quantisation).
    verifiers = world.fs.tasks.verifiers(world.task_id, 0, device.address)
    assert sorted(verifiers) == sorted(d.address for d in world.devices[1:])
    plains = []
    for verifier in world.devices[1:]:
        inbox = world.exchange.inbox(world.task_id, 0, verifier.address)
        (letter,) = inbox[device.address]
        digest = letter_digest(world.chain.chain_id, world.task_id, 0, device.address,
                               verifier.address, letter.blob)
        assert recover_signer(digest, letter.signature) == device.address
        plains.append(decode_vector(
            unseal(verifier.wallet.unseal_key(), world.exchange.get(letter.blob)),
            expected_size=SIZE))
    np.testing.assert_array_equal(plains[0], plains[1])
    encrypted = EncryptedVector.from_bytes(
        world.exchange.get(event["args"]["updateHash"]),
        expected_key_id=world.public_key.key_id)
    decrypted = decrypt_sum(world.requester._private_key, encrypted)
    np.testing.assert_allclose(decrypted, plains[0], atol=1e-4)

    # Stepped again in the same phase it waits for the commit deadline, sending nothing.
    assert device.step() == Step(until=world.info().commit_deadline)
    assert world.nonce(device) == nonce + 1
    assert len(world.logs("UpdateCommitted", device=device.address)) == 1


def test_a_device_refuses_a_task_under_another_paillier_key(world):
    other_key, _ = paillier_keys(1)
    device = world.device(0, paillier_key=other_key)
    task_key = world.public_key.key_id
    nonce = world.nonce(device)
    with pytest.raises(KeyMismatchError) as refused:
        device.step()
    assert str(refused.value) == (
        f"task {world.task_id} names Paillier key 0x{task_key.hex()[:16]}…, "
        f"the device holds 0x{other_key.key_id.hex()[:16]}…")
    assert world.nonce(device) == nonce
    assert world.fs.tasks.member_status(world.task_id, device.address) is \
        MemberStatus.NONE


def test_a_device_that_is_not_registered_cannot_join(world, actors):
    outsider = DeviceRole(world.fs, actors.stranger, world.task_id, world.state_dir,
                          exchange=world.exchange, data=device_split().devices[0],
                          spec=SPEC, dp=world.dp, paillier_key=world.public_key, seed=9)
    nonce = world.nonce(outsider)
    with pytest.raises(TransactionReverted) as refused:
        outsider.step()
    assert refused.value.error_name == "TaskRegistryDeviceNotActive"
    assert refused.value.error_args == {"device": actors.stranger.address.lower()}
    assert world.nonce(outsider) == nonce
    assert world.fs.tasks.member_status(world.task_id, outsider.address) is \
        MemberStatus.NONE


def test_a_device_has_no_epsilon_before_it_has_read_its_task(world):
    device = world.device(0)
    with pytest.raises(ConfigError, match=f"d0 has not read task {world.task_id} yet"):
        _ = device.epsilon
    assert device.step() == Step(acted="joined")
    assert device.epsilon == 0


def test_a_device_stops_contributing_when_its_budget_is_spent(fs, actors, tmp_path,
                                                              caplog):
    # One round of the default DP-SGD on this split spends ε ≈ 1.48: a budget of 1
    # allows none.
    world = make_world(fs, actors, tmp_path, TaskPlan(
        rounds=1, reward_per_round=ETHER, min_participants=3, max_participants=3,
        epsilon_budget=1.0))
    samples = len(device_split().devices[0].train)
    assert task_epsilon(world.dp, samples=samples, rounds=1) > 1.0
    device = world.devices[0]
    world.open_first_round()
    nonce = world.nonce(device)

    with caplog.at_level(logging.WARNING):
        assert device.step() == Step(acted="stopped at its ε budget")
    assert "d0 stops contributing" in caplog.text
    assert "over the budget of 1" in caplog.text
    assert world.submission(0).update_hash == NO_HASH
    assert fs.tasks.epsilon_of(world.task_id, device.address) == 0
    assert device.epsilon == 0 and device.accountant.steps == 0
    assert world.nonce(device) == nonce
    assert world.exchange.inbox(world.task_id, 0, world.devices[1].address) == {}

    # It does not try again: it waits for the phase to end, sending nothing.
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert device.step() == Step(until=world.info().commit_deadline)
    assert "stops contributing" not in caplog.text
    assert world.nonce(device) == nonce
