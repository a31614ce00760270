#!/usr/bin/env python3
"""An owner claims the rewards of all its devices in one transaction.

    export FEDSHARE_PASSWORD=...        # password of the keystore file
    python scripts/claim_rewards.py --rpc-url http://127.0.0.1:8545 \
        --deployment .fedshare/deployment.json --keystore owner.json

Without --keystore the key is read from FEDSHARE_PRIVATE_KEY. Prints each device's
balance and the total claimed to the owner's master wallet.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from offchain.chain.accounts import load_wallet
from offchain.chain.contracts import Fedshare
from offchain.chain.node import Chain
from offchain.errors import FedshareError
from offchain.protocol.terms import ETHER
from offchain.roles.owner import Owner


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rpc-url", required=True)
    parser.add_argument("--deployment", type=Path, required=True)
    parser.add_argument("--keystore", type=Path, help="V3 keystore of the owner")
    args = parser.parse_args(argv)
    try:
        wallet = load_wallet(args.keystore)
        owner = Owner(Fedshare.attach(Chain.connect(args.rpc_url), args.deployment),
                      wallet)
        balances = owner.unclaimed()
        claimed = owner.claim()
    except FedshareError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return exc.exit_code
    for device, wei in balances.items():
        print(f"{device}: {wei / ETHER} ETH")
    print(f"claimed {claimed / ETHER} ETH to {wallet.address}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
