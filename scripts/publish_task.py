#!/usr/bin/env python3
"""A requester publishes a learning task with escrowed reward against any RPC URL.

    export FEDSHARE_PASSWORD=...        # password of the keystore file
    python scripts/publish_task.py --rpc-url http://127.0.0.1:8545 \
        --deployment .fedshare/deployment.json --keystore requester.json \
        --paillier-key requester.pub.json --rounds 5 --reward-eth 0.5

Without --keystore the key is read from FEDSHARE_PRIVATE_KEY. The initial model is
stored in --blobs and its content hash goes on chain; the task id is printed.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from offchain.chain.accounts import load_wallet
from offchain.chain.contracts import Fedshare
from offchain.chain.node import Chain
from offchain.crypto import load_public_key
from offchain.errors import ConfigError, FedshareError
from offchain.learning.model import ModelSpec, initial_vector
from offchain.protocol.plan import TaskPlan
from offchain.protocol.terms import DEFAULTS, ETHER
from offchain.roles.requester import publish_task
from offchain.storage import LocalExchange


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rpc-url", required=True)
    parser.add_argument("--deployment", type=Path, required=True,
                        help="deployment.json written by 'fedshare deploy'")
    parser.add_argument("--keystore", type=Path, help="V3 keystore of the requester")
    parser.add_argument("--paillier-key", type=Path, required=True,
                        help="the requester's Paillier public-key file")
    parser.add_argument("--aggregator", help="address of the aggregator (optional)")
    parser.add_argument("--exchange", type=Path, default=Path(".fedshare/exchange"),
                        help="directory of blobs and letters the parties share")
    parser.add_argument("--category", default="mnist-digits")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--train-duration", type=int, default=600,
                        help="seconds to train and commit updates (T1)")
    parser.add_argument("--verify-duration", type=int, default=300,
                        help="seconds to commit scores (T2)")
    parser.add_argument("--reveal-duration", type=int, default=300,
                        help="seconds to reveal scores (T3)")
    parser.add_argument("--grace-period", type=int, default=900,
                        help="stall after which anyone may cancel")
    parser.add_argument("--epsilon-budget", type=float, default=10.0,
                        help="most ε a device may spend in the task (δ = 1e-5)")
    parser.add_argument("--verifiers-per-update", type=int, default=0,
                        help="0 = every other participant verifies every update")
    parser.add_argument("--allow", action="append", default=[],
                        help="device or owner address allowed to join (repeatable); "
                        "none = anyone registered")
    parser.add_argument("--reward-eth", type=float, default=0.5, help="reward per round")
    parser.add_argument("--min-participants", type=int, default=3)
    parser.add_argument("--max-participants", type=int, default=8)
    parser.add_argument("--min-quality", type=int, default=0, help="basis points")
    parser.add_argument("--quality-gap", type=int, default=DEFAULTS.quality_gap,
                        help="basis points below the round's median quality an accepted "
                        "update may score (10000 = no relative test)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial model")
    args = parser.parse_args(argv)
    try:
        if not math.isfinite(args.reward_eth) or args.reward_eth <= 0:
            raise ConfigError(f"--reward-eth must be a finite number > 0, got {args.reward_eth}")
        plan = TaskPlan(category=args.category, rounds=args.rounds,
                        train_duration=args.train_duration,
                        verify_duration=args.verify_duration,
                        reveal_duration=args.reveal_duration,
                        grace_period=args.grace_period,
                        epsilon_budget=args.epsilon_budget,
                        reward_per_round=int(args.reward_eth * ETHER),
                        min_participants=args.min_participants,
                        max_participants=args.max_participants,
                        min_quality=args.min_quality,
                        quality_gap=args.quality_gap,
                        verifiers_per_update=args.verifiers_per_update,
                        allow_list=tuple(args.allow))
        wallet = load_wallet(args.keystore)
        key = load_public_key(args.paillier_key)
        # Checks the chain id and the code at every address before any value moves.
        fs = Fedshare.attach(Chain.connect(args.rpc_url), args.deployment)
        task_id = publish_task(fs, wallet, LocalExchange(args.exchange), plan,
                               initial_vector(ModelSpec(), seed=args.seed), key.key_id,
                               args.aggregator)
    except FedshareError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"task {task_id} published by {wallet.address}: escrow "
          f"{plan.escrow / ETHER} ETH")
    return 0


if __name__ == "__main__":
    sys.exit(main())
