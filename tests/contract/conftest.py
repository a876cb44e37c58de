"""The servings the contract suite runs against, each over its own database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import partial

import httpx
import pytest

from devtools.lambda_runtime import rest_api_event
from tests.conftest import empty_tables
from tests.support.serving import (
    Configure,
    asgi_client,
    lambda_client,
    lambda_server_client,
    uvicorn_client,
)


@dataclass
class Api:
    """A client of one serving. `gateway` servings take the request id from API Gateway."""

    client: httpx.Client
    database_url: str
    gateway: bool

    def __getattr__(self, name: str) -> object:  # get/post/... go to the client
        return getattr(self.client, name)


Serving = Callable[[str, Configure], AbstractContextManager[httpx.Client]]

SERVINGS: dict[str, tuple[str, Serving, bool]] = {
    "asgi-sqlite": ("sqlite", asgi_client, False),
    "asgi-postgres": ("postgres", asgi_client, False),
    "lambda-httpapi-postgres": ("postgres", lambda_client, True),
    "lambda-restapi-postgres": (
        "postgres",
        partial(lambda_client, build_event=rest_api_event),
        True,
    ),
    "uvicorn-postgres": ("postgres", lambda url, _configure: uvicorn_client(url), False),
    "lambda-server-postgres": ("postgres", lambda url, _configure: lambda_server_client(url), True),
}


@pytest.fixture(scope="module", params=list(SERVINGS))
def serving(request: pytest.FixtureRequest) -> Iterator[Api]:
    database, serve, gateway = SERVINGS[request.param]
    url = request.getfixturevalue("pg_url" if database == "postgres" else "sqlite_url")
    with pytest.MonkeyPatch.context() as monkeypatch:
        configure = Configure(monkeypatch)
        try:
            with serve(url, configure) as client:
                yield Api(client, url, gateway)
        finally:
            configure.reset()


@pytest.fixture
def api(serving: Api) -> Api:
    empty_tables(serving.database_url)
    return serving
