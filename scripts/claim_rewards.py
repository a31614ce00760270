#!/usr/bin/env python3
"""An owner claims the rewards of all its devices in one transaction: `fedshare owner
claim` for scripts.

    export FEDSHARE_PASSWORD=...        # password of the keystore file
    python scripts/claim_rewards.py --rpc-url http://127.0.0.1:8545 \
        --deployment .fedshare/deployment.json --keystore owner.json

Every option of `fedshare owner claim --help` applies.
"""

from __future__ import annotations

import sys

from offchain.cli import app

if __name__ == "__main__":
    app(["owner", "claim", *sys.argv[1:]], prog_name="claim_rewards.py")
