"""One Lambda execution environment in this process: the handler on one thread, one loop.

The Lambda runtime calls a Python handler on one thread, one invocation at a time, and keeps
that thread's event loop (and so the module state, the engine and its connections) from the
cold start to the last invocation. LambdaRunner does the same on a worker thread of its own,
whoever calls it and from whatever thread or loop: every in-process serving uses it.

    runner = LambdaRunner("users_api.handler.handler")
    init_ms = runner.init()                        # the cold start: the import
    event, result = runner.request("GET", "/health")
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import KW_ONLY, dataclass
from typing import Any, TypeVar

from devtools.lambda_runtime import Event, LambdaContext, http_api_event

Handler = Callable[[Event, Any], Any]
EventBuilder = Callable[..., Event]
T = TypeVar("T")


class InitError(Exception):
    """The handler could not be loaded (Lambda's Runtime.ImportModuleError and friends)."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type


def import_handler(handler: str) -> Handler:
    module_name, _, attribute = handler.rpartition(".")
    if not module_name:
        raise InitError("Runtime.MalformedHandlerName", f"Bad handler '{handler}'")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise InitError(
            "Runtime.ImportModuleError",
            f"Unable to import module '{module_name}': {type(exc).__name__}: {exc}",
        ) from exc
    function = getattr(module, attribute, None)
    if not callable(function):
        raise InitError(
            "Runtime.HandlerNotFound", f"Handler '{attribute}' missing on module '{module_name}'"
        )
    return function


def ensure_event_loop() -> asyncio.AbstractEventLoop:
    """This thread's loop, made once and kept, as the runtime process keeps it."""
    with contextlib.suppress(RuntimeError):  # none yet on this thread
        loop = asyncio.get_event_loop_policy().get_event_loop()
        if not loop.is_closed():
            return loop
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    return loop


@dataclass(eq=False)
class LambdaRunner:
    """A handler (or a handler string, imported on `init`) on one thread with one loop."""

    handler: Handler | str
    _: KW_ONLY
    function_name: str = "UsersApiFunction"
    memory_mb: int = 512
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="lambda", initializer=ensure_event_loop
        )

    def __enter__(self) -> LambdaRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def init(self) -> float:
        """Import the handler on the runner's thread (the cold start); returns its ms."""
        started = time.perf_counter()
        if isinstance(self.handler, str):
            self.handler = self._executor.submit(import_handler, self.handler).result()
        return (time.perf_counter() - started) * 1000

    def context(self) -> LambdaContext:
        return LambdaContext(self.function_name, self.memory_mb, self.timeout_s)

    def run(self, coroutine: Callable[[], Awaitable[T]]) -> T:
        """Await a coroutine on the handler's loop (e.g. `dispose_engine`)."""
        awaited = self._executor.submit(lambda: ensure_event_loop().run_until_complete(coroutine()))
        return awaited.result()

    def submit(
        self, event: Event, context: Any = None, handler: Handler | None = None
    ) -> Future[tuple[float, Any]]:
        """One invocation, as a future of (ms in the handler, result as JSON gives it)."""
        if handler is None:
            self.init()
        return self._executor.submit(self._invoke, handler, event, context or self.context())

    def _invoke(self, handler: Handler | None, event: Event, context: Any) -> Any:
        function = handler or self.handler
        assert callable(function)
        started = time.perf_counter()
        result = function(event, context)
        elapsed = (time.perf_counter() - started) * 1000
        return elapsed, json.loads(json.dumps(result))  # the runtime serialises it as JSON

    def invoke(self, event: Event, context: Any = None) -> Any:
        return self.submit(event, context).result()[1]

    def request(
        self, method: str, path: str, build_event: EventBuilder = http_api_event, **fields: Any
    ) -> tuple[Event, Any]:
        """An HTTP request as `build_event(method, path, **fields)` lays it out, invoked:
        (event, result)."""
        event = build_event(method, path, **fields)
        return event, self.invoke(event)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
