# One place for the commands people, pre-commit and CI run.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install assets browser demo test lint format check bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python  ## install heron with the server and dev extras (editable) + UI assets
	scripts/install_build_deps.sh
	$(BIN)/pip install --quiet -e ".[server,dev]"
	$(BIN)/python scripts/build_assets.py

assets: $(BIN)/python  ## rebuild the web UI's npm assets
	$(BIN)/python scripts/build_assets.py

browser:  ## Debian's Chromium for the browser tests (apt; sudo when not root)
	@command -v chromium >/dev/null 2>&1 || scripts/install_chromium.sh

demo: install  ## run the demo: server + two-service shop + traffic
	$(BIN)/heron demo

lint: install  ## ruff lint + format check + mypy on src/
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: install
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

test: install browser  ## the whole test suite
	$(BIN)/pytest

check: lint test  ## what CI runs

bench: install  ## benchmarks (see bench/README.md)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) heron-data heron-demo-data .pytest_cache .mypy_cache .ruff_cache
