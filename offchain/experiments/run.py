"""Running a suite's scenarios in parallel processes, reusing finished runs.

Finished runs are kept in a :class:`~offchain.experiments.cache.RunCache` (under the
project home, keyed by the scenario and the code that computes it): a scenario already
there is not run again unless asked, and each new result is stored as it finishes,
so an interrupted suite resumes where it stopped.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed

from offchain.errors import ConfigError
from offchain.experiments.cache import RunCache
from offchain.experiments.scenario import Scenario, ScenarioResult
from offchain.experiments.simulate import simulate

__all__ = ["Progress", "run_scenarios"]

Progress = Callable[[ScenarioResult, int, int], None]
"""``progress(result, done, total)``, called after each newly computed run."""


def _run_one(scenario: Scenario) -> ScenarioResult:
    """Simulates ``scenario`` with one torch thread (as every cached run is made)."""
    import torch

    torch.set_num_threads(1)
    return simulate(scenario)


def _cached(scenarios: list[Scenario], cache: RunCache,
            fresh: bool) -> tuple[dict[int, ScenarioResult], list[int]]:
    """The results already in ``cache`` by index (none when ``fresh``), and the
    indices still to run."""
    found: dict[int, ScenarioResult] = {}
    todo: list[int] = []
    for index, scenario in enumerate(scenarios):
        cached = None if fresh else cache.load(scenario)
        if cached is None:
            todo.append(index)
        else:
            found[index] = cached
    return found, todo


def _compute(scenarios: list[Scenario], todo: list[int], jobs: int,
             finish: Callable[[int, ScenarioResult], None]) -> None:
    """Runs the scenarios at ``todo`` in this process or in ``jobs`` spawned ones,
    calling ``finish(index, result)`` as each completes."""
    if jobs == 1 or len(todo) <= 1:
        for index in todo:
            finish(index, _run_one(scenarios[index]))
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = {pool.submit(_run_one, scenarios[i]): i for i in todo}
        for future in as_completed(futures):
            finish(futures[future], future.result())


def run_scenarios(
    scenarios: list[Scenario],
    cache: RunCache,
    *,
    jobs: int = 1,
    fresh: bool = False,
    progress: Progress | None = None,
) -> list[ScenarioResult]:
    """Results of ``scenarios`` in their order. A scenario whose result is in
    ``cache`` is not run again unless ``fresh``; new results are stored there as they
    finish, so an interrupted suite resumes where it stopped. ``jobs`` processes run
    at once (one torch thread each). Raises ConfigError for jobs < 1; OSError when
    the cache cannot be written; what a scenario raises propagates."""
    if jobs < 1:
        raise ConfigError(f"jobs must be >= 1, got {jobs}")
    results, todo = _cached(scenarios, cache, fresh)

    def finish(index: int, result: ScenarioResult) -> None:
        cache.store(scenarios[index], result)
        results[index] = result
        if progress is not None:
            progress(result, len(results), len(scenarios))

    _compute(scenarios, todo, jobs, finish)
    return [results[i] for i in range(len(scenarios))]
