# AWS SAM CLI for `sam local ...`, included by the Makefile (which defines PYTHON and SHELL).
# It lives in its own virtualenv: aws-sam-cli pins boto3 exactly, so it cannot share $(VENV).
# Its pins (all transitive) are in requirements/sam.txt, resolved for Python 3.12.

# Included once, even when also named with -f.
ifndef SAM_MK_INCLUDED
SAM_MK_INCLUDED := 1

SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
# The dev stack as `make synth` writes it: in the nested assembly of its CDK Stage
# (infra/stage.py), named after its artifact id (tests/infra/test_cli_synth.py checks it).
SAM_TEMPLATE ?= cdk.out/dev/assembly-Dev/DevUsersApidevB2E2013F.template.json
# What sam local reads: a copy of it without any AWS::Serverless::Application (such as
# CDK's add_rotation_single_user secret rotation, whose template the SAM translator fetches
# from AWS before anything else), asset paths made absolute; devtools/sam_template.py.
SAM_LOCAL_TEMPLATE ?= cdk.out/sam/$(notdir $(SAM_TEMPLATE))
SAM_ENV_VARS := env.json
# sam resolves it as a logical id, a `SamResourceId` metadata value or a 2-3 part aws:cdk:path.
SAM_FUNCTION ?= UsersApiFunction
EVENT ?= events/http-api/health.json

# Nothing may reach AWS or the internet. Telemetry off: SAM_CLI_TELEMETRY=0. SAM CLI has no
# switch for its update check (after most commands, `sam local` ones included, it asks the
# package index for its newest version): it skips the check while the lastVersionCheck stamp
# in <config dir>/metadata.json is under a week old. So it gets a config dir of its own, whose
# stamp (written at install) is in 2100. __SAM_CLI_APP_DIR is the variable SAM CLI reads for it.
export SAM_CLI_TELEMETRY := 0
export __SAM_CLI_APP_DIR := $(CURDIR)/$(SAM_VENV)/sam-home
export AWS_EC2_METADATA_DISABLED := true
# For sam commands only (not exported: other targets keep the caller's): fake credentials, and
# every AWS API endpoint on a closed loopback port. sam reads templates through the SAM
# translator, which fetches any AWS::Serverless::Application from the Serverless Application
# Repository: with this it fails at once instead of calling AWS.
SAM_ENV := AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing \
	AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 AWS_ENDPOINT_URL=http://127.0.0.1:9 \
	AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_CONFIG_FILE=/dev/null

.PHONY: sam-setup sam-invoke sam-start-api sam-local-check sam-template invoke run-lambda

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

# sam local runs the function in a container. Checked before anything is installed, so a
# machine without a runtime gets one clear message at once. One message names all that is
# missing: the container runtime, the synthesized template, the event file.
sam-local-check:
	@missing=""; \
	if command -v docker >/dev/null 2>&1; then \
		if timeout 20 docker info >/dev/null 2>&1; then runtime=docker; \
		else why="the docker CLI is installed but \`docker info\` fails (is the daemon running? is DOCKER_HOST right?)"; fi; \
	else why="no docker CLI on PATH"; fi; \
	if [ -z "$$runtime" ]; then \
		if command -v finch >/dev/null 2>&1; then \
			if timeout 20 finch info >/dev/null 2>&1; then runtime=finch; \
			else why="$$why; finch is installed but \`finch info\` fails (run \`finch vm start\`)"; fi; \
		else why="$$why; no finch CLI on PATH"; fi; \
	fi; \
	if [ -z "$$runtime" ]; then \
		missing="$$missing\n- sam local needs a container runtime (Docker or Finch); none is running here ($$why). Install and start Docker (or Finch), or use \`make invoke EVENT=...\` or \`make run-lambda\` for the Docker-free equivalents."; \
	fi; \
	if [ ! -f "$(SAM_TEMPLATE)" ]; then \
		missing="$$missing\n- $(SAM_TEMPLATE) does not exist: run \`make synth\` first."; \
	fi; \
	if [ "$(CHECK_EVENT)" = yes ] && [ ! -f "$(EVENT)" ]; then \
		missing="$$missing\n- EVENT=$(EVENT) does not exist: pick one under events/ (e.g. EVENT=events/http-api/health.json)."; \
	fi; \
	if [ -n "$$missing" ]; then \
		printf '%b\n' "make $(MAKECMDGOALS): cannot run sam local:$$missing" >&2; exit 1; \
	fi

define sam_check_installed
	@test -x $(SAM) || { echo "SAM CLI missing at $(SAM): run \`make $(SAM_VENV)/.installed\`" >&2; exit 1; }
endef

define sam_local_template
	@test -f "$(SAM_TEMPLATE)" || { echo "$(SAM_TEMPLATE) does not exist: run \`make synth\` first." >&2; exit 1; }
	$(PYTHON) -m devtools.sam_template $(SAM_TEMPLATE) $(SAM_LOCAL_TEMPLATE)
endef

sam-template: ## write the sam-only copy of the synthesized template (cdk.out/sam/)
	$(sam_local_template)

sam-invoke: CHECK_EVENT := yes
sam-invoke: sam-local-check $(SAM_VENV)/.installed ## run one event through the function in a container (EVENT=events/...json)
	$(sam_check_installed)
	$(sam_local_template)
	env $(SAM_ENV) $(SAM) local invoke -t $(SAM_LOCAL_TEMPLATE) $(SAM_FUNCTION) -e $(EVENT) --env-vars $(SAM_ENV_VARS)

sam-start-api: sam-local-check $(SAM_VENV)/.installed ## serve the synthesized API locally through containers (port 3000)
	$(sam_check_installed)
	$(sam_local_template)
	env $(SAM_ENV) $(SAM) local start-api -t $(SAM_LOCAL_TEMPLATE) --env-vars $(SAM_ENV_VARS)

# The same without Docker: the handler imported in-process (devtools/invoke.py and
# devtools/lambda_server.py). env.json's DB_HOST is host.docker.internal (the host as sam's
# containers see it); these run on the host, so e.g. SET=DB_HOST=127.0.0.1.
SET ?=
LAMBDA_PORT ?= 8001

invoke: setup ## run EVENT (one or more files) through the synthesized function in-process, no Docker (SET="KEY=VALUE ...")
	$(PY) -m devtools.invoke --template $(SAM_TEMPLATE) --function $(SAM_FUNCTION) \
		--env-vars $(SAM_ENV_VARS) $(addprefix -e ,$(EVENT)) $(addprefix --set ,$(SET)) $(INVOKE_ARGS)

run-lambda: setup ## serve the API through the Lambda handler on http://$(HOST):$(LAMBDA_PORT) (HTTP API events; SQLite unless DATABASE_URL)
	$(PY) -m users_api.migrate
	$(PY) -m devtools.lambda_server --host $(HOST) --port $(LAMBDA_PORT) $(LAMBDA_SERVER_ARGS)

endif
