"""The run cache: outside the repository, keyed by the scenario and the code."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from offchain.experiments.cache import (
    RunCache,
    code_fingerprint,
    default_cache_dir,
    result_modules,
    scenario_key,
)
from offchain.experiments.run import run_scenarios
from offchain.experiments.scenario import Scenario, ScenarioResult
from offchain.paths import project_root

TINY = Scenario(nodes=3, rounds=1, aggregator="fedavg")


def _package(root: Path) -> Path:
    """A small package: ``pkg.run`` imports ``pkg.maths`` (relatively, from inside a
    function) and ``pkg.data``; ``pkg.tables`` is imported by nobody."""
    pkg = root / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""pkg"""\n')
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "run.py").write_text(
        "import numpy\nfrom pkg.sub import data\n\n"
        "def go():\n    from .maths import mean\n    return mean\n")
    (pkg / "maths.py").write_text("def mean(): return 1\n")
    (pkg / "sub" / "data.py").write_text("X = 1\n")
    (pkg / "tables.py").write_text("import pkg.run\n")
    return pkg


def _fingerprint(root: Path) -> str:
    return code_fingerprint(["pkg.run"], package="pkg", source_root=root, libraries=())


def test_the_cache_lives_under_the_project_home(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("FEDSHARE_HOME", raising=False)
    assert default_cache_dir() == project_root() / ".fedshare" / "cache" / "experiments"
    monkeypatch.setenv("FEDSHARE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path.resolve() / "cache" / "experiments"
    cache = RunCache.at()
    assert cache.directory == default_cache_dir() / code_fingerprint()
    assert cache.path(TINY) == cache.directory / f"{scenario_key(TINY)}.json"


def test_the_scenario_key_changes_with_any_field() -> None:
    assert scenario_key(TINY) == scenario_key(Scenario(nodes=3, rounds=1,
                                                       aggregator="fedavg"))
    keys = {scenario_key(replace(TINY, **change)) for change in
            ({}, {"seed": 1}, {"aggregator": "median"}, {"lr": 0.5}, {"alpha": 1.0})}
    assert len(keys) == 5


def test_the_fingerprint_follows_the_code_runs_import(tmp_path) -> None:
    pkg = _package(tmp_path)
    assert result_modules(["pkg.run"], package="pkg", source_root=tmp_path) == [
        "pkg", "pkg.maths", "pkg.run", "pkg.sub", "pkg.sub.data"]
    before = _fingerprint(tmp_path)
    (pkg / "tables.py").write_text("import pkg.run  # a new table\n")
    assert _fingerprint(tmp_path) == before
    for changed in ("maths.py", "sub/data.py", "__init__.py", "run.py"):
        path = pkg / changed
        original = path.read_text()
        path.write_text(original + "# changed\n")
        assert _fingerprint(tmp_path) != before, changed
        path.write_text(original)
        assert _fingerprint(tmp_path) == before
    with_numpy = code_fingerprint(["pkg.run"], package="pkg", source_root=tmp_path,
                                  libraries=("numpy",))
    assert with_numpy != before


def test_the_project_fingerprint_covers_what_computes_results_only() -> None:
    modules = result_modules()
    for needed in ("offchain.experiments.simulate", "offchain.experiments.rules",
                   "offchain.experiments.attacks", "offchain.experiments.robust",
                   "offchain.experiments.partition", "offchain.experiments.datasets",
                   "offchain.learning.fedavg", "offchain.protocol.poq",
                   "offchain.privacy.dp", "offchain.errors"):
        assert needed in modules
    for unrelated in ("offchain.cli", "offchain.experiments.report",
                      "offchain.experiments.suites", "offchain.chain.contracts"):
        assert unrelated not in modules
    assert len(code_fingerprint()) == 16


def _result(scenario: Scenario, final: float = 0.5) -> ScenarioResult:
    from dataclasses import asdict

    return ScenarioResult(scenario=asdict(scenario), metric="accuracy",
                          curve=[0.1, final])


def test_a_result_is_found_only_for_its_scenario_and_code(tmp_path) -> None:
    cache = RunCache(tmp_path, "code-a")
    assert cache.load(TINY) is None
    path = cache.store(TINY, _result(TINY))
    assert path == tmp_path / "code-a" / f"{scenario_key(TINY)}.json"
    assert cache.load(TINY) == _result(TINY)
    assert RunCache(tmp_path, "code-b").load(TINY) is None
    other = replace(TINY, seed=7)
    cache.path(other).write_text(path.read_text())  # a file holding another scenario
    assert cache.load(other) is None
    path.write_text("{not json")
    assert cache.load(TINY) is None


def test_an_interrupted_suite_resumes_and_fresh_recomputes(tmp_path) -> None:
    cache = RunCache(tmp_path, "code")
    runs = [TINY, replace(TINY, seed=1)]

    def stop(result: ScenarioResult, done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_scenarios(runs, cache, progress=stop)
    assert cache.load(runs[0]) is not None and cache.load(runs[1]) is None
    ran: list[int] = []
    results = run_scenarios(runs, cache,
                            progress=lambda r, done, total: ran.append(done))
    assert ran == [2]  # only the second ran
    assert [r.scenario["seed"] for r in results] == [0, 1]
    again: list[int] = []
    fresh = run_scenarios(runs, cache, fresh=True,
                          progress=lambda r, done, total: again.append(done))
    assert again == [1, 2]
    assert [r.curve for r in fresh] == [r.curve for r in results]
