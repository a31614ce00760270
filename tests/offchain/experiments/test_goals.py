"""The experiment goals, on a subset of the full suites (slow: run with -m slow)."""

from __future__ import annotations

import pytest

from offchain.experiments.cache import RunCache
from offchain.experiments.run import run_scenarios
from offchain.experiments.scenario import Scenario
from offchain.experiments.suites import MNIST_LOCAL_EPOCHS

pytestmark = pytest.mark.slow

MNIST = {"rounds": 10, "local_epochs": MNIST_LOCAL_EPOCHS}


def test_dp_costs_at_most_four_points_at_epsilon_10_for_30_nodes(tmp_path):
    runs = [Scenario(nodes=30, epsilon=eps, seed=seed, **MNIST)
            for seed in range(3) for eps in (None, 10.0)]
    results = run_scenarios(runs, RunCache.at(tmp_path), jobs=2)
    plain = [r.final for r in results if r.scenario["epsilon"] is None]
    private = [r.final for r in results if r.scenario["epsilon"] is not None]
    assert all(r.epsilon <= 10.0 + 1e-9 for r in results if r.scenario["epsilon"])
    assert sum(plain) / 3 - sum(private) / 3 <= 0.04


@pytest.mark.parametrize("attack, fedavg_drop", [
    ("sign-flip", 0.05), ("scale", 0.03), ("noise", None), ("label-flip", None),
])
def test_poq_stays_near_the_clean_run_with_10_percent_attackers_while_fedavg_falls(
    attack, fedavg_drop, tmp_path
):
    runs = [Scenario(nodes=50, aggregator=rule, **MNIST) for rule in ("poq", "fedavg")]
    runs += [Scenario(nodes=50, attack=attack, attackers=5, aggregator=rule, **MNIST)
             for rule in ("poq", "fedavg")]
    clean_poq, clean_fedavg, poq, fedavg = run_scenarios(runs, RunCache.at(tmp_path),
                                                         jobs=2)
    assert poq.final >= clean_poq.final - 0.02
    assert poq.attackers_accepted[-1] == 0
    assert fedavg.attackers_accepted[-1] == 5
    if fedavg_drop is not None:  # 5 noisy or label-flipped updates barely move FedAvg
        assert fedavg.final < clean_fedavg.final - fedavg_drop
