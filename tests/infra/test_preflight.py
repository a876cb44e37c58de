"""`make deploy`'s preflights: credentials first, then the Lambda concurrency quota against
the stage's reserved concurrency. STS is moto's; moto has no lambda:GetAccountSettings, so
that one answer is botocore's Stubber (the real client, its request validated against the
service model)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from infra.config import DEV, PROD
from infra.preflight import Concurrency, PreflightError, check_concurrency, run
from tests.support.processes import run_module

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"


def stubbed_lambda() -> tuple[object, Stubber]:
    """A Lambda client that answers only what its stubber is told to."""
    client = boto3.client(
        "lambda",
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return client, Stubber(client)


def lambda_with_limits(limit: int, unreserved: int) -> object:
    client, stubber = stubbed_lambda()
    stubber.add_response(
        "get_account_settings",
        {
            "AccountLimit": {
                "ConcurrentExecutions": limit,
                "UnreservedConcurrentExecutions": unreserved,
            },
            "AccountUsage": {"FunctionCount": 3},
        },
    )
    stubber.activate()
    return client


@pytest.fixture
def sts(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        yield boto3.client("sts", region_name=REGION)


def test_a_default_account_passes_both_stages(sts: object) -> None:
    for settings in (DEV, PROD):
        lines = run(settings.name, sts, lambda_with_limits(1000, 1000))
        assert lines[0].startswith("AWS identity: arn:aws:")
        assert f"reserves {settings.function_reserved_concurrency}" in lines[1]
        assert len(lines) == 2  # no warning


def test_a_fresh_accounts_quota_stops_the_deploy_with_what_to_ask_for(sts: object) -> None:
    with pytest.raises(PreflightError, match=r"quota of at least 200 .*L-B99A9384"):
        run("prod", sts, lambda_with_limits(10, 10))
    with pytest.raises(PreflightError, match="at least 120"):
        run("dev", sts, lambda_with_limits(100, 100))


def test_credentials_without_lambda_read_access_only_skip_the_quota_check(sts: object) -> None:
    client, stubber = stubbed_lambda()
    stubber.add_client_error("get_account_settings", "AccessDeniedException", http_status_code=403)
    stubber.activate()
    lines = run("prod", sts, client)
    assert "not checked" in lines[-1]


def test_a_quota_taken_by_other_reservations_is_a_warning() -> None:
    concurrency = Concurrency(limit=1000, unreserved=150)
    assert concurrency.reservable == 50
    warning = check_concurrency(concurrency, "prod", PROD.function_reserved_concurrency)
    assert warning is not None
    assert "only 50" in warning
    assert check_concurrency(concurrency, "dev", 20) is None


def test_without_credentials_it_fails_in_seconds_before_any_synthesis(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_") or k == "AWS_EC2_METADATA_DISABLED"
    }
    env.update(
        {
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "PYTHONPATH": f"{ROOT / 'functions'}:{ROOT}",
        }
    )
    started = time.monotonic()
    result = run_module("infra.preflight", "--stage", "prod", cwd=tmp_path, env=env)
    elapsed = time.monotonic() - started
    print(f"\n[infra] preflight without credentials: exit {result.returncode} in {elapsed:.1f} s")
    assert result.returncode == 1
    assert "preflight failed: no AWS credentials" in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing synthesized
