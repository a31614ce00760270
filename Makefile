# Two commands set up and run everything on a fresh machine:
#   make demo   - install what is missing, then run `fedshare demo` on the embedded chain
#   make test   - install what is missing, then run the test suite
# Both are idempotent: installs happen only when pyproject.toml or package-lock.json change.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
ARGS ?=

.PHONY: demo test test-slow setup chain slither gas experiments clean

demo: setup
	$(BIN)/fedshare demo $(ARGS)

test: setup
	$(BIN)/pytest $(ARGS)

test-slow: setup
	$(BIN)/pytest -m slow $(ARGS)

chain: setup
	$(BIN)/fedshare chain up

slither: $(NODE_STAMP)
	scripts/slither.sh $(ARGS)

gas: setup
	$(BIN)/python benchmarks/gas_bench.py $(ARGS)

experiments: setup
	$(BIN)/fedshare experiment all $(ARGS)

setup: $(PY_STAMP) $(NODE_STAMP)

# torch first and pinned: an unpinned torch pulls several GB of CUDA wheels.
$(PY_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[test]"
	touch $@

# `npm install` with the committed lock file: `npm ci` rejects this lock file because
# npm leaves Anvil's optional per-platform packages out of it.
$(NODE_STAMP): package.json package-lock.json
	npm install --no-fund --no-audit --loglevel=error
	touch $@

clean:
	rm -rf $(VENV) .slither-venv node_modules build artifacts cache .fedshare
