"""Running a suite's scenarios in parallel processes, with a cache of finished runs."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path

from offchain.errors import ConfigError
from offchain.experiments.scenario import Scenario, ScenarioResult
from offchain.experiments.simulate import simulate
from offchain.storage.atomic import write_atomic

__all__ = ["run_scenarios", "scenario_key"]

Progress = Callable[[ScenarioResult, int, int], None]


def scenario_key(scenario: Scenario) -> str:
    """A short digest naming the scenario's cached result file."""
    text = json.dumps(asdict(scenario), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _run_one(scenario: Scenario) -> dict:
    import torch

    torch.set_num_threads(1)
    return simulate(scenario).to_dict()


def _load(path: Path) -> ScenarioResult | None:
    try:
        return ScenarioResult(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def run_scenarios(
    scenarios: list[Scenario],
    cache: Path,
    *,
    jobs: int = 1,
    fresh: bool = False,
    progress: Progress | None = None,
) -> list[ScenarioResult]:
    """Results of ``scenarios`` in their order. A scenario whose result is cached under
    ``cache`` is not run again unless ``fresh``; new results are written there as they
    finish, so an interrupted suite resumes where it stopped. ``jobs`` processes run at
    once (one torch thread each). Raises ConfigError for jobs < 1; what a scenario
    raises propagates."""
    if jobs < 1:
        raise ConfigError(f"jobs must be >= 1, got {jobs}")
    cache.mkdir(parents=True, exist_ok=True)
    results: dict[int, ScenarioResult] = {}
    todo = []
    for index, scenario in enumerate(scenarios):
        path = cache / f"{scenario_key(scenario)}.json"
        cached = None if fresh else _load(path)
        if cached is not None:
            results[index] = cached
        else:
            todo.append(index)
    done = len(results)

    def finish(index: int, data: dict) -> None:
        nonlocal done
        write_atomic(cache / f"{scenario_key(scenarios[index])}.json", json.dumps(data),
                     durable=False)
        results[index] = ScenarioResult(**data)
        done += 1
        if progress is not None:
            progress(results[index], done, len(scenarios))

    if jobs == 1 or len(todo) <= 1:
        for index in todo:
            finish(index, _run_one(scenarios[index]))
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            futures = {pool.submit(_run_one, scenarios[i]): i for i in todo}
            for future in as_completed(futures):
                finish(futures[future], future.result())
    return [results[i] for i in range(len(scenarios))]
