"""The ``fedshare`` command: the demo, local chains, deployment, keys, experiments."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Optional

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from offchain.cli.common import Keystore, RpcUrl, console, fail, quiet_warnings
from offchain.errors import ChainError, ConfigError, FedshareError
from offchain.paths import default_home, node_bin
from offchain.protocol.terms import eth

__all__ = ["app"]

app = typer.Typer(help="fedshare: privacy-preserving data sharing between IoT devices "
                       "and data requesters, settled on Ethereum.",
                  no_args_is_help=True, add_completion=False)
chain_app = typer.Typer(help="Local development chains.", no_args_is_help=True)
app.add_typer(chain_app, name="chain")
_fail = fail


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
    processes: bool = typer.Option(
        False, "--processes", help="Start an Anvil node and run every party (requester, "
        "aggregator, each device, each owner) as its own OS process."),
) -> None:
    """Run a whole task: 2 owners x 5 devices train MNIST digits with DP-SGD, send
    Paillier-encrypted updates, verify each other on chain, and get paid."""
    from offchain.protocol.plan import TaskPlan
    from offchain.runner import RunConfig, run_task  # heavy imports only when needed

    quiet_warnings()
    try:
        config = RunConfig(owners=owners, devices_per_owner=devices_per_owner,
                           plan=TaskPlan(rounds=rounds, max_participants=max_participants,
                                         verifiers_per_update=verifiers_per_update,
                                         epsilon_budget=epsilon_budget,
                                         **({} if quality_gap is None
                                            else {"quality_gap": quality_gap})),
                           key_bits=key_bits, seed=seed, home=home, rpc_url=rpc_url)
        if processes and rpc_url:
            raise ConfigError("--processes starts its own Anvil node: leave out --rpc-url")
        if processes:
            from offchain.processes import run_processes

            report = _run_with_progress(config, run_processes)
        else:
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
            elif kind == "published" and "task_id" in data:
                bar.update(overall, description="rounds")
                console.print(
                    f"task {data['task_id']} published, escrow {eth(data['escrow'])} ETH, "
                    f"initial accuracy {data['accuracy']:.1%}")
            elif kind == "opened":
                bar.reset(steps, total=per_round, visible=True,
                          description=f"round {data['round']}: train, encrypt, verify")
            elif kind in ("trained", "scored"):
                bar.advance(steps)
            elif kind == "published":
                bar.advance(overall)
                bar.update(steps, visible=False)
                accuracy = data["metrics"].get("test_accuracy")
                shown = "-" if accuracy is None else f"{accuracy:.1%}"
                console.print(f"round {data['round']}: accuracy {shown}")
            elif kind == "stopped":
                console.print(f"{data['label']} stops at its ε budget "
                              f"(ε = {data['epsilon']:.2f})")
            elif kind == "cancelled":
                console.print(f"{data['label']} cancelled the stalled task")

        return run_task(config, on_event)


def _print_summary(report: Any) -> None:
    table = Table(title=f"task {report.task_id} on {report.chain}")
    for name in ("round", "accuracy", "ε (δ=1e-5)", "participants", "accepted", "leader",
                 "eliminated", "rewards (ETH)", "gas / participant", "finalize gas", "s"):
        table.add_column(name, justify="right")
    label = report.labels.get
    for r, seconds in zip(report.rounds, report.round_seconds + [None] * len(report.rounds)):
        table.add_row(str(r.round), "-" if r.accuracy is None else f"{r.accuracy:.2%}",
                      f"{r.epsilon:.2f}", str(r.participants), str(r.accepted),
                      label(r.leader, r.leader or "-"),
                      label(r.eliminated, r.eliminated or "-"),
                      eth(r.reward_paid), f"{r.gas_per_participant:,}",
                      f"{r.gas_finalize:,}", "-" if seconds is None else f"{seconds:.1f}")
    console.print(table)
    console.print(f"final accuracy: [bold]{report.final_accuracy:.2%}[/] "
                  f"(initial {report.initial_accuracy:.2%})")
    for i, (owner, wei) in enumerate(report.claimed.items(), start=1):
        console.print(f"owner o{i} {owner} claimed {eth(wei)} ETH for its devices")
    console.print(f"requester refund of unspent escrow: {eth(report.refund)} ETH")
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
    rpc_url: str = RpcUrl,
    keystore: Optional[Path] = Keystore,
    out: Path = typer.Option(default_home() / "deployment.json", "--out",
                             envvar="FEDSHARE_DEPLOYMENT",
                             help="Where to write the deployment manifest (written as "
                             "the contracts are deployed, so no address is lost)."),
) -> None:
    """Deploy the contracts (TaskSettlement library, DeviceRegistry, RewardVault,
    ModelRegistry, TaskRegistry) to a node and write the deployment manifest."""
    from offchain.chain.accounts import load_wallet
    from offchain.chain.contracts import deploy as deploy_contracts
    from offchain.chain.node import Chain

    try:
        system = deploy_contracts(Chain.connect(rpc_url), load_wallet(keystore),
                                  manifest=out)
    except FedshareError as exc:
        _fail(exc)
        return
    for name, value in system.deployment.addresses().items():
        console.print(f"{name}: {value}")
    console.print(f"written to {out}")


@app.command("paillier-keys")
def paillier_keys(
    out_dir: Path = typer.Argument(..., help="Folder for paillier.pub.json and "
                                   "paillier.key.json (0600)."),
    bits: int = typer.Option(2048, help="Key size: 2048 (default) or 3072."),
    force: bool = typer.Option(False, help="Replace an existing key pair (every "
                               "aggregate under the old key becomes undecryptable)."),
) -> None:
    """Create a requester's Paillier key pair; refuses to overwrite one."""
    from offchain.crypto import generate_keypair, save_private_key, save_public_key

    existing = [p for p in (out_dir / "paillier.pub.json", out_dir / "paillier.key.json")
                if p.exists()]
    if existing and not force:
        _fail(ConfigError(f"{existing[0]} already exists; not overwriting a key "
                          f"(pass --force to replace it)"))
    try:
        public_key, private_key = generate_keypair(bits=bits)
    except FedshareError as exc:
        _fail(exc)
        return
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        save_public_key(out_dir / "paillier.pub.json", public_key)
        save_private_key(out_dir / "paillier.key.json", private_key)
    except OSError as exc:
        _fail(ConfigError(f"cannot write the key pair to {out_dir}: {exc}"))
    console.print(f"key id 0x{public_key.key_id.hex()} -> {out_dir}")


@app.command()
def compile(
    force: bool = typer.Option(False, help="Rebuild even if cached."),
    abi_dir: Optional[Path] = typer.Option(
        None, help="Where to write the contracts' ABIs as JSON; default: the package's "
        "offchain/chain/abi/."),
) -> None:
    """Compile the contracts with the npm solc (cached under build/), print each one's
    deployed size, and write the contracts' ABIs (one JSON file each)."""
    from offchain.chain.compile import (
        ABI_DIR,
        EIP170_LIMIT,
        compile_contracts,
        export_abis,
    )

    try:
        artifacts = compile_contracts(force=force)
        written = export_abis(artifacts, abi_dir or ABI_DIR)
    except FedshareError as exc:
        _fail(exc)
        return
    for name, artifact in artifacts.items():
        console.print(f"{name}: {artifact.runtime_size:,} bytes deployed "
                      f"(limit {EIP170_LIMIT:,})")
    console.print(f"ABIs of {len(written)} contracts written to {written[0].parent}")


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
    app()
