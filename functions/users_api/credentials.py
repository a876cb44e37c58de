"""Database credentials per auth mode, supplied to each new connection.

`password`: a plain value (local use). `secret`: a Secrets Manager secret, read once per cold
start and re-read once when the database rejects it (rotation). `iam`: an RDS IAM auth token,
signed locally (users_api.rds_token: no AWS SDK when Lambda's credentials are in the
environment), cached and replaced before its 15-minute lifetime ends. boto3 is imported only
by the secret mode: it costs a quarter of a second at import.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, Protocol

from users_api.rds_token import TokenSigner
from users_api.settings import AuthMode, Settings

Clock = Callable[[], float]

# RDS IAM tokens are valid for 15 minutes; replace them well before that.
IAM_TOKEN_MAX_AGE_S = 10 * 60


def _is_auth_failure(exc: BaseException) -> bool:
    from asyncpg.exceptions import (
        InvalidAuthorizationSpecificationError,
        PostgresConnectionError,
    )

    # The driver's error arrives wrapped in the dialect's DBAPI error: look down the chain.
    # PostgreSQL answers 28P01; poolers (pgbouncer, RDS Proxy) may answer 08P01 instead.
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, InvalidAuthorizationSpecificationError) or (
            isinstance(cause, PostgresConnectionError) and "authentication failed" in str(cause)
        ):
            return True
        cause = cause.__cause__
    return False


class CredentialSource(Protocol):
    def connect(self, dialect: Any, cargs: tuple[Any, ...], cparams: dict[str, Any]) -> Any:
        """Open one DBAPI connection with this mode's credentials."""

    def reset(self) -> None:
        """Forget cached credentials (after a SnapStart restore)."""


class PasswordSource:
    def __init__(self, password: str | None) -> None:
        self._password = password

    def connect(self, dialect: Any, cargs: tuple[Any, ...], cparams: dict[str, Any]) -> Any:
        if self._password is not None:
            cparams["password"] = self._password
        return dialect.connect(*cargs, **cparams)

    def reset(self) -> None:
        pass


class SecretSource:
    """Username and password from an RDS-style Secrets Manager secret (JSON)."""

    def __init__(self, secret_arn: str, region: str | None, client: Any = None) -> None:
        self._secret_arn = secret_arn
        self._region = region
        self._client = client
        self._cached: tuple[str, str] | None = None

    def _read(self) -> tuple[str, str]:
        if self._client is None:
            import boto3

            self._client = boto3.client("secretsmanager", region_name=self._region)
        value = self._client.get_secret_value(SecretId=self._secret_arn)["SecretString"]
        secret = json.loads(value)
        return secret["username"], secret["password"]

    def credentials(self) -> tuple[str, str]:
        if self._cached is None:
            self._cached = self._read()
        return self._cached

    def connect(self, dialect: Any, cargs: tuple[Any, ...], cparams: dict[str, Any]) -> Any:
        cparams["user"], cparams["password"] = self.credentials()
        try:
            return dialect.connect(*cargs, **cparams)
        except Exception as exc:
            if not _is_auth_failure(exc):
                raise
        # The secret may have been rotated since this process read it: read it once more.
        self._cached = None
        cparams["user"], cparams["password"] = self.credentials()
        return dialect.connect(*cargs, **cparams)

    def reset(self) -> None:
        self._cached = None


class IamTokenSource:
    def __init__(self, sign: Callable[[], str], clock: Clock = time.monotonic) -> None:
        self._sign = sign
        self._clock = clock
        self._token: str | None = None
        self._issued_at = 0.0

    def token(self) -> str:
        now = self._clock()
        if self._token is None or now - self._issued_at >= IAM_TOKEN_MAX_AGE_S:
            self._token = self._sign()
            self._issued_at = now
        return self._token

    def connect(self, dialect: Any, cargs: tuple[Any, ...], cparams: dict[str, Any]) -> Any:
        cparams["password"] = self.token()
        return dialect.connect(*cargs, **cparams)

    def reset(self) -> None:
        self._token = None


def source_for(settings: Settings) -> CredentialSource:
    if settings.db_auth_mode is AuthMode.SECRET:
        assert settings.db_secret_arn is not None  # checked by Settings
        return SecretSource(settings.db_secret_arn, settings.aws_region)
    if settings.db_auth_mode is AuthMode.IAM:
        assert settings.db_host is not None
        signer = TokenSigner(
            settings.db_host, settings.db_port, settings.db_user, settings.aws_region
        )
        return IamTokenSource(signer)
    password = settings.db_password.get_secret_value() if settings.db_password else None
    return PasswordSource(password)
