"""Migration 0002 on a database with rows: every row gets its folded key, and the index
then enforces the one rule (on SQLite, where lower() had folded ASCII only)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine

from users_api.migrate import alembic_config
from users_api.models import email_key

ROWS = ["Ann@example.com", "ÉLODIE@example.com", "straße@example.com"]


def _upgrade(url: str, revision: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), revision)
    finally:
        engine.dispose()


def test_existing_rows_get_their_key_and_the_index_holds(tmp_path: Path) -> None:
    path = tmp_path / "users.db"
    _upgrade(f"sqlite:///{path}", "0001")
    with sqlite3.connect(path) as db:
        db.executemany("INSERT INTO users (name, email) VALUES ('N', ?)", [(e,) for e in ROWS])
    _upgrade(f"sqlite:///{path}", "head")

    with sqlite3.connect(path) as db:
        keys = dict(db.execute("SELECT email, email_key FROM users").fetchall())
        assert keys == {e: email_key(e) for e in ROWS}
        assert keys["ÉLODIE@example.com"] == "élodie@example.com"
        with pytest.raises(sqlite3.IntegrityError):
            db.execute(
                "INSERT INTO users (name, email, email_key) VALUES ('N', ?, ?)",
                ("élodie@EXAMPLE.com", email_key("élodie@EXAMPLE.com")),
            )
