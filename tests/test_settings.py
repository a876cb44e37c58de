"""Settings: defaults, derived values, and bad values that fail at start, named."""

from __future__ import annotations

import subprocess
import sys

import pytest

from users_api.settings import Settings, SettingsError, get_settings


def test_local_default_is_the_embedded_sqlite() -> None:
    settings = Settings(_env_file=None)
    assert settings.url == "sqlite+aiosqlite:///.data/users.db"
    assert not settings.use_nullpool


def test_discrete_postgres_parts_build_a_url_without_password() -> None:
    settings = Settings(
        _env_file=None,
        db_host="proxy.example",
        db_port=6432,
        db_name="users",
        db_user="app",
        db_password="s3cret",
    )
    assert settings.url == "postgresql+asyncpg://app@proxy.example:6432/users"
    assert "s3cret" not in repr(settings)


def test_nullpool_inside_lambda_unless_overridden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "fn")
    assert Settings(_env_file=None).use_nullpool
    monkeypatch.setenv("DB_NULLPOOL", "false")
    assert not Settings(_env_file=None).use_nullpool


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DB_PORT": "seventy"}, "DB_PORT"),
        ({"DB_CONNECT_TIMEOUT": "0"}, "DB_CONNECT_TIMEOUT"),
        ({"DB_SSL": "maybe"}, "DB_SSL"),
        ({"DB_AUTH_MODE": "kerberos"}, "DB_AUTH_MODE"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"API_ROOT_PATH": "prod/"}, "API_ROOT_PATH"),
        ({"DB_AUTH_MODE": "secret", "DB_HOST": "h"}, "DB_SECRET_ARN"),
        ({"DB_AUTH_MODE": "iam"}, "DB_HOST"),
    ],
)
def test_a_bad_setting_is_named(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    try:
        with pytest.raises(SettingsError, match=named):
            get_settings()
    finally:
        get_settings.cache_clear()


def test_the_app_refuses_to_start_with_a_bad_setting() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import users_api.app"],
        env={"DB_PORT": "nope", "PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "Invalid configuration: DB_PORT" in result.stderr
