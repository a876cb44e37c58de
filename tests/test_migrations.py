"""Migrations agree with the models; the migration handler sets up a least-privileged role."""

from __future__ import annotations

import json

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from devtools.postgres import run, scratch_database
from tests.support import release_queries
from tests.support.serving import Configure
from users_api.models import Base

pytestmark = pytest.mark.postgres


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_server_default": True})
    return compare_metadata(context, Base.metadata)


def test_migrations_match_the_models_on_postgres(pg_url: str) -> None:
    from users_api.db import create_engine
    from users_api.settings import Settings

    url = pg_url

    async def diff() -> list[object]:
        engine = create_engine(Settings(database_url=url, db_nullpool=True))
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(_diff)
        finally:
            await engine.dispose()

    assert run(diff()) == []


def test_migration_handler_is_idempotent_and_creates_a_dml_only_role(
    pg_server: str, configure: Configure
) -> None:
    from users_api import migrate

    with scratch_database(pg_server, "users_api_migrate_test") as url:
        configure(
            DATABASE_URL=url.replace("postgresql://", "postgresql+asyncpg://"),
            APP_DB_USER="users_app_test",
            DB_STATEMENT_TIMEOUT="7",
        )
        first = migrate.handler({}, None)
        second = migrate.handler({}, None)
        assert first["revision"] == second["revision"] == "0002"
        assert first["app_role"] == "users_app_test"

        async def as_app_role() -> None:
            conn = await asyncpg.connect(url, user="users_app_test")
            try:
                await conn.execute(
                    "INSERT INTO users (name, email, email_key) VALUES ('A', 'a@x.org', 'a@x.org')"
                )
                assert await conn.fetchval("SELECT count(*) FROM users") == 1
                await conn.execute("UPDATE users SET name = 'B'")
                await conn.execute("DELETE FROM users")
                assert await conn.fetchval("SHOW statement_timeout") == "7s"
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute("CREATE TABLE intruder (id int)")
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute("DROP TABLE users")
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.fetch("SELECT * FROM alembic_version")
            finally:
                await conn.close()

        run(as_app_role())


def test_a_failing_migration_leaves_nothing_half_applied(pg_server: str) -> None:
    """The upgrade and the role grants are one transaction, although the engine autocommits."""
    from users_api.migrate import migrate_database
    from users_api.settings import Settings

    with scratch_database(pg_server, "users_api_migrate_atomic") as url:
        settings = Settings(database_url=url.replace("postgresql://", "postgresql+asyncpg://"))

        with pytest.raises(ValueError, match="invalid role name"):
            run(migrate_database(settings, app_role="Not A Valid Role"))

        async def tables() -> list[str]:
            conn = await asyncpg.connect(url)
            try:
                rows = await conn.fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                )
                return sorted(r["tablename"] for r in rows)
            finally:
                await conn.close()

        assert run(tables()) == []


# -- expand/contract: the previous release keeps working on the newest schema ---------------

APP_ROLE = "users_app_compat_test"


async def _replay(url: str, statements: list[dict[str, object]], *, user: str) -> None:
    """Each recorded statement, in order, as the application role (its grants count too)."""
    conn = await asyncpg.connect(url, user=user)
    try:
        for statement in statements:
            params = statement["params"]
            assert isinstance(params, list)
            await conn.fetch(str(statement["sql"]), *params)
    finally:
        await conn.close()


def _migrated(url: str) -> None:
    from users_api.migrate import migrate_database
    from users_api.settings import Settings

    settings = Settings(database_url=url.replace("postgresql://", "postgresql+asyncpg://", 1))
    run(migrate_database(settings, app_role=APP_ROLE))


def _previous_release_statements() -> tuple[str, list[dict[str, object]]]:
    """The statements of the release that ran before the newest migration: the recording of
    the head's down-revision (the head's own while the head is the first migration, whose
    previous release had no schema at all)."""
    head = release_queries.head_revision()
    previous = release_queries.previous_revision(head) or head
    path = release_queries.queries_file(previous)
    assert path.is_file(), (
        f"{path.name} is missing: the queries of the release before migration {head} are "
        "recorded before that migration is added (tests/support/release_queries.py)"
    )
    return previous, json.loads(path.read_text())


def test_the_previous_release_queries_run_on_the_newest_schema(pg_server: str) -> None:
    revision, statements = _previous_release_statements()
    assert len(statements) >= 6, revision
    with scratch_database(pg_server, "users_api_release_compat") as url:
        _migrated(url)
        run(_replay(url, statements, user=APP_ROLE))


def test_a_contracting_migration_would_break_the_previous_release(pg_server: str) -> None:
    """The check can fail: a column renamed in one step (contract without expand) breaks
    the code still running."""
    _, statements = _previous_release_statements()
    with scratch_database(pg_server, "users_api_release_contract") as url:
        _migrated(url)

        async def rename() -> None:
            conn = await asyncpg.connect(url)
            try:
                await conn.execute("ALTER TABLE users RENAME COLUMN email TO email_address")
            finally:
                await conn.close()

        run(rename())
        with pytest.raises(asyncpg.UndefinedColumnError):
            run(_replay(url, statements, user=APP_ROLE))


def test_the_head_revision_records_what_the_current_code_sends(pg_server: str) -> None:
    """The head's recording is the current code's SQL, so that it is the right one to keep
    when the next migration is added (re-record: tests/support/release_queries.py)."""
    path = release_queries.queries_file(release_queries.head_revision())
    with scratch_database(pg_server, "users_api_release_record") as url:
        current = run(release_queries.record(url))
    assert json.loads(path.read_text()) == current, (
        f"the data access changed: re-record {path.name} "
        "(python -m tests.support.release_queries POSTGRES_URL)"
    )
