"""The CDK Pipelines stack (`-c pipeline=true`, infra/pipeline.py), synthesized once per test
session, offline (fake accounts, no lookups, bundling skipped): its stages and actions, the
stage stacks it deploys, and cdk-nag's AwsSolutions pack on all of it."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.nag import MIN_REASON_LENGTH
from tests.infra.conftest import ROOT, Synth, cdk_context, synthesize
from tests.infra.nag_metadata import acknowledgments
from tests.support.processes import run_module

PIPELINE_ACCOUNT = "111111111111"
PROD_ACCOUNT = "222222222222"  # another account: the cross-account path is the one tested
REGION = "us-east-1"
CONNECTION_ARN = (
    f"arn:aws:codeconnections:{REGION}:{PIPELINE_ACCOUNT}:connection/"
    "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
)
PIPELINE_CONTEXT = {
    "pipeline": "true",
    "connection_arn": CONNECTION_ARN,
    "repo": "example-org/users-api",
    "branch": "main",
    "pipeline_account": PIPELINE_ACCOUNT,
    "pipeline_region": REGION,
    "prod_account": PROD_ACCOUNT,
}
STAGE_ACCOUNTS = {"dev": PIPELINE_ACCOUNT, "prod": PROD_ACCOUNT}


@dataclass(frozen=True)
class PipelineSynth:
    outdir: Path
    template: dict[str, Any]  # the pipeline stack's
    metadata: dict[str, list[dict[str, Any]]]
    validation_error: str | None
    stages: dict[str, tuple[dict[str, Any], dict[str, Any], Path]]  # name -> manifest, template,
    # metadata file of its stack

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.template["Resources"]

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.resources.items() if r["Type"] == resource_type}

    def pipeline_stages(self) -> list[dict[str, Any]]:
        (pipeline,) = self.of_type("AWS::CodePipeline::Pipeline").values()
        return pipeline["Properties"]["Stages"]

    def stage(self, name: str) -> list[dict[str, Any]]:
        (stage,) = [s for s in self.pipeline_stages() if s["Name"] == name]
        return sorted(stage["Actions"], key=lambda a: a["RunOrder"])

    def buildspec(self, action: dict[str, Any]) -> dict[str, Any]:
        project = self.resources[action["Configuration"]["ProjectName"]["Ref"]]
        return json.loads(project["Properties"]["Source"]["BuildSpec"])


def _nested_stack(outdir: Path, stage_id: str, stack_name: str) -> tuple[dict, dict, Path]:
    assembly = outdir / f"assembly-{stage_id}"
    manifest = json.loads((assembly / "manifest.json").read_text())
    (artifact_id, artifact) = next(
        (k, a)
        for k, a in manifest["artifacts"].items()
        if a["type"] == "aws:cloudformation:stack"
        and a["properties"].get("stackName") == stack_name
    )
    template = json.loads((assembly / artifact["properties"]["templateFile"]).read_text())
    return artifact, template, assembly / f"{artifact_id}.metadata.json"


@pytest.fixture(scope="session")
def cli_synth(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Synth]:
    """`make deploy STAGE=... -c account=... -c region=...` into the account the pipeline
    deploys that stage to (the asset bucket, and so the function versions' hashes, depend
    on the environment); availability zones from the context, as the pipeline's."""
    cache: dict[str, Synth] = {}

    def get(stage: str) -> Synth:
        if stage not in cache:
            account = STAGE_ACCOUNTS[stage]
            zones_key = f"availability-zones:account={account}:region={REGION}"
            cache[stage] = synthesize(
                stage,
                tmp_path_factory.mktemp(f"cli-{stage}"),
                account=account,
                region=REGION,
                **{zones_key: [f"{REGION}a", f"{REGION}b"]},
            )
        return cache[stage]

    return get


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> PipelineSynth:
    """The pipeline app, built through infra.app as `cdk synth -c pipeline=true ...` builds it."""
    from aws_cdk import App

    from infra.app import build_for_context

    outdir = tmp_path_factory.mktemp("cdk-pipeline")
    context = cdk_context("dev", **PIPELINE_CONTEXT, **{"aws:cdk:bundling-stacks": []})
    app = App(context=context, outdir=str(outdir))
    stack = build_for_context(app)
    assert stack.stack_name == "UsersApiPipeline"
    validation_error = None
    try:
        app.synth()
    except RuntimeError as exc:  # a failed validation plugin (cdk-nag): templates are written
        validation_error = str(exc)
    return PipelineSynth(
        outdir=outdir,
        template=json.loads((outdir / "UsersApiPipeline.template.json").read_text()),
        metadata=json.loads((outdir / "UsersApiPipeline.metadata.json").read_text()),
        validation_error=validation_error,
        stages={
            "dev": _nested_stack(outdir, "Dev", "UsersApi-dev"),
            "prod": _nested_stack(outdir, "Prod", "UsersApi-prod"),
        },
    )


# -- the pipeline --------------------------------------------------------------------------


def test_stages_run_source_build_selfupdate_assets_dev_prod(pipeline: PipelineSynth) -> None:
    assert [s["Name"] for s in pipeline.pipeline_stages()] == [
        "Source",
        "Build",
        "UpdatePipeline",
        "Assets",
        "Dev",
        "Prod",
    ]
    (props,) = [p["Properties"] for p in pipeline.of_type("AWS::CodePipeline::Pipeline").values()]
    assert props["Name"] == "UsersApi"
    assert props["PipelineType"] == "V2"


def test_source_is_the_codeconnections_connection(pipeline: PipelineSynth) -> None:
    (source,) = pipeline.stage("Source")
    assert source["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    assert source["Configuration"] == {
        "ConnectionArn": CONNECTION_ARN,
        "FullRepositoryId": "example-org/users-api",
        "BranchName": "main",
        "DetectChanges": True,
    }


def test_synth_step_runs_make_test_then_cdk_synth_with_the_same_context(
    pipeline: PipelineSynth,
) -> None:
    (synth,) = pipeline.stage("Build")
    assert synth["ActionTypeId"]["Provider"] == "CodeBuild"
    spec = pipeline.buildspec(synth)
    commands = spec["phases"]["build"]["commands"]
    assert commands[0] == "make test"
    (cdk_synth,) = [c for c in commands if "cdk synth" in c]
    assert commands.index(cdk_synth) > 0
    assert cdk_synth.startswith("node_modules/.bin/cdk synth -c pipeline=true ")
    # The self-mutating pipeline synthesizes itself with the context it was deployed with.
    for key, value in PIPELINE_CONTEXT.items():
        assert f"-c {key}={value}" in cdk_synth, key
    assert spec["phases"]["install"]["runtime-versions"] == {"python": "3.12", "nodejs": "22"}
    assert spec["artifacts"]["base-directory"] == "cdk.out"
    project = pipeline.resources[synth["Configuration"]["ProjectName"]["Ref"]]
    assert project["Properties"]["Environment"]["Image"] == "aws/codebuild/standard:7.0"
    assert project["Properties"]["Environment"]["PrivilegedMode"] is False


def test_self_mutation_and_assets_use_the_pinned_cli_versions(pipeline: PipelineSynth) -> None:
    package = json.loads((ROOT / "package.json").read_text())
    (mutate,) = pipeline.stage("UpdatePipeline")
    install = pipeline.buildspec(mutate)["phases"]["install"]["commands"]
    assert install == [f"npm install -g aws-cdk@{package['devDependencies']['aws-cdk']}"]
    for action in pipeline.stage("Assets"):
        for command in pipeline.buildspec(action)["phases"]["install"]["commands"]:
            assert "@latest" not in command, command


def _deploy_actions(actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a for a in actions if a["ActionTypeId"]["Provider"] == "CloudFormation"]


@pytest.mark.parametrize(("stage", "stack"), [("Dev", "UsersApi-dev"), ("Prod", "UsersApi-prod")])
def test_each_stage_deploys_its_stack_then_smoke_tests_its_api_url(
    pipeline: PipelineSynth, stage: str, stack: str
) -> None:
    actions = pipeline.stage(stage)
    deploys = _deploy_actions(actions)
    assert [a["Configuration"]["ActionMode"] for a in deploys] == [
        "CHANGE_SET_REPLACE",
        "CHANGE_SET_EXECUTE",
    ]
    assert {a["Configuration"]["StackName"] for a in deploys} == {stack}
    execute = deploys[-1]
    smoke = actions[-1]
    assert smoke["Name"] == f"SmokeTest{stage}"
    assert smoke["RunOrder"] > execute["RunOrder"]
    assert json.loads(smoke["Configuration"]["EnvironmentVariables"]) == [
        {"name": "API_URL", "type": "PLAINTEXT", "value": f"#{{{execute['Namespace']}.ApiUrl}}"}
    ]
    # It runs the repository's smoke test, so it gets the source, not the cloud assembly.
    (source,) = pipeline.stage("Source")
    assert smoke["InputArtifacts"] == source["OutputArtifacts"]
    commands = pipeline.buildspec(smoke)["phases"]["build"]["commands"]
    assert commands == ['python -m devtools.smoke --timeout 15 "$API_URL"']


def test_prod_waits_for_a_manual_approval(pipeline: PipelineSynth) -> None:
    assert all(a["ActionTypeId"]["Category"] != "Approval" for a in pipeline.stage("Dev")), (
        "dev deploys without an approval"
    )
    actions = pipeline.stage("Prod")
    approval = actions[0]
    assert approval["ActionTypeId"] == {
        "Category": "Approval",
        "Owner": "AWS",
        "Provider": "Manual",
        "Version": "1",
    }
    assert [a for a in actions if a["RunOrder"] <= approval["RunOrder"]] == [approval]
    assert all(a["RunOrder"] > approval["RunOrder"] for a in _deploy_actions(actions))


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_stages_deploy_to_their_accounts_through_the_bootstrap_roles(
    pipeline: PipelineSynth, stage: str
) -> None:
    artifact, _, _ = pipeline.stages[stage]
    account = STAGE_ACCOUNTS[stage]
    assert artifact["environment"] == f"aws://{account}/{REGION}"
    prepare = _deploy_actions(pipeline.stage(stage.capitalize()))[0]
    role_arn = json.dumps(prepare["Configuration"]["RoleArn"])
    assert f":iam::{account}:role/cdk-hnb659fds-cfn-exec-role-{account}-{REGION}" in role_arn


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_stage_stacks_are_what_make_deploy_deploys_with_the_same_logical_ids(
    pipeline: PipelineSynth, cli_synth: Callable[[str], Synth], stage: str
) -> None:
    """The pipeline's stage and `make deploy` build the same Stage (infra/stage.py) under
    the same path: the same stack name, the same logical ids of every resource and output,
    so either path can take over a stack the other created."""
    artifact, template, _ = pipeline.stages[stage]
    standalone = cli_synth(stage)
    assert standalone.validation_error is None
    assert artifact["properties"]["stackName"] == standalone.settings.stack_name
    assert len(standalone.resources) > 80

    def types(resources: dict[str, dict[str, Any]]) -> dict[str, str]:
        return {logical_id: r["Type"] for logical_id, r in resources.items()}

    assert types(template["Resources"]) == types(standalone.resources)
    assert set(template["Outputs"]) == set(standalone.template_json["Outputs"])
    assert {"ApiUrl", "FunctionName", "MigrationFunctionName", "ProxyEndpoint"} <= set(
        template["Outputs"]
    )


def test_artifacts_are_encrypted_with_a_rotated_customer_managed_key(
    pipeline: PipelineSynth,
) -> None:
    (key,) = pipeline.of_type("AWS::KMS::Key").values()
    assert key["Properties"]["EnableKeyRotation"] is True
    (bucket,) = pipeline.of_type("AWS::S3::Bucket").values()
    (rule,) = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    for project in pipeline.of_type("AWS::CodeBuild::Project").values():
        assert "EncryptionKey" in project["Properties"]


def test_synthesis_looked_nothing_up(pipeline: PipelineSynth) -> None:
    """No context lookup is pending: the stages' availability zones come from the context."""
    manifest = json.loads((pipeline.outdir / "manifest.json").read_text())
    assert manifest.get("missing") is None
    for stage_id in ("Dev", "Prod"):
        nested = pipeline.outdir / f"assembly-{stage_id}" / "manifest.json"
        assert json.loads(nested.read_text()).get("missing") is None
    for _, template, _ in pipeline.stages.values():
        zones = {
            r["Properties"]["AvailabilityZone"]
            for r in template["Resources"].values()
            if r["Type"] == "AWS::EC2::Subnet"
        }
        assert zones == {f"{REGION}a", f"{REGION}b"}


# -- cdk-nag -------------------------------------------------------------------------------


def _iam5(*findings: str) -> set[str]:
    return {f"AwsSolutions-IAM5[{f}]" for f in findings}


LOGS = f"arn:aws:logs:{REGION}:{PIPELINE_ACCOUNT}:log-group:/aws/codebuild/"
REPORTS = f"arn:aws:codebuild:{REGION}:{PIPELINE_ACCOUNT}:report-group/"


def _project_findings(project_logical_id: str) -> set[str]:
    ref = f"<{project_logical_id}>"
    return _iam5(f"Resource::{LOGS}{ref}:*", f"Resource::{REPORTS}{ref}-*")


# (construct path below the pipeline stack, rule id): every acknowledgment, on purpose.
EXPECTED_PIPELINE_ACKNOWLEDGMENTS = {
    ("Pipeline/Pipeline/ArtifactsBucket", "AwsSolutions-S1"),
    *(
        ("Pipeline", rule)
        for rule in _iam5(
            "Action::s3:Abort*",
            "Action::s3:DeleteObject*",
            "Action::s3:GetBucket*",
            "Action::s3:GetObject*",
            "Action::s3:List*",
            "Resource::<PipelineArtifactsBucketAEA9A052.Arn>/*",
            "Action::kms:GenerateDataKey*",
            "Action::kms:ReEncrypt*",
        )
    ),
    *(
        ("Pipeline/Assets/FileRole", rule)
        for rule in _iam5("Resource::*", f"Resource::{LOGS}*", f"Resource::{REPORTS}*")
    ),
    *(
        ("Pipeline/UpdatePipeline/SelfMutation/Role", rule)
        for rule in _iam5("Resource::*", f"Resource::arn:*:iam::{PIPELINE_ACCOUNT}:role/*")
        | _project_findings("PipelineUpdatePipelineSelfMutationDAA41400")
    ),
    *(
        ("Pipeline/Pipeline/Build/Synth/CdkBuildProject/Role", rule)
        for rule in _project_findings("PipelineBuildSynthCdkBuildProject6BEFA8E6")
    ),
    *(
        ("Pipeline/Pipeline/Dev/SmokeTestDev/SmokeTestDev/Role", rule)
        for rule in _project_findings("PipelineDevSmokeTestDevEAE48A76")
    ),
    *(
        ("Pipeline/Pipeline/Prod/SmokeTestProd/SmokeTestProd/Role", rule)
        for rule in _project_findings("PipelineProdSmokeTestProdC98A8689")
    ),
}


def test_no_unacknowledged_finding_in_the_pipeline_or_its_stages(pipeline: PipelineSynth) -> None:
    assert pipeline.validation_error is None, pipeline.validation_error
    report = json.loads((pipeline.outdir / "validation-report.json").read_text())
    assert report["pluginReports"], "cdk-nag did not run"
    assert [r for r in report["pluginReports"] if r["conclusion"] != "success"] == []


def test_pipeline_acknowledgments_are_the_expected_ones_with_specific_reasons(
    pipeline: PipelineSynth,
) -> None:
    found = acknowledgments(pipeline.metadata, "/UsersApiPipeline/")
    assert set(found) == EXPECTED_PIPELINE_ACKNOWLEDGMENTS
    for key, reason in found.items():
        assert len(reason) >= MIN_REASON_LENGTH, key
    # Different findings, different reasons: no blanket sentence pasted everywhere.
    by_reason: dict[str, set[str]] = {}
    for (_, rule), reason in found.items():
        by_reason.setdefault(reason, set()).add(rule)
    assert len(by_reason) >= 8


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_stage_stacks_carry_the_same_acknowledgments_as_the_standalone_stacks(
    pipeline: PipelineSynth, cli_synth: Callable[[str], Synth], stage: str
) -> None:
    _, _, metadata_file = pipeline.stages[stage]
    prefix = f"/{stage.capitalize()}/UsersApi-{stage}/"
    in_pipeline = acknowledgments(json.loads(metadata_file.read_text()), prefix)
    assert len(in_pipeline) > 5
    assert in_pipeline == acknowledgments(cli_synth(stage).metadata, prefix)


# -- context -------------------------------------------------------------------------------


def _settings(**context: str):
    from aws_cdk import App

    from infra.pipeline import pipeline_settings

    return pipeline_settings(App(context=context))


def test_context_defaults_branch_and_stage_accounts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CDK_DEFAULT_ACCOUNT", raising=False)
    settings = _settings(
        connection_arn=CONNECTION_ARN,
        repo="o/r",
        pipeline_account=PIPELINE_ACCOUNT,
        pipeline_region=REGION,
    )
    assert settings.branch == "main"
    assert settings.dev_account == settings.prod_account == PIPELINE_ACCOUNT
    assert not settings.cross_account
    assert settings.availability_zones == (f"{REGION}a", f"{REGION}b")


def test_account_and_region_fall_back_to_the_cli_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CDK_DEFAULT_ACCOUNT", "333333333333")
    monkeypatch.setenv("CDK_DEFAULT_REGION", "eu-west-1")
    settings = _settings(connection_arn=CONNECTION_ARN, repo="o/r")
    assert (settings.account, settings.region) == ("333333333333", "eu-west-1")


def test_missing_and_malformed_context_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from infra.pipeline import PipelineConfigError

    monkeypatch.delenv("CDK_DEFAULT_ACCOUNT", raising=False)
    monkeypatch.delenv("CDK_DEFAULT_REGION", raising=False)
    with pytest.raises(PipelineConfigError, match="not all in us-east-1"):
        _settings(
            connection_arn=CONNECTION_ARN,
            repo="o/r",
            pipeline_account=PIPELINE_ACCOUNT,
            pipeline_region=REGION,
            availability_zones="us-east-1a,eu-west-1b",
        )
    with pytest.raises(PipelineConfigError) as raised:
        _settings(repo="not-a-repo", pipeline_account="12345")
    message = str(raised.value)
    assert "-c connection_arn=arn:aws:codeconnections:REGION:ACCOUNT:connection/ID (missing)" in (
        message
    )
    assert "-c repo=OWNER/NAME (got 'not-a-repo')" in message
    assert "-c pipeline_account=123456789012 (got '12345')" in message
    assert "-c pipeline_region=eu-west-1 (missing)" in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, False), ("false", False), ("0", False), ("true", True), ("YES", True), (True, True)],
)
def test_pipeline_context_switch(value: object, expected: bool) -> None:
    from aws_cdk import App

    from infra.pipeline import pipeline_requested

    context = {} if value is None else {"pipeline": value}
    assert pipeline_requested(App(context=context)) is expected


def test_an_unclear_pipeline_switch_is_an_error() -> None:
    from aws_cdk import App

    from infra.pipeline import PipelineConfigError, pipeline_requested

    with pytest.raises(PipelineConfigError, match="expected true or false"):
        pipeline_requested(App(context={"pipeline": "maybe"}))


def test_the_cdk_app_stops_with_the_message_before_synthesis(tmp_path: Path) -> None:
    """What `cdk synth -c pipeline=true` (without the rest) prints: the app exits 1."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION")
    }
    env.update(
        {
            "CDK_CONTEXT_JSON": json.dumps({"pipeline": "true", "repo": "o/r"}),
            "CDK_OUTDIR": str(tmp_path / "out"),
            "PYTHONPATH": f"{ROOT / 'functions'}:{ROOT}",
        }
    )
    result = run_module("infra.app", env=env)
    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("infra.app: -c pipeline=true needs these context values: ")
    assert "-c connection_arn=" in last_line
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "manifest.json").exists()
