# Deploying with the pinned CDK CLI, included by the Makefile (which defines PY and, through
# infra.mk, CDK). Unlike everything else in the build these targets talk to AWS, with the
# caller's credentials (a profile, SSO, or the environment; in CI the OIDC role).
#
#   make diff    STAGE=dev|prod            what a deploy would change
#   make deploy  STAGE=dev|prod            preflight, cdk deploy, outputs to outputs-STAGE.json,
#                                          smoke test
#   make preflight STAGE=dev|prod          credentials, then Lambda concurrency quota vs the
#                                          stage's reserved concurrency (seconds, read-only)
#   make destroy STAGE=dev                 delete the dev stack (prod is refused)
#   make deploy  STAGE=... ALARM_EMAIL=oncall@example.com   ... and email the stage's alarms
#   make smoke   URL=https://...           the smoke test against any running API
#   make smoke   STAGE=dev                 ... against the ApiUrl in outputs-dev.json
#
# Approvals: `cdk deploy` asks before a change that broadens IAM or security-group access
# (`--require-approval broadening`, the default here and in cdk.json). Without a terminal it
# cannot ask: it stops before touching the stack with "... but terminal (TTY) is not attached
# so we are unable to get a confirmation from the user" (the CLI checks whether stdout is a
# TTY). A pipeline whose approval is elsewhere (a reviewed pull request, a protected
# environment) opts out with APPROVE=never; any-change and destructive are the other choices.
#
# The Makefile exports AWS_EC2_METADATA_DISABLED=true: on an EC2 host whose credentials come
# from its instance profile, run `make deploy STAGE=dev AWS_EC2_METADATA_DISABLED=false`.

# Included once, even when also named with -f.
ifndef DEPLOY_MK_INCLUDED
DEPLOY_MK_INCLUDED := 1

CDK ?= node_modules/.bin/cdk
DEPLOY_STAGES := dev prod
STAGE ?=
APPROVE ?= broadening
URL ?=
SMOKE_ARGS ?=
STACK = UsersApi-$(STAGE)
# The stack inside its CDK Stage (infra/stage.py), as the CLI selects it: Dev/UsersApi-dev.
STAGE_ID_dev := Dev
STAGE_ID_prod := Prod
STACK_PATH = $(STAGE_ID_$(STAGE))/$(STACK)
OUTPUTS_FILE = outputs-$(STAGE).json
# The AWS-facing cdk commands: no version check, no telemetry, no notices; --ci sends the
# logs to stdout and never draws the interactive progress display.
CDK_DEPLOY_ENV := CDK_DISABLE_VERSION_CHECK=true CDK_DISABLE_CLI_TELEMETRY=true
# ALARM_EMAIL=oncall@example.com subscribes that address to the stage's alarm topic.
ALARM_EMAIL ?=
CDK_DEPLOY_FLAGS = -c stage=$(STAGE)$(if $(ALARM_EMAIL), -c alarm_email=$(ALARM_EMAIL)) --ci --no-notices

.PHONY: deploy diff destroy smoke preflight

# Checked when the makefiles are read, so a bad request stops before anything is installed,
# synthesized or sent to AWS.
ifneq ($(filter deploy diff destroy preflight,$(MAKECMDGOALS)),)
ifeq ($(filter $(DEPLOY_STAGES),$(STAGE)),)
$(error make $(filter deploy diff destroy preflight,$(MAKECMDGOALS)): set STAGE=dev or STAGE=prod (got '$(STAGE)'))
endif
ifneq ($(words $(STAGE)),1)
$(error make $(MAKECMDGOALS): set exactly one STAGE (got '$(STAGE)'))
endif
endif
ifneq ($(filter destroy,$(MAKECMDGOALS)),)
ifeq ($(STAGE),prod)
$(error make destroy refuses STAGE=prod: the prod database is deletion-protected and RETAINed; delete the UsersApi-prod stack deliberately in the CloudFormation console if you really mean it)
endif
endif
ifneq ($(filter smoke,$(MAKECMDGOALS)),)
ifeq ($(URL)$(STAGE),)
$(error make smoke: set URL=https://... (the API's base URL) or STAGE=dev|prod (reads its ApiUrl from outputs-STAGE.json))
endif
endif

# Before anything is synthesized or bundled: a deploy that cannot succeed stops in seconds.
preflight: setup ## check AWS credentials and the Lambda concurrency quota for STAGE=dev|prod
	$(PY) -m infra.preflight --stage $(STAGE)

diff: setup node_modules/.installed ## what `make deploy STAGE=dev|prod` would change (needs AWS credentials)
	$(PY) -m infra.preflight --stage $(STAGE)
	$(CDK_DEPLOY_ENV) $(CDK) diff $(STACK_PATH) $(CDK_DEPLOY_FLAGS)

deploy: setup node_modules/.installed ## deploy STAGE=dev|prod, write outputs-STAGE.json, smoke-test it (APPROVE=never in CI)
	$(PY) -m infra.preflight --stage $(STAGE)
	$(CDK_DEPLOY_ENV) $(CDK) deploy $(STACK_PATH) $(CDK_DEPLOY_FLAGS) --require-approval $(APPROVE) \
		--progress events --outputs-file $(OUTPUTS_FILE)
	$(strip $(PY) -m devtools.smoke $(SMOKE_ARGS) --outputs-file $(OUTPUTS_FILE) --stack $(STACK))

# Also checked here, in case destroy is ever reached other than as a command-line goal.
destroy: setup node_modules/.installed ## delete the dev stack (refuses prod); FORCE=yes skips cdk's confirmation
	@if [ "$(STAGE)" = prod ]; then echo "make destroy refuses STAGE=prod" >&2; exit 1; fi
	$(CDK_DEPLOY_ENV) $(CDK) destroy $(STACK_PATH) $(CDK_DEPLOY_FLAGS)$(if $(filter yes,$(FORCE)), --force)

smoke: setup ## smoke-test a running API: URL=https://... or STAGE=dev|prod (SMOKE_TOKEN=... when auth is on)
	$(strip $(PY) -m devtools.smoke $(SMOKE_ARGS) \
		$(if $(URL),'$(URL)',--outputs-file $(OUTPUTS_FILE) --stack $(STACK)))

endif
