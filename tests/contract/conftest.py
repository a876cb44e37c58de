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
    sam_api_client,
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
    "sam-start-api-postgres": ("postgres", lambda url, _configure: sam_api_client(url), True),
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


def _not_utf8(params: dict[str, object]) -> bool:
    raw = params.get("raw")
    try:
        (raw if isinstance(raw, bytes) else b"").decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


# Where SAM CLI's local API Gateway (1.170) differs from API Gateway, not the app: each such
# case is expected to fail (strict: when SAM fixes it, the test says so).
EMULATOR_GAPS: dict[tuple[str, str], tuple[Callable[[dict[str, object]], bool], str]] = {
    ("sam-start-api-postgres", "test_request_id_rules"): (
        lambda _params: True,
        "sam's event builder takes `request_id=str(uuid.uuid4())` as a default argument "
        "(samcli/local/events/api_event.py): one request id for every request of the process",
    ),
    ("sam-start-api-postgres", "test_create_rejects_bodies_that_are_not_json"): (
        _not_utf8,
        "sam decodes a non-binary body as UTF-8 before calling the function and answers 502 "
        "on bytes that are not UTF-8 (samcli/local/apigw/local_apigw_service.py)",
    ),
}


@pytest.fixture
def api(serving: Api, request: pytest.FixtureRequest) -> Api:
    params = request.node.callspec.params
    applies, reason = EMULATOR_GAPS.get(
        (params["serving"], request.node.originalname), (lambda _params: False, "")
    )
    if applies(params):
        request.applymarker(pytest.mark.xfail(reason=reason, strict=True))
    empty_tables(serving.database_url)
    return serving
