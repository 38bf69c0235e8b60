# Two commands: `make run` (set up and start API + agent locally) and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint services install bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

services:
	scripts/ensure-services.sh

run: install services
	scripts/run-local.sh

test: install services
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: install services
	$(BIN)/python -m bench.latency
	$(BIN)/python -m bench.haproxy

clean:
	rm -rf $(VENV) .run .mypy_cache .ruff_cache .pytest_cache
