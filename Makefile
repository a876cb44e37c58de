# The two commands: `make run` serves the API locally, `make test` runs every check.
# Both set themselves up on a fresh clone. `make run` installs only what serving needs
# (requirements/local.txt); the test, CDK and lint tools (requirements/dev.txt), the CDK CLI
# and the SAM CLI come with the first target that needs them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Lambda runs Python 3.12: develop on the same minor when it is installed.
PYTHON ?= $(firstword $(foreach p,python3.12 $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) python3,$(shell $(p) -c 'import sys' >/dev/null 2>&1 && echo $(p))))
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# `make run` logs one readable line per request; LOG_FORMAT=json gives Lambda's JSON lines.
LOG_FORMAT ?= text
MSG ?=

# Nothing here may reach AWS or any address but loopback.
export AWS_EC2_METADATA_DISABLED := true
export PYTHONPATH := $(CURDIR)/functions:$(CURDIR)
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup setup-local run migrate migration test lint format lock clean fuzz

# The CDK app's and the SAM CLI's targets.
-include infra.mk sam.mk bench.mk deploy.mk

# Each `## text` after a target is its help line; $(VARIABLE)s in it print expanded.
HELP_VARS = $(sort $(shell grep -hoE '^[a-zA-Z_.-]+:.*\#\# .*' $(MAKEFILE_LIST) | grep -oE '\$$\([A-Z_]+\)' | tr -d '$$()'))
help: ## list the targets
	@grep -hE '^[a-zA-Z_.-]+:.*## ' $(MAKEFILE_LIST) \
		| sed $(foreach v,$(HELP_VARS),-e 's|$$($(v))|$(subst |,\|,$($(v)))|g') \
		| awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# Hash-checked installs (--require-hashes): every file pip fetches must match the lock.
PIP_INSTALL := $(PY) -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes

$(PY):
	@test -n "$(PYTHON)" || { echo "No Python 3 interpreter found (set PYTHON=...)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

# What serving needs: the function's runtime pins, uvicorn and aiosqlite.
$(VENV)/.installed-local: requirements/local.txt | $(PY)
	$(PIP_INSTALL) -r requirements/local.txt
	$(PY) -m pip check --disable-pip-version-check
	@touch $@

# Everything else: the test tools, the CDK app's libraries, ruff, mypy and uv.
$(VENV)/.installed: requirements/dev.txt | $(PY)
	$(PIP_INSTALL) -r requirements/dev.txt
	$(PY) -m pip check --disable-pip-version-check
	@touch $@

setup-local: $(VENV)/.installed-local ## the virtualenv with what `make run` needs

setup: $(VENV)/.installed ## the virtualenv with every pinned package (tests, CDK, lint)

run: $(VENV)/.installed-local ## serve on http://$(HOST):$(PORT) (SQLite unless DATABASE_URL; LOG_FORMAT=$(LOG_FORMAT))
	LOG_FORMAT=$(LOG_FORMAT) $(PY) -m users_api.migrate
	LOG_FORMAT=$(LOG_FORMAT) $(VENV)/bin/uvicorn users_api.app:app --host $(HOST) --port $(PORT) \
		--app-dir functions --no-access-log

migrate: $(VENV)/.installed-local ## apply the migrations to the configured database
	$(PY) -m users_api.migrate

# Autogenerate compares the models with a scratch database migrated to head: a throwaway
# SQLite file, or SCRATCH_DATABASE_URL (an empty PostgreSQL database, which also compares
# server defaults). The batch operations it writes run on both. Review the file it writes.
SCRATCH_DATABASE_URL ?=
migration: $(VENV)/.installed-local ## new Alembic revision from the models: MSG="add phone"
	@test -n "$(MSG)" || { echo 'make migration: say what it changes, e.g. MSG="add phone"' >&2; exit 1; }
	@scratch=$$(mktemp -d) && trap 'rm -rf "$$scratch"' EXIT && \
	export DATABASE_URL="$${SCRATCH_DATABASE_URL:-sqlite+aiosqlite:///$$scratch/scratch.db}" && \
	$(VENV)/bin/alembic upgrade head && \
	$(VENV)/bin/alembic revision --autogenerate -m "$(MSG)" \
		--rev-id "$$(printf '%04d' $$(( $$(ls functions/users_api/migrations/versions | grep -cE '^[0-9]{4}_') + 1 )))"

lint: setup ## ruff (lint and format) and mypy --strict on functions/
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: setup ## ruff --fix and ruff format
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# One lock tool (uv), one input (pyproject.toml; sam.in for the SAM CLI). Each set is
# constrained by the one it extends, so the Lambda runs the versions the tests ran.
# function.txt is resolved for the Lambda platform; the others for any OS (markers).
UV_COMPILE = $(VENV)/bin/uv pip compile --quiet --generate-hashes --python-version 3.12 \
	--custom-compile-command "make lock" $(LOCK_ARGS)
lock: setup ## re-resolve requirements/*.txt from pyproject.toml (LOCK_ARGS=--upgrade)
	$(UV_COMPILE) pyproject.toml --python-platform aarch64-manylinux_2_28 -o requirements/function.txt
	$(UV_COMPILE) pyproject.toml --universal --extra local -c requirements/function.txt -o requirements/local.txt
	$(UV_COMPILE) pyproject.toml --universal --extra dev -c requirements/local.txt -o requirements/dev.txt
	$(UV_COMPILE) requirements/sam.in --universal -o requirements/sam.txt

test: setup pgbouncer chromium podman $(INFRA_TEST_DEPS) $(SAM_VENV)/.installed ## run the whole test suite (starts what it needs)
	$(MAKE) --no-print-directory lint
	$(PY) -m pytest $(PYTEST_ARGS)

fuzz: setup ## long runs of schemathesis and the hostile-input property tests (FUZZ_EXAMPLES each, random seeds)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-500} FUZZ_RANDOM=1 $(PY) -m pytest tests/test_fuzz.py tests/test_hostile_input.py -q

# Debian packages the tests use: pgbouncer in transaction mode stands in for RDS Proxy;
# headless Chromium renders /docs with the network limited to loopback.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
define apt_install
	$(SUDO) apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
		--no-install-recommends $(1) >/dev/null
endef
.PHONY: pgbouncer chromium
pgbouncer: ## install pgbouncer (apt), the tests' stand-in for RDS Proxy
	@command -v pgbouncer >/dev/null || test -x /usr/sbin/pgbouncer || { \
		echo "installing pgbouncer (apt-get), the tests' stand-in for RDS Proxy"; \
		$(call apt_install,pgbouncer); \
	} || { echo "could not install pgbouncer: install it by hand (apt-get install pgbouncer)" >&2; exit 1; }

chromium: ## install Chromium (apt), the browser the /docs test drives headless
	@command -v chromium >/dev/null || { \
		echo "installing chromium (apt-get), the browser that renders /docs in the tests"; \
		$(call apt_install,chromium); \
	} || { echo "could not install chromium: install it by hand (apt-get install chromium)" >&2; exit 1; }

clean: ## remove the virtualenvs, caches and build output
	rm -rf $(VENV) .venv-sam .pytest_cache .ruff_cache .mypy_cache cdk.out .build .data node_modules
