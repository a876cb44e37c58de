"""Deploying: the GitHub Actions workflow (schema-valid, OIDC only, dev before prod) and the
make targets of deploy.mk, as far as they can be checked without AWS (`make -n`, and the
refusals that stop before cdk is called)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.processes import run

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
DEPLOY_WORKFLOW = ROOT / ".github" / "workflows" / "deploy.yml"
CHECK_JSONSCHEMA = ROOT / ".venv" / "bin" / "check-jsonschema"
# A pinned major version (`@v4`, `@v4.1.0`) or a full commit sha.
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$")


def load(path: Path) -> dict[str, Any]:
    workflow = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as True.
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    return workflow


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return load(DEPLOY_WORKFLOW)


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in job["steps"] if s.get("uses", "").split("@")[0] == action]


def needs(job: dict[str, Any]) -> set[str]:
    value = job.get("needs", [])
    return {value} if isinstance(value, str) else set(value)


def upstream(jobs: dict[str, Any], name: str) -> set[str]:
    """Every job `name` waits for, directly or not."""
    found: set[str] = set()
    todo = list(needs(jobs[name]))
    while todo:
        job = todo.pop()
        if job not in found:
            found.add(job)
            todo += needs(jobs[job])
    return found


# -- the workflow --------------------------------------------------------------------------


def test_workflows_are_valid_against_the_github_workflow_schema() -> None:
    assert WORKFLOWS, "no workflow under .github/workflows"
    assert CHECK_JSONSCHEMA.exists(), "run `make setup` (check-jsonschema is in dev.txt)"
    result = subprocess.run(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.github-workflows", *WORKFLOWS],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_validator_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\npermissions:\n  id-token: writ\njobs:\n  a:\n    steps:\n      - run: 'true'\n"
    )
    result = run(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.github-workflows", broken], timeout=60
    )
    assert result.returncode == 1
    assert "'runs-on' is a required property" in result.stdout
    assert "id-token" in result.stdout


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_long_lived_aws_keys_anywhere(path: Path) -> None:
    text = path.read_text().lower()
    for forbidden in ("aws-access-key-id", "aws-secret-access-key", "aws_secret_access_key"):
        assert forbidden not in text, forbidden
    assert "aws_access_key_id" not in text


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_to_a_version(path: Path) -> None:
    for job in load(path)["jobs"].values():
        for step in job.get("steps", []):
            if "uses" in step:
                assert PINNED.match(step["uses"]), step["uses"]


def test_triggers_test_pull_requests_and_deploy_main(workflow: dict[str, Any]) -> None:
    assert "pull_request" in workflow["on"]
    assert workflow["on"]["push"]["branches"] == ["main"]
    jobs = workflow["jobs"]
    assert "if" not in jobs["test"], "the tests run on every event"
    assert "make test" in [s.get("run") for s in jobs["test"]["steps"]]
    for name in ("deploy-dev", "deploy-prod"):
        condition = jobs[name]["if"]
        assert "github.event_name == 'push'" in condition
        assert "github.ref == 'refs/heads/main'" in condition


def test_only_deploy_jobs_get_an_oidc_token(workflow: dict[str, Any]) -> None:
    assert workflow["permissions"] == {"contents": "read"}
    jobs = workflow["jobs"]
    assert "permissions" not in jobs["test"]
    for name in ("deploy-dev", "deploy-prod"):
        assert jobs[name]["permissions"] == {"contents": "read", "id-token": "write"}


@pytest.mark.parametrize(("job", "stage"), [("deploy-dev", "dev"), ("deploy-prod", "prod")])
def test_deploy_jobs_assume_their_environment_role(
    workflow: dict[str, Any], job: str, stage: str
) -> None:
    spec = workflow["jobs"][job]
    assert spec["environment"]["name"] == stage
    (credentials,) = steps_using(spec, "aws-actions/configure-aws-credentials")
    inputs = credentials["with"]
    assert inputs["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    assert inputs["aws-region"] == "${{ vars.AWS_REGION }}"
    assert set(inputs) <= {"role-to-assume", "aws-region", "role-session-name"}
    runs = [s.get("run", "") for s in spec["steps"]]
    assert f"make deploy STAGE={stage} APPROVE=never" in runs
    # Credentials first, then the deploy.
    credentials_at = spec["steps"].index(credentials)
    deploy_at = runs.index(f"make deploy STAGE={stage} APPROVE=never")
    assert credentials_at < deploy_at


def test_prod_needs_dev_which_needs_the_tests(workflow: dict[str, Any]) -> None:
    jobs = workflow["jobs"]
    assert needs(jobs["deploy-prod"]) == {"deploy-dev"}
    assert upstream(jobs, "deploy-prod") == {"deploy-dev", "test"}
    assert upstream(jobs, "deploy-dev") == {"test"}
    environments = {j["environment"]["name"] for j in jobs.values() if "environment" in j}
    assert environments == {"dev", "prod"}


def test_pip_and_npm_are_cached(workflow: dict[str, Any]) -> None:
    for job in workflow["jobs"].values():
        (python,) = steps_using(job, "actions/setup-python")
        assert python["with"]["cache"] == "pip"
        assert python["with"]["cache-dependency-path"] == "requirements/*.txt"
        (node,) = steps_using(job, "actions/setup-node")
        assert node["with"]["cache"] == "npm"


def test_the_tests_get_a_postgresql_service(workflow: dict[str, Any]) -> None:
    job = workflow["jobs"]["test"]
    postgres = job["services"]["postgres"]
    assert postgres["env"]["POSTGRES_HOST_AUTH_METHOD"] == "trust"
    assert "5432:5432" in postgres["ports"]
    assert job["env"]["TEST_DATABASE_URL"].startswith("postgresql://postgres@127.0.0.1:5432/")


# -- deploy.mk -----------------------------------------------------------------------------

MAKE_VARIABLES = (
    "STAGE",
    "APPROVE",
    "URL",
    "FORCE",
    "SMOKE_ARGS",
    "ALARM_EMAIL",
    "MAKEFLAGS",
    "MFLAGS",
)


def make(*args: str) -> subprocess.CompletedProcess[str]:
    """`make -f Makefile -f deploy.mk ARGS`, free of the caller's make flags and variables."""
    env = {k: v for k, v in os.environ.items() if k not in (*MAKE_VARIABLES, "MAKELEVEL")}
    return run(
        ["make", "--no-print-directory", "-f", "Makefile", "-f", "deploy.mk", *args],
        env=env,
        timeout=60,
    )


def command_lines(stdout: str) -> list[str]:
    """The recipe lines `make -n` printed, continuation lines joined."""
    return [" ".join(line.split()) for line in stdout.replace("\\\n", " ").splitlines()]


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_deploy_dry_run_prints_the_cdk_deploy_and_the_smoke_test(stage: str) -> None:
    result = make("-n", "deploy", f"STAGE={stage}")
    assert result.returncode == 0, result.stderr
    lines = command_lines(result.stdout)
    (deploy,) = [line for line in lines if " cdk deploy " in f" {line} " or "/cdk deploy" in line]
    assert deploy == (
        "CDK_DISABLE_VERSION_CHECK=true CDK_DISABLE_CLI_TELEMETRY=true "
        f"node_modules/.bin/cdk deploy {stage.capitalize()}/UsersApi-{stage} -c stage={stage} "
        "--ci --no-notices "
        f"--require-approval broadening --progress events --outputs-file outputs-{stage}.json"
    )
    # The preflight (credentials, Lambda quota) runs first: a hopeless deploy stops in seconds.
    (preflight,) = [line for line in lines if "-m infra.preflight" in line]
    assert preflight.endswith(f"-m infra.preflight --stage {stage}")
    assert lines.index(preflight) < lines.index(deploy)
    (smoke,) = [line for line in lines if "devtools.smoke" in line]
    assert smoke.endswith(
        f"-m devtools.smoke --outputs-file outputs-{stage}.json --stack UsersApi-{stage}"
    )
    assert lines.index(smoke) > lines.index(deploy)


def test_alarm_email_is_passed_as_context() -> None:
    result = make("-n", "deploy", "STAGE=prod", "ALARM_EMAIL=oncall@example.com")
    assert result.returncode == 0, result.stderr
    assert "cdk deploy Prod/UsersApi-prod -c stage=prod -c alarm_email=oncall@example.com" in (
        result.stdout
    )


def test_deploy_approval_is_an_explicit_opt_out() -> None:
    result = make("-n", "deploy", "STAGE=dev", "APPROVE=never")
    assert result.returncode == 0, result.stderr
    assert "--require-approval never" in result.stdout


def test_diff_and_destroy_dry_runs() -> None:
    diff = command_lines(make("-n", "diff", "STAGE=prod").stdout)
    assert any(
        line.endswith("cdk diff Prod/UsersApi-prod -c stage=prod --ci --no-notices")
        for line in diff
    )
    destroy = command_lines(make("-n", "destroy", "STAGE=dev").stdout)
    assert any(
        line.endswith("cdk destroy Dev/UsersApi-dev -c stage=dev --ci --no-notices")
        for line in destroy
    )
    forced = make("-n", "destroy", "STAGE=dev", "FORCE=yes").stdout
    assert "cdk destroy Dev/UsersApi-dev -c stage=dev --ci --no-notices --force" in forced


@pytest.mark.parametrize("dry_run", [[], ["-n"]], ids=["run", "dry-run"])
def test_destroy_refuses_prod_before_anything_runs(dry_run: list[str]) -> None:
    result = make(*dry_run, "destroy", "STAGE=prod")
    assert result.returncode != 0
    assert "make destroy refuses STAGE=prod" in result.stderr
    assert "cdk" not in result.stdout


@pytest.mark.parametrize("target", ["deploy", "diff", "destroy", "preflight"])
@pytest.mark.parametrize("stage", [None, "qa", "dev prod"])
def test_a_stage_is_required(target: str, stage: str | None) -> None:
    result = make("-n", target, *([f"STAGE={stage}"] if stage else []))
    assert result.returncode != 0
    assert "STAGE=dev or STAGE=prod" in result.stderr or "exactly one STAGE" in result.stderr
    assert result.stdout == ""


def test_smoke_target_takes_a_url_or_a_stage() -> None:
    by_url = make("-n", "smoke", "URL=http://127.0.0.1:8000")
    assert "-m devtools.smoke 'http://127.0.0.1:8000'" in by_url.stdout
    by_stage = make("-n", "smoke", "STAGE=dev")
    assert "-m devtools.smoke --outputs-file outputs-dev.json --stack UsersApi-dev" in (
        by_stage.stdout
    )
    neither = make("-n", "smoke")
    assert neither.returncode != 0
    assert "make smoke: set URL=" in neither.stderr
