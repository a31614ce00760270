#!/usr/bin/env python3
"""A requester publishes a learning task with escrowed reward: `fedshare task publish`
for scripts.

    export FEDSHARE_PASSWORD=...        # password of the keystore file
    python scripts/publish_task.py --rpc-url http://127.0.0.1:8545 \
        --deployment .fedshare/deployment.json --keystore requester.json \
        --paillier-key keys/paillier.pub.json --rounds 5 --reward-eth 0.5

Every option of `fedshare task publish --help` applies.
"""

from __future__ import annotations

import sys

from offchain.cli import app

if __name__ == "__main__":
    app(["task", "publish", *sys.argv[1:]], prog_name="publish_task.py")
