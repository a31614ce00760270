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
        fs.commit_update(device, task_id, 0, bytes([i + 1]) * 32)
    rows = [[0, 9000, 8000], [9000, 0, 7000], [9100, 8900, 0]]
    for device, row in zip(devices, rows):
        fs.submit_scores(device, task_id, 0, row)
    outcome = fs.finalize_round(actors.stranger, task_id, 0)
    assert outcome.quality == {devices[0].address: 9050, devices[1].address: 8950,
                               devices[2].address: 7500}
    assert outcome.leader == devices[0].address
    assert outcome.accepted == (devices[0].address, devices[1].address)
    assert sum(outcome.rewards.values()) == ETHER
    fs.submit_aggregate(actors.aggregator, task_id, 0, b"\x33" * 32)
    fs.publish_model(actors.requester, task_id, 0, b"\x44" * 32)
    state = fs.task_state(task_id)
    assert state.status is TaskStatus.COMPLETED
    assert state.current_model == b"\x44" * 32
    assert fs.round_info(task_id, 0).stage is RoundStage.CLOSED
