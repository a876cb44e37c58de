"""The ways the app is served, each behind the same synchronous httpx.Client interface.

The contract suite takes one of these clients and cannot tell which it got: in-process
ASGI, the Lambda handler fed API Gateway events (payload 2.0 or 1.0), or a real server in
another process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from devtools.lambda_runner import EventBuilder, LambdaRunner
from devtools.lambda_runner import ensure_event_loop as ensure_event_loop  # the handler tests
from devtools.lambda_runtime import http_api_event
from devtools.lambda_server import LambdaGateway
from devtools.postgres import free_port, run
from devtools.processes import wait_until_ready

ROOT = Path(__file__).resolve().parents[2]


class Configure:
    """Sets environment variables for the app and drops the cached settings and engine."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._monkeypatch = monkeypatch

    def __call__(self, **env: str | None) -> None:
        for name, value in env.items():
            if value is None:
                self._monkeypatch.delenv(name, raising=False)
            else:
                self._monkeypatch.setenv(name, value)
        self.reset()

    def reset(self) -> None:
        from users_api.db import dispose_engine
        from users_api.settings import get_settings

        run(dispose_engine())
        get_settings.cache_clear()


@contextmanager
def asgi_client(database_url: str, configure: Configure) -> Iterator[httpx.Client]:
    from fastapi.testclient import TestClient

    configure(DATABASE_URL=database_url, AWS_LAMBDA_FUNCTION_NAME=None, DB_NULLPOOL=None)
    from users_api.app import create_app

    with TestClient(create_app(), base_url="http://testserver") as client:
        yield client


@contextmanager
def lambda_client(
    database_url: str, configure: Configure, build_event: EventBuilder = http_api_event
) -> Iterator[httpx.Client]:
    """The Lambda handler behind devtools.lambda_server's API Gateway, in-process; the
    client's `app.runner` is the execution environment (its `timeout_s`: each invocation's)."""
    from fastapi.testclient import TestClient

    configure(DATABASE_URL=database_url, AWS_LAMBDA_FUNCTION_NAME="UsersApiFunction")
    from users_api.handler import handler

    with LambdaRunner(handler) as runner:
        gateway = LambdaGateway(runner, build_event)
        base_url = "https://local.execute-api"
        with TestClient(gateway, base_url=base_url, follow_redirects=False) as client:
            yield client
        # The engine lives on the runner's loop: dispose of it there.
        from users_api.db import dispose_engine

        runner.run(dispose_engine)


@contextmanager
def server_process(
    args: list[str], env: dict[str, str], health_path: str = "/health"
) -> Iterator[httpx.Client]:
    """A real HTTP server in a child process, on a free loopback port."""
    port = free_port()
    child_env = {**os.environ, **env, "PYTHONPATH": f"{ROOT / 'functions'}:{ROOT}"}
    child_env.pop("AWS_LAMBDA_FUNCTION_NAME", None)
    process = subprocess.Popen(
        [sys.executable, *[a.format(port=port) for a in args]],
        cwd=ROOT,
        env=child_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base_url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(base_url + health_path, timeout=1).status_code < 500
        except httpx.TransportError:
            return False

    try:
        stderr = process.stderr
        assert stderr is not None
        wait_until_ready(
            process,
            answers,
            what="server",
            seconds=30,
            output=lambda: stderr.read().decode()[-2000:],
        )
        with httpx.Client(base_url=base_url, timeout=15) as client:
            yield client
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


UVICORN_ARGS = [
    "-m",
    "uvicorn",
    "users_api.app:app",
    "--host",
    "127.0.0.1",
    "--port",
    "{port}",
    "--no-access-log",
]


@contextmanager
def uvicorn_client(database_url: str) -> Iterator[httpx.Client]:
    with server_process(UVICORN_ARGS, {"DATABASE_URL": database_url}) as client:
        yield client


# The Lambda handler behind a local HTTP server that builds API Gateway HTTP API events
# (`make run-lambda`).
LAMBDA_SERVER_ARGS = ["-m", "devtools.lambda_server", "--port", "{port}", "--no-access-log"]


@contextmanager
def lambda_server_client(database_url: str) -> Iterator[httpx.Client]:
    with server_process(LAMBDA_SERVER_ARGS, {"DATABASE_URL": database_url}) as client:
        yield client


@contextmanager
def sam_api_client(database_url: str) -> Iterator[httpx.Client]:
    """`sam local start-api` on the synthesized dev stage, warm containers (`make
    sam-start-api WARM=1`); skipped, with the reason, where no container engine can run."""
    from devtools.sam_local import start_api
    from tests.support.sam import sam_session

    with (
        tempfile.TemporaryDirectory() as work,
        sam_session(database_url, Path(work)) as session,
        start_api(session, free_port(), warm=True, log=Path(work) / "sam.log") as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        yield client
