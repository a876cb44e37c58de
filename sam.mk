# AWS SAM CLI for `sam local ...`, included by the Makefile (which defines PYTHON and SHELL).
# It lives in its own virtualenv: aws-sam-cli pins boto3 exactly, so it cannot share $(VENV).
# Its pins (all transitive) are in requirements/sam.txt, resolved for Python 3.12.

# Included once, even when also named with -f.
ifndef SAM_MK_INCLUDED
SAM_MK_INCLUDED := 1

SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
# The dev stack as `make synth` writes it, in the nested assembly of its CDK Stage
# (infra/stage.py), named after its artifact id (tests/infra/test_cli_synth.py checks it);
# sam reads it (and its cdk.out/ assets) as is.
SAM_DEFAULT_TEMPLATE := cdk.out/dev/assembly-Dev/DevUsersApidevB2E2013F.template.json
SAM_TEMPLATE ?= $(SAM_DEFAULT_TEMPLATE)
SAM_ENV_VARS := env.json
# sam resolves it as a logical id, a `SamResourceId` metadata value or a 2-3 part aws:cdk:path.
SAM_FUNCTION ?= UsersApiFunction
EVENT ?= events/http-api/health.json
# The PostgreSQL on this machine that the function reaches as env.json's host.docker.internal.
SAM_DB ?= 127.0.0.1:5432
SAM_PORT ?= 3000

# Nothing may reach AWS or the internet. Telemetry off: SAM_CLI_TELEMETRY=0. SAM CLI has no
# switch for its update check (after most commands, `sam local` ones included, it asks the
# package index for its newest version): it skips the check while the lastVersionCheck stamp
# in <config dir>/metadata.json is under a week old. So it gets a config dir of its own, whose
# stamp (written at install) is in 2100. __SAM_CLI_APP_DIR is the variable SAM CLI reads for it.
export SAM_CLI_TELEMETRY := 0
export __SAM_CLI_APP_DIR := $(CURDIR)/$(SAM_VENV)/sam-home
export AWS_EC2_METADATA_DISABLED := true
# The sam commands themselves (devtools/sam_local.py) add fake credentials, every AWS API
# endpoint on a closed loopback port and AWS_MAX_ATTEMPTS=1 (sam asks STS for the caller
# before each invoke: with botocore's retries that costs about 10 s per command).

.PHONY: sam-setup sam-invoke sam-start-api sam-local-check sam-images sam-images-remove podman invoke run-lambda

$(SAM_VENV)/.installed: requirements/sam.txt
	@test -n "$(PYTHON)" || { echo "No Python 3 interpreter found (set PYTHON=...)" >&2; exit 1; }
	$(PYTHON) -m venv --clear $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements/sam.txt
	$(SAM_VENV)/bin/python -m pip check --disable-pip-version-check
	mkdir -p $(__SAM_CLI_APP_DIR)
	printf '%s\n' '{"telemetryEnabled": false, "lastVersionCheck": 4102444800.0}' > $(__SAM_CLI_APP_DIR)/metadata.json
	$(SAM) --version
	@touch $@

sam-setup: $(SAM_VENV)/.installed ## install the SAM CLI in .venv-sam

# podman (with runc) serves sam the Docker API where no Docker or Finch runs (Debian packages).
podman:
	@{ command -v podman && command -v runc; } >/dev/null || { \
		echo "installing podman and runc (apt-get), the container engine for sam local"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends podman runc >/dev/null; \
	} || { echo "could not install podman: install it by hand (apt-get install podman runc)" >&2; exit 1; }

# Which engine sam local will use (Docker, Finch, else podman, installed here when missing),
# checked with the system Python before anything else, so a machine where none can run gets
# one clear message at once.
sam-local-check:
	@$(PYTHON) -m devtools.container_engine >/dev/null 2>&1 || \
		{ command -v apt-get >/dev/null && $(MAKE) --no-print-directory podman >&2; }; \
		$(PYTHON) -m devtools.container_engine >/dev/null
	@test "$(CHECK_EVENT)" != yes || test -f "$(EVENT)" || { echo "EVENT=$(EVENT) does not exist: pick one under events/ (e.g. EVENT=events/http-api/health.json)" >&2; exit 1; }

# Synthesized when missing (a template named by SAM_TEMPLATE=... is the caller's to make).
$(SAM_DEFAULT_TEMPLATE):
	$(MAKE) --no-print-directory synth
SAM_TEMPLATE_DEP = $(filter $(SAM_DEFAULT_TEMPLATE),$(SAM_TEMPLATE))

# Docker or Finch: sam with the real Lambda image. podman: the local look-alike image, the
# template for this machine's architecture, PostgreSQL relayed to the project's network
# (devtools/sam_local.py); the podman service it starts stops with it.
SAM_LOCAL := $(PY) -m devtools.sam_local
SAM_LOCAL_ARGS = -t $(SAM_TEMPLATE) -f $(SAM_FUNCTION) --env-vars $(SAM_ENV_VARS) --db $(SAM_DB)

sam-invoke: CHECK_EVENT := yes
sam-invoke: sam-local-check $(SAM_VENV)/.installed setup $(SAM_TEMPLATE_DEP) ## run EVENT through the function in a container (Docker, Finch or podman)
	$(SAM_LOCAL) invoke $(SAM_LOCAL_ARGS) -e $(EVENT)

sam-start-api: sam-local-check $(SAM_VENV)/.installed setup $(SAM_TEMPLATE_DEP) ## serve the API through containers on port $(SAM_PORT) (WARM=1: warm containers)
	$(SAM_LOCAL) start-api $(SAM_LOCAL_ARGS) --port $(SAM_PORT) $(if $(WARM),--warm)

sam-images: podman $(SAM_VENV)/.installed setup ## build the local look-alike Lambda images for podman (no registry needed)
	$(PY) -m devtools.lambda_image build

sam-images-remove: ## remove the local Lambda images (they are rebuilt on first use)
	$(PY) -m devtools.lambda_image remove

# The same without Docker: the handler imported in-process (devtools/invoke.py and
# devtools/lambda_server.py). env.json's DB_HOST, host.docker.internal (the host as sam's
# containers see it), is 127.0.0.1 here; invoke migrates that database first.
SET ?=
LAMBDA_PORT ?= 8001

invoke: setup $(SAM_TEMPLATE_DEP) ## run EVENT (one or more files) through the synthesized function in-process, no Docker (SET="KEY=VALUE ...")
	$(PY) -m devtools.invoke --migrate --template $(SAM_TEMPLATE) --function $(SAM_FUNCTION) \
		--env-vars $(SAM_ENV_VARS) $(addprefix -e ,$(EVENT)) $(addprefix --set ,$(SET)) $(INVOKE_ARGS)

run-lambda: setup ## serve the API through the Lambda handler on http://$(HOST):$(LAMBDA_PORT) (HTTP API events; SQLite unless DATABASE_URL)
	$(PY) -m users_api.migrate
	$(PY) -m devtools.lambda_server --host $(HOST) --port $(LAMBDA_PORT) $(LAMBDA_SERVER_ARGS)

endif
