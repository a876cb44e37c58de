"""A CDK Pipelines stack that deploys the users API: source -> test and synth -> dev (smoke
test) -> manual approval -> prod (smoke test). Opt-in by context:

    cdk deploy UsersApiPipeline -c pipeline=true \\
        -c connection_arn=arn:aws:codeconnections:eu-west-1:123456789012:connection/abcd-... \\
        -c repo=owner/name [-c branch=main] \\
        [-c pipeline_account=123456789012 -c pipeline_region=eu-west-1] \\
        [-c dev_account=... -c prod_account=...] [-c availability_zones=eu-west-1a,eu-west-1b]

With `pipeline=true` the app holds this stack and the two stages it deploys, each built by
infra/stage.py exactly as `make deploy` builds it (same construct paths, so the same logical
ids, and the same context overrides read by `settings_from_context`): the pipeline is a thin
wrapper that may take over a stack `make deploy` created, and the other way round.

- Source: a CodeConnections connection (GitHub, GitLab, Bitbucket), created and authorised
  once in the console; its ARN is `connection_arn`.
- Synth: one CodeBuild step runs `make test` (it sets itself up: virtualenv, pins, CDK CLI,
  PostgreSQL from pip's pgserver) and then `cdk synth` with the same context as this app.
  The image is CodeBuild's standard 7.0 with Python 3.12 (the Lambda runtime's) and Node 22.
- The pipeline updates itself (self-mutation), publishes the Lambda asset, then deploys dev,
  smoke-tests it (`python -m devtools.smoke "$API_URL"`, the stage's `ApiUrl` output), waits
  for a manual approval, deploys prod and smoke-tests it.
- Account and region of the pipeline come from `pipeline_account` / `pipeline_region`, else
  from the CLI's credentials (CDK_DEFAULT_ACCOUNT / CDK_DEFAULT_REGION). The stages deploy
  to `dev_account` / `prod_account` (default: the pipeline's account) in the same region;
  other accounts must be bootstrapped with `--trust PIPELINE_ACCOUNT`. The artifacts and
  the CodeBuild projects are encrypted with the pipeline's own KMS key, rotated yearly
  (CDK's cross-account keys: needed for other accounts, and kept for one account too).
- A stack with an explicit account and region would look up the region's availability zones
  (for the VPC) at synthesis: the stages get them from context instead, `availability_zones`
  (default: the region's `a` and `b` zones), so nothing is looked up, the pipeline's synth
  needs no lookup role, and synthesis needs no AWS credentials.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import (
    App,
    CfnElement,
    Duration,
    Environment,
    Stack,
    pipelines,
)
from aws_cdk import aws_codebuild as codebuild
from constructs import Construct

from infra.config import parse_bool_context, settings_from_context
from infra.nag import acknowledge, add_nag_checks, arn_in_finding
from infra.stage import UsersApiStage

ROOT = Path(__file__).resolve().parent.parent
PIPELINE_STACK_NAME = "UsersApiPipeline"
PIPELINE_NAME = "UsersApi"
DEFAULT_BRANCH = "main"
BUILD_IMAGE = codebuild.LinuxBuildImage.STANDARD_7_0
RUNTIME_VERSIONS = {"python": "3.12", "nodejs": "22"}
# The asset publishing tool the pipeline installs with npm (CDK Pipelines' default: latest).
CDK_ASSETS_VERSION = "4.7.3"

_CONNECTION_ARN = re.compile(
    r"^arn:aws[a-z-]*:(codeconnections|codestar-connections):[a-z0-9-]+:\d{12}:"
    r"connection/[A-Za-z0-9-]+$"
)
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_BRANCH = re.compile(r"^[^\s~^:?*\[\\]+$")
_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_ZONES = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+[a-z](,[a-z]{2}(-[a-z]+)+-\d+[a-z])+$")


# Context keys that change a stage's settings (read by infra.config.settings_from_context).
STAGE_OVERRIDES = ("auth", "alarm_email")


class PipelineConfigError(ValueError):
    """`-c pipeline=true` with missing or malformed context: the message says what to pass."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineSettings:
    connection_arn: str
    repo: str  # owner/name
    branch: str
    account: str  # of the pipeline
    region: str  # of the pipeline and both stages
    dev_account: str
    prod_account: str
    availability_zones: tuple[str, ...]  # of the region, at least two (the VPC spans two)
    # The stage overrides given as context (`auth`, `alarm_email`), passed on unchanged.
    stage_overrides: dict[str, str]

    @property
    def cross_account(self) -> bool:
        return {self.dev_account, self.prod_account} != {self.account}

    def context(self) -> dict[str, str]:
        """The context that reproduces these settings (passed on by the synth step)."""
        return {
            "connection_arn": self.connection_arn,
            "repo": self.repo,
            "branch": self.branch,
            "pipeline_account": self.account,
            "pipeline_region": self.region,
            "dev_account": self.dev_account,
            "prod_account": self.prod_account,
            "availability_zones": ",".join(self.availability_zones),
            **self.stage_overrides,
        }


def pipeline_settings(app: App) -> PipelineSettings:
    """The pipeline's settings from the app's context; one error that names every problem."""

    def get(key: str, default: str | None = None) -> str | None:
        value = app.node.try_get_context(key)
        return default if value is None or str(value).strip() == "" else str(value).strip()

    connection_arn = get("connection_arn")
    repo = get("repo")
    branch = get("branch", DEFAULT_BRANCH)
    account = get("pipeline_account", os.environ.get("CDK_DEFAULT_ACCOUNT"))
    region = get("pipeline_region", os.environ.get("CDK_DEFAULT_REGION"))
    dev_account = get("dev_account", account)
    prod_account = get("prod_account", account)
    zones = get("availability_zones", f"{region}a,{region}b" if region else None)

    problems = []

    def need(key: str, value: str | None, pattern: re.Pattern[str], example: str) -> None:
        if value is None:
            problems.append(f"-c {key}={example} (missing)")
        elif not pattern.match(value):
            problems.append(f"-c {key}={example} (got {value!r})")

    need(
        "connection_arn",
        connection_arn,
        _CONNECTION_ARN,
        "arn:aws:codeconnections:REGION:ACCOUNT:connection/ID",
    )
    need("repo", repo, _REPO, "OWNER/NAME")
    need("branch", branch, _BRANCH, DEFAULT_BRANCH)
    need("pipeline_account", account, _ACCOUNT, "123456789012")
    need("pipeline_region", region, _REGION, "eu-west-1")
    if account is not None:
        need("dev_account", dev_account, _ACCOUNT, "123456789012")
        need("prod_account", prod_account, _ACCOUNT, "123456789012")
    if region is not None and _REGION.match(region):
        need("availability_zones", zones, _ZONES, f"{region}a,{region}b")
        if (
            zones
            and _ZONES.match(zones)
            and any(not z.startswith(region) for z in zones.split(","))
        ):
            problems.append(f"-c availability_zones=... (got {zones!r}: not all in {region})")
    if problems:
        raise PipelineConfigError(
            "-c pipeline=true needs these context values: " + "; ".join(problems)
        )
    return PipelineSettings(
        connection_arn=str(connection_arn),
        repo=str(repo),
        branch=str(branch),
        account=str(account),
        region=str(region),
        dev_account=str(dev_account),
        prod_account=str(prod_account),
        availability_zones=tuple(str(zones).split(",")),
        stage_overrides={
            key: str(app.node.try_get_context(key))
            for key in STAGE_OVERRIDES
            if app.node.try_get_context(key) is not None
        },
    )


def cdk_cli_version() -> str:
    """The CDK CLI version package.json pins: self-mutation and asset publishing use it too."""
    package = json.loads((ROOT / "package.json").read_text())
    return package["devDependencies"]["aws-cdk"]


def _synth_command(settings: PipelineSettings) -> str:
    """`cdk synth` with this app's context: the pipeline synthesizes itself as first deployed
    (self-mutation would otherwise drop whatever the command left out)."""
    context = " ".join(
        f"-c {shlex.quote(f'{key}={value}')}" for key, value in settings.context().items()
    )
    return f"node_modules/.bin/cdk synth -c pipeline=true {context} --ci --no-notices"


def _smoke_step(
    step_id: str, stage: UsersApiStage, source: pipelines.IFileSetProducer
) -> pipelines.CodeBuildStep:
    """The smoke test of `stage`'s API, from the repository's source (standard library only,
    nothing to install)."""
    return pipelines.CodeBuildStep(
        step_id,
        input=source,
        env_from_cfn_outputs={"API_URL": stage.api_url},
        commands=['python -m devtools.smoke --timeout 15 "$API_URL"'],
        timeout=Duration.minutes(10),
    )


class PipelineStack(Stack):
    def __init__(self, scope: Construct, *, settings: PipelineSettings) -> None:
        super().__init__(
            scope,
            PIPELINE_STACK_NAME,
            stack_name=PIPELINE_STACK_NAME,
            env=Environment(account=settings.account, region=settings.region),
            description="users API delivery pipeline: test, dev, approval, prod",
        )
        self.settings = settings
        source = pipelines.CodePipelineSource.connection(
            settings.repo,
            settings.branch,
            connection_arn=settings.connection_arn,
            trigger_on_push=True,
        )
        self.synth_step = pipelines.CodeBuildStep(
            "Synth",
            input=source,
            commands=["make test", "make node_modules/.installed", _synth_command(settings)],
            primary_output_directory="cdk.out",
            timeout=Duration.minutes(60),
        )
        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            pipeline_name=PIPELINE_NAME,
            synth=self.synth_step,
            cli_version=cdk_cli_version(),
            cdk_assets_cli_version=CDK_ASSETS_VERSION,
            # A customer-managed, rotated KMS key for the artifacts and the CodeBuild
            # projects, needed anyway when a stage is in another account.
            cross_account_keys=True,
            enable_key_rotation=True,
            code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=codebuild.BuildEnvironment(
                    build_image=BUILD_IMAGE,
                    compute_type=codebuild.ComputeType.MEDIUM,
                ),
                partial_build_spec=codebuild.BuildSpec.from_object(
                    {"phases": {"install": {"runtime-versions": RUNTIME_VERSIONS}}}
                ),
            ),
        )

        # The stages sit beside this stack, directly under the app, as `make deploy` builds
        # them: the same construct paths give the same logical ids.
        app = self.node.scope
        assert app is not None
        self.dev = self._stage(app, "dev", settings.dev_account)
        self.pipeline.add_stage(self.dev, post=[_smoke_step("SmokeTestDev", self.dev, source)])
        self.prod = self._stage(app, "prod", settings.prod_account)
        self.pipeline.add_stage(
            self.prod,
            pre=[
                pipelines.ManualApprovalStep(
                    "PromoteToProd",
                    comment="Dev is deployed and its smoke test passed: deploy to prod?",
                )
            ],
            post=[_smoke_step("SmokeTestProd", self.prod, source)],
        )
        # Constructs of the pipeline are created on build_pipeline(); acknowledge after it.
        self.pipeline.build_pipeline()
        _acknowledge_pipeline_findings(self)

    def _stage(self, app: Construct, name: str, account: str) -> UsersApiStage:
        return UsersApiStage(
            app,
            settings=settings_from_context(self.node, name),
            env=Environment(account=account, region=self.settings.region),
            availability_zones=self.settings.availability_zones,
        )


def _ref(stack: Stack, element: CfnElement) -> str:
    """How cdk-nag names a reference to `element` inside a finding id."""
    return f"<{stack.get_logical_id(element)}>"


def _acknowledge_pipeline_findings(stack: PipelineStack) -> None:
    """The cdk-nag findings on what CDK Pipelines generates, each acknowledged on the construct
    that carries it, with the exact finding id (nothing else on that construct is hidden)."""
    _acknowledge_artifact_findings(stack)
    _acknowledge_build_role_findings(stack)


def _acknowledge_artifact_findings(stack: PipelineStack) -> None:
    """The artifact bucket and its KMS key."""
    pipeline = stack.pipeline
    artifacts = pipeline.pipeline.artifact_bucket
    acknowledge(
        artifacts,
        "AwsSolutions-S1",
        "The artifact bucket only passes source and cloud-assembly zips between this "
        "pipeline's own actions (KMS-encrypted, TLS-only, no public access); CloudTrail "
        "records who used it, and access logs would need a second bucket just for that.",
    )
    cfn_bucket = artifacts.node.default_child
    assert isinstance(cfn_bucket, CfnElement)
    bucket_arn = f"<{stack.get_logical_id(cfn_bucket)}.Arn>"
    for finding in (
        "Action::s3:Abort*",
        "Action::s3:DeleteObject*",
        "Action::s3:GetBucket*",
        "Action::s3:GetObject*",
        "Action::s3:List*",
        f"Resource::{bucket_arn}/*",
    ):
        acknowledge(
            pipeline,
            f"AwsSolutions-IAM5[{finding}]",
            "CDK's read or read-write grant on this pipeline's own artifact bucket: the "
            "objects are the pipeline's artifacts, named per execution, so the grant covers "
            "the bucket's objects and no other bucket.",
        )
    for action in ("kms:GenerateDataKey*", "kms:ReEncrypt*"):
        acknowledge(
            pipeline,
            f"AwsSolutions-IAM5[Action::{action}]",
            "CDK's encrypt/decrypt grant on the artifact bucket's own KMS key (its ARN is the "
            "only resource): the wildcard covers the GenerateDataKey and ReEncrypt variants.",
        )


def _acknowledge_build_role_findings(stack: PipelineStack) -> None:
    """The roles of the CodeBuild projects: build logs, reports, self-mutation, assets."""
    pipeline = stack.pipeline
    logs_arn = arn_in_finding(stack, "logs", "log-group:/aws/codebuild/")
    reports_arn = arn_in_finding(stack, "codebuild", "report-group/")
    account = stack.account
    # The asset-publishing projects share one role, acknowledged below for all of them.
    file_role = pipeline.node.find_child("Assets").node.find_child("FileRole")
    for project in (c for c in pipeline.node.find_all() if isinstance(c, codebuild.Project)):
        cfn_project = project.node.default_child
        role = project.role
        if role is None or role.node.path == file_role.node.path:
            continue
        if not isinstance(cfn_project, CfnElement):
            continue
        name = _ref(stack, cfn_project)
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::{logs_arn}{name}:*]",
            "CodeBuild writes each build's log stream, named by build id, into this "
            "project's own log group: the wildcard is the streams of that one group.",
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::{reports_arn}{name}-*]",
            "CodeBuild's test-report groups of this project are named after the project "
            "with a suffix per report: the wildcard covers this project's report groups.",
        )

    self_mutation = pipeline.self_mutation_project.role
    assert self_mutation is not None
    acknowledge(
        self_mutation,
        f"AwsSolutions-IAM5[Resource::arn:*:iam::{account}:role/*]",
        "Self-mutation deploys the pipeline stack by assuming the CDK bootstrap roles of the "
        "pipeline account, limited by the condition on their aws-cdk:bootstrap-role tag.",
    )
    acknowledge(
        self_mutation,
        "AwsSolutions-IAM5[Resource::*]",
        "Self-mutation's cloudformation:DescribeStacks and s3:ListBucket calls, which the CDK "
        "CLI makes before it assumes the bootstrap roles; both are read-only.",
    )

    acknowledge(
        file_role,
        "AwsSolutions-IAM5[Resource::*]",
        "The asset-publishing role starts and reads the asset CodeBuild builds CDK Pipelines "
        "creates (codebuild:StartBuild, BatchGetBuilds, StopBuild): their names are generated.",
    )
    acknowledge(
        file_role,
        f"AwsSolutions-IAM5[Resource::{logs_arn}*]",
        "One role runs every asset-publishing CodeBuild project, each with its own generated "
        "log group under /aws/codebuild/: the wildcard is that prefix in this account only.",
    )
    acknowledge(
        file_role,
        f"AwsSolutions-IAM5[Resource::{reports_arn}*]",
        "One role runs every asset-publishing CodeBuild project, whose report groups are "
        "named after the generated project names: the wildcard is limited to this account.",
    )


def pipeline_requested(app: App) -> bool:
    """Whether `-c pipeline=...` asks for the pipeline (true/false, 1/0, yes/no, on/off)."""
    value = app.node.try_get_context("pipeline")
    if value is None or (isinstance(value, str) and not value.strip()):
        return False
    try:
        return parse_bool_context("pipeline", value)
    except ValueError as exc:
        raise PipelineConfigError(str(exc)) from None


def build_pipeline(app: App) -> PipelineStack:
    """Add the pipeline stack (settings from the context) to `app`, with the nag checks."""
    stack = PipelineStack(app, settings=pipeline_settings(app))
    add_nag_checks(app)
    return stack
