# The CDK side of the build, included by the Makefile: the pinned CDK CLI (npm ci from
# package-lock.json) and an offline `cdk synth` of both stages.
#
# Synthesis contacts nothing but the package index (the local bundler's pip): no version
# check, no notices, no telemetry, no instance metadata, and no AWS credentials (the shared
# files are hidden, so no profile is resolved; any SDK call would go to loopback).

# Included once, even when also named with -f.
ifndef INFRA_MK_INCLUDED
INFRA_MK_INCLUDED := 1

CDK := node_modules/.bin/cdk
CDK_STAGES := dev prod
INFRA_TEST_DEPS := node_modules/.installed

CDK_OFFLINE := env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN \
	-u AWS_PROFILE -u AWS_ROLE_ARN -u AWS_WEB_IDENTITY_TOKEN_FILE \
	-u AWS_CONTAINER_CREDENTIALS_FULL_URI -u AWS_CONTAINER_CREDENTIALS_RELATIVE_URI \
	AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_CONFIG_FILE=/dev/null \
	AWS_EC2_METADATA_DISABLED=true AWS_ENDPOINT_URL=http://127.0.0.1:9 \
	CDK_DISABLE_VERSION_CHECK=true CDK_DISABLE_CLI_TELEMETRY=true

node_modules/.installed: package.json package-lock.json .npmrc
	npm ci --ignore-scripts --no-audit --no-fund
	@touch $@

.PHONY: synth
synth: setup node_modules/.installed ## synthesize both stages offline into cdk.out/<stage>/
	@for stage in $(CDK_STAGES); do \
		echo "cdk synth -c stage=$$stage -> cdk.out/$$stage"; \
		$(CDK_OFFLINE) $(CDK) synth -c stage=$$stage --no-notices --quiet \
			--output cdk.out/$$stage || exit 1; \
	done

endif
