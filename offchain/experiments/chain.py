"""Rows of the experiment tables produced through the whole system on the chain.

The same scenario runs twice: through :func:`offchain.runner.run_task` (contracts
on the embedded eth-tester chain, Paillier-encrypted updates, sealed updates for
verifiers, committed and revealed scores, settlement by the contract) and through
the in-process simulation. The table shows both, so the simulated tables can be
read as what the system does.
"""

from __future__ import annotations

import functools
import math
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from offchain.experiments.attacks import Attack, make_attack
from offchain.experiments.scenario import Scenario
from offchain.experiments.simulate import simulate
from offchain.experiments.suites import MNIST_LOCAL_EPOCHS
from offchain.learning.data import DeviceData
from offchain.privacy.dp import LocalUpdate
from offchain.protocol.plan import TaskPlan
from offchain.roles import DeviceRole

__all__ = ["AttackerDevice", "chain_scenarios", "run_chain_rows", "run_on_chain"]


class AttackerDevice(DeviceRole):
    """A device that runs `attack`: it trains on poisoned data, sends a poisoned update
    (clipped to the packing range, so it is well-formed) and may lie about its peers'
    scores, favouring `colluders` (addresses)."""

    def __init__(self, *args, attack: Attack, colluders: frozenset[str] = frozenset(),
                 **kwargs) -> None:
        data: DeviceData = kwargs["data"]
        kwargs["data"] = DeviceData(
            train=attack.poison_data(data.train, classes=kwargs["spec"].classes),
            validation=data.validation)
        super().__init__(*args, **kwargs)
        self.attack = attack
        self.colluders = colluders
        self._rng = np.random.default_rng(self.seed)

    def local_update(self, task_id: int, round_: int,
                     global_vec: np.ndarray) -> LocalUpdate | None:
        if self.attack.trains:
            update = super().local_update(task_id, round_, global_vec)
            if update is None:
                return None
        else:
            update = LocalUpdate(delta=np.zeros_like(global_vec), epsilon=self.epsilon,
                                 steps=0, samples=0, train_loss=math.nan)
        delta = self.attack.poison_update(update.delta, bound=self.dp.update_bound,
                                          rng=self._rng)
        return replace(update, delta=delta)

    def score_peers(self, task_id: int, round_: int) -> list[int]:
        scores = super().score_peers(task_id, round_)
        peers = self.fs.tasks.assignment(task_id, round_, self.address)
        return self.attack.poison_scores(scores, colluders=[p in self.colluders for p in peers])


def chain_scenarios(quick: bool, seed: int) -> list[Scenario]:
    """The rows run on the chain: a DP row of the dp suite and an attack row."""
    if quick:
        return [Scenario(nodes=6, rounds=2, seed=seed),
                Scenario(nodes=6, rounds=2, attack="sign-flip", attackers=1, seed=seed)]
    mnist = {"rounds": 10, "local_epochs": MNIST_LOCAL_EPOCHS, "seed": seed}
    return [Scenario(nodes=30, **mnist),
            Scenario(nodes=50, attack="sign-flip", attackers=5, **mnist)]


def run_on_chain(scenario: Scenario, home: Path,
                 progress: Callable[[str], None] = lambda line: None) -> dict:
    """Runs an IID MNIST `scenario` with the "poq" aggregator through the whole system
    on a new embedded chain; returns its accuracy curve and per-round acceptance."""
    from offchain.runner import RunConfig, run_task

    split = scenario.split()
    dp = scenario.training(len(split.devices[0].train))
    keep = max(2, math.ceil(scenario.keep * scenario.nodes))
    plan = TaskPlan(rounds=scenario.rounds, epsilon_budget=scenario.epsilon or 1e6,
                    min_participants=keep, max_participants=scenario.nodes,
                    verifiers_per_update=scenario.verifiers, quality_gap=scenario.quality_gap,
                    min_quality=scenario.min_quality)
    config = RunConfig(owners=1, devices_per_owner=scenario.nodes, plan=plan,
                       model=scenario.spec(), dp=dp, seed=scenario.seed, home=home)
    rng = np.random.default_rng(scenario.seed)
    bad = set(rng.permutation(scenario.nodes)[: scenario.attackers].tolist())
    attack = make_attack(scenario.attack) if scenario.attack else None
    addresses: dict[int, str] = {}

    def factory(i: int):
        if i not in bad:
            return DeviceRole
        return functools.partial(_Planted, attack=attack, index=i, addresses=addresses,
                                 bad=bad)

    def on_event(kind: str, data: dict) -> None:
        if kind == "published" and "metrics" in data:
            accuracy = data["metrics"].get("test_accuracy", math.nan)
            progress(f"    round {data['round']}: accuracy {100 * accuracy:.1f} %")

    report = run_task(config, on_event, device_factory=factory)
    labels = {f"o1-d{i + 1}" for i in bad}
    return {
        "curve": [report.initial_accuracy] + [r.accuracy for r in report.rounds],
        "accepted": [r.accepted for r in report.rounds],
        "attackers_accepted": [sum(report.labels.get(a) in labels for a in r.accepted_devices)
                               for r in report.rounds],
        "epsilon": max(r.epsilon for r in report.rounds),
        "seconds": report.seconds,
    }


class _Planted(AttackerDevice):
    """An attacker that learns its fellow attackers' addresses as they are created."""

    def __init__(self, *args, index: int, addresses: dict[int, str], bad: set[int],
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        addresses[index] = self.address
        self._addresses = addresses
        self._bad = bad

    def score_peers(self, task_id: int, round_: int) -> list[int]:
        self.colluders = frozenset(self._addresses[i] for i in self._bad)
        return super().score_peers(task_id, round_)


def run_chain_rows(out: Path, *, quick: bool = False, seed: int = 0,
                   progress: Callable[[str], None] = lambda line: None) -> Path:
    """Runs :func:`chain_scenarios` on the chain and in simulation and writes
    ``chain.md`` under `out`; returns its path."""
    lines = ["# The system on the chain vs the simulation", "",
             "Each row runs once through the contracts on the embedded eth-tester chain "
             "(Paillier-encrypted updates, sealed updates to verifiers, committed and "
             "revealed scores, settlement and elimination by the contract) and once in "
             "the in-process simulation, with the same seed. Regenerate with "
             "`fedshare experiment chain`.", "",
             "| scenario | chain: final accuracy | simulation | chain: attackers accepted "
             "(last round) | ε spent | chain wall time |",
             "|---|---:|---:|---:|---:|---:|"]
    for scenario in chain_scenarios(quick, seed):
        progress(f"chain: {scenario.label}")
        with tempfile.TemporaryDirectory(prefix="fedshare-chain-") as home:
            chained = run_on_chain(scenario, Path(home), progress)
        simulated = simulate(scenario)
        attackers = (f"{chained['attackers_accepted'][-1]} of {scenario.attackers}"
                     if scenario.attackers else "")
        lines.append(f"| {scenario.label} | {100 * chained['curve'][-1]:.1f} | "
                     f"{100 * simulated.final:.1f} | {attackers} | "
                     f"{chained['epsilon']:.2f} | {chained['seconds']:.0f} s |")
    path = out / "chain.md"
    out.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path
