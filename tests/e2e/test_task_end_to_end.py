"""A whole task, publish to claim, through every real part: compiled contracts,
Opacus DP-SGD, packed Paillier (phe), the blob store, and an embedded or real chain."""

from __future__ import annotations

import pytest

from offchain.chain.contracts import Deployment, Fedshare
from offchain.chain.node import Chain
from offchain.learning.model import ModelSpec, decode_vector, num_parameters
from offchain.protocol.plan import TaskPlan
from offchain.protocol.terms import ETHER
from offchain.protocol.types import RoundStage, TaskStatus
from offchain.runner import RunConfig, run_task
from offchain.storage import BlobStore

PLAN = TaskPlan(rounds=2, reward_per_round=ETHER // 2,
                min_participants=3, max_participants=3)


def _fees_paid(chain: Chain, address: str) -> int:
    """Wei `address` spent on gas, summed over every transaction it sent."""
    w3 = chain.w3
    total = 0
    for number in range(w3.eth.block_number + 1):
        for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]:
            if tx["from"] == address:
                receipt = w3.eth.get_transaction_receipt(tx["hash"])
                total += receipt["gasUsed"] * receipt["effectiveGasPrice"]
    return total


def _run_and_check(chain: Chain, tmp_path) -> None:
    config = RunConfig(owners=1, devices_per_owner=3, plan=PLAN, seed=1, home=tmp_path)
    report = run_task(config, chain=chain)
    fs = Fedshare(chain, Deployment(**report.deployment))

    # Task completed; every round closed on the model hash the requester stored.
    state = fs.tasks.state(report.task_id)
    assert state.status is TaskStatus.COMPLETED
    assert len(report.model_hashes) == PLAN.rounds + 1
    assert fs.tasks.params(report.task_id).model_hash.hex() == report.model_hashes[0]
    store = BlobStore(tmp_path / "runs" / report.run_dir.split("/")[-1] / "blobs")
    versions = [fs.models.version(v) for v in range(1, fs.models.count() + 1)]
    assert [v.model_hash.hex() for v in versions] == report.model_hashes
    assert [(v.task_id, v.round, v.parent) for v in versions] == [
        (report.task_id, r, r) for r in range(PLAN.rounds + 1)]
    assert state.model_version == len(versions)
    for round_ in range(PLAN.rounds):
        info = fs.tasks.round_info(report.task_id, round_)
        assert info.stage is RoundStage.CLOSED
        assert info.global_model_hash.hex() == report.model_hashes[round_]
        assert info.new_model_hash.hex() == report.model_hashes[round_ + 1]
        model = decode_vector(store.get(info.new_model_hash),
                              expected_size=num_parameters(ModelSpec()))
        assert model.shape == (num_parameters(ModelSpec()),)
    assert state.current_model.hex() == report.model_hashes[-1]

    # Learning happened.
    assert report.final_accuracy > report.initial_accuracy + 0.3
    assert all(0 < r.epsilon <= PLAN.epsilon_budget for r in report.rounds)
    assert report.rounds[1].epsilon > report.rounds[0].epsilon

    # Money: every escrowed wei went to the devices' owner or back to the requester.
    escrow = PLAN.rounds * PLAN.reward_per_round
    paid = sum(r.reward_paid for r in report.rounds)
    (owner, claimed), = report.claimed.items()
    assert claimed == paid
    assert report.refund == escrow - paid
    assert fs.tasks.refund_of(report.requester) == 0
    assert chain.balance(fs.deployment.task_registry) == 0 == fs.tasks.total_held()
    assert chain.balance(fs.deployment.reward_vault) == 0 == fs.vault.total_owed()
    for device in fs.devices.devices_of(owner):
        assert fs.vault.balance_of(device) == 0
    assert chain.balance(owner) == 10 * ETHER + claimed - _fees_paid(chain, owner)
    requester_start = escrow + 10 * ETHER
    assert (chain.balance(report.requester)
            == requester_start - escrow + report.refund - _fees_paid(chain, report.requester))


def test_three_devices_two_rounds_on_embedded_chain(tmp_path):
    _run_and_check(Chain.embedded_chain(), tmp_path)


@pytest.mark.anvil
def test_three_devices_two_rounds_on_anvil(anvil_url, tmp_path):
    _run_and_check(Chain.connect(anvil_url), tmp_path)
