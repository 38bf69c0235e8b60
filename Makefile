# Two commands: `make run` (set up and start API, agent and a HAProxy device locally) and
# `make test`.
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# What setuptools prints about every editable install: noise, not news.
QUIET_BUILD := BuildBackendWarning|^ *!!|^ *\*+$$|careful with folders|name as your package|WheelFile|^ *$$

.PHONY: run test test-compose lint services install bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@echo "installing lbaas and its test tools into $(VENV)"
	@log=$$(mktemp); status=0; $(BIN)/pip install --quiet -e '.[test]' >"$$log" 2>&1 || status=$$?; \
	grep -vE "$(QUIET_BUILD)" "$$log"; rm -f "$$log"; exit $$status
	touch $(STAMP)

install: $(STAMP)

services:
	scripts/ensure-services.sh

run: install services
	scripts/run-local.sh

test: install services
	$(BIN)/pytest

# The compose stack built and run for real; sets up the engine, compose and a base image if missing.
test-compose: install
	scripts/compose-test.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: install services
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.state
	$(BIN)/python -m bench.devices
	$(BIN)/python -m bench.latency
	$(BIN)/python -m bench.haproxy
	$(BIN)/python -m bench.unauthenticated
	$(BIN)/python -m bench.memory

clean:
	rm -rf $(VENV) .run .mypy_cache .ruff_cache .pytest_cache
