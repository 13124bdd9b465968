# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench check clean

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

test: lint
	$(BIN)/bridge check --config bridge.toml
	$(BIN)/bridge policy validate policies/*/
	$(BIN)/bridge policy format --check policies/*/
	$(BIN)/bridge policy test policies/*/
	$(BIN)/pytest

# wrk drives the HTTP benchmarks; installed from the distribution when missing (needs root).
# bench.peers needs node and npm, and installs its peers into bench/peers/node_modules.
bench: $(STAMP)
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python -m bench.authzen
	$(BIN)/python -m bench.token_endpoint
	$(BIN)/python -m bench.peers
	$(BIN)/python -m bench.policy_validate
	$(BIN)/python -m bench.deferral

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
