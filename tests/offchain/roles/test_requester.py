"""The requester decrypts only the aggregate and publishes the mean of the accepted
updates as the next model; it refuses an aggregate that does not hold the accepted
count or is under another key, publishing nothing; when the task ends it takes its
refund back once."""

from __future__ import annotations

import numpy as np
import pytest

from offchain.crypto import (
    EncryptedVector,
    PackingSpec,
    aggregate,
    encrypt_vector,
    unseal,
)
from offchain.errors import AggregationError, KeyMismatchError
from offchain.learning.model import decode_vector, initial_vector, num_parameters
from offchain.protocol.types import RoundStage, TaskStatus
from offchain.roles import Step
from tests.offchain.roles.test_roles import (
    PLAN,
    SPEC,
    World,
    make_world,
    paillier_keys,
)


@pytest.fixture
def world(fs, actors, tmp_path) -> World:
    return make_world(fs, actors, tmp_path)


def _finalized(world: World) -> list[str]:
    """Runs round 0 up to its finalisation; returns the accepted devices."""
    world.open_first_round()
    world.commit_updates()
    world.run_to_finalize()
    world.finalize()
    return world.aggregator.accepted(0)


def _delta(world: World, device: str) -> np.ndarray:
    """`device`'s round-0 update as a verifier unseals it from its letter."""
    verifier = next(d for d in world.devices if d.address != device)
    (letter,) = world.exchange.inbox(world.task_id, 0, verifier.address)[device]
    return decode_vector(unseal(verifier.wallet.unseal_key(),
                                world.exchange.get(letter.blob)),
                         expected_size=num_parameters(SPEC))


def test_the_requester_publishes_the_mean_of_the_accepted_updates(world):
    accepted = _finalized(world)
    assert world.aggregator.step() == Step(acted="aggregated round 0")
    nonce = world.nonce(world.requester)

    assert world.requester.step() == Step(acted="published the model of round 0")

    info = world.info()
    assert info.stage is RoundStage.CLOSED
    (published,) = world.logs("ModelPublished", round=0)
    model = decode_vector(world.exchange.get(published["args"]["modelHash"]),
                          expected_size=num_parameters(SPEC))
    mean = np.mean([_delta(world, a) for a in accepted], axis=0)
    np.testing.assert_allclose(model, initial_vector(SPEC, seed=0) + mean, atol=1e-4)
    assert world.fs.tasks.state(world.task_id).current_model == \
        published["args"]["modelHash"]
    assert world.nonce(world.requester) == nonce + 1


def _short_aggregate(world: World, accepted: list[str]) -> bytes:
    one = world.fs.tasks.submission(world.task_id, 0, accepted[0]).update_hash
    part = EncryptedVector.from_bytes(world.exchange.get(one))
    return aggregate(world.public_key, [part]).to_bytes()


def _foreign_aggregate(world: World, accepted: list[str]) -> bytes:
    other_key, _ = paillier_keys(1)
    packing = PackingSpec(bound=world.dp.update_bound, max_summands=3,
                          key_bits=other_key.bits)
    parts = [encrypt_vector(other_key, np.zeros(num_parameters(SPEC)), packing)
             for _ in accepted]
    return aggregate(other_key, parts).to_bytes()


@pytest.mark.parametrize(("forge", "error", "why"), [
    (_short_aggregate, AggregationError, r"sums 1 updates, but round 0 accepted 2"),
    (_foreign_aggregate, KeyMismatchError, r"blob is for key .*, expected key "),
], ids=["short-count", "another-key"])
def test_the_requester_refuses_a_bad_aggregate_and_publishes_nothing(world, actors,
                                                                     forge, error, why):
    accepted = _finalized(world)
    digest = world.exchange.put(forge(world, accepted))
    world.fs.tasks.submit_aggregate(actors.aggregator, world.task_id, 0, digest)
    nonce = world.nonce(world.requester)

    with pytest.raises(error, match=why):
        world.requester.step()

    assert world.info().stage is RoundStage.AGGREGATED
    assert world.logs("ModelPublished") == []
    assert world.nonce(world.requester) == nonce


def test_the_requester_takes_its_refund_back_once_after_a_cancel(world, actors):
    world.fs.tasks.cancel(actors.requester, world.task_id)
    assert world.fs.tasks.state(world.task_id).status is TaskStatus.CANCELLED
    balance = world.fs.chain.balance(world.requester.address)

    assert world.requester.step() == Step(acted="withdrew its refund")
    nonce = world.nonce(world.requester)
    assert world.requester.step() == Step(done=True)

    (refund,) = world.fs.tasks.logs("RefundWithdrawn",
                                    from_block=world.fs.deployment.block,
                                    requester=world.requester.address)
    assert refund["args"]["amount"] == PLAN.escrow
    assert world.requester.state.get("refunded") == PLAN.escrow
    assert world.fs.tasks.refund_of(world.requester.address) == 0
    gained = world.fs.chain.balance(world.requester.address) - balance
    assert PLAN.escrow - 10**16 < gained < PLAN.escrow
    assert world.nonce(world.requester) == nonce
