"""SnapStart hooks: warm-up before the snapshot touches no database; a restore resets state."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
import snapshot_restore_py
from moto import mock_aws
from sqlalchemy.engine import make_url

from devtools.tcp_proxy import TcpProxy
from tests.support.serving import Configure, ensure_event_loop

Logs = Callable[[], list[dict[str, object]]]


def hooks(registry: list) -> list:  # type: ignore[type-arg]
    from users_api import snapstart

    return [entry for entry in registry if entry[0].__module__ == snapstart.__name__]


def test_the_handler_registers_both_hooks() -> None:
    import users_api.handler  # noqa: F401

    assert [f.__name__ for f, _, _ in hooks(snapshot_restore_py._before_snapshot_registry)] == [
        "before_snapshot"
    ]
    assert [f.__name__ for f, _, _ in hooks(snapshot_restore_py._after_restore_registry)] == [
        "after_restore"
    ]


@pytest.mark.postgres
def test_the_warm_up_builds_the_engine_but_opens_no_connection_and_logs_nothing(
    pg_url: str, configure: Configure, json_logs: Logs
) -> None:
    from users_api import db, snapstart
    from users_api.handler import adapter
    from users_api.observability import metrics

    target = make_url(pg_url)
    with TcpProxy(target.host or "127.0.0.1", target.port or 5432) as proxy:
        url = target.set(host="127.0.0.1", port=proxy.port)
        configure(
            DATABASE_URL=url.render_as_string(hide_password=False),
            AWS_LAMBDA_FUNCTION_NAME="UsersApiFunction",
        )
        ensure_event_loop()
        assert not db.database().has_engine
        statuses = []
        real_adapter = adapter

        def recording(event: dict, context: object) -> dict:  # type: ignore[type-arg]
            statuses.append(real_adapter(event, context)["statusCode"])
            return {"statusCode": statuses[-1]}

        snapstart.warm_up(recording)
        for func, args, kwargs in hooks(snapshot_restore_py._before_snapshot_registry):
            func(*args, **kwargs)
        assert db.database().has_engine
        assert proxy.connections == 0
    # the users router answered (validation, before any statement)
    assert statuses == [snapstart.WARM_UP_STATUS]
    assert json_logs() == []  # not traffic: no access-log line ...
    assert metrics().metric_set == {}  # ... and no metric left for the next flush


def test_after_restore_resets_tokens_random_state_and_pool(configure: Configure) -> None:
    from users_api import db

    with mock_aws():
        configure(
            DATABASE_URL=None,
            DB_AUTH_MODE="iam",
            DB_HOST="proxy.example.internal",
            DB_USER="users_app",
        )
        source = db.get_credentials()
        assert not db.database().has_engine  # credentials alone build no engine
        token = source.token()  # type: ignore[attr-defined]
        assert source._token == token  # type: ignore[attr-defined]
        random.seed(42)
        before = random.random()
        random.seed(42)
        for func, args, kwargs in hooks(snapshot_restore_py._after_restore_registry):
            func(*args, **kwargs)
        assert source._token is None  # type: ignore[attr-defined]
        assert random.random() != before
