"""One pure-ASGI middleware for what every request needs, whoever serves the app.

It assigns the request id; reads the body to its size limit whatever the framing (a
Content-Length, chunks, or a Lambda event's body under any header); refuses encodings it
cannot read; answers HEAD as GET without a body and completes a 405's `Allow`; keeps a
Lambda request inside its invocation's remaining time; turns anything unhandled into a bare
JSON 500 (or 503 when the database is the cause); and writes one JSON access-log line.
"""

from __future__ import annotations

import asyncio
import re
import time
import traceback
import uuid
from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from users_api.errors import DB_UNAVAILABLE, INTERNAL_ERROR, error_response, is_db_unavailable
from users_api.observability import logger, record_request

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID_NAME = REQUEST_ID_HEADER.encode()
# Headers of the app's response that this middleware writes itself (a 405's `Allow` too).
_REPLACED = frozenset({_REQUEST_ID_NAME})
_REPLACED_405 = frozenset({_REQUEST_ID_NAME, b"allow"})
_CALLER_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
# Leave the function this long to answer after giving up on a request.
LAMBDA_DEADLINE_MARGIN_S = 0.5
_IDENTITY = {b"", b"identity"}
_METHODS = ("DELETE", "GET", "OPTIONS", "PATCH", "POST", "PUT")


class BodyTooLarge(Exception):
    pass


def _request_id(scope: Scope) -> str:
    event = scope.get("aws.event")
    if event is not None:  # behind API Gateway / a function URL: the platform's id
        request_id = event.get("requestContext", {}).get("requestId")
        if request_id:
            return str(request_id)
    for name, value in scope["headers"]:
        if name == _REQUEST_ID_NAME:
            candidate: str = value.decode("latin-1")
            if _CALLER_REQUEST_ID.fullmatch(candidate):
                return candidate
    return uuid.uuid4().hex


def _header(scope: Scope, wanted: bytes) -> bytes | None:
    for name, value in scope["headers"]:
        if name == wanted:
            return bytes(value)
    return None


def _lambda_time_left(scope: Scope) -> float | None:
    context = scope.get("aws.context")
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return None
    return max(float(remaining()) / 1000 - LAMBDA_DEADLINE_MARGIN_S, 0.05)


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole body, never reading past `limit` bytes, whatever the headers said.

    A Content-Length can be absent (chunked uploads) or wrong (a Lambda event's headers
    are whatever the client sent), so the bytes are counted as they arrive.
    """
    chunks: list[bytes] = []
    received = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            break
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the app the buffered body, then waits on the real channel."""
    sent = False

    async def replaying() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replaying


def allowed_methods(routes: Sequence[BaseRoute], scope: Scope) -> list[str]:
    """Every method some route answers on this path (Starlette's 405 names the first only).

    Asked of each route through the public `matches`, method by method, so routers that
    FastAPI nests when including one are covered too.
    """
    methods = {
        method
        for method in _METHODS
        for route in routes
        if route.matches({**scope, "method": method})[0] is Match.FULL
    }
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def _refusal(scope: Scope, max_body_bytes: int) -> tuple[int, str] | None:
    """The 413 or 415 that the request's headers alone already earn, if any."""
    length = _header(scope, b"content-length")
    if length is not None and length.isdigit() and int(length) > max_body_bytes:
        return 413, "Request body too large"
    encoding = (_header(scope, b"content-encoding") or b"").strip().lower()
    if encoding not in _IDENTITY:
        return 415, "Unsupported Content-Encoding: send the body uncompressed"
    return None


def _log_failure(exc: Exception, request_id: str) -> tuple[int, str]:
    """Log what the app raised; the status and detail the client gets for it."""
    unavailable = is_db_unavailable(exc)
    # The exception's type only: its message or traceback may quote user data
    # (a driver's error repeats the offending value).
    log_extra: dict[str, Any] = {"request_id": request_id, "error": type(exc).__name__}
    if unavailable:
        logger.warning("database unavailable", extra=log_extra)
        return 503, DB_UNAVAILABLE
    logger.error("unhandled error", extra={**log_extra, "exception": where(exc)})
    return 500, INTERNAL_ERROR


def _log_request(scope: Scope, request_id: str, method: str, status: int, started: float) -> None:
    """The access-log line and the request metrics."""
    elapsed_ms = (time.perf_counter() - started) * 1000
    route = getattr(scope.get("route"), "path", None)
    logger.info(
        "request",
        extra={
            "request_id": request_id,
            "method": method,
            # The path only when a route matched it: an unmatched one is the
            # client's text, which logs must not carry.
            "path": scope["path"] if route and status != 422 else None,
            "route": route or "unmatched",
            "status": status,
            "duration_ms": round(elapsed_ms, 2),
        },
    )
    record_request(route or "unmatched", status, elapsed_ms)


def where(exc: BaseException) -> str:
    """The traceback of `exc` and its causes, without their messages.

    A message can quote user data (a driver repeats the offending value); the frames and
    the exception types are what a reader needs to find the fault.
    """
    parts: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(parts) < 8:
        frames = "".join(traceback.format_tb(current.__traceback__))
        parts.append(f"{frames}{type(current).__module__}.{type(current).__qualname__}")
        current = current.__cause__ or current.__context__
    return "\nwhich led to:\n".join(reversed(parts))


class RequestMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        root_path: str = "",
        routes: Sequence[BaseRoute] = (),
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.root_path = root_path
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()
        method = scope["method"]
        if self.root_path and not scope.get("root_path"):
            # Behind a stage prefix (Mangum strips it and leaves root_path empty): the
            # server's root path, which FastAPI puts back into /docs and the OpenAPI servers.
            scope["root_path"] = self.root_path
        if method == "HEAD":
            # HEAD is GET without the body (RFC 9110 9.3.2); the server's own copy of the
            # scope still says HEAD, so uvicorn keeps the GET's Content-Length and sends none.
            scope = {**scope, "method": "GET"}
        request_id = _request_id(scope)
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                drop = _REPLACED_405 if status == 405 else _REPLACED
                headers = [h for h in message.get("headers", []) if h[0] not in drop]
                headers.append((_REQUEST_ID_NAME, request_id.encode()))
                if status == 405:
                    allow = ", ".join(allowed_methods(self.routes, scope))
                    headers.append((b"allow", allow.encode()))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and method == "HEAD":
                message = {**message, "body": b""}
            await send(message)

        async def answer(code: int, detail: str) -> None:
            await error_response(code, detail)(scope, receive, send_with_id)

        try:
            refusal = _refusal(scope, self.max_body_bytes)
            if refusal is not None:
                await answer(*refusal)
                return
            time_left = _lambda_time_left(scope)
            async with asyncio.timeout(time_left):
                body = await read_body(receive, self.max_body_bytes)
                await self.app(scope, replay(body, receive), send_with_id)
        except BodyTooLarge:
            await answer(413, "Request body too large")
        except Exception as exc:
            failure = _log_failure(exc, request_id)
            if not response_started:
                await answer(*failure)
        finally:
            _log_request(scope, request_id, method, status, started)
