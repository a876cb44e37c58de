"""An ASGI app that serves each request through the Lambda handler, as API Gateway would.

Tools that speak ASGI (schemathesis, httpx.ASGITransport) can then exercise the exact Lambda
path. The handler runs on one worker thread with its own event loop, like the Lambda
runtime's single thread, outside the caller's loop.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.types import Receive, Scope, Send

from devtools.lambda_runtime import (
    LambdaContext,
    http_api_event,
    response_body,
    response_headers,
)


class LambdaBridge:
    def __init__(self, handler: Any, build_event: Any = http_api_event) -> None:
        self.handler = handler
        self.build_event = build_event
        self.executor = ThreadPoolExecutor(
            1, initializer=lambda: asyncio.set_event_loop(asyncio.new_event_loop())
        )

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
            headers={k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
            body=body,
        )
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self.executor, self.handler, event, LambdaContext())
        await send(
            {
                "type": "http.response.start",
                "status": result["statusCode"],
                "headers": [(k.encode(), v.encode()) for k, v in response_headers(result)],
            }
        )
        await send({"type": "http.response.body", "body": response_body(result)})
