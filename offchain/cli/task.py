"""`fedshare task`: publish, cancel and inspect tasks; `fedshare aggregator run` and
`fedshare requester run` take those parties' parts in one."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from offchain.cli.common import (
    DeploymentFile,
    ExchangeDir,
    Home,
    Keystore,
    RpcUrl,
    attach,
    console,
    handles_errors,
    print_progress,
    quiet_warnings,
    wallet,
)
from offchain.errors import ConfigError
from offchain.protocol.terms import DEFAULTS, ETHER, eth, epsilon_from_chain

__all__ = ["task_app", "aggregator_app", "requester_app"]

task_app = typer.Typer(help="Tasks: publish, cancel, status.", no_args_is_help=True)
aggregator_app = typer.Typer(help="The aggregator's part in a task.", no_args_is_help=True)
requester_app = typer.Typer(help="The requester's part in a task.", no_args_is_help=True)


@task_app.command("publish")
@handles_errors
def publish(
    paillier_key: Path = typer.Option(..., "--paillier-key",
                                      help="The requester's Paillier public-key file."),
    aggregator: Optional[str] = typer.Option(None, help="Address of the aggregator."),
    category: str = typer.Option(DEFAULTS.category),
    rounds: int = typer.Option(DEFAULTS.rounds),
    reward_eth: float = typer.Option(DEFAULTS.reward_per_round / ETHER,
                                     help="Reward per round (ETH)."),
    train_duration: int = typer.Option(DEFAULTS.train_duration,
                                       help="Seconds to train and commit updates (T1)."),
    verify_duration: int = typer.Option(DEFAULTS.verify_duration,
                                        help="Seconds to commit scores (T2)."),
    reveal_duration: int = typer.Option(DEFAULTS.reveal_duration,
                                        help="Seconds to reveal scores (T3)."),
    grace_period: int = typer.Option(DEFAULTS.grace_period,
                                     help="Stall after which anyone may cancel."),
    epsilon_budget: float = typer.Option(DEFAULTS.epsilon_budget,
                                         help="Most ε a device may spend (δ = 1e-5)."),
    min_participants: int = typer.Option(DEFAULTS.min_participants),
    max_participants: int = typer.Option(DEFAULTS.max_participants),
    min_quality: int = typer.Option(DEFAULTS.min_quality, help="Basis points."),
    quality_gap: int = typer.Option(DEFAULTS.quality_gap, help="Basis points below the "
                                    "round's median an accepted update may score."),
    verifiers_per_update: int = typer.Option(DEFAULTS.verifiers_per_update,
                                             help="0 = every other participant."),
    allow: list[str] = typer.Option([], help="Device or owner allowed to join "
                                    "(repeatable); none = anyone registered."),
    seed: int = typer.Option(0, help="Seed of the initial model."),
    keystore: Optional[Path] = Keystore, rpc_url: str = RpcUrl,
    deployment: Path = DeploymentFile, exchange: Path = ExchangeDir,
) -> None:
    """Publish a learning task with its escrow (rounds x reward). The deployment is
    checked (chain id, contract code) and every term validated before value moves."""
    from offchain.crypto import load_public_key
    from offchain.learning.model import ModelSpec, initial_vector
    from offchain.protocol.plan import TaskPlan
    from offchain.roles import publish_task
    from offchain.storage import LocalExchange

    if not (math.isfinite(reward_eth) and reward_eth > 0):
        raise ConfigError(f"--reward-eth must be a finite number > 0, got {reward_eth}")
    plan = TaskPlan(category=category, rounds=rounds, train_duration=train_duration,
                    verify_duration=verify_duration, reveal_duration=reveal_duration,
                    grace_period=grace_period, epsilon_budget=epsilon_budget,
                    reward_per_round=int(round(reward_eth * ETHER)),
                    min_participants=min_participants, max_participants=max_participants,
                    min_quality=min_quality, quality_gap=quality_gap,
                    verifiers_per_update=verifiers_per_update, allow_list=tuple(allow))
    requester = wallet(keystore)
    key = load_public_key(paillier_key)
    fs = attach(rpc_url, deployment)
    task_id = publish_task(fs, requester, LocalExchange(exchange), plan,
                           initial_vector(ModelSpec(), seed=seed), key.key_id, aggregator)
    console.print(f"task {task_id} published by {requester.address}: escrow "
                  f"{eth(plan.escrow)} ETH")


@task_app.command("cancel")
@handles_errors
def cancel(task: int = typer.Argument(..., help="Task id."),
           keystore: Optional[Path] = Keystore, rpc_url: str = RpcUrl,
           deployment: Path = DeploymentFile) -> None:
    """Cancel a task: its requester between rounds, anyone once it stalled. The escrow
    becomes the requester's refund."""
    fs = attach(rpc_url, deployment)
    fs.tasks.cancel(wallet(keystore), task)
    console.print(f"task {task} cancelled; refund owed to the requester: "
                  f"{eth(fs.tasks.refund_of(fs.tasks.state(task).requester))} ETH")


@task_app.command("status")
@handles_errors
def status(task: int = typer.Argument(..., help="Task id."), rpc_url: str = RpcUrl,
           deployment: Path = DeploymentFile, exchange: Path = ExchangeDir) -> None:
    """A task as the chain tells it: terms, state, and per round the participants,
    qualities, leader, eliminated device, rewards and ε spent."""
    from offchain.status import task_status
    from offchain.storage import LocalExchange

    fs = attach(rpc_url, deployment)
    if not 1 <= task <= fs.tasks.count():
        raise ConfigError(f"there is no task {task} (tasks: 1..{fs.tasks.count()})")
    report = task_status(fs, task, LocalExchange(exchange) if exchange.exists() else None,
                         gas=False)
    p, s = report.params, report.state
    console.print(f"task {task}: {s.status.name.lower()}, {s.rounds_opened}/{p.rounds} "
                  f"rounds opened, escrow {eth(s.escrow)} ETH, reward "
                  f"{eth(p.reward_per_round)} ETH a round, ε budget "
                  f"{epsilon_from_chain(p.epsilon_budget):g}")
    console.print(f"requester {s.requester}, aggregator {s.aggregator}")
    console.print(f"participants {len(report.participants)}, waiting {len(report.waiting)}")
    table = Table()
    for name in ("round", "participants", "committed", "accepted", "accuracy", "ε max",
                 "leader", "eliminated", "paid (ETH)"):
        table.add_column(name, justify="right")
    for r in report.rounds:
        table.add_row(str(r.round), str(r.participants), str(r.committed), str(r.accepted),
                      "-" if r.accuracy is None else f"{r.accuracy:.2%}",
                      f"{r.epsilon:.2f}", r.leader or "-", r.eliminated or "-",
                      eth(r.reward_paid))
    console.print(table)
    for device, wei in sorted(report.rewards.items()):
        console.print(f"{device}: ε {report.epsilon.get(device, 0.0):.2f}, earned "
                      f"{eth(wei)} ETH")


@aggregator_app.command("run")
@handles_errors
def aggregator_run(task: int = typer.Option(..., "--task", help="Task id."),
                   paillier_key: Path = typer.Option(
                       ..., "--paillier-key", help="The requester's Paillier public key."),
                   keystore: Optional[Path] = Keystore, rpc_url: str = RpcUrl,
                   deployment: Path = DeploymentFile, home: Path = Home,
                   exchange: Path = ExchangeDir) -> None:
    """Aggregate task `--task` until it ends: open rounds, finalise them, post the
    homomorphic sum of the accepted updates. Holds no private key."""
    from offchain.crypto import load_public_key
    from offchain.driver import run_role
    from offchain.roles import AggregatorRole
    from offchain.storage import LocalExchange

    quiet_warnings()
    fs = attach(rpc_url, deployment, wait=True)
    role = AggregatorRole(fs, wallet(keystore), task,
                          home / "state", exchange=LocalExchange(exchange),
                          public_key=load_public_key(paillier_key), progress=print_progress)
    run_role(role)
    console.print(f"aggregator: task {task} is over")


@requester_app.command("run")
@handles_errors
def requester_run(task: int = typer.Option(..., "--task", help="Task id."),
                  private_key: Path = typer.Option(
                      ..., "--private-key", help="The requester's Paillier private-key "
                      "file (paillier.key.json)."),
                  test_data: Optional[Path] = typer.Option(
                      None, help="Test set (.npz: x, y) to record each model's accuracy."),
                  keystore: Optional[Path] = Keystore, rpc_url: str = RpcUrl,
                  deployment: Path = DeploymentFile, home: Path = Home,
                  exchange: Path = ExchangeDir) -> None:
    """Follow task `--task` until it ends: decrypt each round's aggregate (only the
    sum), publish the new global model, withdraw the unspent escrow at the end, and
    cancel the task if it stalls."""
    from offchain.crypto import load_private_key
    from offchain.driver import run_role
    from offchain.learning.datafile import load_dataset
    from offchain.learning.evaluate import accuracy
    from offchain.learning.model import ModelSpec
    from offchain.roles import RequesterRole
    from offchain.storage import LocalExchange

    quiet_warnings()
    spec = ModelSpec()
    evaluate = None
    if test_data is not None:
        test = load_dataset(test_data)
        evaluate = lambda model: {"test_accuracy": accuracy(spec, model, test)}  # noqa: E731
    fs = attach(rpc_url, deployment, wait=True)
    role = RequesterRole(fs, wallet(keystore), task,
                         home / "state", exchange=LocalExchange(exchange), spec=spec,
                         private_key=load_private_key(private_key), evaluate=evaluate,
                         progress=print_progress)
    run_role(role)
    console.print(f"requester: task {task} is over; refunds withdrawn "
                  f"{eth(role.state.get('refunded', 0))} ETH")

