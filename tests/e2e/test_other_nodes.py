"""The other local nodes this project's users come with, started by the test: a
whole task runs on a Hardhat node (npm hardhat 2); Ganache (npm ganache 7.9) runs the
Shanghai EVM, not the Cancun one the contracts need, and is refused by name before
anything is sent."""

from __future__ import annotations

import pytest

from offchain.chain.accounts import new_wallet
from offchain.chain.contracts import Fedshare, deploy
from offchain.chain.node import Chain
from offchain.devnodes import dev_node
from offchain.errors import ChainError
from offchain.protocol.plan import TaskPlan
from offchain.protocol.terms import ETHER
from offchain.protocol.types import TaskStatus
from offchain.runner import RunConfig, run_task

PLAN = TaskPlan(rounds=2, reward_per_round=ETHER // 2, min_participants=3,
                max_participants=3)


@pytest.mark.slow
def test_a_whole_task_runs_on_a_hardhat_node(tmp_path):
    with dev_node("hardhat") as url:
        chain = Chain.connect(url)
        assert chain.is_development
        config = RunConfig(owners=1, devices_per_owner=3, plan=PLAN, seed=1,
                           key_bits=512, insecure_test_key=True, home=tmp_path)
        report = run_task(config, chain=chain)
        fs = Fedshare.attach(chain, tmp_path / "runs" / report.run_dir.split("/")[-1]
                             / "deployment.json")
        assert fs.tasks.state(report.task_id).status is TaskStatus.COMPLETED
        assert report.final_accuracy > report.initial_accuracy + 0.3
        paid = sum(r.reward_paid for r in report.rounds)
        assert sum(report.claimed.values()) == paid > 0
        assert report.refund == PLAN.escrow - paid
        assert chain.balance(fs.tasks.address) == fs.tasks.total_held() == 0
        assert chain.balance(fs.vault.address) == fs.vault.total_owed() == 0


@pytest.mark.slow
def test_ganache_is_refused_by_name_before_anything_is_sent(tmp_path):
    with dev_node("ganache") as url:
        chain = Chain.connect(url)
        deployer = new_wallet()
        chain.fund(deployer.address, 10 * ETHER)
        with pytest.raises(ChainError, match="does not run the Cancun EVM the contracts "
                                             "are compiled for"):
            deploy(chain, deployer, manifest=tmp_path / "deployment.json")
        assert chain.nonce_of(deployer.address) == 0
        assert not (tmp_path / "deployment.json").exists()
