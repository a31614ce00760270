"""The experiment simulation runs the protocol's rules (small versions of every suite)."""

from __future__ import annotations

import json
import math

import pytest

from offchain.errors import ConfigError
from offchain.experiments.report import write_report
from offchain.experiments.cache import RunCache
from offchain.experiments.run import run_scenarios
from offchain.experiments.scenario import Scenario, ScenarioResult
from offchain.experiments.simulate import simulate
from offchain.experiments.suites import SUITES, scenarios


def test_poq_rejects_and_eliminates_a_sign_flipper_that_fedavg_averages_in():
    base = Scenario(nodes=10, rounds=3, attack="sign-flip", attackers=2)
    poq = simulate(base)
    fedavg = simulate(Scenario(**{**base.__dict__, "aggregator": "fedavg"}))
    assert poq.attackers_accepted == [0, 0, 0]
    assert poq.eliminated_attackers == 2 and poq.eliminated_honest == 0
    assert fedavg.attackers_accepted == [2, 2, 2]
    assert poq.final > fedavg.final + 0.03
    assert poq.epsilon == pytest.approx(10.0, rel=1e-3)


def test_a_run_is_determined_by_its_scenario():
    scenario = Scenario(nodes=4, rounds=2, alpha=0.5, attack="noise", attackers=1)
    a, b = simulate(scenario), simulate(scenario)
    assert a.curve == b.curve and a.accepted == b.accepted
    assert a.label_skew > 0.2
    assert len(a.curve) == 3 and a.participants[0] == 4


def test_without_dp_no_noise_is_added_and_epsilon_is_infinite():
    result = simulate(Scenario(nodes=4, rounds=1, epsilon=None, aggregator="median"))
    assert result.noise_multiplier == 0 and math.isinf(result.epsilon)


def test_regression_reports_mae_and_free_riders_spend_no_privacy():
    result = simulate(Scenario(dataset="autompg", nodes=5, rounds=2, attack="free-ride",
                               attackers=1, aggregator="trimmed-mean"))
    assert result.metric == "mae"
    assert result.curve[-1] < result.curve[0]


@pytest.mark.parametrize("kwargs, message", [
    ({"dataset": "cifar"}, "dataset must be one of"),
    ({"aggregator": "mean"}, "aggregator must be one of"),
    ({"attack": "bribe", "attackers": 1}, "attack must be one of"),
    ({"attackers": 1}, "name an attack exactly when there are attackers"),
    ({"attackers": 10, "attack": "noise"}, "attackers must be in 0..9"),
    ({"keep": 0}, "keep must be in"),
])
def test_bad_scenarios_are_rejected(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Scenario(nodes=10, **kwargs)


@pytest.mark.parametrize("suite", SUITES)
def test_quick_suites_run_and_write_tables_and_plots(suite, tmp_path):
    todo = scenarios(suite, quick=True)
    cache = RunCache.at(tmp_path / "cache")
    results = run_scenarios(todo, cache, jobs=1)
    path = write_report(suite, results, tmp_path)
    text = path.read_text()
    assert text.startswith("# ") and f"fedshare experiment {suite}" in text
    assert any(p.suffix == ".png" and p.stat().st_size > 5_000 for p in tmp_path.iterdir())
    # Cached: a second call runs nothing and returns the same results.
    again = run_scenarios(todo, cache, jobs=1,
                          progress=lambda *a: pytest.fail("ran a cached scenario"))
    assert [r.curve for r in again] == [r.curve for r in results]
    cached = json.loads(cache.path(todo[0]).read_text())
    assert cached["curve"] == results[0].curve


def test_unknown_suite_is_rejected():
    with pytest.raises(ConfigError, match="unknown suite 'fast'"):
        scenarios("fast")


def test_reports_average_seeds_and_show_their_range(tmp_path):
    from dataclasses import asdict

    def result(seed, aggregator, final, attackers=0):
        scenario = Scenario(nodes=10, seed=seed, aggregator=aggregator,
                            attack="noise" if attackers else None, attackers=attackers)
        return ScenarioResult(scenario=asdict(scenario), metric="accuracy",
                              curve=[0.1, final], attackers_accepted=[0],
                              eliminated_attackers=attackers)

    results = [result(0, "poq", 0.80), result(1, "poq", 0.84), result(0, "fedavg", 0.83),
               result(1, "fedavg", 0.85), result(0, "poq", 0.78, 2),
               result(1, "poq", 0.82, 2)]
    text = write_report("attacks", results, tmp_path).read_text()
    assert "mean of 2 seeds (range)" in text
    assert "| none | 0 | 82.0 (80.0–84.0) | 84.0 (83.0–85.0) |  |" in text
    assert "| noise | 2 | 80.0 (78.0–82.0) |  | 0 / 2 |" in text


def test_a_suite_without_a_table_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="no table for suite 'chain'"):
        write_report("chain", [], tmp_path)
