"""A subset of the contract checks, on a real Anvil node instead of eth-tester."""

from __future__ import annotations

import pytest

from offchain.chain.accounts import new_wallet
from offchain.chain.contracts import deploy
from offchain.chain.node import Chain
from offchain.errors import TransactionReverted
from offchain.protocol.commitments import score_commitment
from offchain.protocol.terms import ETHER
from offchain.protocol.types import RoundStage
from tests.conftest import task_params

pytestmark = pytest.mark.anvil


@pytest.fixture(scope="module")
def world(anvil_url):
    chain = Chain.connect(anvil_url)
    wallets = [new_wallet() for _ in range(7)]
    for wallet in wallets:
        chain.fund(wallet.address, 100 * ETHER)
    deployer, owner, requester, aggregator, *devices = wallets
    fs = deploy(chain, deployer)
    for device in devices:
        fs.devices.register_device(owner, device)
    return chain, fs, requester, aggregator, devices


def _open_task(world, **overrides):
    chain, fs, requester, aggregator, devices = world
    params = task_params(max_participants=3, **overrides)
    task_id, _ = fs.tasks.publish(requester, params, aggregator.address)
    for device in devices:
        fs.tasks.join(device, task_id)
    fs.tasks.open_round(aggregator, task_id, b"\x11" * 32)
    return task_id


def test_a_late_commit_reverts_with_CommitTooLate_on_anvil(world):
    chain, fs, _, _, devices = world
    task_id = _open_task(world)
    deadline = fs.tasks.round_info(task_id, 0).commit_deadline
    chain.advance_time(601)
    with pytest.raises(TransactionReverted) as caught:
        fs.tasks.commit_update(devices[0], task_id, 0, b"\x01" * 32, 1)
    assert caught.value.error_name == "TaskRegistryCommitTooLate"
    args = caught.value.error_args
    assert (args["taskId"], args["round"], args["deadline"]) == (task_id, 0, deadline)
    assert args["nowTs"] > deadline


def test_a_round_settles_and_a_wrong_reveal_is_refused_on_anvil(world):
    chain, fs, requester, aggregator, devices = world
    task_id = _open_task(world)
    held_before = chain.balance(fs.deployment.task_registry)
    for i, device in enumerate(devices):
        fs.tasks.commit_update(device, task_id, 0, bytes([i + 1]) * 32, 1_000_000)
    salts = {d.address: bytes([9 + i]) * 32 for i, d in enumerate(devices)}
    scores = {d.address: [8000 + 100 * i, 7000] for i, d in enumerate(devices)}
    for device in devices:
        fs.tasks.commit_scores(device, task_id, 0, score_commitment(
            task_id, 0, scores[device.address], salts[device.address], device.address))
    with pytest.raises(TransactionReverted) as caught:
        fs.tasks.reveal_scores(devices[0], task_id, 0, scores[devices[0].address],
                               b"\x00" * 32)
    assert caught.value.error_name == "TaskRegistryRevealMismatch"
    for device in devices:
        fs.tasks.reveal_scores(device, task_id, 0, scores[device.address],
                               salts[device.address])
    outcome = fs.tasks.finalize_round(requester, task_id, 0)
    assert sum(outcome.rewards.values()) == ETHER
    assert fs.tasks.round_info(task_id, 0).stage is RoundStage.FINALIZED
    assert chain.balance(fs.deployment.task_registry) == held_before - ETHER
    assert chain.balance(fs.deployment.task_registry) == fs.tasks.total_held()
    assert chain.balance(fs.deployment.reward_vault) == fs.vault.total_owed()


def test_a_reverting_call_names_the_contract_error_on_anvil(world):
    chain, fs, *_ = world
    data = fs.tasks.functions.join(999)._encode_transaction_data()
    with pytest.raises(TransactionReverted) as info:
        chain.call(fs.tasks.address, data)
    assert info.value.error_name == "TaskRegistryUnknownTask"
    assert info.value.error_args == {"taskId": 999}
