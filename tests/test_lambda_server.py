"""The Docker-free `sam local start-api` (devtools.lambda_server, `make run-lambda`).

The contract suite runs against it too (tests/contract, serving "lambda-server-postgres");
these tests cover what the suite cannot see: the HTTP API 2.0 event each request becomes,
how the function's result is turned back into HTTP (multi-value headers, cookies, base64
bodies, a failing function), that invocations run one at a time on one thread and one event
loop, that the app runs in Lambda mode, and that `make run-lambda` sets itself up.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.testclient import TestClient

from devtools.lambda_runner import LambdaRunner
from devtools.lambda_server import MAX_REQUEST_BYTES, LambdaGateway
from devtools.postgres import free_port
from tests.support.processes import run_module, stop_group, wait_until_answers
from tests.support.serving import server_process

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


class Recorder:
    """What the fake function saw, and what it answers next."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.threads: set[int] = set()
        self.loops: set[int] = set()
        self.active = 0
        self.max_active = 0
        self.delay_s = 0.0
        self.result: Any = {"statusCode": 200, "body": "ok"}


RECORDER = Recorder()


def fake_handler(event: dict[str, Any], context: Any) -> Any:
    with RECORDER.lock:
        RECORDER.active += 1
        RECORDER.max_active = max(RECORDER.max_active, RECORDER.active)
    try:
        RECORDER.events.append(event)
        RECORDER.threads.add(threading.get_ident())
        RECORDER.loops.add(id(asyncio.get_event_loop()))
        assert context.get_remaining_time_in_millis() > 0
        if RECORDER.delay_s:
            time.sleep(RECORDER.delay_s)
        if isinstance(RECORDER.result, Exception):
            raise RECORDER.result
        return RECORDER.result
    finally:
        with RECORDER.lock:
            RECORDER.active -= 1


def probe_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Reports the Lambda-mode facts of the process it runs in."""
    from users_api.settings import get_settings

    body = {
        "function": os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
        "nullpool": get_settings().use_nullpool,
        "thread": threading.current_thread().name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "request_id": event["requestContext"]["requestId"],
    }
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body),
    }


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """The gateway over the fake function, served by uvicorn on a thread of this process."""
    runner = LambdaRunner(f"{__name__}.fake_handler", function_name="Fake", timeout_s=5)
    runner.init()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(LambdaGateway(runner), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped"
            assert time.monotonic() < deadline, "uvicorn did not start in 10 s"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        runner.close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    RECORDER.reset()
    yield RECORDER
    RECORDER.reset()


def test_request_becomes_an_http_api_event(base_url: str, recorder: Recorder) -> None:
    response = httpx.get(
        f"{base_url}/users/a%20b?x=1&x=2&y=",
        headers=[
            ("x-multi", "a"),
            ("x-multi", "b"),
            ("cookie", "c1=1; c2=2"),
            ("x-request-id", "caller-id"),
        ],
    )
    assert response.status_code == 200
    (event,) = recorder.events
    assert event["version"] == "2.0"
    assert event["routeKey"] == "$default"
    assert event["rawPath"] == "/users/a b"
    assert event["rawQueryString"] == "x=1&x=2&y="
    assert event["queryStringParameters"] == {"x": "1,2", "y": ""}
    assert event["headers"]["x-multi"] == "a,b"
    assert event["headers"]["x-request-id"] == "caller-id"  # passed on, as API Gateway does
    assert event["cookies"] == ["c1=1", "c2=2"]
    assert "cookie" not in event["headers"]
    assert event["requestContext"]["http"]["method"] == "GET"
    assert event["requestContext"]["stage"] == "$default"
    assert event["body"] is None
    assert event["isBase64Encoded"] is False
    assert response.headers["apigw-requestid"] == event["requestContext"]["requestId"]


def test_bodies_text_and_binary(base_url: str, recorder: Recorder) -> None:
    httpx.post(f"{base_url}/users", json={"name": "Ada"})
    httpx.put(f"{base_url}/blob", content=b"\xff\x00\xfe")
    text, binary = recorder.events
    assert json.loads(text["body"]) == {"name": "Ada"}
    assert text["isBase64Encoded"] is False
    assert text["headers"]["content-type"] == "application/json"
    assert binary["isBase64Encoded"] is True
    assert base64.b64decode(binary["body"]) == b"\xff\x00\xfe"


def test_chunked_request_body(base_url: str, recorder: Recorder) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": '
        yield b'"Ada"}'

    response = httpx.post(f"{base_url}/users", content=chunks())
    assert response.status_code == 200
    assert recorder.events[-1]["body"] == '{"name": "Ada"}'


def test_response_headers_cookies_and_base64_body(base_url: str, recorder: Recorder) -> None:
    recorder.result = {
        "statusCode": 201,
        "headers": {
            "content-type": "application/octet-stream",
            "x-one": "1",
            # hop-by-hop: API Gateway's own connection decides these, not the function's
            "keep-alive": "timeout=99",
            "transfer-encoding": "chunked",
            "content-length": "1",
        },
        "multiValueHeaders": {"x-many": ["a", "b"]},
        "cookies": ["session=abc; Path=/; HttpOnly", "theme=dark"],
        "body": base64.b64encode(b"\x00\x01binary").decode(),
        "isBase64Encoded": True,
    }
    response = httpx.get(f"{base_url}/anything")
    assert response.status_code == 201
    assert response.content == b"\x00\x01binary"
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["x-one"] == "1"
    assert response.headers.get_list("x-many") == ["a", "b"]
    assert response.headers.get_list("set-cookie") == [
        "session=abc; Path=/; HttpOnly",
        "theme=dark",
    ]
    assert response.headers["content-length"] == str(len(b"\x00\x01binary"))
    assert "keep-alive" not in response.headers
    assert "transfer-encoding" not in response.headers


def test_head_gets_the_headers_without_the_body(base_url: str, recorder: Recorder) -> None:
    response = httpx.head(f"{base_url}/health")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == "2"  # the body the function gave: "ok"
    assert recorder.events[-1]["requestContext"]["http"]["method"] == "HEAD"


def test_access_log_line(capfd: pytest.CaptureFixture[str], recorder: Recorder) -> None:
    with (
        LambdaRunner(f"{__name__}.fake_handler") as runner,
        TestClient(LambdaGateway(runner, access_log=True)) as client,
    ):
        response = client.get("/x", params={"y": "1"})
    request_id = re.escape(response.headers["apigw-requestid"])
    lines = capfd.readouterr().err.splitlines()
    assert re.fullmatch(rf"testclient GET /x\?y=1 200 \d+\.\d ms {request_id}", lines[-1])


def test_failing_function_is_a_bare_500(base_url: str, recorder: Recorder) -> None:
    recorder.result = RuntimeError("boom")
    response = httpx.get(f"{base_url}/x")
    assert response.status_code == 500
    assert response.json() == {"message": "Internal Server Error"}
    assert "boom" not in response.text
    # And the next invocation runs as usual.
    recorder.result = {"statusCode": 204, "body": ""}
    assert httpx.get(f"{base_url}/x").status_code == 204


def test_result_without_status_code_is_a_json_200(base_url: str, recorder: Recorder) -> None:
    recorder.result = {"hello": "world"}
    response = httpx.get(f"{base_url}/x")
    assert response.status_code == 200
    assert response.json() == {"hello": "world"}


@pytest.mark.parametrize("chunked", [False, True], ids=["sized", "chunked"])
def test_oversized_request_never_reaches_the_function(
    base_url: str, recorder: Recorder, chunked: bool
) -> None:
    body = b"x" * (MAX_REQUEST_BYTES + 1)
    content = iter([body[:MAX_REQUEST_BYTES], body[MAX_REQUEST_BYTES:]]) if chunked else body
    response = httpx.post(f"{base_url}/users", content=content)
    assert response.status_code == 413
    assert response.json() == {"message": "Request Entity Too Large"}
    assert recorder.events == []


def test_one_invocation_at_a_time_on_one_thread_and_loop(base_url: str, recorder: Recorder) -> None:
    recorder.delay_s = 0.05
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda i: httpx.get(f"{base_url}/{i}").status_code, range(8)))
    assert statuses == [200] * 8
    assert len(recorder.events) == 8
    assert recorder.max_active == 1
    assert len(recorder.threads) == 1
    assert len(recorder.loops) == 1
    assert threading.get_ident() not in recorder.threads


def test_server_process_runs_the_app_in_lambda_mode() -> None:
    args = ["-m", "devtools.lambda_server", "--port", "{port}", "--no-access-log"]
    args += ["--handler", f"{__name__}.probe_handler", "--timeout", "7"]
    with server_process(args, {}, health_path="/") as client:
        response = client.get("/probe", headers={"x-request-id": "mine"})
    body = response.json()
    assert body["function"] == "UsersApiFunction"
    assert body["nullpool"] is True
    assert body["thread"].startswith("lambda")
    assert 0 < body["remaining_ms"] <= 7000
    assert body["request_id"] == response.headers["apigw-requestid"] != "mine"


def test_make_run_lambda_migrates_the_sqlite_and_serves(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DB_HOST")}
    env["USERS_API_DATA_DIR"] = str(tmp_path)
    # -o: never rebuild the virtualenv from inside a test session that runs from it.
    command = ["make", "--no-print-directory", "-o", ".venv/.installed", "run-lambda"]
    process = subprocess.Popen(
        [*command, f"LAMBDA_PORT={port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        stderr = process.stderr
        assert stderr is not None
        health = wait_until_answers(
            f"http://127.0.0.1:{port}/health", process, lambda: stderr.read().decode(), seconds=60
        )
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "database": "ok"}
        assert health.headers["x-request-id"] == health.headers["apigw-requestid"]
        created = httpx.post(
            f"http://127.0.0.1:{port}/users", json={"name": "Ada", "email": "ada@example.com"}
        )
        assert created.status_code == 201, created.text
        assert (tmp_path / "users.db").is_file()  # migrated by the make target
    finally:
        stop_group(process)


def test_bad_template_fails_clearly(tmp_path: Path) -> None:
    result = run_module(
        "devtools.lambda_server", "--template", str(tmp_path / "t.json"), timeout=60
    )
    assert result.returncode == 2
    assert "make synth" in result.stderr
