"""An ASGI app that serves each request through the Lambda handler, as API Gateway would.

Tools that speak ASGI (schemathesis, httpx.ASGITransport) can then exercise the exact Lambda
path. The handler runs in a devtools.lambda_runner.LambdaRunner (one thread, one loop, like
the Lambda runtime's), outside the caller's loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Receive, Scope, Send

from devtools.lambda_runner import EventBuilder, LambdaRunner
from devtools.lambda_runtime import http_api_event, response_body, response_headers


class LambdaBridge:
    def __init__(self, handler: Any, build_event: EventBuilder = http_api_event) -> None:
        self.runner = LambdaRunner(handler)
        self.build_event = build_event

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        event = self.build_event(
            scope["method"],
            scope["path"],
            query=scope["query_string"].decode("latin-1"),
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
            body=body,
        )
        _ms, result = await asyncio.wrap_future(self.runner.submit(event))
        await send(
            {
                "type": "http.response.start",
                "status": result["statusCode"],
                "headers": [(k.encode(), v.encode()) for k, v in response_headers(result)],
            }
        )
        await send({"type": "http.response.body", "body": response_body(result)})
