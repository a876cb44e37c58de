"""The one place configuration is read: environment variables (and a local `.env`)."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class AuthMode(StrEnum):  # names of modes, not credentials
    PASSWORD = "password"  # noqa: S105 - DB_PASSWORD (or in DATABASE_URL): local use
    SECRET = "secret"  # noqa: S105 - a Secrets Manager secret ARN, read once per cold start
    IAM = "iam"  # RDS IAM auth token, generated per new connection, cached


class SslMode(StrEnum):
    DISABLE = "disable"
    REQUIRE = "require"  # encrypted, certificate not verified
    VERIFY_FULL = "verify-full"  # encrypted, chain and host name verified (system trust store)


Seconds = Annotated[float, Field(gt=0, le=900)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    database_url: str | None = Field(
        default=None, description="Full SQLAlchemy URL; overrides the DB_* parts."
    )
    # Local default: an embedded SQLite file in this folder, so `make run` needs no database
    # server. PostgreSQL is the production path.
    data_dir: Path = Field(default=Path(".data"), validation_alias="USERS_API_DATA_DIR")
    db_host: str | None = None
    db_port: int = Field(default=5432, ge=1, le=65535)
    db_name: str = "postgres"
    db_user: str = "postgres"
    db_password: SecretStr | None = None
    db_auth_mode: AuthMode = AuthMode.PASSWORD
    db_secret_arn: str | None = None
    db_ssl: SslMode = SslMode.DISABLE
    # A PEM file of the only CAs to trust for verify-full (libpq's sslrootcert); None: the
    # system trust store. The bundle ships the RDS CAs (the instance's certificates chain
    # to them, not to a public root).
    db_ssl_root_cert: Path | None = None
    db_connect_timeout: Seconds = 5.0
    db_statement_timeout: Seconds = 10.0
    # None: decide from the environment (NullPool inside Lambda, a pool elsewhere).
    db_nullpool: bool | None = None
    db_pool_size: int = Field(default=5, ge=1, le=100)
    db_echo: bool = False

    api_root_path: str = Field(
        default="", pattern=r"^(/[A-Za-z0-9._~-]+)*$", description="e.g. /prod behind a stage"
    )
    max_body_bytes: int = Field(default=1024 * 1024, ge=1)
    # Defence in depth behind the HTTP API's JWT authorizer: /users needs an authorizer's
    # claims carrying the route's scope (reads: AUTH_READ_SCOPE unless AUTH_PUBLIC_READS;
    # writes: AUTH_WRITE_SCOPE). Off locally; the stack sets these per stage.
    require_auth: bool = False
    auth_read_scope: str = Field(default="users/read", pattern=r"^\S+$")
    auth_write_scope: str = Field(default="users/write", pattern=r"^\S+$")
    auth_public_reads: bool = False
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$")
    # json: Powertools' JSON lines (always, inside Lambda); text: one line per request for
    # people, what `make run` sets.
    log_format: Literal["json", "text"] = "json"
    powertools_service_name: str = "users-api"  # the `service` key of logs and metrics
    powertools_metrics_namespace: str = "UsersApi"  # CloudWatch namespace of the EMF metrics
    aws_region: str | None = Field(default=None, validation_alias="AWS_REGION")
    aws_lambda_function_name: str | None = None
    # The migration function creates or updates this role (DML on the app's tables only).
    app_db_user: str | None = None

    @model_validator(mode="after")
    def _check_auth(self) -> Self:
        if self.db_auth_mode is AuthMode.SECRET and not self.db_secret_arn:
            raise ValueError("DB_SECRET_ARN is required when DB_AUTH_MODE=secret")
        if self.db_auth_mode is not AuthMode.PASSWORD and not self.db_host:
            raise ValueError(f"DB_HOST is required when DB_AUTH_MODE={self.db_auth_mode}")
        return self

    @property
    def in_lambda(self) -> bool:
        return self.aws_lambda_function_name is not None

    @property
    def text_logs(self) -> bool:
        return self.log_format == "text" and not self.in_lambda

    @property
    def use_nullpool(self) -> bool:
        return self.in_lambda if self.db_nullpool is None else self.db_nullpool

    @property
    def url(self) -> str:
        """The SQLAlchemy URL without any credential (those are supplied per connection)."""
        if self.database_url:
            return self.database_url
        if self.db_host:
            return (
                f"postgresql+asyncpg://{self.db_user}@{self.db_host}:{self.db_port}/{self.db_name}"
            )
        return f"sqlite+aiosqlite:///{self.data_dir / 'users.db'}"


class SettingsError(RuntimeError):
    """A bad setting: the message names it, and never echoes its value."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']).upper() or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise SettingsError(f"Invalid configuration: {problems}") from None
