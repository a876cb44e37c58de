"""Unexpected failures stay bare 500s; every request leaves one JSON log line."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import httpx
import pytest

from tests.support.serving import Configure, asgi_client, lambda_client


@pytest.fixture(params=["asgi", "lambda"])
def client(
    request: pytest.FixtureRequest, sqlite_url: str, configure: Configure
) -> Iterator[httpx.Client]:
    serve: Callable[[str, Configure], AbstractContextManager[httpx.Client]] = (
        asgi_client if request.param == "asgi" else lambda_client
    )
    with serve(sqlite_url, configure) as c:
        yield c


Logs = Callable[[], list[dict[str, object]]]


def test_an_unexpected_error_is_a_bare_500_logged_with_the_request_id(
    client: httpx.Client, monkeypatch: pytest.MonkeyPatch, json_logs: Logs
) -> None:
    from users_api import users_repo

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals: SELECT password FROM somewhere")

    monkeypatch.setattr(users_repo, "get_user", broken)
    response = client.get("/users/7")

    assert response.status_code == 500
    assert response.json() == {"detail": "Internal Server Error"}
    assert "secret internals" not in response.text
    request_id = response.headers["x-request-id"]
    logs = json_logs()
    error = next(line for line in logs if line["message"] == "unhandled error")
    assert error["request_id"] == request_id
    assert error["level"] == "ERROR"
    assert "RuntimeError" in str(error["exception"])  # the traceback stays server-side


def test_one_access_log_line_per_request(client: httpx.Client, json_logs: Logs) -> None:
    response = client.get("/users/123456")
    access = [line for line in json_logs() if line["message"] == "request"]
    assert len(access) == 1
    line = access[0]
    assert line["request_id"] == response.headers["x-request-id"]
    assert line["method"] == "GET"
    assert line["path"] == "/users/123456"
    assert line["route"] == "/users/{user_id}"
    assert line["status"] == 404
    assert isinstance(line["duration_ms"], float)
    assert line["duration_ms"] >= 0
