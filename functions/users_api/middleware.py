"""One pure-ASGI middleware for what every request needs, whoever serves the app.

It assigns the request id, caps the body size, keeps a Lambda request inside its
invocation's remaining time, turns anything unhandled into a bare JSON 500 (or 503 when
the database is the cause), and writes one JSON access-log line.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from users_api.errors import DB_UNAVAILABLE, INTERNAL_ERROR, error_response, is_db_unavailable
from users_api.observability import logger, record_request

REQUEST_ID_HEADER = "x-request-id"
_CALLER_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
# Leave the function this long to answer after giving up on a request.
LAMBDA_DEADLINE_MARGIN_S = 0.5


class BodyTooLarge(Exception):
    pass


def _request_id(scope: Scope) -> str:
    event = scope.get("aws.event")
    if event is not None:  # behind API Gateway / a function URL: the platform's id
        request_id = event.get("requestContext", {}).get("requestId")
        if request_id:
            return str(request_id)
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if _CALLER_REQUEST_ID.fullmatch(candidate):
                return candidate
    return uuid.uuid4().hex


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _lambda_time_left(scope: Scope) -> float | None:
    context = scope.get("aws.context")
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return None
    return max(float(remaining()) / 1000 - LAMBDA_DEADLINE_MARGIN_S, 0.05)


class RequestMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, root_path: str = "") -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.root_path = root_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()
        if self.root_path and not scope.get("root_path"):
            # Behind a stage prefix (Mangum strips it and leaves root_path empty): the
            # server's root path, which FastAPI puts back into /docs and the OpenAPI servers.
            scope["root_path"] = self.root_path
        request_id = _request_id(scope)
        status = 500
        response_started = False
        received = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = [h for h in message.get("headers", []) if h[0] != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge
            return message

        async def answer(code: int, detail: str) -> None:
            await error_response(code, detail)(scope, receive, send_with_id)

        try:
            length = _content_length(scope)
            if length is not None and length > self.max_body_bytes:
                await answer(413, "Request body too large")
                return
            time_left = _lambda_time_left(scope)
            async with asyncio.timeout(time_left):
                await self.app(scope, counting_receive, send_with_id)
        except BodyTooLarge:
            if not response_started:
                await answer(413, "Request body too large")
        except Exception as exc:
            unavailable = is_db_unavailable(exc)
            log_extra: dict[str, Any] = {"request_id": request_id, "error": type(exc).__name__}
            if unavailable:
                logger.warning("database unavailable", extra=log_extra)
            else:
                logger.exception("unhandled error", extra=log_extra)
            if not response_started:
                await answer(*((503, DB_UNAVAILABLE) if unavailable else (500, INTERNAL_ERROR)))
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            logger.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed_ms, 2),
                },
            )
            record_request(route, status, elapsed_ms)
