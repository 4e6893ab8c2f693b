# Two commands for a newcomer: `make demo` and `make test`. Everything installs into ./.venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# numba's cache does not notice a change in a kernel's callee in another file: key it by the engine's source.
export NUMBA_CACHE_DIR ?= $(CURDIR)/.numba_cache/$(shell cat engine/*.py | cksum | cut -d' ' -f1)

.PHONY: demo test lint bench install dev clean system-deps serve

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed
	$(BIN)/sendwise demo

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

serve: $(VENV)/.installed
	$(BIN)/sendwise serve

# Speed and learning quality; each prints a table and writes JSON under bench-results/ (tens of minutes).
bench: $(VENV)/.installed-dev
	mkdir -p bench-results
	$(BIN)/python benchmarks/engine.py --json bench-results/engine.json
	$(BIN)/python benchmarks/server.py --json bench-results/server.json
	$(BIN)/python benchmarks/learning.py --jobs 2 --json bench-results/learning.json
	$(BIN)/python benchmarks/budgets.py --customers 10000 --jobs 2 --json bench-results/budgets.json

# Real servers and tools: headless Chromium for the dashboard tests, redis-server for the Redis store,
# wrk for the server benchmarks' load. Needs root (CI, a container); without them those tests skip and
# say why, and the benchmarks fall back to their own client.
system-deps:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium redis-server wrk >/dev/null

clean:
	rm -rf $(VENV) .numba_cache .sendwise build *.egg-info
