# One place for the commands people, pre-commit and CI run.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install install-server assets browser prometheus alertmanager demo wheel test lint format check bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install-server: $(BIN)/python  ## heron with the server, demo and loadtest extras (editable) + UI assets: what the demo needs
	$(BIN)/pip install --quiet -e ".[server,demo,loadtest]"
	$(BIN)/python scripts/build_assets.py

install: install-server  ## + the dev extra (tests, lint, database drivers; apt build deps)
	scripts/install_build_deps.sh
	$(BIN)/pip install --quiet -e ".[server,demo,loadtest,dev]"

assets: $(BIN)/python  ## rebuild the web UI's npm assets
	$(BIN)/python scripts/build_assets.py

browser:  ## Debian's Chromium for the browser tests (apt; sudo when not root)
	@command -v chromium >/dev/null 2>&1 || scripts/install_chromium.sh

prometheus:  ## Debian's Prometheus and promtool for the /metrics tests (apt; sudo when not root)
	@command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || scripts/install_prometheus.sh

alertmanager:  ## Debian's Alertmanager for the alert-push tests (apt; sudo when not root)
	@command -v prometheus-alertmanager >/dev/null 2>&1 || scripts/install_alertmanager.sh

demo: install-server  ## run the demo: server + two-service shop + traffic (+ Chromium on its pages)
	@command -v chromium >/dev/null 2>&1 || scripts/install_chromium.sh || \
		echo "make demo: could not install Chromium; the demo runs without browser traffic"
	$(BIN)/heron demo

wheel: install  ## sdist + wheel in dist/, with the UI assets (hatch_build.py)
	$(BIN)/python -m build --outdir dist

lint: install  ## ruff lint + format check + mypy on src/
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: install
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

test: install browser prometheus alertmanager  ## the whole test suite
	$(BIN)/pytest

check: lint test  ## what CI runs

bench: install  ## benchmarks (see bench/README.md)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) heron-data heron-demo-data dist .pytest_cache .mypy_cache .ruff_cache
