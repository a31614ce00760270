"""One task from publication to completion through the typed client, step by step."""

from offchain.protocol.commitments import score_commitment
from offchain.protocol.terms import ETHER
from offchain.protocol.types import RoundStage, TaskStatus
from tests.conftest import task_params


def test_one_round_settles_rewards_and_records_the_model(fs, actors):
    devices = actors.devices[:3]
    for device in devices:
        fs.devices.register_device(actors.owner, device)
    task_id, _ = fs.tasks.publish(actors.requester, task_params(rounds=1),
                                  actors.aggregator.address)
    for device in devices:
        fs.tasks.join(device, task_id)
    fs.tasks.open_round(actors.aggregator, task_id, b"\x11" * 32)
    for i, device in enumerate(devices):
        fs.tasks.commit_update(device, task_id, 0, bytes([i + 1]) * 32,
                               1_000_000 * (i + 1))
    # Full score table (row: scorer, column: scored); each device scores the other two.
    table = [[0, 9000, 8000], [9000, 0, 7000], [9100, 8900, 0]]
    order = [d.address for d in devices]
    salts = [bytes([0xA0 + i]) * 32 for i in range(3)]
    revealed = []
    for i, device in enumerate(devices):
        targets = fs.tasks.assignment(task_id, 0, device.address)
        assert sorted(targets) == sorted(a for a in order if a != device.address)
        scores = [table[i][order.index(t)] for t in targets]
        commitment = score_commitment(task_id, 0, scores, salts[i], device.address)
        fs.tasks.commit_scores(device, task_id, 0, commitment)
        revealed.append(scores)
    for i, device in enumerate(devices):
        fs.tasks.reveal_scores(device, task_id, 0, revealed[i], salts[i])
    outcome = fs.tasks.finalize_round(actors.stranger, task_id, 0)
    assert outcome.quality == {devices[0].address: 9050, devices[1].address: 8950,
                               devices[2].address: 7500}
    assert outcome.leader == devices[0].address
    assert outcome.accepted == (devices[0].address, devices[1].address)
    assert sum(outcome.rewards.values()) == ETHER
    assert [fs.tasks.epsilon_of(task_id, d.address) for d in devices] == [
        1_000_000, 2_000_000, 3_000_000]
    fs.tasks.submit_aggregate(actors.aggregator, task_id, 0, b"\x33" * 32)
    fs.tasks.publish_model(actors.requester, task_id, 0, b"\x44" * 32,
                           "ipfs://model-1", b"\x55" * 32)
    state = fs.tasks.state(task_id)
    assert state.status is TaskStatus.COMPLETED
    assert state.current_model == b"\x44" * 32
    assert fs.tasks.round_info(task_id, 0).stage is RoundStage.CLOSED
    version = fs.models.version(state.model_version)
    assert (version.model_hash, version.uri, version.metrics_hash, version.round) == (
        b"\x44" * 32, "ipfs://model-1", b"\x55" * 32, 1)
    assert fs.models.version(version.parent).model_hash == b"\x11" * 32
