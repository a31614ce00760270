"""Gas of one protocol round as the number of participants N grows.

On a fresh embedded chain (eth-tester / py-evm, the contracts compiled as the project
builds them), plays one full round for each N, once with every other participant
verifying every update (verifiersPerUpdate = 0) and once with k = 4 verifiers per update,
and reads gasUsed from the receipts of openRound, commitUpdate, commitScores and
revealScores (mean per participant) and finalizeRound. Writes a markdown table with the
growth relative to N = 5 of the same run.

    .venv/bin/python benchmarks/gas_bench.py            # N = 5, 10, 17, 30, 50
    .venv/bin/python benchmarks/gas_bench.py --quick    # N = 5, 10 (smoke test)

Transactions are sent with an explicit gas limit (the block's), so py-evm's gas
estimation (a dozen EVM runs per transaction) is skipped; receipts report the gas
actually used either way.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
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
from offchain.protocol.commitments import score_commitment
from offchain.protocol.terms import ETHER, MAX_SCORE, MAX_VERIFIERS
from offchain.protocol.types import TaskParams

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
        w3 = self.chain.w3
        self.gas_limit = int(w3.eth.get_block("latest")["gasLimit"])
        self.deployer, self.owner, self.requester, self.aggregator = (
            new_wallet() for _ in range(4))
        self.devices = [new_wallet() for _ in range(devices)]
        for wallet in (self.deployer, self.owner, self.requester, self.aggregator):
            self.chain.fund(wallet.address, 1_000 * ETHER)
        for device in self.devices:
            self.chain.fund(device.address, 10 * ETHER)
        self.fs: Fedshare = deploy(self.chain, self.deployer)
        for device in self.devices:
            consent = self.fs.devices.sign_consent(self.owner.address, device)
            self.send(self.owner, self.fs.devices.functions.registerDevice(
                device.address, device.public_key, consent))
        # Every row starts from this state (devices registered, nothing owed, no task),
        # so rows differ only by N and k, not by what earlier rows left in storage.
        self.base = self.chain.snapshot()

    def send(self, wallet: Wallet, call: Any, value: int = 0) -> int:
        """Sends `call` with the block gas limit; returns the gas it used."""
        w3 = self.chain.w3
        tx = call.build_transaction({
            "from": wallet.address,
            "value": value,
            "gas": self.gas_limit,
            "nonce": w3.eth.get_transaction_count(wallet.address, "pending"),
            "chainId": self.chain.chain_id,
        })
        receipt = w3.eth.wait_for_transaction_receipt(
            w3.eth.send_raw_transaction(wallet.sign_transaction(tx)))
        if receipt["status"] != 1:
            raise RuntimeError(f"{call.fn_name} reverted: {self._why(wallet, call, value)}")
        return int(receipt["gasUsed"])

    def _why(self, wallet: Wallet, call: Any, value: int) -> str:
        try:
            call.call({"from": wallet.address, "value": value})
        except Exception as exc:  # noqa: BLE001 - only to describe the failure
            data = getattr(exc, "data", None)
            return str(self.chain.decoder.decode(data)) if isinstance(data, str) else str(exc)
        return "out of gas or a state change since"

    def round(self, n: int, k: int) -> Row:
        """Publishes a task for the first `n` devices and plays its one round."""
        self.chain.revert(self.base)
        fs, tasks = self.fs, self.fs.tasks.functions
        # No relative quality test (quality_gap = MAX_SCORE): every update that scores
        # is accepted and paid, so finalizeRound credits all N participants.
        params = TaskParams(
            category=b"bench".ljust(32, b"\0"), model_hash=b"\x11" * 32,
            paillier_key_hash=b"\x22" * 32, rounds=1, train_duration=600,
            verify_duration=300, reveal_duration=300, grace_period=900,
            epsilon_budget=10_000_000, reward_per_round=ETHER, min_participants=n,
            max_participants=n, min_quality=0, quality_gap=MAX_SCORE,
            verifiers_per_update=k)
        self.send(self.requester, tasks.publishTask(
            params.as_tuple(), self.aggregator.address, []), value=params.escrow)
        task_id = fs.tasks.count()
        devices = self.devices[:n]
        for device in devices:
            self.send(device, tasks.join(task_id))
        open_gas = self.send(self.aggregator, tasks.openRound(task_id, params.model_hash))
        size = fs.tasks.round_info(task_id, 0).assignment_size

        commit = [self.send(d, tasks.commitUpdate(
            task_id, 0, Web3.keccak(text=f"update:{task_id}:{d.address}"), 1_000_000))
            for d in devices]
        secrets = {}
        scores_gas = []
        for i, device in enumerate(devices):
            # Non-zero, varied scores (basis points), so every packed word is written.
            scores = [1 + (1_000 + 37 * i + 53 * t) % MAX_SCORE for t in range(size)]
            salt = bytes(Web3.keccak(text=f"salt:{task_id}:{device.address}"))
            secrets[device.address] = (scores, salt)
            scores_gas.append(self.send(device, tasks.commitScores(
                task_id, 0, score_commitment(task_id, 0, scores, salt, device.address))))
        reveal = [self.send(d, tasks.revealScores(task_id, 0, *secrets[d.address]))
                  for d in devices]
        finalize = self.send(self.aggregator, tasks.finalizeRound(task_id, 0))
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
