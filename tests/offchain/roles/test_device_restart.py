"""A device restarted with the same wallet and state directory keeps the ε it spent:
it reports the same ε, does not join twice, and goes on refusing rounds over budget."""

from __future__ import annotations

import json
import logging
import re

import pytest

from offchain.chain.types import EPSILON_UNIT, MemberStatus
from offchain.crypto import PackingSpec, generate_keypair
from offchain.errors import ChainError, ConfigError, PrivacyError
from offchain.learning.data import load_mnist, split_iid
from offchain.learning.model import ModelSpec, initial_vector
from offchain.privacy import (
    AccountantStore,
    DPConfig,
    ledger,
    steps_per_epoch,
    task_epsilon,
)
from offchain.roles import Aggregator, Device, Owner, Requester, TaskPlan
from offchain.storage import BlobStore
from offchain.storage.mailbox import Mailbox
from tests.conftest import ETHER

SPEC = ModelSpec(name="logreg")
KEY_BITS = 512  # small test key: the maths is the same, the tests are faster
NO_HASH = b"\0" * 32


@pytest.fixture(scope="module")
def keys():
    return generate_keypair(bits=KEY_BITS, insecure_ok=True)


@pytest.fixture(scope="module")
def split():
    return split_iid(load_mnist(), 3, seed=0)


@pytest.fixture
def world(fs, actors, keys, split, tmp_path):
    """A published task of three devices (with a state directory) whose ε budget
    allows exactly one round of the default DP-SGD, and round 0 open."""
    public_key, private_key = keys
    store, mailbox = BlobStore(tmp_path / "blobs"), Mailbox(tmp_path / "mail")
    dp = DPConfig()
    samples = len(split.devices[0].train)
    one, two = (task_epsilon(dp, samples=samples, rounds=r) for r in (1, 2))
    budget = round((one + two) / 2, 6)
    packing = PackingSpec(bound=dp.update_bound, max_summands=3, key_bits=KEY_BITS)
    state_dir = tmp_path / "privacy"

    def make_device(i: int, state: object = state_dir) -> Device:
        return Device(fs, actors.devices[i], store, mailbox, data=split.devices[i],
                      spec=SPEC, dp=dp, packing=packing, paillier_key=public_key,
                      seed=i, state_dir=state)

    Owner(fs, actors.owner).register(actors.devices[:3])
    requester = Requester(fs, actors.requester, store, spec=SPEC,
                          public_key=public_key, private_key=private_key)
    aggregator = Aggregator(fs, actors.aggregator, store, public_key=public_key)
    plan = TaskPlan(rounds=2, reward_per_round=ETHER, min_participants=3,
                    max_participants=3, epsilon_budget=budget)
    task_id = requester.publish(plan, initial_vector(SPEC, seed=0), aggregator.address)
    devices = [make_device(i) for i in range(3)]
    for device in devices:
        device.join(task_id)
    round_ = aggregator.open_round(task_id)
    return {"fs": fs, "devices": devices, "make_device": make_device, "dp": dp,
            "task_id": task_id, "round": round_, "budget": budget, "one_round": one,
            "state_dir": state_dir}


def _nonce(fs, address: str) -> int:
    return fs.chain.w3.eth.get_transaction_count(address)


def test_a_restarted_device_reports_the_epsilon_it_had_spent(world):
    fs, task_id, round_ = world["fs"], world["task_id"], world["round"]
    device = world["devices"][0]
    result = device.train_and_commit(task_id, round_)
    assert result is not None
    assert result.epsilon == pytest.approx(world["one_round"])
    state = AccountantStore(world["state_dir"]).path_for(task_id, device.address)
    assert json.loads(state.read_text())["epsilon"] == pytest.approx(result.epsilon)

    nonce = _nonce(fs, device.address)
    restarted = world["make_device"](0)
    assert restarted.epsilon == 0  # nothing loaded before it joins or resumes
    restarted.join(task_id)  # already a member: picks the state up, sends nothing
    assert _nonce(fs, device.address) == nonce
    assert fs.member_status(task_id, device.address) is MemberStatus.ACTIVE
    assert restarted.epsilon == device.epsilon == result.epsilon
    assert restarted.accountant.history == device.accountant.history
    assert restarted.accountant.budget == world["budget"]
    assert fs.epsilon_of(task_id, device.address) * 1.0 / EPSILON_UNIT == pytest.approx(
        restarted.epsilon, abs=1e-6)


def test_a_restarted_device_refuses_a_round_over_budget(world, caplog):
    task_id, round_ = world["task_id"], world["round"]
    device = world["devices"][0]
    assert device.train_and_commit(task_id, round_) is not None
    state = AccountantStore(world["state_dir"]).path_for(task_id, device.address)
    saved = state.read_bytes()

    restarted = world["make_device"](0)
    restarted.resume(task_id)
    with caplog.at_level(logging.WARNING):
        assert restarted.train_and_commit(task_id, round_) is None
    assert "stops contributing" in caplog.text
    assert f"from {restarted.epsilon:.4f}" in caplog.text
    assert restarted.accountant.steps == device.accountant.steps
    assert state.read_bytes() == saved  # refusing spends nothing and writes nothing
    # After yet another restart it still refuses: a spent budget stays spent.
    again = world["make_device"](0)
    again.resume(task_id)
    assert again.train_and_commit(task_id, round_) is None
    # Without the state a device would have trained again from ε = 0: the refusal
    # above comes from the stored state alone.
    amnesiac = world["make_device"](0, state=None)
    amnesiac.resume(task_id)
    assert amnesiac.epsilon == 0
    dp = world["dp"]
    per_epoch = steps_per_epoch(len(amnesiac.data.train), dp.batch_size)
    assert amnesiac.accountant.check_budget(
        noise_multiplier=dp.noise_multiplier, sample_rate=1 / per_epoch,
        steps=dp.local_epochs * per_epoch) == pytest.approx(world["one_round"])


def test_spending_is_saved_before_the_commit_is_sent(world, monkeypatch):
    fs, task_id, round_ = world["fs"], world["task_id"], world["round"]
    device = world["devices"][1]

    def failing_commit(*args, **kwargs):
        raise ChainError("node unreachable")

    monkeypatch.setattr(fs, "commit_update", failing_commit)
    with pytest.raises(ChainError, match="node unreachable"):
        device.train_and_commit(task_id, round_)
    assert fs.submission(task_id, round_, device.address).update_hash == NO_HASH
    restarted = world["make_device"](1)
    restarted.resume(task_id)
    assert restarted.accountant.steps == device.accountant.steps > 0
    assert restarted.epsilon == device.epsilon == pytest.approx(world["one_round"])


def test_a_failed_save_stops_the_round_before_the_commit(world, monkeypatch):
    fs, task_id, round_ = world["fs"], world["task_id"], world["round"]
    device = world["devices"][2]

    def disk_full(path, text):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ledger, "write_atomic", disk_full)
    with pytest.raises(PrivacyError, match="cannot save the privacy accountant"):
        device.train_and_commit(task_id, round_)
    assert fs.submission(task_id, round_, device.address).update_hash == NO_HASH


def test_a_corrupt_state_file_is_refused_by_name_before_joining(world, fs):
    task_id = world["task_id"]
    address = world["devices"][0].address
    path = AccountantStore(world["state_dir"]).path_for(task_id, address)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{ torn")
    restarted = world["make_device"](0)
    with pytest.raises(PrivacyError, match=re.escape(str(path))):
        restarted.join(task_id)
    with pytest.raises(PrivacyError, match=re.escape(str(path))):
        restarted.resume(task_id)


def test_a_state_file_with_another_delta_is_refused(world, fs, split, keys):
    task_id, device = world["task_id"], world["devices"][0]
    device.train_and_commit(task_id, world["round"])
    other = Device(fs, device.wallet, BlobStore(world["state_dir"].parent / "blobs"),
                   device.mailbox, data=split.devices[0], spec=SPEC,
                   dp=DPConfig(delta=1e-6), packing=device.packing,
                   paillier_key=keys[0], seed=0, state_dir=world["state_dir"])
    with pytest.raises(PrivacyError, match="δ=1e-05.*δ=1e-06"):
        other.resume(task_id)


def test_resume_refuses_a_task_the_device_is_not_a_member_of(world, fs, actors, keys,
                                                            split):
    outsider = Device(fs, actors.devices[3], BlobStore(world["state_dir"].parent / "b"),
                      Mailbox(world["state_dir"].parent / "m"), data=split.devices[0],
                      spec=SPEC, dp=DPConfig(), packing=world["devices"][0].packing,
                      paillier_key=keys[0], seed=3, state_dir=world["state_dir"])
    with pytest.raises(ConfigError, match="not a member of task"):
        outsider.resume(world["task_id"])


def test_training_needs_the_task_joined_or_resumed(world):
    restarted = world["make_device"](0)
    with pytest.raises(ConfigError, match="join or resume task"):
        restarted.train_and_commit(world["task_id"], world["round"])
