"""`sam local invoke` without Docker: events through the synthesized function, in-process.

    python -m devtools.invoke -e events/http-api/health.json
    python -m devtools.invoke --set DB_HOST=127.0.0.1 \
        -e events/http-api/create_user.json events/http-api/get_user.json

The function (handler, runtime, timeout, memory, environment, code directory) comes from the
synthesized template, with env.json applied as `sam local invoke --env-vars` does (see
devtools.local_function). Several events run in one process, one after the other, like
invocations of one warm execution environment: only the first pays the cold start.
As with sam, the function's logs go to stderr and the responses to stdout (with --json, one
JSON object per line: first the function, then one per invocation). Exit status: 0 when
every invocation returned, 1 when one raised, 2 when the function could not be set up.
More in docs/local-lambda.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devtools.lambda_runner import InitError, LambdaRunner
from devtools.lambda_runtime import response_body, response_headers
from devtools.local_function import (
    DEFAULT_ENV_VARS,
    DEFAULT_TEMPLATE,
    Environment,
    FunctionSpec,
    SetupError,
    add_function_options,
    cannot_start,
    enter,
    function_environment,
    load_env_vars,
    load_function,
    map_container_host,
    masked,
)


def key_value(item: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{item!r}: expected KEY=VALUE")
    return name, value


def load_event(path: Path) -> dict[str, Any]:
    try:
        event = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SetupError(f"event {path} does not exist (see events/)") from None
    except json.JSONDecodeError as exc:
        raise SetupError(f"event {path} is not JSON: {exc}") from None
    if not isinstance(event, dict):
        raise SetupError(f"event {path} is not a JSON object")
    return event


def describe_event(event: dict[str, Any]) -> str:
    context = event.get("requestContext") or {}
    if event.get("version") == "2.0":
        url = "lambda-url" in str(context.get("domainName", ""))
        method = (context.get("http") or {}).get("method")
        kind = "function URL" if url else "HTTP API"
        return f"{method} {event.get('rawPath')}, {kind} 2.0 event"
    if "httpMethod" in event:
        return f"{event['httpMethod']} {event.get('path')}, REST API 1.0 event"
    return "custom event"


def function_record(spec: FunctionSpec, code_dir: Path, env: Environment) -> dict[str, Any]:
    return {
        "kind": "function",
        "function": spec.name,
        "logicalId": spec.logical_id,
        "handler": spec.handler,
        "runtime": spec.runtime,
        "architecture": spec.architecture,
        "timeoutSeconds": spec.timeout_s,
        "memoryMB": spec.memory_mb,
        "codeDir": str(code_dir),
        "environment": {k: masked(k, v) for k, v in env.variables.items()},
        "sources": env.sources,
        "notes": env.notes,
    }


def function_text(record: dict[str, Any]) -> str:
    shown = record["environment"]
    width = max(map(len, shown), default=0)
    return "\n".join(
        [
            f"function {record['function']} ({record['logicalId']}): {record['handler']}, "
            f"{record['runtime']} {record['architecture']}, timeout "
            f"{record['timeoutSeconds']:g} s, {record['memoryMB']} MB",
            f"code: {record['codeDir']}",
            "environment (beside the Lambda runtime's own variables):",
            *(f"  {k:<{width}} = {v}  [{record['sources'][k]}]" for k, v in shown.items()),
            *(f"note: {note}" for note in record["notes"]),
        ]
    )


def invocation_text(record: dict[str, Any]) -> str:
    init = f"  Init Duration: {record['initMs']:.1f} ms" if record["cold"] else ""
    lines = [
        f"\n== {record['event']}  ({record['request']})",
        f"REPORT RequestId: {record['requestId']}  Duration: {record['durationMs']:.1f} ms{init}",
    ]
    if "statusCode" in record:
        lines.append(f"HTTP {record['statusCode']}")
        lines += [f"{name}: {value}" for name, value in response_headers(record)]
        body = record["body"]
        lines.append("\n" + (json.dumps(body, indent=2) if record["bodyKind"] == "json" else body))
    else:
        lines.append(json.dumps(record.get("error", record.get("result")), indent=2))
    return "\n".join(lines)


def _response_fields(result: Any) -> dict[str, Any]:
    """The invocation's result, its body decoded when it is an HTTP response."""
    if not (isinstance(result, dict) and "statusCode" in result):
        return {"result": result}
    raw = response_body(result)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        body, kind = f"<{len(raw)} bytes>", "binary"
    else:
        try:
            body, kind = json.loads(text), "json"
        except json.JSONDecodeError:
            body, kind = text, "text"
    return {
        "statusCode": result["statusCode"],
        "headers": result.get("headers") or {},
        "multiValueHeaders": result.get("multiValueHeaders") or {},
        "cookies": result.get("cookies") or [],
        "isBase64Encoded": bool(result.get("isBase64Encoded")),
        "body": body,
        "bodyKind": kind,
    }


def invoke_one(runner: LambdaRunner, path: Path, cold: bool, init_ms: float) -> dict[str, Any]:
    """One event through the function: the record of the invocation (as --json prints it)."""
    event = load_event(path)
    context = runner.context()
    record: dict[str, Any] = {
        "kind": "invocation",
        "event": str(path),
        "request": describe_event(event),
        "requestId": context.aws_request_id,
        "eventRequestId": (event.get("requestContext") or {}).get("requestId"),
        "cold": cold,
        "initMs": round(init_ms, 1),
        "pid": os.getpid(),
    }
    started = time.perf_counter()
    try:
        fields = _response_fields(runner.invoke(event, context))
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        fields = {"error": {"errorType": type(exc).__name__, "errorMessage": str(exc)}}
    record["durationMs"] = round((time.perf_counter() - started) * 1000, 1)
    if record["durationMs"] > runner.timeout_s * 1000:
        print(
            f"note: {path} took {record['durationMs']:.0f} ms, over the function's "
            f"{runner.timeout_s:g} s timeout: Lambda would have stopped it",
            file=sys.stderr,
        )
    return record | fields


def migrate() -> None:
    """The migrations, in a process of their own: the function's cold start stays its own."""
    result = subprocess.run(
        [sys.executable, "-m", "users_api.migrate"],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        stdout=sys.stderr,
        check=False,
    )
    if result.returncode != 0:
        raise SetupError("the migrations failed (see above): is the database reachable?")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.invoke",
        description="Invoke the synthesized Lambda function in-process with API Gateway "
        "events (sam local invoke without Docker).",
        epilog="env.json only overrides variables the template declares (as sam does; its "
        "host.docker.internal is 127.0.0.1 here); --set KEY=VALUE sets any variable and wins "
        "over everything, e.g. --set DATABASE_URL=postgresql+asyncpg://127.0.0.1/test.",
    )
    parser.add_argument(
        "-e", "--event", dest="events", action="extend", nargs="+", type=Path, default=[],
        metavar="EVENT", help="event files, run in order (repeatable)",
    )  # fmt: skip
    add_function_options(parser, DEFAULT_TEMPLATE)
    parser.add_argument(
        "-n", "--env-vars", type=Path, default=None,
        help=f"sam-style env.json (default {DEFAULT_ENV_VARS} when present)",
    )  # fmt: skip
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], type=key_value,
        metavar="KEY=VALUE",
        help="set a variable of the function (repeatable)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="one JSON object per line on stdout")
    parser.add_argument(
        "--migrate", action="store_true",
        help="apply the migrations to the function's database first (users_api.migrate)",
    )  # fmt: skip
    return parser


def run(args: argparse.Namespace, emit: Callable[[dict[str, Any]], None]) -> int:
    if not args.events:
        raise SetupError("no event: pass -e EVENT (see events/)")
    for path in args.events:
        load_event(path)  # fail before the cold start on a bad file
    spec = load_function(args.template, args.function)
    env_vars = args.env_vars or DEFAULT_ENV_VARS
    files = load_env_vars(env_vars, required=args.env_vars is not None)
    env = function_environment(spec, files, dict(args.overrides), os.environ, str(env_vars))
    map_container_host(env)
    # The function sees what Lambda would give it, not this shell's settings.
    code_dir, notes = enter(spec, env.variables)
    env.notes += notes
    emit(function_record(spec, code_dir, env))
    if args.migrate:
        migrate()
    status = 0
    with spec.runner() as runner:
        init_ms = runner.init()
        for index, path in enumerate(args.events):
            record = invoke_one(runner, path, index == 0, init_ms)
            emit(record)
            status = 1 if "error" in record else status
    return status


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The function's own output (logs, metrics) goes to stderr, as sam prints container
    # logs; stdout carries only the responses.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr

    def emit(record: dict[str, Any]) -> None:
        if args.json:
            text, stream = json.dumps(record, default=str), out
        elif record["kind"] == "function":
            text, stream = function_text(record), sys.stderr
        else:
            text, stream = invocation_text(record), out
        stream.write(text + "\n")
        stream.flush()

    try:
        return run(args, emit)
    except (SetupError, InitError) as exc:
        return cannot_start("invoke", exc)
    finally:
        out.flush()


if __name__ == "__main__":
    sys.exit(main())
