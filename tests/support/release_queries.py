"""The SQL a release of the API sends to PostgreSQL, recorded per migration revision.

Expand/contract (docs/deploy.md): a deploy runs the migrations before the new code goes
live, so for a while the code already running (the previous release) works on the newest
schema. To check that, `tests/release_queries/<revision>.json` holds the statements the
code issued while `<revision>` was the newest migration: every data-access function of
`users_api.users_repo` run once against real PostgreSQL, each statement captured as the
driver received it (SQL and parameters). tests/test_migrations.py replays the previous
revision's file against the head schema, and checks that the head revision's file is what
the current code sends.

Record the head revision's file after changing the data access or adding a migration:

    PYTHONPATH=functions:. .venv/bin/python -m tests.support.release_queries SERVER_URL

(SERVER_URL: a PostgreSQL server, postgresql://USER@HOST:PORT/DB; a scratch database is
made on it.) Never re-record an older revision's file: it is the release that was deployed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

QUERIES_DIR = Path(__file__).resolve().parents[1] / "release_queries"

Statement = dict[str, Any]  # {"sql": str, "params": list}


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    from users_api.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def previous_revision(revision: str) -> str | None:
    from alembic.script import ScriptDirectory

    from users_api.migrate import alembic_config

    down = ScriptDirectory.from_config(alembic_config()).get_revision(revision).down_revision
    assert down is None or isinstance(down, str), "no merge revisions here"
    return down


def queries_file(revision: str) -> Path:
    return QUERIES_DIR / f"{revision}.json"


async def _workload(session: AsyncSession) -> None:
    """Every data-access function once, as the routes call them."""
    from users_api import users_repo

    user = await users_repo.create_user(session, name="Ada", email="ada@example.com")
    await users_repo.get_user(session, user.id)
    await users_repo.list_users(session, after_id=0, limit=10)
    await users_repo.update_user(session, user.id, {"name": "Ada L.", "email": "al@example.com"})
    await users_repo.update_user(session, user.id, {})
    await users_repo.delete_user(session, user.id)
    await users_repo.ping(session)


async def record(url: str) -> list[Statement]:
    """Migrate a fresh database at `url` (asyncpg URL) to head, run the workload, return the
    statements it sent."""
    from users_api.db import create_engine
    from users_api.migrate import migrate_database
    from users_api.settings import Settings

    settings = Settings(database_url=url.replace("postgresql://", "postgresql+asyncpg://", 1))
    await migrate_database(settings)
    engine = create_engine(settings)
    captured: list[Statement] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        captured.append({"sql": statement, "params": list(parameters or ())})

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            await _workload(session)
            await session.commit()
    finally:
        await engine.dispose()
    return captured


def main(server_url: str) -> None:
    from devtools.postgres import run, scratch_database

    with scratch_database(server_url, "users_api_record_queries") as url:
        statements = run(record(url))
    target = queries_file(head_revision())
    target.write_text(json.dumps(statements, indent=2) + "\n")
    print(f"{len(statements)} statements -> {target}")


if __name__ == "__main__":
    main(sys.argv[1])
