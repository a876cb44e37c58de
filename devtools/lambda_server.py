"""API Gateway in front of the Lambda handler, as an ASGI app; `make run-lambda` serves it.

Each request becomes an HTTP API (payload 2.0) event, or a REST API (1.0) one with
`build_event=rest_api_event`, for the handler in a LambdaRunner (one invocation at a time, on
one thread and loop); the server keeps this shell's environment. See docs/local-lambda.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.types import Receive, Scope, Send

from devtools import local_function as local
from devtools.lambda_runner import EventBuilder, InitError, LambdaRunner
from devtools.lambda_runtime import http_api_event, response_body, response_headers

# API Gateway's payload limit: larger requests never reach the function.
MAX_REQUEST_BYTES = 10 * 1024 * 1024
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})
JSON = ("content-type", "application/json")
Answer = tuple[int, list[tuple[str, str]], bytes]


@dataclass
class LambdaGateway:
    """What API Gateway does between HTTP clients and the function a LambdaRunner holds."""

    runner: LambdaRunner
    build_event: EventBuilder = http_api_event
    access_log: bool = False

    async def _answer(self, event: dict[str, Any], too_large: bool) -> Answer:
        if too_large:  # the rest of the body is never read: the connection cannot go on
            return 413, [JSON, ("connection", "close")], b'{"message": "Request Entity Too Large"}'
        try:
            _ms, result = await asyncio.wrap_future(self.runner.submit(event))
        except Exception:  # the function failed: API Gateway answers a bare 500
            traceback.print_exc(file=sys.stderr)
            return 500, [JSON], b'{"message": "Internal Server Error"}'
        if isinstance(result, dict) and "statusCode" in result:
            headers = [(k, v) for k, v in response_headers(result) if k.lower() not in HOP_BY_HOP]
            return int(result["statusCode"]), headers, response_body(result)
        return 200, [JSON], json.dumps(result).encode()  # payload 2.0: any other value is JSON

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # nothing to start or stop: the runner is ready
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            return await send({"type": "lifespan.shutdown.complete"})
        started, chunks, size = time.perf_counter(), [], 0
        while (message := await receive())["type"] == "http.request":
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > MAX_REQUEST_BYTES or not message.get("more_body"):
                break  # the whole body, or enough of it to refuse it
        else:
            return  # the client left before the end of its request
        method, query = scope["method"], scope["query_string"].decode("latin-1")
        too_large = size > MAX_REQUEST_BYTES
        body = b"" if too_large else b"".join(chunks)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        event = self.build_event(method, scope["path"], query=query, headers=headers, body=body)
        request_id = event["requestContext"]["requestId"]
        status, headers, payload = await self._answer(event, too_large)
        headers += [("apigw-requestid", request_id), ("content-length", str(len(payload)))]
        raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else payload})
        if self.access_log:
            client, ms = (scope.get("client") or "-")[0], (time.perf_counter() - started) * 1000
            target = scope["path"] + (f"?{query}" if query else "")
            print(f"{client} {method} {target} {status} {ms:.1f} ms {request_id}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.lambda_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    local.add_function_options(parser, None)
    parser.add_argument("--handler", default=None, help=f"default {local.DEFAULT_HANDLER}")
    parser.add_argument("--timeout", type=float, default=None, help="seconds (the context's)")
    parser.add_argument("--no-access-log", dest="access_log", action="store_false")
    args = parser.parse_args(argv)
    try:
        spec = local.load_function(args.template, args.function)
        spec.handler = args.handler or spec.handler
        spec.timeout_s = args.timeout or spec.timeout_s
        code_dir, notes = local.enter(spec)
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        runner = spec.runner()
        init_ms = runner.init()
    except (local.SetupError, InitError) as exc:
        return local.cannot_start("lambda_server", exc)
    postgres = os.environ.get("DB_HOST") and f"PostgreSQL at {os.environ['DB_HOST']}"
    sqlite = f"the embedded SQLite in {os.environ.get('USERS_API_DATA_DIR', '.data')}/users.db"
    database = local.masked("DATABASE_URL", os.getenv("DATABASE_URL", "")) or postgres or sqlite
    print(
        f"Lambda handler {spec.handler} ({code_dir}, init {init_ms:.0f} ms) on http://{args.host}:"
        f"{args.port}, API Gateway HTTP API 2.0 events, one at a time; database: {database}",
        file=sys.stderr,
    )
    gateway = LambdaGateway(runner, access_log=args.access_log)
    with runner:  # the gateway writes the access log and the startup line, not uvicorn
        uvicorn.run(gateway, host=args.host, port=args.port, access_log=False, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
