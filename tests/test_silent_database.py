"""An open connection goes silent mid-query: 503 within the statement timeout + 1 s.

The network stops answering after the connection is established (the proxy holds every
chunk), as when a route or a database host disappears without a reset. The connection being
given up on must be terminated, not closed politely, so no serving waits past the bound, and
through Lambda the answer never comes after the invocation's deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from functools import partial
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.engine import make_url

from devtools.lambda_runtime import rest_api_event
from devtools.lambda_server import LambdaGateway
from devtools.tcp_proxy import TcpProxy
from tests.support.serving import Configure, asgi_client, lambda_client, uvicorn_client

pytestmark = pytest.mark.postgres

STATEMENT_TIMEOUT_S = 1.0
BOUND_S = STATEMENT_TIMEOUT_S + 1.0
SILENT = 3600.0  # the proxy holds each chunk this long: silence, as far as a request can tell

Serve = Callable[[str, Configure], AbstractContextManager[httpx.Client]]
SERVINGS: dict[str, tuple[Serve, bool]] = {
    # name: (serving, in this process with NullPool: silence on the request's own connection)
    "uvicorn": (lambda url, _configure: uvicorn_client(url), False),
    "asgi": (asgi_client, False),
    "lambda-httpapi": (lambda_client, True),
    "lambda-restapi": (partial(lambda_client, build_event=rest_api_event), True),
}


@pytest.fixture
def proxy(pg_url: str) -> Iterator[TcpProxy]:
    url = make_url(pg_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as running:
        yield running


@pytest.fixture(params=list(SERVINGS))
def served(
    request: pytest.FixtureRequest,
    proxy: TcpProxy,
    pg_url: str,
    configure: Configure,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[httpx.Client, Callable[[], None]]]:
    """A client, and how to make the database go silent once its next connection is open."""
    serve, per_connection = SERVINGS[request.param]
    via_proxy = make_url(pg_url).set(host="127.0.0.1", port=proxy.port)
    env = {"DB_STATEMENT_TIMEOUT": str(STATEMENT_TIMEOUT_S), "DB_CONNECT_TIMEOUT": "1"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    configure()
    with serve(via_proxy.render_as_string(hide_password=False), configure) as client:
        assert client.get("/users").status_code == 200  # a connection is open (or was)

        def go_silent() -> None:
            if not per_connection:  # a pooled server: its open connection goes silent
                proxy.delay_s = SILENT
                return
            from users_api.db import get_engine

            def silence(*_: Any) -> None:
                proxy.delay_s = SILENT

            event.listen(get_engine().sync_engine, "checkout", silence, once=True)

        yield client, go_silent
        proxy.delay_s = 0.0


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_silence_mid_query_is_a_503_within_the_bound_then_recovers(
    served: tuple[httpx.Client, Callable[[], None]], proxy: TcpProxy
) -> None:
    client, go_silent = served
    go_silent()
    response, elapsed = timed(lambda: client.get("/users/1"))
    assert response.status_code == 503, response.text
    assert response.json() == {"detail": "Database unavailable"}
    assert STATEMENT_TIMEOUT_S * 0.8 <= elapsed < BOUND_S, elapsed

    proxy.delay_s = 0.0
    assert client.get("/users").status_code == 200  # no restart needed


@pytest.mark.parametrize("event_builder", ["httpapi", "restapi"])
def test_silence_near_the_lambda_deadline_answers_before_it(
    event_builder: str, proxy: TcpProxy, pg_url: str, configure: Configure
) -> None:
    """The statement timeout is longer than the time left: the deadline margin decides."""
    via_proxy = make_url(pg_url).set(host="127.0.0.1", port=proxy.port)
    build = rest_api_event if event_builder == "restapi" else None
    serve = partial(lambda_client, build_event=build) if build else lambda_client
    configure(DB_STATEMENT_TIMEOUT="10")
    with serve(via_proxy.render_as_string(hide_password=False), configure) as client:
        assert client.get("/users").status_code == 200
        gateway = getattr(client, "app", None)
        assert isinstance(gateway, LambdaGateway)
        runner = gateway.runner
        runner.timeout_s = 1.5  # the invocation's whole budget
        from users_api.db import get_engine

        def silence(*_: Any) -> None:
            proxy.delay_s = SILENT

        event.listen(get_engine().sync_engine, "checkout", silence, once=True)
        response, elapsed = timed(lambda: client.get("/users/1"))
        assert response.status_code == 503, response.text
        assert elapsed < runner.timeout_s, elapsed
        proxy.delay_s = 0.0
        runner.timeout_s = 10.0
        assert client.get("/users").status_code == 200
