#!/usr/bin/env bash
# Slither static analysis of contracts/, fed from Hardhat's build-info (the npm solc
# compiles; Slither needs no native solc). Extra arguments go to slither, e.g.
#   scripts/slither.sh --fail-medium        or        scripts/slither.sh --json out.json
set -euo pipefail
cd "$(dirname "$0")/.."

SLITHER_VENV="${SLITHER_VENV:-.slither-venv}"
if [ ! -x "$SLITHER_VENV/bin/slither" ]; then
  python3 -m venv "$SLITHER_VENV"
  "$SLITHER_VENV/bin/pip" install --quiet "slither-analyzer==0.11.6"
fi
[ -d node_modules ] || npm install --no-fund --no-audit --loglevel=error

# The local hardhat binary, not npx: npm warnings on stderr make crytic-compile drop
# Hardhat's path configuration.
export PATH="$PWD/node_modules/.bin:$PATH"
export HARDHAT_DISABLE_TELEMETRY_PROMPT=true

# One fresh build-info (with ASTs) under artifacts/build-info/.
hardhat compile --force --quiet

exec "$SLITHER_VENV/bin/slither" . \
  --hardhat-ignore-compile \
  --npx-disable \
  --exclude-dependencies \
  "$@"
