"""No log line carries a value a client sent, on any path, errors included.

Recognizable values go through every failure class of the contract (bad JSON, unstorable
text, oversized and encoded bodies, odd paths, headers and queries, a duplicate, an
unexpected database error, the database gone) and a success, with the app logging at DEBUG
and SQLAlchemy echoing its statements. Every captured line (the app's JSON lines, every
Python logger, stdout and stderr) is searched for them.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from functools import partial

import httpx
import pytest
from sqlalchemy.engine import make_url

from devtools.lambda_runtime import rest_api_event
from devtools.tcp_proxy import TcpProxy
from tests.support.serving import Configure, asgi_client, lambda_client

pytestmark = pytest.mark.postgres

Serve = Callable[[str, Configure], AbstractContextManager[httpx.Client]]
SERVINGS: dict[str, tuple[str, Serve]] = {
    "asgi-sqlite": ("sqlite", asgi_client),
    "asgi-postgres": ("postgres", asgi_client),
    "lambda-httpapi-postgres": ("postgres", lambda_client),
    "lambda-restapi-sqlite": ("sqlite", partial(lambda_client, build_event=rest_api_event)),
}


@pytest.fixture(params=list(SERVINGS))
def served(
    request: pytest.FixtureRequest, configure: Configure, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[httpx.Client, TcpProxy | None]]:
    database, serve = SERVINGS[request.param]
    url = request.getfixturevalue("clean_pg" if database == "postgres" else "clean_sqlite")
    monkeypatch.setenv("DB_ECHO", "true")  # statements logged: their parameters must not be
    monkeypatch.setenv("DB_CONNECT_TIMEOUT", "1")
    proxy: TcpProxy | None = None
    if database == "postgres":
        target = make_url(url)
        proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432).start()
        url = target.set(host="127.0.0.1", port=proxy.port).render_as_string(False)
    from users_api.observability import logger

    level = logger.level
    logger.setLevel("DEBUG")
    try:
        with serve(url, configure) as client:
            yield client, proxy
    finally:
        logger.setLevel(level)
        if proxy is not None:
            proxy.close()


def mark() -> str:
    return f"zqx{uuid.uuid4().hex[:12]}"


def test_no_value_a_client_sent_reaches_a_log_line(
    served: tuple[httpx.Client, TcpProxy | None],
    json_logs: Callable[[], list[dict[str, object]]],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, proxy = served
    caplog.set_level(logging.DEBUG)
    sent: list[str] = []

    def value() -> str:
        sent.append(mark())
        return sent[-1]

    json_type = {"content-type": "application/json"}

    def post(body: bytes, **headers: str) -> httpx.Response:
        return client.post("/users", content=body, headers={**json_type, **headers})

    answers: dict[str, int] = {}
    # A success, then a duplicate of it.
    email = f"{value()}@example.com"
    answers["created"] = client.post("/users", json={"name": value(), "email": email}).status_code
    answers["duplicate"] = client.post("/users", json={"name": "D", "email": email}).status_code
    # Bodies that are not JSON text, or not storable, or too large, or encoded.
    answers["nan"] = post(f'{{"name": NaN, "email": "{value()}"}}'.encode()).status_code
    answers["inf"] = post(f'{{"name": 1e999, "email": "{value()}@x.org"}}'.encode()).status_code
    answers["nul"] = post(json.dumps({"name": value() + "\x00", "email": "a@b.org"}).encode())
    answers["nul"] = answers["nul"].status_code  # type: ignore[assignment]
    answers["surrogate"] = post(
        f'{{"name": "{value()}\\ud800", "email": "{value()}@x.org"}}'.encode()
    ).status_code
    answers["not utf-8"] = post(value().encode() + b"\xff\xfe").status_code
    answers["deep"] = post(("[" * 40 + f'"{value()}"' + "]" * 40).encode()).status_code
    answers["extra field"] = client.post(
        "/users", json={"name": "E", "email": "e@x.org", value(): value()}
    ).status_code
    answers["too large"] = post(value().encode() + b" " * (1024 * 1024)).status_code
    answers["encoded"] = post(value().encode(), **{"content-encoding": "gzip"}).status_code
    # Odd paths, queries and header values.
    answers["path param"] = client.get(f"/users/{value()}").status_code
    answers["unmatched path"] = client.get(f"/{value()}/x").status_code
    answers["query"] = client.get("/users", params={"limit": value()}).status_code
    answers["headers"] = client.get(
        "/users",
        headers={"user-agent": value(), "authorization": f"Bearer {value()}", "x-a": value()},
    ).status_code
    answers["method"] = client.request("PUT", f"/users?{value()}=1").status_code
    # A database error the app did not expect (here: a unique violation it cannot name).
    from users_api import users_repo

    with monkeypatch.context() as patch:
        patch.setattr(users_repo, "EMAIL_KEY_VIOLATIONS", ())
        answers["unexpected db error"] = client.post(
            "/users", json={"name": value(), "email": email}
        ).status_code
    # The database gone (PostgreSQL through the proxy).
    if proxy is not None:
        proxy.stop()
        answers["db down"] = client.post(
            "/users", json={"name": value(), "email": f"{value()}@example.com"}
        ).status_code
        proxy.start()

    assert answers["created"] == 201
    assert answers["duplicate"] == 409
    assert answers["too large"] == 413
    assert answers["encoded"] == 415
    assert answers["unexpected db error"] == 500
    assert answers.get("db down", 503) == 503
    for name in ("nan", "inf", "nul", "surrogate", "not utf-8", "deep", "extra field"):
        assert answers[name] == 422, (name, answers[name])

    out, err = capfd.readouterr()
    lines = [json.dumps(line) for line in json_logs()]
    # Every logger but the test's own HTTP client (httpx logs the URLs it requests).
    records = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    lines += [record.getMessage() for record in records]
    lines += [str(record.__dict__) for record in records]
    lines += out.splitlines() + err.splitlines()
    assert any("request" in line for line in lines)  # the capture did see the app's lines
    assert any("hidden due to hide_parameters" in line for line in lines)  # and the echo
    leaks = [(v, line[:300]) for line in lines for v in sent if v in line]
    assert leaks == []
