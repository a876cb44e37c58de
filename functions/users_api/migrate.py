"""Apply the Alembic migrations, and (on PostgreSQL) the application role and its grants.

`python -m users_api.migrate` migrates the configured database (the embedded SQLite by
default). `handler` is the migration Lambda that the deploy runs through a CDK trigger:
it connects as the master user and leaves the API's role with DML on its tables only.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from users_api.db import create_engine
from users_api.observability import logger
from users_api.settings import Settings, get_settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
APP_TABLES = ("users",)


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


def _current_revision(connection: Connection) -> str | None:
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def ensure_app_role(
    connection: Connection, role: str, *, statement_timeout_s: float | None = None
) -> None:
    """Create or update the API's login role: DML on its tables, nothing else. Idempotent."""
    if not _ROLE_NAME.fullmatch(role):
        raise ValueError(f"invalid role name {role!r}")
    exists = connection.execute(
        text("SELECT 1 FROM pg_roles WHERE rolname = :role"), {"role": role}
    ).scalar()
    if not exists:
        connection.execute(text(f'CREATE ROLE "{role}" LOGIN'))
    has_rds_iam = connection.execute(
        text("SELECT 1 FROM pg_roles WHERE rolname = 'rds_iam'")
    ).scalar()
    if has_rds_iam:  # on RDS: authenticate with IAM tokens, no password exists
        connection.execute(text(f'GRANT rds_iam TO "{role}"'))
    database = connection.execute(text("SELECT current_database()")).scalar_one()
    statements = [
        f'GRANT CONNECT ON DATABASE "{database}" TO "{role}"',
        f'GRANT USAGE ON SCHEMA public TO "{role}"',
        *(f'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE {t} TO "{role}"' for t in APP_TABLES),
        f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO "{role}"',
    ]
    if statement_timeout_s is not None:
        # A server-side backstop for the client's timeout.
        timeout_ms = int(statement_timeout_s * 1000)
        statements.append(f"ALTER ROLE \"{role}\" SET statement_timeout = '{timeout_ms}'")
    for statement in statements:
        connection.execute(text(statement))


async def migrate(engine: AsyncEngine, *, app_role: str | None = None) -> str | None:
    """Upgrade to head (and set up `app_role`); returns the revision now applied."""
    async with engine.connect() as conn:
        # The engine autocommits (the API's statements stand alone); a migration and the
        # role's grants are all-or-nothing, in the dialect's default isolation level.
        await conn.execution_options(isolation_level=conn.dialect.default_isolation_level)
        async with conn.begin():
            await conn.run_sync(_upgrade)
            if app_role and conn.dialect.name == "postgresql":
                await conn.run_sync(
                    ensure_app_role,
                    app_role,
                    statement_timeout_s=get_settings().db_statement_timeout,
                )
            return await conn.run_sync(_current_revision)


async def migrate_database(settings: Settings, *, app_role: str | None = None) -> str | None:
    """Migrate the database `settings` name, with an engine of its own."""
    engine = create_engine(settings)
    try:
        return await migrate(engine, app_role=app_role)
    finally:
        await engine.dispose()


def ensure_sqlite_dir(settings: Settings) -> None:
    """Create the folder of an SQLite database file (the embedded default, `.data/`)."""
    url = make_url(settings.url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


async def _run() -> dict[str, Any]:
    settings = get_settings()
    url = make_url(settings.url)
    ensure_sqlite_dir(settings)
    app_role = settings.app_db_user
    revision = await migrate_database(settings, app_role=app_role)
    result = {"revision": revision, "app_role": app_role, "database": url.database}
    logger.info("migrations applied", extra=result)
    return result


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The migration Lambda (its own function: asyncio.run owns the loop here)."""
    return asyncio.run(_run())


def main() -> None:
    asyncio.run(_run())


if __name__ == "__main__":
    main()
