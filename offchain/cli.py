"""The ``fedshare`` command line."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from offchain.errors import ChainError, ConfigError, FedshareError
from offchain.paths import default_home, node_bin

__all__ = ["app"]

app = typer.Typer(help="fedshare: privacy-preserving data sharing between IoT devices "
                       "and data requesters, settled on Ethereum.",
                  no_args_is_help=True, add_completion=False)
chain_app = typer.Typer(help="Local development chains.", no_args_is_help=True)
app.add_typer(chain_app, name="chain")
console = Console(width=None if sys.stdout.isatty() else 132)

ETHER = 10**18


def _eth(wei: int) -> str:
    return f"{wei / ETHER:.4f}"


def _fail(exc: FedshareError) -> None:
    console.print(f"[bold red]error:[/] {type(exc).__name__}: {exc}")
    raise typer.Exit(exc.exit_code)


@app.command()
def demo(
    rpc_url: Optional[str] = typer.Option(
        None, "--rpc-url", help="JSON-RPC URL of a development node (e.g. Anvil from "
        "'fedshare chain up'); default: the embedded eth-tester chain."),
    rounds: int = typer.Option(5, help="Federated rounds."),
    owners: int = typer.Option(2, help="Device owners (master wallets)."),
    devices_per_owner: int = typer.Option(5, help="Devices per owner."),
    max_participants: int = typer.Option(8, help="Participants per round; later joiners "
                                         "wait and replace eliminated devices."),
    verifiers_per_update: int = typer.Option(
        0, help="Verifiers drawn per update; 0 = every other participant verifies it."),
    quality_gap: Optional[int] = typer.Option(
        None, help="Basis points below the round's median quality an update may score "
        "and still be accepted (10000 = accept any quality above 0); default: the "
        "task plan's (1000)."),
    epsilon_budget: float = typer.Option(10.0, help="Most ε (δ = 1e-5) a device may spend "
                                         "in the task; devices stop at the budget."),
    key_bits: int = typer.Option(2048, help="Paillier key size (2048 or 3072)."),
    seed: int = typer.Option(0, help="Seed of the data split, model and training."),
    home: Path = typer.Option(default_home(), help="Where runs keep keys, blobs and "
                              "reports."),
) -> None:
    """Run a whole task: 2 owners x 5 devices train MNIST digits with DP-SGD, send
    Paillier-encrypted updates, verify each other on chain, and get paid."""
    from offchain.roles import (
        TaskPlan,  # heavy imports (torch, opacus) only when needed
    )
    from offchain.runner import RunConfig, run_task

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    warnings.simplefilter("ignore", UserWarning)  # Opacus' notes on secure RNG etc.
    try:
        config = RunConfig(owners=owners, devices_per_owner=devices_per_owner,
                           plan=TaskPlan(rounds=rounds, max_participants=max_participants,
                                         verifiers_per_update=verifiers_per_update,
                                         epsilon_budget=epsilon_budget,
                                         **({} if quality_gap is None
                                            else {"quality_gap": quality_gap})),
                           key_bits=key_bits, seed=seed, home=home, rpc_url=rpc_url)
        report = _run_with_progress(config, run_task)
    except FedshareError as exc:
        _fail(exc)
        return
    _print_summary(report)


def _run_with_progress(config: Any, run_task: Any) -> Any:
    plan = config.plan
    per_round = min(config.devices, plan.max_participants) * 2  # train + verify
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        overall = bar.add_task("setting up", total=plan.rounds)
        steps = bar.add_task("round", total=per_round, visible=False)

        def on_event(kind: str, data: dict[str, Any]) -> None:
            if kind == "setup":
                bar.update(overall, description=f"setting up: {data['step']}")
            elif kind == "published":
                bar.update(overall, description="rounds")
                console.print(
                    f"task {data['task_id']} published, escrow {_eth(data['escrow'])} ETH, "
                    f"initial accuracy {data['accuracy']:.1%}")
            elif kind == "round":
                bar.reset(steps, total=data["participants"] * 2, visible=True,
                          description=f"round {data['round']}: train, encrypt, verify")
            elif kind in ("trained", "scored"):
                bar.advance(steps)
            elif kind == "round_done":
                bar.advance(overall)
                bar.update(steps, visible=False)
                r = data["record"]
                console.print(
                    f"round {r.round}: accuracy {r.accuracy:.1%}, ε {r.epsilon:.2f}, "
                    f"leader {r.leader}, eliminated {r.eliminated or '-'}")

        return run_task(config, on_event)


def _print_summary(report: Any) -> None:
    table = Table(title=f"task {report.task_id} on {report.chain}")
    for name in ("round", "accuracy", "ε (δ=1e-5)", "participants", "accepted", "leader",
                 "eliminated", "rewards (ETH)", "gas / participant", "finalize gas", "s"):
        table.add_column(name, justify="right")
    for r in report.rounds:
        table.add_row(str(r.round), f"{r.accuracy:.2%}", f"{r.epsilon:.2f}",
                      str(r.participants), str(r.accepted), r.leader, r.eliminated or "-",
                      _eth(r.reward_paid), f"{r.gas_per_participant:,}", f"{r.gas_finalize:,}",
                      f"{r.seconds:.1f}")
    console.print(table)
    console.print(f"final accuracy: [bold]{report.final_accuracy:.2%}[/] "
                  f"(initial {report.initial_accuracy:.2%})")
    for i, (owner, wei) in enumerate(report.claimed.items(), start=1):
        console.print(f"owner o{i} {owner} claimed {_eth(wei)} ETH for its devices")
    console.print(f"requester refund of unspent escrow: {_eth(report.refund)} ETH")
    console.print(f"artefacts (keys, blobs, deployment, report.json): {report.run_dir}")
    console.print(f"wall time: {report.seconds:.1f} s")


@chain_app.command("up")
def chain_up(
    port: int = typer.Option(8545, help="Port to listen on (127.0.0.1)."),
) -> None:
    """Start a local Anvil node (from npm) in the foreground; Ctrl-C stops it.
    Then run e.g. 'fedshare demo --rpc-url http://127.0.0.1:8545'."""
    anvil = node_bin("anvil")
    if not anvil.exists():
        _fail(ChainError(f"{anvil} is missing: run 'npm install' in the project root"))
    console.print(f"Anvil on http://127.0.0.1:{port}")
    try:
        subprocess.run([str(anvil), "--host", "127.0.0.1", "--port", str(port),
                        "--silent"], check=False)
    except KeyboardInterrupt:
        pass


@app.command()
def deploy(
    rpc_url: str = typer.Option(..., "--rpc-url", help="JSON-RPC URL of the node."),
    keystore: Optional[Path] = typer.Option(
        None, help="V3 keystore of the deployer (password in FEDSHARE_PASSWORD); "
        "default: the key in FEDSHARE_PRIVATE_KEY."),
    out: Path = typer.Option(default_home() / "deployment.json",
                             help="Where to write the contract addresses."),
) -> None:
    """Deploy DeviceRegistry, RewardVault and TaskRegistry to a node."""
    from offchain.chain.accounts import load_wallet
    from offchain.chain.contracts import deploy as deploy_contracts
    from offchain.chain.node import Chain

    try:
        system = deploy_contracts(Chain.connect(rpc_url), load_wallet(keystore))
    except FedshareError as exc:
        _fail(exc)
        return
    system.deployment.save(out)
    for name, value in vars(system.deployment).items():
        console.print(f"{name}: {value}")
    console.print(f"written to {out}")


@app.command("new-account")
def new_account(
    keystore: Path = typer.Argument(..., help="Keystore file to create."),
) -> None:
    """Create a wallet as an encrypted V3 keystore (password from FEDSHARE_PASSWORD
    or asked for). Prints only the address."""
    from offchain.chain.accounts import new_wallet, save_keystore

    if keystore.exists():
        _fail(ConfigError(f"{keystore} already exists; not overwriting a key"))
    password = os.environ.get("FEDSHARE_PASSWORD") or typer.prompt(
        "password", hide_input=True, confirmation_prompt=True)
    wallet = new_wallet()
    save_keystore(keystore, wallet, password)
    console.print(f"{wallet.address} -> {keystore}")


@app.command("paillier-keys")
def paillier_keys(
    out_dir: Path = typer.Argument(..., help="Folder for paillier.pub.json and "
                                   "paillier.key.json (0600)."),
    bits: int = typer.Option(2048, help="Key size: 2048 (default) or 3072."),
) -> None:
    """Create a requester's Paillier key pair."""
    from offchain.crypto import generate_keypair, save_private_key, save_public_key

    try:
        public_key, private_key = generate_keypair(bits=bits)
    except FedshareError as exc:
        _fail(exc)
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    save_public_key(out_dir / "paillier.pub.json", public_key)
    save_private_key(out_dir / "paillier.key.json", private_key)
    console.print(f"key id 0x{public_key.key_id.hex()} -> {out_dir}")


@app.command()
def compile(force: bool = typer.Option(False, help="Rebuild even if cached.")) -> None:
    """Compile the contracts with the npm solc (cached under build/)."""
    from offchain.chain.compile import compile_contracts

    try:
        artifacts = compile_contracts(force=force)
    except FedshareError as exc:
        _fail(exc)
        return
    for name, artifact in artifacts.items():
        console.print(f"{name}: {len(artifact.bytecode) // 2 - 1:,} bytes")


EXPERIMENTS = ("dp", "attacks", "noniid", "regression", "chain")


@app.command()
def experiment(
    suites: list[str] = typer.Argument(
        ..., help=f"Suites to run: {', '.join(EXPERIMENTS)} (or 'all'). dp: accuracy "
        "per round for 10/30/50 nodes, no DP vs ε = 10; attacks: 50 nodes with 5 and 10 "
        "attackers of each kind, PoQ vs FedAvg/median/trimmed mean/Krum/Multi-Krum; noniid: "
        "the same "
        "at Dirichlet α = 0.5 and 0.1; regression: Auto-MPG; chain: rows of dp and "
        "attacks through the contracts on the embedded chain."),
    quick: bool = typer.Option(False, help="Tiny runs (a few nodes and rounds) that only "
                               "check the code paths."),
    jobs: int = typer.Option(2, help="Runs in parallel (one process and one torch thread "
                             "each)."),
    fresh: bool = typer.Option(False, help="Recompute runs already in the run cache "
                               "(cache/experiments/ under FEDSHARE_HOME, default "
                               ".fedshare/)."),
    seed: int = typer.Option(0, help="Seed of splits, attackers, models and noise."),
    out: Path = typer.Option(Path("benchmarks/results/experiments"),
                             help="Where tables (markdown) and plots (PNG) go (quick "
                             "runs: its quick/ folder)."),
) -> None:
    """Run experiment suites and write their tables and plots.

    Finished runs are cached outside the repository, in cache/experiments/ under the
    project home (FEDSHARE_HOME, default .fedshare/), keyed by the scenario and a
    fingerprint of the code that computes it: an interrupted suite resumes, changed
    code recomputes, --fresh recomputes everything.
    """
    from offchain.experiments.cache import RunCache
    from offchain.experiments.report import write_report
    from offchain.experiments.run import run_scenarios
    from offchain.experiments.scenario import Scenario
    from offchain.experiments.suites import scenarios

    names = list(EXPERIMENTS) if suites == ["all"] else suites
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        _fail(ConfigError(f"unknown suite {unknown[0]!r}; choose from "
                          f"{', '.join(EXPERIMENTS)} or all"))
    target = out / "quick" if quick else out
    cache = RunCache.at()
    for name in names:
        try:
            if name == "chain":
                from offchain.experiments.chain import run_chain_rows

                path = run_chain_rows(target, quick=quick, seed=seed,
                                      progress=lambda line: console.print(line, markup=False))
            else:
                todo = scenarios(name, quick=quick, seed=seed)
                console.print(f"[bold]{name}[/]: {len(todo)} runs")
                console.print(f"  cached in {cache.directory}", markup=False)

                def tick(result, done, total):
                    label = Scenario(**result.scenario).label
                    console.print(f"  {done}/{total} {label}: {result.final:.4f} "
                                  f"({result.seconds:.0f} s)", markup=False)

                results = run_scenarios(todo, cache, jobs=jobs, fresh=fresh,
                                        progress=tick)
                path = write_report(name, results, target)
        except FedshareError as exc:
            _fail(exc)
        console.print(f"wrote {path}")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
