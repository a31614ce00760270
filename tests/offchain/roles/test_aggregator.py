"""The aggregator opens a round once enough devices are there, finalises it as soon as
the reveals are in, and sums exactly the accepted updates; it names a tampered blob,
refuses an update under another key and a task under another key, and posts
nothing when it refuses."""

from __future__ import annotations

import pytest

from offchain.crypto import EncryptedVector
from offchain.errors import BlobIntegrityError, KeyMismatchError
from offchain.protocol.types import RoundStage
from offchain.roles import AggregatorRole, Step
from tests.offchain.roles.test_roles import World, make_world, paillier_keys


@pytest.fixture
def world(fs, actors, tmp_path) -> World:
    return make_world(fs, actors, tmp_path)


def test_the_aggregator_opens_a_round_only_once_enough_devices_joined(world):
    aggregator = world.aggregator
    for device in world.devices[:2]:
        assert device.step() == Step(acted="joined")
    assert aggregator.step() == Step()  # two of three: it waits for another device
    assert world.logs("RoundOpened") == []
    assert world.devices[2].step() == Step(acted="joined")
    nonce = world.nonce(aggregator)
    assert aggregator.step() == Step(acted="opened round 0")
    (opened,) = world.logs("RoundOpened")
    assert opened["args"]["globalModelHash"] == \
        world.fs.tasks.params(world.task_id).model_hash
    assert sorted(opened["args"]["participants"]) == \
        sorted(d.address for d in world.devices)
    # Stepped again it waits for the commit deadline and sends nothing.
    assert aggregator.step() == Step(until=world.info().commit_deadline)
    assert world.nonce(aggregator) == nonce + 1


def test_the_aggregator_sums_exactly_the_accepted_updates(world):
    world.open_first_round()
    world.commit_updates()
    world.run_to_finalize()
    world.finalize()
    accepted = world.aggregator.accepted(0)
    assert len(accepted) == 2
    (finalized,) = world.logs("RoundFinalized")
    assert set(accepted) == set(finalized["args"]["accepted"])
    nonce = world.nonce(world.aggregator)

    assert world.aggregator.step() == Step(acted="aggregated round 0")

    info = world.info()
    assert info.stage is RoundStage.AGGREGATED and info.accepted == 2
    (event,) = world.logs("AggregateSubmitted", round=0)
    assert event["args"]["aggregateHash"] == info.aggregate_hash
    total = EncryptedVector.from_bytes(world.exchange.get(info.aggregate_hash),
                                       expected_key_id=world.public_key.key_id)
    assert total.n_summands == 2
    # The sum is of the accepted ciphertexts only: ciphertexts multiply.
    n_square = world.public_key.n ** 2
    parts = [EncryptedVector.from_bytes(world.exchange.get(
        world.fs.tasks.submission(world.task_id, 0, a).update_hash)) for a in accepted]
    assert list(total.ciphertexts) == [
        a * b % n_square for a, b in zip(parts[0].ciphertexts, parts[1].ciphertexts)]
    # Then it waits for the requester, sending nothing.
    assert world.aggregator.step() == Step()
    assert world.nonce(world.aggregator) == nonce + 1


def test_the_aggregator_rejects_a_tampered_blob_by_name(world):
    world.open_first_round()
    world.commit_updates()
    world.run_to_finalize()
    world.finalize()
    victim = world.fs.tasks.submission(
        world.task_id, 0, world.aggregator.accepted(0)[-1]).update_hash
    world.exchange.blobs.path_of(victim).write_bytes(b"FSPV tampered")
    nonce = world.nonce(world.aggregator)

    with pytest.raises(BlobIntegrityError, match=f"blob 0x{victim.hex()} is corrupt"):
        world.aggregator.step()

    assert world.info().stage is RoundStage.FINALIZED
    assert world.logs("AggregateSubmitted") == []
    assert world.nonce(world.aggregator) == nonce


def test_the_aggregator_rejects_an_update_under_another_key(world):
    other_key, _ = paillier_keys(1)
    world.open_first_round()
    # Two devices checked the task's key when they joined, then encrypt under another
    # one (their letters stay honest, so their verifiers accept them): whichever of
    # them is accepted, the aggregator must refuse its ciphertext.
    for rogue in world.devices[:2]:
        rogue.paillier_key = other_key
    world.commit_updates()
    world.run_to_finalize()
    world.finalize()
    rogues = {d.address for d in world.devices[:2]}
    assert rogues & set(world.aggregator.accepted(0))
    nonce = world.nonce(world.aggregator)

    with pytest.raises(KeyMismatchError) as refused:
        world.aggregator.step()

    assert str(refused.value) == (
        f"blob is for key {other_key.key_id.hex()[:16]}..., expected key "
        f"{world.public_key.key_id.hex()[:16]}...")
    assert world.info().stage is RoundStage.FINALIZED
    assert world.logs("AggregateSubmitted") == []
    assert world.nonce(world.aggregator) == nonce


def test_an_aggregator_refuses_a_task_under_another_paillier_key(world, actors):
    other_key, _ = paillier_keys(1)
    aggregator = AggregatorRole(world.fs, actors.aggregator, world.task_id,
                                world.state_dir, exchange=world.exchange,
                                public_key=other_key)
    for device in world.devices:
        device.step()
    nonce = world.nonce(aggregator)
    with pytest.raises(KeyMismatchError,
                       match=f"task {world.task_id} names Paillier key "
                             f"0x{world.public_key.key_id.hex()[:16]}…, the aggregator "
                             f"holds 0x{other_key.key_id.hex()[:16]}…"):
        aggregator.step()
    assert world.logs("RoundOpened") == []
    assert world.nonce(aggregator) == nonce
