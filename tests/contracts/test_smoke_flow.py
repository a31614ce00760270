"""One task from publication to completion through the typed client, step by step."""

from offchain.chain.contracts import score_commitment
from offchain.chain.types import RoundStage, TaskStatus
from tests.conftest import ETHER, task_params


def test_one_round_settles_rewards_and_records_the_model(fs, actors):
    devices = actors.devices[:3]
    for device in devices:
        fs.register_device(actors.owner, device)
    task_id, _ = fs.publish_task(actors.requester, task_params(rounds=1),
                                 actors.aggregator.address)
    for device in devices:
        fs.join(device, task_id)
    fs.open_round(actors.aggregator, task_id, b"\x11" * 32)
    for i, device in enumerate(devices):
        fs.commit_update(device, task_id, 0, bytes([i + 1]) * 32, 1_000_000 * (i + 1))
    # Full score table (row: scorer, column: scored); each device scores the other two.
    table = [[0, 9000, 8000], [9000, 0, 7000], [9100, 8900, 0]]
    order = [d.address for d in devices]
    salts = [bytes([0xA0 + i]) * 32 for i in range(3)]
    revealed = []
    for i, device in enumerate(devices):
        targets = fs.assignment(task_id, 0, device.address)
        assert sorted(targets) == sorted(a for a in order if a != device.address)
        scores = [table[i][order.index(t)] for t in targets]
        fs.commit_scores(device, task_id, 0,
                         score_commitment(task_id, 0, scores, salts[i], device.address))
        revealed.append(scores)
    for i, device in enumerate(devices):
        fs.reveal_scores(device, task_id, 0, revealed[i], salts[i])
    outcome = fs.finalize_round(actors.stranger, task_id, 0)
    assert outcome.quality == {devices[0].address: 9050, devices[1].address: 8950,
                               devices[2].address: 7500}
    assert outcome.leader == devices[0].address
    assert outcome.accepted == (devices[0].address, devices[1].address)
    assert sum(outcome.rewards.values()) == ETHER
    assert [fs.epsilon_of(task_id, d.address) for d in devices] == [
        1_000_000, 2_000_000, 3_000_000]
    fs.submit_aggregate(actors.aggregator, task_id, 0, b"\x33" * 32)
    fs.publish_model(actors.requester, task_id, 0, b"\x44" * 32, "ipfs://model-1",
                     b"\x55" * 32)
    state = fs.task_state(task_id)
    assert state.status is TaskStatus.COMPLETED
    assert state.current_model == b"\x44" * 32
    assert fs.round_info(task_id, 0).stage is RoundStage.CLOSED
    version = fs.model_version(state.model_version)
    assert (version.model_hash, version.uri, version.metrics_hash, version.round) == (
        b"\x44" * 32, "ipfs://model-1", b"\x55" * 32, 1)
    assert fs.model_version(version.parent).model_hash == b"\x11" * 32
