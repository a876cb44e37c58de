"""The API served through its Lambda handler, without Docker: `make run-lambda`.

    python -m devtools.lambda_server --port 8001
    python -m devtools.lambda_server --template <synthesized template.json>

Each HTTP request becomes an API Gateway HTTP API (payload 2.0) event for the `$default`
route and goes through the Lambda handler imported in this process: `users_api.handler.handler`
from functions/, or the template function's handler and code directory with --template
(not its environment: this server keeps this shell's, see devtools.invoke for the
template's). Like one Lambda execution environment it runs one invocation at a time on one
thread with one event loop, with AWS_LAMBDA_FUNCTION_NAME set, so the app takes its Lambda
code paths. More in docs/local-lambda.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from devtools.lambda_runner import InitError, LambdaRunner
from devtools.lambda_runtime import http_api_event, response_body, response_headers
from devtools.local_function import (
    DEFAULT_HANDLER,
    SetupError,
    add_function_options,
    cannot_start,
    enter,
    load_function,
    masked,
)

# API Gateway's payload limit: larger requests never reach the function.
MAX_REQUEST_BYTES = 10 * 1024 * 1024
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})
Response = tuple[int, list[tuple[str, str]], bytes]


def gateway_response(result: Any) -> Response:
    """What API Gateway (HTTP API, payload 2.0) makes of a function's result."""
    if isinstance(result, dict) and "statusCode" in result:
        return int(result["statusCode"]), response_headers(result), response_body(result)
    # Payload 2.0: anything else is taken as a JSON body with status 200.
    return 200, [("content-type", "application/json")], json.dumps(result).encode()


def _error(status: int, message: str) -> Response:
    return status, [("content-type", "application/json")], json.dumps({"message": message}).encode()


class GatewayRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "lambda-server"
    server: LambdaHTTPServer

    def _read_body(self) -> bytes | None:
        """The request body (chunked or sized); None when over API Gateway's limit."""
        if "chunked" not in self.headers.get("transfer-encoding", "").lower():
            length = int(self.headers.get("content-length") or 0)
            return self.rfile.read(length) if length <= MAX_REQUEST_BYTES else None
        chunks, total = [], 0
        while size := int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16):
            total += size
            if total > MAX_REQUEST_BYTES:
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return b"".join(chunks)

    def _handle(self) -> None:
        started = time.perf_counter()
        path, _, query = self.path.partition("?")
        body = self._read_body()
        event = http_api_event(
            self.command, unquote(path), query=query, headers=self.headers.items(), body=body or b""
        )
        request_id = event["requestContext"]["requestId"]
        if body is None:
            self.close_connection = True  # the rest of the body is never read
            status, headers, payload = _error(413, "Request Entity Too Large")
        else:
            try:
                status, headers, payload = gateway_response(self.server.worker.invoke(event))
            except Exception:  # the function failed: API Gateway answers a bare 500
                traceback.print_exc(file=sys.stderr)
                status, headers, payload = _error(500, "Internal Server Error")
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("apigw-requestid", request_id)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        if self.server.access_log:
            elapsed = (time.perf_counter() - started) * 1000
            sys.stderr.write(
                f"{self.client_address[0]} {self.command} {self.path} {status} "
                f"{elapsed:.1f} ms {request_id}\n"
            )

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # one line per request is written by _handle


class LambdaHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], worker: LambdaRunner, *, access_log: bool = True
    ) -> None:
        super().__init__(address, GatewayRequestHandler)
        self.worker = worker
        self.access_log = access_log


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.lambda_server",
        description="Serve the API through its Lambda handler with API Gateway HTTP API "
        "(2.0) events, in-process (sam local start-api without Docker).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    add_function_options(parser, None)
    parser.add_argument("--handler", default=None, help=f"default {DEFAULT_HANDLER}")
    parser.add_argument("--timeout", type=float, default=None, help="seconds (the context's)")
    parser.add_argument("--no-access-log", dest="access_log", action="store_false")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        spec = load_function(args.template, args.function)
        spec.handler = args.handler or spec.handler
        spec.timeout_s = args.timeout or spec.timeout_s
        code_dir, notes = enter(spec)
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        worker = spec.runner()
        init_ms = worker.init()
    except (SetupError, InitError) as exc:
        return cannot_start("lambda_server", exc)
    server = LambdaHTTPServer((args.host, args.port), worker, access_log=args.access_log)
    database = masked("DATABASE_URL", os.environ.get("DATABASE_URL", "")) or (
        f"PostgreSQL at {os.environ['DB_HOST']}"
        if os.environ.get("DB_HOST")
        else f"the embedded SQLite in {os.environ.get('USERS_API_DATA_DIR', '.data')}/users.db"
    )
    print(
        f"Lambda handler {spec.handler} ({code_dir}, init {init_ms:.0f} ms) on "
        f"http://{args.host}:{args.port} with API Gateway HTTP API 2.0 events, one "
        f"invocation at a time; database: {database}",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        worker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
