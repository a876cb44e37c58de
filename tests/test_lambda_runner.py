"""devtools.lambda_runner: one thread, one event loop, one invocation at a time."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from devtools.lambda_runner import InitError, LambdaRunner
from devtools.lambda_runtime import rest_api_event

SEEN: list[tuple[int, int, int]] = []  # (thread id, loop id, concurrent invocations)
_active = 0
_lock = threading.Lock()


def recording_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _active
    with _lock:
        _active += 1
        active = _active
    try:
        loop = asyncio.get_event_loop()
        loop.run_until_complete(asyncio.sleep(0.01))
        SEEN.append((threading.get_ident(), id(loop), active))
        path = event.get("rawPath") or event.get("path")
        return {"statusCode": 200, "body": f"{path} {context.function_name}"}
    finally:
        with _lock:
            _active -= 1


def test_every_invocation_runs_on_one_thread_and_loop_one_at_a_time() -> None:
    SEEN.clear()
    with LambdaRunner(f"{__name__}.recording_handler", function_name="Fn") as runner:
        assert runner.init() >= 0
        with ThreadPoolExecutor(4) as callers:
            results = list(
                callers.map(lambda i: runner.request("GET", f"/users/{i}")[1], range(12))
            )
    assert [r["body"] for r in results] == [f"/users/{i} Fn" for i in range(12)]
    assert len({(thread, loop) for thread, loop, _ in SEEN}) == 1
    assert SEEN[0][0] != threading.get_ident()  # never the caller's thread
    assert max(active for _, _, active in SEEN) == 1


def test_request_builds_the_event_it_is_given() -> None:
    with LambdaRunner(recording_handler) as runner:
        event, result = runner.request("POST", "/users", body=b"{}", build_event=rest_api_event)
    assert event["httpMethod"] == "POST"
    assert result["body"] == "/users UsersApiFunction"


@pytest.mark.parametrize(
    ("handler", "error_type"),
    [
        ("no_module_here.handler", "Runtime.ImportModuleError"),
        (f"{__name__}.missing", "Runtime.HandlerNotFound"),
        ("handler", "Runtime.MalformedHandlerName"),
    ],
)
def test_init_errors_are_the_runtime_s(handler: str, error_type: str) -> None:
    with LambdaRunner(handler) as runner, pytest.raises(InitError) as raised:
        runner.init()
    assert raised.value.error_type == error_type
