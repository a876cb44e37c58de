"""A database outage: a bounded 503, then recovery without a restart of the process."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import httpx
import pytest
from sqlalchemy.engine import make_url

from devtools.tcp_proxy import TcpProxy
from tests.support.serving import Configure, asgi_client, lambda_client

pytestmark = pytest.mark.postgres

CONNECT_TIMEOUT_S = 1.0


@pytest.fixture
def proxy(pg_url: str) -> Iterator[TcpProxy]:
    url = make_url(pg_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as running:
        yield running


@pytest.fixture(params=["lambda", "asgi"])
def client(
    request: pytest.FixtureRequest, proxy: TcpProxy, pg_url: str, configure: Configure
) -> Iterator[httpx.Client]:
    via_proxy = make_url(pg_url).set(host="127.0.0.1", port=proxy.port)
    configure(DB_CONNECT_TIMEOUT=str(CONNECT_TIMEOUT_S))
    serve: Callable[[str, Configure], AbstractContextManager[httpx.Client]] = (
        lambda_client if request.param == "lambda" else asgi_client
    )
    with serve(via_proxy.render_as_string(hide_password=False), configure) as c:
        yield c


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503
    assert response.json() == {"detail": "Database unavailable"}


def test_refused_connections_give_503_then_recover(client: httpx.Client, proxy: TcpProxy) -> None:
    assert client.get("/health").json() == {"status": "ok", "database": "ok"}
    proxy.stop()

    response, elapsed = timed(lambda: client.get("/users"))
    assert_unavailable(response)
    assert elapsed < CONNECT_TIMEOUT_S + 1
    health = client.get("/health")
    assert health.status_code == 503
    assert health.json() == {"status": "error", "database": "unavailable"}
    assert_unavailable(client.post("/users", json={"name": "A", "email": "a@example.com"}))

    proxy.start()
    assert client.get("/users").status_code == 200
    assert client.get("/health").status_code == 200


def test_a_silent_database_gives_503_within_the_connect_timeout(
    client: httpx.Client, proxy: TcpProxy
) -> None:
    proxy.stop()
    proxy.blackhole = True
    proxy.start()

    response, elapsed = timed(lambda: client.get("/users/1"))
    assert_unavailable(response)
    assert CONNECT_TIMEOUT_S * 0.8 <= elapsed < CONNECT_TIMEOUT_S + 1.5

    proxy.stop()
    proxy.blackhole = False
    proxy.start()
    assert client.get("/health").status_code == 200
