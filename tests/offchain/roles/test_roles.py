"""Roles reject bad input with errors that name the problem, and lose nothing."""

from __future__ import annotations

import logging
import struct

import numpy as np
import pytest

from offchain.crypto import PackingSpec, encrypt_vector, generate_keypair, seal
from offchain.errors import BlobIntegrityError, ConfigError, KeyMismatchError
from offchain.learning.data import load_mnist, split_iid
from offchain.learning.model import (
    ModelSpec,
    encode_vector,
    initial_vector,
    num_parameters,
)
from offchain.privacy import DPConfig
from offchain.roles import Aggregator, Device, Owner, Requester, TaskPlan
from offchain.storage import BlobStore
from offchain.storage.mailbox import Mailbox
from tests.conftest import ETHER

SPEC = ModelSpec(name="logreg")
KEY_BITS = 512  # small test key: the maths is the same, the tests are faster


@pytest.fixture(scope="module")
def keys():
    return generate_keypair(bits=KEY_BITS, insecure_ok=True)


@pytest.fixture
def world(fs, actors, keys, tmp_path):
    public_key, private_key = keys
    store, mailbox = BlobStore(tmp_path / "blobs"), Mailbox(tmp_path / "mail")
    split = split_iid(load_mnist(), 3, seed=0)
    dp = DPConfig()
    packing = PackingSpec(bound=dp.update_bound, max_summands=3, key_bits=KEY_BITS)
    devices = [Device(fs, w, store, mailbox, data=split.devices[i], spec=SPEC, dp=dp,
                      packing=packing, paillier_key=public_key, seed=i)
               for i, w in enumerate(actors.devices[:3])]
    Owner(fs, actors.owner).register(actors.devices[:3])
    requester = Requester(fs, actors.requester, store, spec=SPEC,
                          public_key=public_key, private_key=private_key)
    aggregator = Aggregator(fs, actors.aggregator, store, public_key=public_key)
    plan = TaskPlan(rounds=1, reward_per_round=ETHER, min_participants=3,
                    max_participants=3)
    task_id = requester.publish(plan, initial_vector(SPEC, seed=0), aggregator.address)
    for device in devices:
        device.join(task_id)
    round_ = aggregator.open_round(task_id)
    return dict(fs=fs, store=store, mailbox=mailbox, devices=devices, packing=packing,
                requester=requester, aggregator=aggregator, task_id=task_id,
                round=round_, participants=fs.participants(task_id))


def test_a_nan_update_from_a_peer_scores_zero_and_is_logged(world, caplog):
    honest, liar, verifier = world["devices"]
    task_id, round_ = world["task_id"], world["round"]
    honest.train_and_commit(task_id, round_)
    # A well-formed blob whose last value is NaN (encode_vector itself refuses NaN).
    poisoned = bytearray(encode_vector(np.zeros(num_parameters(SPEC), dtype=np.float32)))
    poisoned[-4:] = struct.pack("<f", float("nan"))
    sealed = seal(world["fs"].device_public_key(verifier.address), bytes(poisoned))
    world["mailbox"].post(task_id, round_, liar.address, verifier.address,
                          world["store"].put(sealed))
    world["fs"].commit_update(liar.wallet, task_id, round_, b"\x01" * 32, 1)
    with caplog.at_level(logging.WARNING):
        scores = verifier.score_peers(task_id, round_)
    by_peer = dict(zip(world["fs"].assignment(task_id, round_, verifier.address), scores))
    assert set(by_peer) == {liar.address, honest.address}
    assert by_peer[liar.address] == 0
    assert by_peer[honest.address] > 5_000
    assert f"update of {liar.address} rejected" in caplog.text
    assert "1 non-finite values" in caplog.text


def test_the_aggregator_rejects_a_tampered_blob_by_name(world):
    task_id, round_ = world["task_id"], world["round"]
    committed = [d.train_and_commit(task_id, round_) for d in world["devices"]]
    victim = committed[0].update_hash
    world["store"].path_of(victim).write_bytes(b"FSPV tampered")
    with pytest.raises(BlobIntegrityError, match=f"blob 0x{victim.hex()} is corrupt"):
        world["aggregator"].aggregate(task_id, round_,
                                      tuple(d.address for d in world["devices"]))


def test_the_aggregator_rejects_an_update_under_another_key(world):
    task_id, round_ = world["task_id"], world["round"]
    other_key, _ = generate_keypair(bits=KEY_BITS, insecure_ok=True)
    rogue = world["devices"][0]
    blob = encrypt_vector(other_key, np.zeros(num_parameters(SPEC)), world["packing"])
    world["fs"].commit_update(rogue.wallet, task_id, round_,
                              world["store"].put(blob.to_bytes()), 1)
    with pytest.raises(KeyMismatchError):
        world["aggregator"].aggregate(task_id, round_, (rogue.address,))


def test_a_device_refuses_a_task_under_another_paillier_key(world, fs, actors):
    other_key, other_private = generate_keypair(bits=KEY_BITS, insecure_ok=True)
    requester = Requester(fs, actors.requester, world["store"], spec=SPEC,
                          public_key=other_key, private_key=other_private)
    task_id = requester.publish(TaskPlan(rounds=1, reward_per_round=ETHER),
                                initial_vector(SPEC, seed=0), None)
    with pytest.raises(KeyMismatchError, match=f"task {task_id} names Paillier key"):
        world["devices"][0].join(task_id)


def test_a_device_refuses_packing_narrower_than_its_update_bound(fs, actors, keys,
                                                                 tmp_path):
    dp = DPConfig()
    narrow = PackingSpec(bound=dp.update_bound / 2, max_summands=3, key_bits=KEY_BITS)
    split = split_iid(load_mnist(), 3, seed=0)
    with pytest.raises(ConfigError, match="packing only holds"):
        Device(fs, actors.devices[0], BlobStore(tmp_path), Mailbox(tmp_path),
               data=split.devices[0],
               spec=SPEC, dp=dp, packing=narrow, paillier_key=keys[0], seed=0)


def test_a_device_stops_contributing_when_its_budget_is_spent(fs, actors, keys, tmp_path,
                                                              caplog):
    public_key, private_key = keys
    store = BlobStore(tmp_path / "blobs")
    requester = Requester(fs, actors.requester, store, spec=SPEC,
                          public_key=public_key, private_key=private_key)
    aggregator = Aggregator(fs, actors.aggregator, store, public_key=public_key)
    Owner(fs, actors.owner).register(actors.devices[:3])
    dp = DPConfig()
    packing = PackingSpec(bound=dp.update_bound, max_summands=3, key_bits=KEY_BITS)
    split = split_iid(load_mnist(), 3, seed=0)
    devices = [Device(fs, w, store, Mailbox(tmp_path / "mail"), data=split.devices[i],
                      spec=SPEC, dp=dp, packing=packing, paillier_key=public_key, seed=i)
               for i, w in enumerate(actors.devices[:3])]
    # One round of the default DP-SGD on this split spends ε ≈ 1.5: a budget of 1
    # allows none.
    plan = TaskPlan(rounds=1, reward_per_round=ETHER, epsilon_budget=1.0)
    task_id = requester.publish(plan, initial_vector(SPEC, seed=0), aggregator.address)
    for device in devices:
        device.join(task_id)
    round_ = aggregator.open_round(task_id)
    with caplog.at_level(logging.WARNING):
        assert devices[0].train_and_commit(task_id, round_) is None
    assert "stops contributing" in caplog.text
    assert fs.submission(task_id, round_, devices[0].address).update_hash == b"\0" * 32
    assert fs.epsilon_of(task_id, devices[0].address) == 0
    assert devices[0].epsilon == 0
