"""The floor: the least a Lambda handler can do for each route with asyncpg.

Per invocation it connects (no pool, like the project's NullPool inside Lambda; no
statement cache, like the project's settings), runs the route's one parameterised
statement, closes, and answers an API Gateway proxy response with a JSON body. One event
loop is kept across invocations, as Mangum does. No framework, validation, logging or metrics: the
project's handler is measured against this, and its import time is the cold-start floor.

The database comes from the project's own variables, read at import like a Lambda's
configuration: DATABASE_URL (a `postgresql+asyncpg://` URL is accepted), or `configure()`;
or, as production runs, DB_HOST/DB_PORT/DB_NAME/DB_USER with DB_AUTH_MODE=iam (an RDS IAM
token as the password, signed by the project's SDK-free signer and kept 10 minutes, as the
project keeps it) and DB_SSL=verify-full (the system trust store, host name checked).
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import time
import unicodedata
from collections.abc import Callable
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
_ssl: ssl.SSLContext | bool = False
_sign: Callable[[], str] | None = None
_token: tuple[float, str] | None = None
if not _dsn and os.environ.get("DB_HOST"):
    _host, _port = os.environ["DB_HOST"], int(os.environ.get("DB_PORT", "5432"))
    _user = os.environ.get("DB_USER", "postgres")
    _dsn = f"postgresql://{_user}@{_host}:{_port}/{os.environ.get('DB_NAME', 'postgres')}"
    if os.environ.get("DB_SSL") == "verify-full":
        _ssl = ssl.create_default_context()
    if os.environ.get("DB_AUTH_MODE") == "iam":
        from users_api.rds_token import TokenSigner

        _sign = TokenSigner(_host, _port, _user, os.environ.get("AWS_REGION"))


# One loop for the life of the process (an execution environment), as Mangum keeps one.
_LOOP = asyncio.new_event_loop()


def configure(dsn: str) -> None:
    global _dsn
    _dsn = dsn.replace("postgresql+asyncpg://", "postgresql://", 1)


def _password() -> str | None:
    global _token
    if _sign is None:
        return None
    if _token is None or time.monotonic() - _token[0] > 600:
        _token = (time.monotonic(), _sign())
    return _token[1]


def _row(record: asyncpg.Record) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in record.items()}


async def _handle(method: str, path: str, query: dict[str, str], body: str | None) -> Any:
    parts = path.strip("/").split("/")
    conn = await asyncpg.connect(
        _dsn,
        password=_password(),
        statement_cache_size=0,
        ssl=_ssl,
        timeout=5,
        command_timeout=10,
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
    """An API Gateway HTTP API (2.0) proxy event in, a response out."""
    method, path = event["requestContext"]["http"]["method"], event["rawPath"]
    query = event.get("queryStringParameters") or {}
    status, body = _LOOP.run_until_complete(_handle(method, path, query, event.get("body")))
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }
