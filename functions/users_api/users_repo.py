"""Data access for users: plain async functions taking a session, one statement each.

One statement per operation keeps every route atomic without a transaction block, so a
request costs no BEGIN/COMMIT round trips. Uniqueness is left to the database's index
(race-free); its violation becomes EmailTaken.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from users_api.errors import EmailTaken
from users_api.models import User, email_key, utcnow

# How each backend names a violated email index: PostgreSQL by its name, SQLite by column
# (or by name for the expression index uq_users_email_lower, see models).
EMAIL_KEY_VIOLATIONS = ("uq_users_email_key", "users.email_key", "uq_users_email_lower")


def _raise_if_email_taken(exc: IntegrityError) -> None:
    message = str(exc.orig)
    if any(name in message for name in EMAIL_KEY_VIOLATIONS):
        raise EmailTaken from None


async def create_user(session: AsyncSession, *, name: str, email: str) -> User:
    stmt = insert(User).values(name=name, email=email, email_key=email_key(email)).returning(User)
    try:
        return (await session.scalars(stmt)).one()
    except IntegrityError as exc:
        _raise_if_email_taken(exc)
        raise


async def get_user(session: AsyncSession, user_id: int) -> User | None:
    return await session.scalar(select(User).where(User.id == user_id))


async def list_users(session: AsyncSession, *, after_id: int, limit: int) -> Sequence[User]:
    """Keyset pagination by id; fetches one extra row to tell whether a next page exists."""
    stmt = select(User).where(User.id > after_id).order_by(User.id).limit(limit + 1)
    return (await session.scalars(stmt)).all()


async def update_user(session: AsyncSession, user_id: int, changes: dict[str, Any]) -> User | None:
    if not changes:
        return await get_user(session, user_id)
    if "email" in changes:
        changes = {**changes, "email_key": email_key(changes["email"])}
    stmt = (
        update(User)
        .where(User.id == user_id)
        .values(**changes, updated_at=utcnow())
        .returning(User)
        .execution_options(synchronize_session=False)
    )
    try:
        return (await session.scalars(stmt)).one_or_none()
    except IntegrityError as exc:
        _raise_if_email_taken(exc)
        raise


async def delete_user(session: AsyncSession, user_id: int) -> bool:
    stmt = delete(User).where(User.id == user_id).returning(User.id)
    return (await session.scalar(stmt)) is not None


async def ping(session: AsyncSession) -> None:
    await session.execute(text("SELECT 1"))
