"""Alembic environment. Run through users_api.migrate, which hands over a connection."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from users_api.models import Base

target_metadata = Base.metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_server_default=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Run migrations with `python -m users_api.migrate`")
run_migrations(connection)
