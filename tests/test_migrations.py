"""Migrations agree with the models; the migration handler sets up a least-privileged role."""

from __future__ import annotations

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from tests.support.postgres import run, scratch_database
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
