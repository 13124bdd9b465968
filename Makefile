# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench check fuzz clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/bridge serve --config bridge.toml

check: $(STAMP)
	$(BIN)/bridge check --config bridge.toml

lint: $(STAMP)
	$(BIN)/ruff check bridge tests bench
	$(BIN)/ruff format --check bridge tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/bridge check --config bridge.toml
	$(BIN)/bridge policy validate policies/*/
	$(BIN)/bridge policy format --check policies/*/
	$(BIN)/bridge policy test policies/*/
	$(BIN)/pytest

# wrk drives the HTTP benchmarks; installed from the distribution when missing (needs root).
# The PostgreSQL figures start a private server of their own (as the tests do); bench.peers
# needs node and npm, and installs its peers into bench/peers/node_modules; it ends with the
# performance goals as ratios (token, evaluation, varied mixes) and the DPoP latency.
bench: $(STAMP)
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python -m bench.authzen
	$(BIN)/python -m bench.token_endpoint
	$(BIN)/python -m bench.token_backends
	$(BIN)/python -m bench.workers
	$(BIN)/python -m bench.peers
	$(BIN)/python -m bench.policy_validate
	$(BIN)/python -m bench.deferral --backend sqlite
	$(BIN)/python -m bench.deferral --backend postgres

# Schemathesis against every operation of openapi/bridge.json on a live bridge configured like
# the demo (fuzz/README.md); a few minutes. FUZZ_ARGS: e.g. --max-examples 100 --seed 1.
fuzz: $(STAMP)
	$(BIN)/ruff check fuzz
	$(BIN)/ruff format --check fuzz
	$(BIN)/mypy --strict fuzz
	$(BIN)/python -m fuzz $(FUZZ_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
