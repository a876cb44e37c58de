"""Auth modes against moto (Secrets Manager, RDS token signing) and a password-checking pooler."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from sqlalchemy.engine import make_url

from devtools.pgbouncer import Pgbouncer, pgbouncer
from devtools.postgres import free_port, run
from tests.support.processes import function_env
from tests.support.serving import Configure, lambda_client
from users_api.credentials import IAM_TOKEN_MAX_AGE_S, IamTokenSource, source_for
from users_api.settings import Settings

Logs = Callable[[], list[dict[str, object]]]


@pytest.fixture
def aws() -> Iterator[Counter[str]]:
    """moto for every AWS API, and a count of the calls each operation received."""
    calls: Counter[str] = Counter()
    real_client = boto3.client

    def counting_client(*args: Any, **kwargs: Any) -> Any:
        client = real_client(*args, **kwargs)
        client.meta.events.register(
            "before-call.*.*", lambda model, **_: calls.update([model.name])
        )
        return client

    with mock_aws(), pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(boto3, "client", counting_client)
        yield calls


def put_secret(name: str, username: str, password: str) -> str:
    client = boto3.client("secretsmanager", region_name="us-east-1")
    secret = json.dumps({"username": username, "password": password, "engine": "postgres"})
    return client.create_secret(Name=name, SecretString=secret)["ARN"]


# --- secret mode --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def password_bouncer(pg_url: str) -> Iterator[Pgbouncer]:
    """A pooler that checks passwords (md5), as RDS Proxy checks credentials."""
    from users_api.db import create_engine
    from users_api.migrate import ensure_app_role
    from users_api.settings import Settings

    async def create_role() -> None:
        engine = create_engine(Settings(database_url=pg_url, db_nullpool=True))
        try:
            async with engine.begin() as conn:
                await conn.run_sync(ensure_app_role, "users_rotating")
        finally:
            await engine.dispose()

    run(create_role())
    target = make_url(pg_url)
    with pgbouncer(
        target.host or "127.0.0.1",
        target.port or 5432,
        auth_type="md5",
        users={"users_rotating": "first-password"},
    ) as running:
        yield running


def secret_mode(configure: Configure, bouncer: Pgbouncer, pg_url: str, arn: str) -> None:
    configure(
        DATABASE_URL=None,
        DB_AUTH_MODE="secret",
        DB_SECRET_ARN=arn,
        DB_HOST="127.0.0.1",
        DB_PORT=str(bouncer.port),
        DB_NAME=make_url(pg_url).database,
        DB_CONNECT_TIMEOUT="2",
    )


def test_secret_mode_reads_the_secret_once_per_cold_start(
    aws: Counter[str], password_bouncer: Pgbouncer, clean_pg: str, configure: Configure
) -> None:
    arn = put_secret("db-app", "users_rotating", "first-password")
    secret_mode(configure, password_bouncer, clean_pg, arn)
    from users_api.settings import get_settings

    with lambda_client(get_settings().url, configure) as client:
        client_url = get_settings().url
        assert "first-password" not in client_url
        for _ in range(5):
            assert client.get("/users").status_code == 200
    assert aws["GetSecretValue"] == 1


def test_secret_mode_reads_a_rotated_secret_again_once(
    aws: Counter[str],
    password_bouncer: Pgbouncer,
    clean_pg: str,
    configure: Configure,
    json_logs: Logs,
) -> None:
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    arn = put_secret("db-rotating", "users_rotating", "first-password")
    secret_mode(configure, password_bouncer, clean_pg, arn)
    from users_api.settings import get_settings

    with lambda_client(get_settings().url, configure) as client:
        assert client.get("/health").status_code == 200
        rotated = json.dumps({"username": "users_rotating", "password": "second-password"})
        secrets.put_secret_value(SecretId=arn, SecretString=rotated)
        password_bouncer.reload({"users_rotating": "second-password"})

        assert client.get("/users").status_code == 200  # stale password, re-read, retried
        assert aws["GetSecretValue"] == 2
        assert client.get("/users").status_code == 200
        assert aws["GetSecretValue"] == 2

        # A secret that is simply wrong: one re-read, then a 503 that reveals nothing.
        wrong = json.dumps({"username": "users_rotating", "password": "third-password"})
        secrets.put_secret_value(SecretId=arn, SecretString=wrong)
        from users_api.db import get_credentials

        get_credentials().reset()
        response = client.get("/users")
        assert response.status_code == 503
        assert response.json() == {"detail": "Database unavailable"}
    logged = json.dumps(json_logs())
    for password in ("first-password", "second-password", "third-password"):
        assert password not in logged
        assert password not in response.text
    password_bouncer.reload({"users_rotating": "first-password"})


# --- iam mode -----------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_iam_tokens_are_reused_and_renewed_before_they_expire() -> None:
    clock = Clock()
    signed: list[str] = []

    def sign() -> str:
        signed.append(f"token-{len(signed)}")
        return signed[-1]

    source = IamTokenSource(sign, clock=clock)
    assert source.token() == "token-0"
    clock.now += IAM_TOKEN_MAX_AGE_S - 1
    assert source.token() == "token-0"
    clock.now += 2  # past the refresh age, well before the 15-minute expiry
    assert source.token() == "token-1"
    source.reset()  # after a SnapStart restore
    assert source.token() == "token-2"


def test_iam_mode_signs_for_the_proxy_user_without_calling_aws(aws: Counter[str]) -> None:
    source = source_for(
        Settings(
            db_auth_mode="iam",
            db_host="proxy.example.internal",
            db_user="users_app",
            aws_region="eu-west-1",
        )
    )
    token = source.token()  # type: ignore[attr-defined]
    assert token.startswith("proxy.example.internal:5432/?Action=connect&DBUser=users_app&")
    assert "eu-west-1%2Frds-db%2Faws4_request" in token
    assert "X-Amz-Expires=900" in token
    assert sum(aws.values()) == 0  # signed locally, no AWS API called


def test_iam_mode_connects_with_a_token_and_never_logs_it(
    aws: Counter[str], clean_pg: str, configure: Configure, json_logs: Logs
) -> None:
    target = make_url(clean_pg)
    configure(
        DATABASE_URL=None,
        DB_AUTH_MODE="iam",
        DB_HOST=target.host,
        DB_PORT=str(target.port),
        DB_NAME=target.database,
        DB_USER="postgres",
        DB_CONNECT_TIMEOUT="1",
    )
    from users_api.db import get_credentials
    from users_api.settings import get_settings

    with lambda_client(get_settings().url, configure) as client:
        assert client.get("/users").status_code == 200  # trust auth: any token is accepted
        token = get_credentials().token()  # type: ignore[attr-defined]
        assert token.startswith(f"{target.host}:{target.port}/?Action=connect&DBUser=postgres")
    # and a failing connection with a token in hand: nothing of it in logs or the body
    configure(DATABASE_URL=None, DB_PORT=str(free_port()))
    with lambda_client(get_settings().url, configure) as client:
        response = client.get("/users")
        failed_token = get_credentials().token()  # type: ignore[attr-defined]
    assert response.status_code == 503
    logged = json.dumps(json_logs())
    for secret in (token, failed_token, token.split("X-Amz-Signature=")[-1]):
        assert secret not in logged
        assert secret not in response.text


# --- cold start ---------------------------------------------------------------------------


def test_password_mode_cold_start_does_not_import_the_aws_sdk() -> None:
    # aws_lambda_powertools/__init__.py runs `import botocore` (the bare package, for its
    # user-agent hook; 0.6 ms here). Nothing of the SDK itself may load: no boto3, no
    # botocore submodule (session, client, credentials, ...), no alembic, no uvicorn.
    code = (
        "import sys, users_api.handler; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'boto3', 'botocore', 'alembic', 'uvicorn', 'moto'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=function_env(DB_HOST="proxy.example.internal", DB_AUTH_MODE="password"),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == "['botocore']", result.stdout
