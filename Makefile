# The two commands: `make run` serves the API locally, `make test` runs every check.
# Both set themselves up (virtualenv, pinned packages, CDK CLI) on a fresh clone.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Lambda runs Python 3.12: develop on the same minor when this machine has it.
PYTHON ?= $(firstword $(foreach p,python3.12 $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) python3,$(shell $(p) -c 'import sys' >/dev/null 2>&1 && echo $(p))))
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

# Nothing here may reach AWS or any address but loopback.
export AWS_EC2_METADATA_DISABLED := true
export PYTHONPATH := $(CURDIR)/functions:$(CURDIR)
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup run migrate test lint format clean fuzz

# The CDK app's and the SAM CLI's targets.
-include infra.mk sam.mk bench.mk deploy.mk

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements/function.txt requirements/dev.txt
	@test -n "$(PYTHON)" || { echo "No Python 3 interpreter found (set PYTHON=...)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -r requirements/dev.txt
	$(PY) -m pip check
	@touch $@

setup: $(VENV)/.installed ## create the virtualenv with the pinned packages

run: setup ## serve the API on http://$(HOST):$(PORT) (embedded SQLite unless DATABASE_URL is set)
	$(PY) -m users_api.migrate
	$(VENV)/bin/uvicorn users_api.app:app --host $(HOST) --port $(PORT) --app-dir functions

migrate: setup ## apply the migrations to the configured database
	$(PY) -m users_api.migrate

lint: setup ## ruff
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: setup pgbouncer $(INFRA_TEST_DEPS) $(SAM_VENV)/.installed ## run the whole test suite (starts what it needs)
	$(MAKE) --no-print-directory lint
	$(PY) -m pytest $(PYTEST_ARGS)

fuzz: setup ## long runs of schemathesis and the hostile-input property tests (FUZZ_EXAMPLES each, random seeds)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-500} FUZZ_RANDOM=1 $(PY) -m pytest tests/test_fuzz.py tests/test_hostile_input.py -q

# pgbouncer in transaction mode is the tests' stand-in for RDS Proxy (Debian package).
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
.PHONY: pgbouncer
pgbouncer:
	@command -v pgbouncer >/dev/null || test -x /usr/sbin/pgbouncer || { \
		echo "installing pgbouncer (apt-get), the tests' stand-in for RDS Proxy"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends pgbouncer >/dev/null; \
	} || { echo "could not install pgbouncer: install it by hand (apt-get install pgbouncer)" >&2; exit 1; }

clean: ## remove the virtualenv, caches and build output
	rm -rf $(VENV) .pytest_cache .ruff_cache cdk.out .build .data node_modules
