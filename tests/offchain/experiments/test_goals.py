"""The experiment goals, on a subset of the full suites (slow: run with -m slow)."""

from __future__ import annotations

import pytest

from offchain.experiments.run import run_scenarios
from offchain.experiments.simulate import Scenario
from offchain.experiments.suites import MNIST_LOCAL_EPOCHS

pytestmark = pytest.mark.slow

MNIST = {"rounds": 10, "local_epochs": MNIST_LOCAL_EPOCHS}


def test_dp_costs_at_most_four_points_at_epsilon_10_for_30_nodes(tmp_path):
    runs = [Scenario(nodes=30, epsilon=eps, seed=seed, **MNIST)
            for seed in range(3) for eps in (None, 10.0)]
    results = run_scenarios(runs, tmp_path, jobs=2)
    plain = [r.final for r in results if r.scenario["epsilon"] is None]
    private = [r.final for r in results if r.scenario["epsilon"] is not None]
    assert all(r.epsilon <= 10.0 + 1e-9 for r in results if r.scenario["epsilon"])
    assert sum(plain) / 3 - sum(private) / 3 <= 0.04


@pytest.mark.parametrize("attack", ["sign-flip", "scale", "noise", "label-flip"])
def test_poq_stays_near_the_clean_run_with_10_percent_attackers_while_fedavg_falls(
    attack, tmp_path
):
    base = Scenario(nodes=50, **MNIST)
    runs = [base, Scenario(nodes=50, attack=attack, attackers=5, **MNIST),
            Scenario(nodes=50, attack=attack, attackers=5, aggregator="fedavg", **MNIST)]
    clean, poq, fedavg = run_scenarios(runs, tmp_path, jobs=2)
    assert poq.final >= clean.final - 0.02
    assert poq.attackers_accepted[-1] == 0
    if attack != "label-flip":  # a few flipped labels barely move FedAvg (see the table)
        assert fedavg.final < clean.final - 0.05
