"""Work done once per execution environment before its first request, and what a restored
SnapStart copy must redo.

At import (every cold start; with SnapStart, before the snapshot): build the engine object,
which loads the database dialect and driver (no connection: NullPool opens nothing until a
request), and serve one request through the users router that fails validation before any
statement runs. That request builds what FastAPI and Starlette otherwise build on the first
request (each route's parameter and response fields, the anyio backend), so the first real
request only connects, initializes the dialect and runs its statement. Its log line and
metrics are dropped: it is not traffic.

Before a snapshot, also render the OpenAPI document (worth it only for a snapshot: a plain
cold start rarely serves /docs). After a restore: reseed the random state (every copy of one
snapshot would otherwise share it), drop cached IAM tokens (signed before the snapshot, maybe
long ago) and any pooled connection (its socket did not survive). These hooks run only when
SnapStart is on; the managed runtime provides `snapshot_restore_py`.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from users_api import db
from users_api.observability import logger, metrics


def _event(path: str) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "warm-up.local"},
        "requestContext": {
            "http": {"method": "GET", "path": path, "sourceIp": "127.0.0.1"},
            "requestId": "warm-up",
        },
        "isBase64Encoded": False,
    }


# Not an id: FastAPI answers 422 after building the request's session (no connection)
# and before the route's code runs.
WARM_UP_EVENT = _event("/users/warm-up")
WARM_UP_STATUS = 422
SNAPSHOT_EVENT = _event("/openapi.json")


@contextmanager
def _not_traffic() -> Iterator[None]:
    level = logger.log_level
    logger.setLevel("WARNING")
    try:
        yield
    finally:
        logger.setLevel(level)
        metrics().clear_metrics()


def warm_up(adapter: Any) -> None:
    db.get_engine()
    db.database().sessionmaker  # noqa: B018 - built now, not on the first request
    with _not_traffic():
        status = adapter(WARM_UP_EVENT, None)["statusCode"]
    if status != WARM_UP_STATUS:  # never fatal: the function still serves without it
        logger.warning("warm-up request answered", extra={"status": status})


def before_snapshot(adapter: Any) -> None:
    with _not_traffic():
        response = adapter(SNAPSHOT_EVENT, None)
    if response["statusCode"] != 200:
        raise RuntimeError(f"SnapStart warm-up failed: {response['statusCode']}")


def after_restore() -> None:
    random.seed()
    db.get_credentials().reset()
    db.get_engine().sync_engine.dispose(close=False)


def register(adapter: Any) -> bool:
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError:  # not the managed runtime (nor the test package): no SnapStart
        return False
    register_before_snapshot(before_snapshot, adapter)
    register_after_restore(after_restore)
    return True
