"""The deploy smoke test (`python -m devtools.smoke URL`), run as a deploy would run it: in a
child process, against the app served by uvicorn on loopback.

Failures are made by a small fault-injecting proxy in front of the real server: it answers
a chosen request with an error (or alters it on its way) and passes everything else through,
so the smoke test's cleanup can be checked against the real database behind it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sqlite3
import subprocess
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from devtools.lambda_runner import ensure_event_loop
from devtools.postgres import free_port
from devtools.smoke import READ_ONLY_STEP, STEPS, api_url_from_outputs
from tests.conftest import empty_tables
from tests.support.processes import run_module, serving_in_thread
from tests.support.serving import UVICORN_ARGS, Configure, server_process, uvicorn_client

ROOT = Path(__file__).resolve().parents[1]
STEP_LINE = re.compile(
    r"^(?P<status>PASS|FAIL|SKIP|AUTH) {2}(?P<name>.{22}) +(?P<ms>\d+ ms|-)(?: .*)?$"
)
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def run_smoke(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    child_env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in PROXY_VARIABLES and k != "SMOKE_TOKEN"
    }
    child_env["PYTHONPATH"] = f"{ROOT / 'functions'}:{ROOT}"
    child_env.update(env or {})
    return run_module("devtools.smoke", *args, env=child_env)


def step_lines(stdout: str) -> list[tuple[str, str]]:
    """(status, step name) of each step line, in order."""
    found = []
    for line in stdout.splitlines():
        match = STEP_LINE.match(line)
        if match:
            found.append((match["status"], match["name"].strip()))
    return found


# -- a fault-injecting proxy ---------------------------------------------------------------

# What a hook returns for one request: None passes it through, an int answers it with that
# status (a JSON error body), bytes replace the request body sent upstream.
Hook = Callable[[str, str, bytes], int | bytes | None]
RELAYED_HEADERS = ("content-type", "location", "link", "x-request-id")


class ReplyingHandler(BaseHTTPRequestHandler):
    """A stand-in server's handler: one reply with its own content-length, no access log."""

    def _reply(self, status: int, headers: Iterable[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class FaultyProxy:
    upstream: str
    hook: Hook
    seen: list[Seen] = field(default_factory=list)

    def __enter__(self) -> FaultyProxy:
        proxy = self

        class Handler(ReplyingHandler):
            def _any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                proxy.seen.append(
                    Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
                )
                verdict = proxy.hook(self.command, self.path, body)
                if isinstance(verdict, int):
                    self._reply(verdict, [("content-type", "application/json")], b'{"detail":"x"}')
                    return
                if isinstance(verdict, bytes):
                    body = verdict
                forwarded = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "content-length", "connection")
                }
                upstream = httpx.request(
                    self.command,
                    proxy.upstream + self.path,
                    headers=forwarded,
                    content=body or None,
                    timeout=15,
                )
                headers = {h: upstream.headers[h] for h in RELAYED_HEADERS if h in upstream.headers}
                self._reply(upstream.status_code, headers.items(), upstream.content)

            do_GET = do_POST = do_PATCH = do_DELETE = _any

        self._stack = ExitStack()
        self._server = self._stack.enter_context(
            serving_in_thread(ThreadingHTTPServer(("127.0.0.1", 0), Handler))
        )
        return self

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __exit__(self, *_exc: object) -> None:
        self._stack.close()


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sqlite_server(sqlite_url: str) -> Iterator[httpx.Client]:
    """uvicorn on the session's SQLite database, for this module."""
    with uvicorn_client(sqlite_url) as client:
        yield client


@pytest.fixture
def server(sqlite_server: httpx.Client, sqlite_url: str) -> httpx.Client:
    empty_tables(sqlite_url)
    return sqlite_server


def user_count(sqlite_url: str) -> int:
    path = sqlite_url.removeprefix("sqlite+aiosqlite:///")
    with closing(sqlite3.connect(path)) as db:
        return int(db.execute("SELECT count(*) FROM users").fetchone()[0])


def base_url(client: httpx.Client) -> str:
    return str(client.base_url).rstrip("/")


def assert_all_passed(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    assert step_lines(result.stdout) == [("PASS", name) for name in STEPS], result.stdout
    assert result.stdout.splitlines()[-1].startswith("OK ")


# -- passing runs --------------------------------------------------------------------------


def test_passes_against_uvicorn_on_sqlite_and_leaves_nothing_behind(server: httpx.Client) -> None:
    result = run_smoke(base_url(server) + "/")
    assert_all_passed(result)
    assert server.get("/users").json() == []


@pytest.mark.postgres
def test_passes_against_uvicorn_on_postgresql(clean_pg: str) -> None:
    with uvicorn_client(clean_pg) as client:
        result = run_smoke(base_url(client))
        assert_all_passed(result)
        assert client.get("/users").json() == []


def test_without_a_token_a_protected_api_passes_on_what_it_can_check(sqlite_url: str) -> None:
    """REQUIRE_AUTH=true served directly: no authorizer in front, so every write is a 401."""
    empty_tables(sqlite_url)
    env = {"DATABASE_URL": sqlite_url, "REQUIRE_AUTH": "true"}
    with server_process(UVICORN_ARGS, env) as client:
        result = run_smoke(base_url(client))
        assert result.returncode == 0, result.stdout + result.stderr
        lines = step_lines(result.stdout)
        assert lines[:2] == [("PASS", "health"), ("AUTH", "create user")], result.stdout
        assert all(status == "SKIP" for status, _ in lines[2:]), result.stdout
        assert "writes need a token" in result.stdout.splitlines()[-1]
        strict = run_smoke(base_url(client), "--require-writes")
        assert strict.returncode == 1, strict.stdout
        assert strict.stdout.splitlines()[-1].startswith("FAILED")
        assert client.get("/users").status_code == 401  # reads need a token too
    assert user_count(sqlite_url) == 0


# Through the Lambda handler too, when this tree has the local Lambda server
# (devtools/lambda_server.py: each request becomes an API Gateway HTTP API event).
if importlib.util.find_spec("devtools.lambda_server") is not None:

    def test_passes_against_the_local_lambda_server(sqlite_url: str) -> None:
        from tests.support.serving import lambda_server_client

        empty_tables(sqlite_url)
        with lambda_server_client(sqlite_url) as client:
            assert_all_passed(run_smoke(base_url(client)))
            assert client.get("/users").json() == []


# -- scopes: a stand-in for API Gateway's JWT authorizer in front of the Lambda handler ------

GATEWAY_TOKENS = {"writer-token": "users/read users/write", "reader-token": "users/read"}


@contextmanager
def gateway(tokens: dict[str, str]) -> Iterator[str]:
    """An HTTP server that plays the HTTP API with its JWT authorizer: a known bearer token
    becomes claims with its `scope`, an unknown or missing one is API Gateway's own 401. It
    checks no route scope itself, so a 403 here is the app's (REQUIRE_AUTH=true)."""
    from devtools.lambda_runtime import (
        LambdaContext,
        http_api_event,
        response_body,
        response_headers,
    )
    from users_api.handler import handler

    class Handler(ReplyingHandler):
        def _any(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            token = self.headers.get("authorization", "").removeprefix("Bearer ")
            path, _, query = self.path.partition("?")
            claims = {"sub": token, "scope": tokens[token]} if token in tokens else None
            if path.startswith("/users") and claims is None:  # `$default` has no authorizer
                unauthorized = b'{"message":"Unauthorized"}'
                self._reply(401, [("content-type", "application/json")], unauthorized)
                return
            event = http_api_event(
                self.command,
                path,
                query=query,
                headers=dict(self.headers.items()),
                body=body,
                claims=claims,
            )
            ensure_event_loop()  # this server's one thread, like one execution environment
            result = handler(event, LambdaContext())
            self._reply(result["statusCode"], response_headers(result), response_body(result))

        do_GET = do_POST = do_PATCH = do_DELETE = _any

    with serving_in_thread(HTTPServer(("127.0.0.1", 0), Handler)) as server:
        host, port = server.server_address[:2]
        yield f"http://{host}:{port}"


@pytest.fixture
def protected(sqlite_url: str, configure: Configure) -> str:
    empty_tables(sqlite_url)
    configure(
        DATABASE_URL=sqlite_url, REQUIRE_AUTH="true", AWS_LAMBDA_FUNCTION_NAME="UsersApiFunction"
    )
    return sqlite_url


def test_a_read_only_token_cannot_write_in_a_stage_with_auth_on(protected: str) -> None:
    with gateway(GATEWAY_TOKENS) as url:
        tokens = {"SMOKE_TOKEN": "writer-token", "SMOKE_READ_TOKEN": "reader-token"}
        result = run_smoke(url, env=tokens)
        anonymous = run_smoke(url)
    assert result.returncode == 0, result.stdout + result.stderr
    expected = [STEPS[0], READ_ONLY_STEP, *STEPS[1:]]
    assert step_lines(result.stdout) == [("PASS", name) for name in expected], result.stdout
    assert result.stdout.splitlines()[-1].startswith(f"OK     {len(expected)} steps")
    # No token at all: health passes, the write is refused by the "authorizer".
    assert step_lines(anonymous.stdout)[:2] == [("PASS", "health"), ("AUTH", "create user")]
    assert user_count(protected) == 0


def test_a_read_only_token_that_can_write_fails_the_run(protected: str) -> None:
    """A stage whose reader token carries the write scope (a group mapped wrongly): the
    smoke test fails at once and deletes the user the read-only token created."""
    leaky = {**GATEWAY_TOKENS, "reader-token": "users/read users/write"}
    with gateway(leaky) as url:
        result = run_smoke(url, "--token", "writer-token", "--read-token", "reader-token")
    assert result.returncode == 1, result.stdout
    lines = step_lines(result.stdout)
    assert lines[:2] == [("PASS", "health"), ("FAIL", READ_ONLY_STEP)], result.stdout
    assert {status for status, _ in lines[2:]} == {"SKIP"}
    assert "expected 403, got 201" in result.stdout
    assert re.search(r"^CLEAN +delete user \d+ ", result.stdout, re.MULTILINE), result.stdout
    assert "reader-token" not in result.stdout + result.stderr
    assert user_count(protected) == 0


def test_reads_the_url_from_a_cdk_outputs_file(server: httpx.Client, tmp_path: Path) -> None:
    outputs = tmp_path / "outputs-dev.json"
    outputs.write_text(
        json.dumps({"UsersApi-dev": {"ApiUrl": base_url(server) + "/", "FunctionName": "f"}})
    )
    assert_all_passed(run_smoke("--outputs-file", str(outputs)))


def test_sends_the_token_on_every_request(server: httpx.Client) -> None:
    with FaultyProxy(base_url(server), lambda *_: None) as proxy:
        result = run_smoke(proxy.url, "--timeout", "5", env={"SMOKE_TOKEN": "s3cret-token"})
    assert_all_passed(result)
    assert len(proxy.seen) >= len(STEPS)
    assert {s.headers.get("authorization") for s in proxy.seen} == {"Bearer s3cret-token"}
    assert "s3cret-token" not in result.stdout + result.stderr


# -- failing runs --------------------------------------------------------------------------


def test_a_failed_step_is_named_the_rest_skipped_and_the_user_deleted(
    server: httpx.Client,
) -> None:
    def fail_patch(method: str, _path: str, _body: bytes) -> int | None:
        return 500 if method == "PATCH" else None

    with FaultyProxy(base_url(server), fail_patch) as proxy:
        result = run_smoke(proxy.url, "--token", "t0ken")
    assert result.returncode == 1, result.stdout + result.stderr
    lines = step_lines(result.stdout)
    failed_at = STEPS.index("update user")
    assert lines == [
        *[("PASS", name) for name in STEPS[:failed_at]],
        ("FAIL", "update user"),
        *[("SKIP", name) for name in STEPS[failed_at + 1 :]],
    ], result.stdout
    assert "expected 200, got 500" in result.stdout
    assert re.search(r"^CLEAN +delete user \d+ ", result.stdout, re.MULTILINE), result.stdout
    assert result.stdout.splitlines()[-1].startswith("FAILED update user")
    # The cleanup went through the same proxy, with the token.
    assert proxy.seen[-1].method == "DELETE"
    assert proxy.seen[-1].headers["authorization"] == "Bearer t0ken"
    assert server.get("/users").json() == []


def test_every_user_created_is_deleted_even_a_wrongly_accepted_duplicate(
    server: httpx.Client,
) -> None:
    posts = 0

    def unique_second_email(method: str, _path: str, body: bytes) -> bytes | None:
        """The second create reaches the server with another address, so it succeeds."""
        nonlocal posts
        if method != "POST":
            return None
        posts += 1
        if posts < 2:
            return None
        return json.dumps({**json.loads(body), "email": "other@example.com"}).encode()

    with FaultyProxy(base_url(server), unique_second_email) as proxy:
        result = run_smoke(proxy.url)
    assert result.returncode == 1, result.stdout
    assert ("FAIL", "duplicate email 409") in step_lines(result.stdout)
    assert "expected 409, got 201" in result.stdout
    assert len(re.findall(r"^CLEAN ", result.stdout, re.MULTILINE)) == 2, result.stdout
    assert server.get("/users").json() == []


def test_an_unhealthy_api_fails_at_health_and_creates_nothing(server: httpx.Client) -> None:
    def database_down(_method: str, path: str, _body: bytes) -> int | None:
        return 503 if path == "/health" else None

    with FaultyProxy(base_url(server), database_down) as proxy:
        result = run_smoke(proxy.url)
    assert result.returncode == 1
    lines = step_lines(result.stdout)
    assert lines[0] == ("FAIL", "health")
    assert {status for status, _ in lines[1:]} == {"SKIP"}
    assert [(s.method, s.path) for s in proxy.seen] == [("GET", "/health")]
    assert "CLEAN" not in result.stdout


def test_a_redirect_fails_the_step_instead_of_being_followed(server: httpx.Client) -> None:
    """The API never redirects: a 3xx is reported, even when its Location would answer."""
    target = base_url(server)

    class Redirecting(ReplyingHandler):
        def do_GET(self) -> None:
            self._reply(302, [("location", target + self.path)], b"")

    with serving_in_thread(HTTPServer(("127.0.0.1", 0), Redirecting)) as redirecting:
        host, port = redirecting.server_address[:2]
        result = run_smoke(f"http://{host}:{port}")
    assert result.returncode == 1
    assert step_lines(result.stdout)[0] == ("FAIL", "health"), result.stdout
    assert "expected 200, got 302" in result.stdout


def test_a_user_that_cannot_be_deleted_is_reported_left_and_fails_the_run(
    server: httpx.Client,
) -> None:
    def no_deletes(method: str, _path: str, _body: bytes) -> int | None:
        return 500 if method == "DELETE" else None

    with FaultyProxy(base_url(server), no_deletes) as proxy:
        result = run_smoke(proxy.url)
    assert result.returncode == 1
    assert ("FAIL", "delete user") in step_lines(result.stdout)
    assert re.search(r"^LEFT +delete user \d+ ", result.stdout, re.MULTILINE), result.stdout
    assert result.stdout.splitlines()[-1].startswith("FAILED delete user, delete user ")
    assert len(server.get("/users").json()) == 1  # the user reported as left behind


def test_an_unreachable_url_fails_at_health() -> None:
    result = run_smoke(f"http://127.0.0.1:{free_port()}", "--timeout", "2")
    assert result.returncode == 1
    assert step_lines(result.stdout)[0] == ("FAIL", "health")
    assert "refused" in result.stdout.lower()


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["ftp://example.com"],
        ["http://127.0.0.1:9/?x=1"],
        ["http://127.0.0.1:9", "--timeout", "0"],
        ["http://127.0.0.1:9", "--outputs-file", "outputs-dev.json"],
    ],
)
def test_bad_arguments_exit_2(args: list[str]) -> None:
    result = run_smoke(*args)
    assert result.returncode == 2
    assert "error:" in result.stderr


def test_api_url_from_outputs(tmp_path: Path) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({"A": {"ApiUrl": "https://a/"}, "B": {"ApiUrl": "https://b/"}}))
    assert api_url_from_outputs(path, "B") == "https://b/"
    with pytest.raises(ValueError, match="expected one stack"):
        api_url_from_outputs(path)
    with pytest.raises(ValueError, match="no ApiUrl output for stack 'C'"):
        api_url_from_outputs(path, "C")
    with pytest.raises(ValueError, match="cannot read"):
        api_url_from_outputs(tmp_path / "missing.json")
