"""email uniqueness by a key folded in Python, the same rule on every backend

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from users_api.models import email_key

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

users = sa.table(
    "users", sa.column("id", sa.BigInteger()), sa.column("email"), sa.column("email_key")
)


def upgrade() -> None:
    # Expand only (docs/deploy.md): the release still running during the deploy inserts
    # users without email_key, so the column stays nullable and the old lower(email) index
    # stays to guard its rows. Every row this release writes carries the key; the contract
    # step (key NOT NULL, old index dropped) belongs to the next release's migration.
    op.add_column("users", sa.Column("email_key", sa.String(), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(sa.select(users.c.id, users.c.email)).all()
    for row_id, email in rows:
        connection.execute(
            users.update().where(users.c.id == row_id).values(email_key=email_key(email))
        )
    # Two rows that only the new rule sees as one address (possible on SQLite, whose lower()
    # folded ASCII only) make the unique index fail here: resolve them, then migrate again.
    op.create_index("uq_users_email_key", "users", ["email_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_users_email_key", table_name="users")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("email_key")
