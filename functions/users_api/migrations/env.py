"""Alembic environment.

`users_api.migrate` (the migration Lambda, `make migrate`) hands over an open connection.
The plain `alembic` command (alembic.ini at the repository root) gets none: it connects to
the database the app's settings name, or writes SQL with `--sql`.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from users_api.models import Base

target_metadata = Base.metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        # SQLite reflects neither identity columns nor most defaults: comparing them there
        # would report differences that are not (PostgreSQL compares them).
        compare_server_default=connection.dialect.name != "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_settings() -> None:
    from users_api.db import create_engine
    from users_api.migrate import ensure_sqlite_dir
    from users_api.settings import get_settings

    ensure_sqlite_dir(get_settings())
    engine = create_engine(get_settings())
    try:
        async with engine.connect() as conn:
            # The app's engine autocommits; a migration is one transaction (as in migrate.py).
            await conn.execution_options(isolation_level=conn.dialect.default_isolation_level)
            async with conn.begin():
                await conn.run_sync(run_migrations)
    finally:
        await engine.dispose()


def _sql_from_settings() -> None:
    from users_api.settings import get_settings

    context.configure(url=get_settings().url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
elif context.is_offline_mode():
    _sql_from_settings()
else:
    asyncio.run(_run_from_settings())
