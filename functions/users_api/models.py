"""The database model, in SQLAlchemy 2.0 typed style, valid on PostgreSQL and SQLite."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Identity, Index, Integer, String, func
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.types import TypeDecorator

NAME_MAX = 100
EMAIL_MAX = 320


def email_key(email: str) -> str:
    """The form two spellings of one address share: Unicode canonical caseless matching.

    Folded here, in Python, not by the database's lower(): SQLite's lower() folds ASCII
    only and PostgreSQL's depends on the collation, so the rule would differ by backend.
    """
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", email).casefold())


class utcnow(FunctionElement[datetime]):
    """The current time on the server, with sub-second precision on every dialect."""

    type = DateTime(timezone=True)
    inherit_cache = True


@compiles(utcnow)
def _utcnow_default(element: utcnow, compiler: Any, **kw: Any) -> str:
    return "CURRENT_TIMESTAMP"


@compiles(utcnow, "postgresql")
def _utcnow_postgresql(element: utcnow, compiler: Any, **kw: Any) -> str:
    # statement_timestamp(), not now(): the time of this statement, not of its transaction.
    return "statement_timestamp()"


@compiles(utcnow, "sqlite")
def _utcnow_sqlite(element: utcnow, compiler: Any, **kw: Any) -> str:
    # CURRENT_TIMESTAMP has whole seconds on SQLite; keep milliseconds.
    return "(strftime('%Y-%m-%d %H:%M:%f', 'now'))"


class UTCDateTime(TypeDecorator[datetime]):
    """timestamptz on PostgreSQL; on SQLite, naive values are stored and read back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and dialect.name == "sqlite":
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    # SQLite: never reuse the id of a deleted row (PostgreSQL's identity never does).
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), Identity(), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    email: Mapped[str] = mapped_column(String(EMAIL_MAX))
    # email_key(email); unbounded, as folding can lengthen a string (ß -> ss). The app always
    # sets it; the schema allows NULL only for rows the previous release writes while a
    # deploy is under way (migration 0002 is the expand step of expand/contract).
    email_key: Mapped[str] = mapped_column(String(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=utcnow())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=utcnow())


# Emails are unique case-insensitively; the database enforces it, race-free.
Index("uq_users_email_key", User.email_key, unique=True)
# The previous release's rule, kept until the contract step: it guards the rows that release
# writes without a key during a deploy. Whatever it refuses, the key's rule refuses too.
Index("uq_users_email_lower", func.lower(User.email), unique=True)
