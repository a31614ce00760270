"""Gas of one protocol round as the number of participants N grows.

On a fresh embedded chain (eth-tester / py-evm, the contracts compiled as the project
builds them), plays one full round for each N, once with every other participant
verifying every update (verifiersPerUpdate = 0) and once with k = 4 verifiers per update,
and reads gasUsed from the receipts of openRound, commitUpdate, commitScores and
revealScores (mean per participant) and finalizeRound. Writes a markdown table with the
growth relative to N = 5 of the same run.

    .venv/bin/python benchmarks/gas_bench.py            # N = 5, 10, 17, 30, 50
    .venv/bin/python benchmarks/gas_bench.py --quick    # N = 5, 10 (smoke test)

The round is played by the protocol's own driver and state machines (scripted
devices commit given hashes and scores), as every round in fedshare is; the gas comes
from the receipts of the transactions behind each event.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from web3 import Web3

from offchain.chain.accounts import Wallet, new_wallet
from offchain.chain.compile import SOLC_SETTINGS, compiler_version
from offchain.chain.contracts import Fedshare, deploy
from offchain.chain.node import Chain
from offchain.driver import drive
from offchain.protocol.terms import ETHER, MAX_SCORE, MAX_VERIFIERS
from offchain.protocol.types import RoundStage, TaskParams
from offchain.roles import Owner
from offchain.roles.scripted import ScriptedAggregator, ScriptedDevice

SIZES = (5, 10, 17, 30, 50)
QUICK_SIZES = (5, 10)
MODES = (0, 4, 16)
"""verifiersPerUpdate: 0 = every other participant verifies every update (allowed up to
17 participants: at most MAX_VERIFIERS = 16 verifiers per update)."""
DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "gas.md"
COMMAND = ".venv/bin/python benchmarks/gas_bench.py"


@dataclass(frozen=True)
class Row:
    """Gas of one round with `n` participants and `k` verifiers per update."""

    k: int
    n: int
    assignment: int
    open_round: int
    commit_update: float
    commit_scores: float
    reveal_scores: float
    finalize: int

    @property
    def per_participant(self) -> float:
        """What one participant pays in a round: its three transactions."""
        return self.commit_update + self.commit_scores + self.reveal_scores

    @property
    def mode(self) -> str:
        return "all others (k = 0)" if self.k == 0 else f"{self.k} per update"


class Bench:
    """One embedded chain, one deployment and the wallets of the benchmark."""

    def __init__(self, devices: int) -> None:
        self.chain = Chain.embedded_chain()
        self.deployer, self.owner, self.requester, self.aggregator = (
            new_wallet() for _ in range(4))
        self.devices = [new_wallet() for _ in range(devices)]
        for wallet in (self.deployer, self.owner, self.requester, self.aggregator):
            self.chain.fund(wallet.address, 1_000 * ETHER)
        for device in self.devices:
            self.chain.fund(device.address, 10 * ETHER)
        self.fs: Fedshare = deploy(self.chain, self.deployer)
        Owner(self.fs, self.owner).register_wallets(self.devices)
        # Every row starts from this state (devices registered, nothing owed, no task),
        # so rows differ only by N and k, not by what earlier rows left in storage.
        self.base = self.chain.snapshot()

    def round(self, n: int, k: int) -> Row:
        """Publishes a task for the first `n` devices and plays its one round with the
        protocol's driver and state machines (scripted payloads instead of data);
        reads every transaction's gas from the receipts."""
        self.chain.revert(self.base)
        fs = self.fs
        # No relative quality test (quality_gap = MAX_SCORE): every update that scores
        # is accepted and paid, so finalizeRound credits all N participants.
        params = TaskParams(
            category=b"bench".ljust(32, b"\0"), model_hash=b"\x11" * 32,
            paillier_key_hash=b"\x22" * 32, rounds=1, train_duration=600,
            verify_duration=300, reveal_duration=300, grace_period=900,
            epsilon_budget=10_000_000, reward_per_round=ETHER, min_participants=n,
            max_participants=n, min_quality=0, quality_gap=MAX_SCORE,
            verifiers_per_update=k)
        task_id, _ = fs.tasks.publish(self.requester, params, self.aggregator.address)
        state = Path(tempfile.mkdtemp(prefix="gas-bench-"))
        index = {d.address: i for i, d in enumerate(self.devices[:n])}

        def scores(device: str):
            # Non-zero, varied scores (basis points), so every packed word is written.
            return lambda r, assignment: [1 + (1_000 + 37 * index[device] + 53 * t)
                                          % MAX_SCORE for t in range(len(assignment))]

        roles = [ScriptedAggregator(fs, self.aggregator, task_id, state,
                                    aggregate_hash=lambda r: b"\x33" * 32)]
        roles += [ScriptedDevice(fs, d, task_id, state,
                                 update_hash=lambda r, d=d: bytes(Web3.keccak(
                                     text=f"update:{task_id}:{d.address}")),
                                 epsilon=lambda r: 1_000_000, scores=scores(d.address))
                  for d in self.devices[:n]]
        drive(self.chain, roles, until=lambda: fs.tasks.round_info(task_id, 0).stage
              >= RoundStage.FINALIZED)
        size = fs.tasks.round_info(task_id, 0).assignment_size

        def gas(event: str) -> list[int]:
            return [int(self.chain.w3.eth.get_transaction_receipt(
                e["transactionHash"])["gasUsed"])
                for e in fs.tasks.logs(event, from_block=0, taskId=task_id)]

        commit, scores_gas, reveal = (gas("UpdateCommitted"), gas("ScoresCommitted"),
                                      gas("ScoresRevealed"))
        assert len(commit) == len(scores_gas) == len(reveal) == n
        (open_gas,), (finalize,) = gas("RoundOpened"), gas("RoundFinalized")
        return Row(k, n, size, open_gas, statistics.fmean(commit),
                   statistics.fmean(scores_gas), statistics.fmean(reveal), finalize)


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x"


def render(rows: Sequence[Row], command: str, seconds: float) -> str:
    """The markdown report: one table, growth relative to N = 5 of each mode."""
    base = {r.k: r for r in rows if r.n == min(x.n for x in rows if x.k == r.k)}
    header = (
        f"Regenerate with `{command}` (about {seconds:.0f} s here). Embedded eth-tester "
        f"chain (py-evm), solc {compiler_version()} with the optimizer "
        f"({SOLC_SETTINGS['optimizer']['runs']} runs), EVM {SOLC_SETTINGS['evmVersion']}; "
        f"Python {platform.python_version()}.")
    explain = (
        "One task per row, N participants, one round played to finalisation, each row "
        "from the same state (devices registered, nothing owed yet); gas used from "
        "the receipts. Columns: see benchmarks/README.md. The growth columns divide "
        "by the smallest-N row of the same mode. Every-other verification is allowed "
        "up to 17 participants (at most 16 verifiers per update).")
    columns = (
        "| verification | N | scores per verifier | openRound | commitUpdate | commitScores "
        "| revealScores | per participant | growth | finalizeRound | growth "
        "| finalize / N |")
    lines = ["# Gas of one round", "", header, "", explain, "", columns,
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        b = base[r.k]
        lines.append(
            f"| {r.mode} | {r.n} | {r.assignment} | {r.open_round:,} "
            f"| {r.commit_update:,.0f} | {r.commit_scores:,.0f} | {r.reveal_scores:,.0f} "
            f"| {r.per_participant:,.0f} | {_ratio(r.per_participant, b.per_participant)} "
            f"| {r.finalize:,} | {_ratio(r.finalize, b.finalize)} "
            f"| {r.finalize / r.n:,.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"only N = {', '.join(map(str, QUICK_SIZES))}")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help="markdown file to write (default: %(default)s)")
    args = parser.parse_args(argv)
    sizes = QUICK_SIZES if args.quick else SIZES
    started = time.monotonic()
    bench = Bench(max(sizes))
    rows = []
    for k in MODES:
        for n in sizes:
            if (n - 1 if k == 0 else k) > MAX_VERIFIERS or k >= n:
                continue  # refused at publication (TooManyVerifiers) or same as k = 0
            row = bench.round(n, k)
            print(f"k={k} N={n}: finalize {row.finalize:,} gas", file=sys.stderr)
            rows.append(row)
    command = COMMAND + (" --quick" if args.quick else "")
    report = render(rows, command, time.monotonic() - started)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(report)
    print(f"written to {args.output}", file=sys.stderr)
    return rows


if __name__ == "__main__":
    main()
