"""The RDS IAM token signer: byte for byte botocore's, and no AWS SDK on the Lambda path."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any
from unittest import mock

import botocore.auth
import botocore.credentials
import botocore.session
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.processes import function_env
from users_api.rds_token import AwsCredentials, TokenSigner, auth_token, credentials_from_env

# Any text UTF-8 can carry (botocore encodes it so); no lone surrogates.
texts = st.text(st.characters(codec="utf-8"), min_size=1, max_size=40)
labels = st.from_regex(r"\A[A-Za-z0-9]([A-Za-z0-9-]{0,14}[A-Za-z0-9])?\Z")
dns_names = st.lists(labels, min_size=1, max_size=5).map(".".join)
ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda parts: ".".join(map(str, parts)))
# 443 is https's default port: botocore leaves it out of the signed host header.
ports = st.one_of(st.sampled_from([443, 5432, 80, 3306]), st.integers(1, 65535))
regions = st.from_regex(r"\A[a-z]{2}(-gov)?-[a-z]{4,9}-[1-9]\Z")
access_keys = st.from_regex(r"\A(AKIA|ASIA)[A-Z0-9]{12,124}\Z")
# Session tokens are base64 (with / + =); anything else is percent-encoded the same way.
session_tokens = st.one_of(st.none(), st.from_regex(r"\A[A-Za-z0-9/+=]{16,400}\Z"), texts)
# Up to 2100; also instants a hair before a whole second, where rounding and truncating
# to the second disagree.
times = st.one_of(
    st.floats(0, 4102444800, allow_nan=False),
    st.integers(1, 4102444800).map(lambda second: second - 3e-7),
)


@cache
def rds_client() -> tuple[Any, botocore.credentials.Credentials]:
    """One RDS client (building one per example would take most of the test's time) and
    the credentials object it signs with, which each example rewrites."""
    session = botocore.session.get_session()
    session.set_credentials("AKIAPLACEHOLDER000", "placeholder")
    credentials = session.get_credentials()
    return session.create_client("rds", region_name="us-east-1"), credentials


def botocore_token(
    host: str, port: int, user: str, region: str, creds: AwsCredentials, now: float
) -> str:
    client, credentials = rds_client()
    credentials.access_key, credentials.secret_key = creds.access_key, creds.secret_key
    credentials.token = creds.token
    frozen = dt.datetime.fromtimestamp(now, dt.UTC).replace(tzinfo=None)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=frozen):
        return client.generate_db_auth_token(
            DBHostname=host, Port=port, DBUsername=user, Region=region
        )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    host=st.one_of(dns_names, ipv4),
    port=ports,
    user=texts,
    region=regions,
    access_key=access_keys,
    secret_key=texts,
    token=session_tokens,
    now=times,
)
def test_tokens_are_byte_identical_to_botocores(
    host: str,
    port: int,
    user: str,
    region: str,
    access_key: str,
    secret_key: str,
    token: str | None,
    now: float,
) -> None:
    creds = AwsCredentials(access_key, secret_key, token)
    expected = botocore_token(host, port, user, region, creds, now)
    assert auth_token(host, port, user, region, creds, now) == expected


@given(
    access_key=st.one_of(st.just(""), access_keys),
    secret_key=st.one_of(st.just(""), texts),
    token=st.one_of(st.just(""), texts),
)
def test_environment_credentials_need_both_keys(
    access_key: str, secret_key: str, token: str
) -> None:
    environ = {"AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key}
    environ["AWS_SESSION_TOKEN"] = token
    found = credentials_from_env(environ)
    if access_key and secret_key:
        assert found == AwsCredentials(access_key, secret_key, token or None)
    else:
        assert found is None


def test_without_environment_credentials_botocores_chain_signs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A developer's profile: the chain reads it (a file, no network), the signer signs.
    profile = tmp_path / "credentials"
    profile.write_text(
        "[dev]\naws_access_key_id = AKIAPROFILEKEY0000\naws_secret_access_key = profile/secret\n"
    )
    config = tmp_path / "config"
    config.write_text("[profile dev]\nregion = eu-central-1\n")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(profile))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_PROFILE", "dev")

    token = TokenSigner("proxy.example.internal", 5432, "users_app", None)(now=1_700_000_000)
    creds = AwsCredentials("AKIAPROFILEKEY0000", "profile/secret")
    expected = botocore_token(
        "proxy.example.internal", 5432, "users_app", "eu-central-1", creds, 1_700_000_000
    )
    assert token == expected


def test_environment_credentials_are_read_at_each_signing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A SnapStart copy is restored with other credentials than the snapshot saw.
    signer = TokenSigner("proxy.example.internal", 5432, "users_app", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFIRSTKEY000000")
    first = signer(now=1_700_000_000)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIASECONDKEY00000")
    second = signer(now=1_700_000_000)
    assert "AKIAFIRSTKEY000000" in first
    assert "AKIASECONDKEY00000" in second


# What runs in a fresh interpreter: the handler's import (as Lambda's init), then the first
# token, timed, and every SDK module loaded before and after it.
FIRST_TOKEN = """
import json, sys, time
SDK = ("boto3", "botocore")
def sdk():
    return sorted(m for m in sys.modules if m.split(".")[0] in SDK)
import users_api.handler
from users_api import db
source = db.get_credentials()
before = sdk()
started = time.perf_counter()
token = source.token()
elapsed_ms = (time.perf_counter() - started) * 1000
print(json.dumps({"before": before, "after": sdk(), "ms": elapsed_ms, "token": token[:60]}))
"""


def test_the_first_iam_token_loads_no_sdk_module() -> None:
    result = subprocess.run(
        [sys.executable, "-c", FIRST_TOKEN],
        env=function_env(
            AWS_REGION="eu-west-1",
            AWS_ACCESS_KEY_ID="ASIAFAKEFAKEFAKE0000",
            AWS_SECRET_ACCESS_KEY="fake/secret",
            AWS_SESSION_TOKEN="fake+session/token==",
            AWS_EC2_METADATA_DISABLED="true",
            DB_AUTH_MODE="iam",
            DB_HOST="proxy.example.internal",
            DB_USER="users_app",
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["token"].startswith("proxy.example.internal:5432/?Action=connect&DBUser=")
    # Powertools' __init__ imports the bare `botocore` package for its user-agent hook (no
    # submodule: no session, client or credentials). The token must add nothing to that.
    assert found["after"] == found["before"], found
    assert [m for m in found["after"] if m != "botocore"] == [], found
    print(f"first IAM token: {found['ms']:.2f} ms (target <= 5 ms; timing is not asserted)")
