"""Shared fixtures: the databases, app configuration, and the ways the app is served."""

from __future__ import annotations

import io
import json
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from devtools.lambda_runtime import FAKE_AWS_CREDENTIALS
from devtools.postgres import migrate, postgres_server, run, scratch_database
from tests.support.serving import Configure

# Before anything imports boto3: no real credentials, no instance-metadata lookups, so no
# code path can reach anything but loopback.
os.environ.update(FAKE_AWS_CREDENTIALS)
os.environ["POWERTOOLS_METRICS_NAMESPACE"] = "UsersApiTest"
for _name in ("AWS_PROFILE", "AWS_LAMBDA_FUNCTION_NAME", "DATABASE_URL", "DB_HOST"):
    os.environ.pop(_name, None)

# Generated tests judge answers, never speed: the machine is shared and noisy, so no
# per-example deadline (hypothesis's default 200 ms turns a slow moment into a flaky failure).
settings.register_profile("project", deadline=None)
settings.load_profile("project")

# The handler module builds its app once, at import, as on a cold start: import it now, under
# the default settings, so no test's configuration is baked into it.
import users_api.handler  # noqa: E402, F401


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def pg_url(pg_server: str) -> Iterator[str]:
    """A migrated PostgreSQL database of this test session, as a SQLAlchemy URL."""
    with scratch_database(pg_server, f"users_api_test_{os.getpid()}") as url:
        yield migrate(url)


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    from users_api.migrate import migrate_database
    from users_api.settings import Settings

    path = tmp_path_factory.mktemp("sqlite") / "users.db"
    url = f"sqlite+aiosqlite:///{path}"
    run(migrate_database(Settings(database_url=url)))
    return url


def empty_tables(url: str) -> None:
    """Remove every row (and reset ids) so each test starts from an empty database."""
    if url.startswith("sqlite"):
        with sqlite3.connect(Path(url.split(":///", 1)[1])) as conn:
            conn.execute("DELETE FROM users")
            conn.execute("DELETE FROM sqlite_sequence WHERE name = 'users'")
        return
    import asyncpg

    async def truncate() -> None:
        conn = await asyncpg.connect(url.replace("+asyncpg", ""))
        try:
            await conn.execute("TRUNCATE users RESTART IDENTITY")
        finally:
            await conn.close()

    run(truncate())


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Configure]:
    """Point the app's settings (and its engine singleton) at a given environment."""
    configurer = Configure(monkeypatch)
    yield configurer
    configurer.reset()


@pytest.fixture
def clean_pg(pg_url: str) -> str:
    """The session's PostgreSQL database, emptied for this test."""
    empty_tables(pg_url)
    return pg_url


@pytest.fixture
def clean_sqlite(sqlite_url: str) -> str:
    """The session's SQLite database, emptied for this test."""
    empty_tables(sqlite_url)
    return sqlite_url


@pytest.fixture
def json_logs() -> Iterator[Callable[[], list[dict[str, object]]]]:
    """The app's JSON log lines written during the test (its handler binds stdout early)."""
    from users_api.observability import logger

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        logger.removeHandler(handler)
