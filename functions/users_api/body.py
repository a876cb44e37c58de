"""How a request body becomes JSON: strict RFC 8259 text, UTF-8, bounded nesting.

FastAPI decodes with `json.loads`, which accepts NaN/Infinity, decodes any UTF-16/32 it
detects, and answers 400 for whatever is not a `JSONDecodeError` (bytes that are not
UTF-8, nesting deep enough to exhaust the recursion limit). Here every way a body can fail
to be JSON text is a `JSONDecodeError`, which FastAPI turns into its 422 `json_invalid`.
The route class is FastAPI's documented hook for a custom Request.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

# Far deeper than any body of this API, far shallower than the interpreter's recursion limit
# (the error echo and the encoders recurse too).
MAX_JSON_DEPTH = 32


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _depth_exceeds(value: object, limit: int) -> bool:
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in item)
    return False


def decode_json(body: bytes) -> Any:
    """The JSON value of `body`, or JSONDecodeError saying why there is none."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise json.JSONDecodeError("Body is not UTF-8 text", "", exc.start) from None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise json.JSONDecodeError("Nesting too deep", "", 0) from None
    except ValueError as exc:
        if isinstance(exc, json.JSONDecodeError):
            raise
        raise json.JSONDecodeError(str(exc), "", 0) from None
    if _depth_exceeds(value, MAX_JSON_DEPTH):
        raise json.JSONDecodeError(f"Nesting deeper than {MAX_JSON_DEPTH}", "", 0)
    return value


class JsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = decode_json(await self.body())
        return self._json


class JsonRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_json(request: Request) -> Response:
            return await handle(JsonRequest(request.scope, request.receive))

        return handle_json
