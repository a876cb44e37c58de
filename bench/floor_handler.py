"""The floor: the least a Lambda handler can do for each route with asyncpg.

Per invocation it connects (no pool, like the project's NullPool inside Lambda; no TLS and
no statement cache, like the project's settings), runs the route's one parameterised
statement, closes, and answers an API Gateway proxy response with a JSON body. One event
loop is kept across invocations, as Mangum does. No framework, validation, logging or metrics: the
project's handler is measured against this, and its import time is the cold-start floor.

The database comes from DATABASE_URL (a `postgresql+asyncpg://` URL is accepted), read at
import like a Lambda's configuration, or from `configure()`.
"""

from __future__ import annotations

import asyncio
import json
import os
import unicodedata
from datetime import datetime
from typing import Any

import asyncpg

_COLUMNS = "id, name, email, created_at, updated_at"
SELECT_ONE = f"SELECT {_COLUMNS} FROM users WHERE id = $1"
INSERT = f"INSERT INTO users (name, email, email_key) VALUES ($1, $2, $3) RETURNING {_COLUMNS}"
SELECT_PAGE = f"SELECT {_COLUMNS} FROM users WHERE id > $1 ORDER BY id LIMIT $2"
UPDATE = (
    "UPDATE users SET name = $1, updated_at = statement_timestamp() "
    f"WHERE id = $2 RETURNING {_COLUMNS}"
)

_dsn = os.environ.get("DATABASE_URL", "").replace("postgresql+asyncpg://", "postgresql://", 1)


# One loop for the life of the process (an execution environment), as Mangum keeps one.
_LOOP = asyncio.new_event_loop()


def configure(dsn: str) -> None:
    global _dsn
    _dsn = dsn.replace("postgresql+asyncpg://", "postgresql://", 1)


def _row(record: asyncpg.Record) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in record.items()}


def _response(status: int, body: Any) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


async def _handle(method: str, path: str, query: dict[str, str], body: str | None) -> Any:
    parts = path.strip("/").split("/")
    conn = await asyncpg.connect(
        _dsn, statement_cache_size=0, ssl=False, timeout=5, command_timeout=10
    )
    try:
        if method == "GET" and len(parts) == 2:
            record = await conn.fetchrow(SELECT_ONE, int(parts[1]))
        elif method == "GET":
            after_id, limit = int(query.get("after_id", 0)), int(query.get("limit", 50))
            rows = await conn.fetch(SELECT_PAGE, after_id, limit + 1)
            return 200, [_row(r) for r in rows[:limit]]
        elif method == "POST":
            data = json.loads(body or "{}")
            email = data["email"]
            # The uniqueness key, folded as users_api.models.email_key folds it.
            key = unicodedata.normalize("NFC", unicodedata.normalize("NFD", email).casefold())
            return 201, _row(await conn.fetchrow(INSERT, data["name"], email, key))
        elif method == "PATCH":
            data = json.loads(body or "{}")
            record = await conn.fetchrow(UPDATE, data["name"], int(parts[1]))
        else:
            return 405, {"detail": "Method Not Allowed"}
    finally:
        await conn.close()
    if record is None:
        return 404, {"detail": "User not found"}
    return 200, _row(record)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """An API Gateway HTTP API (2.0) or REST API (1.0) proxy event in, a response out."""
    http = event.get("requestContext", {}).get("http")
    method = http["method"] if http else event["httpMethod"]
    path = event.get("rawPath") or event.get("path") or "/"
    query = event.get("queryStringParameters") or {}
    status, body = _LOOP.run_until_complete(_handle(method, path, query, event.get("body")))
    return _response(status, body)
