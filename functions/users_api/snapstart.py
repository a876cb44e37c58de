"""Lambda SnapStart: work done before the snapshot, and what a restored copy must redo.

Before the snapshot: build the engine object (no connection), load the database dialect and
serve one request that needs no database, so a restored environment answers its first
request warm. After a restore: reseed the random state (every copy of one snapshot would
otherwise share it), drop cached IAM tokens (signed before the snapshot, maybe long ago) and
any pooled connection (its socket did not survive). These hooks run only when SnapStart is
on; the managed runtime provides `snapshot_restore_py`.
"""

from __future__ import annotations

import random
from typing import Any

from users_api import db

WARM_UP_EVENT: dict[str, Any] = {
    "version": "2.0",
    "routeKey": "$default",
    "rawPath": "/openapi.json",
    "rawQueryString": "",
    "headers": {"host": "snapshot.local"},
    "requestContext": {
        "http": {"method": "GET", "path": "/openapi.json", "sourceIp": "127.0.0.1"},
        "requestId": "snapstart-warm-up",
    },
    "isBase64Encoded": False,
}


def before_snapshot(adapter: Any) -> None:
    db.get_engine()  # the engine object and its dialect; NullPool opens nothing
    response = adapter(WARM_UP_EVENT, None)
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
