"""`sam local invoke` without Docker: events through the synthesized function, in-process.

    python -m devtools.invoke --set DB_HOST=127.0.0.1 \
        -e events/http-api/create_user.json events/http-api/get_user.json

The function and its environment come from the template and env.json as sam reads them
(devtools.local_function). The events run in one process, like one warm execution
environment. Logs go to stderr, responses to stdout (--json: one object per line). Exit
status: 0 when every invocation returned, 1 when one raised, 2 when the function could not
be set up. More in docs/local-lambda.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from devtools.lambda_runner import InitError, LambdaRunner
from devtools.lambda_runtime import response_body, response_headers
from devtools.local_function import (
    DEFAULT_TEMPLATE,
    SetupError,
    add_function_options,
    cannot_start,
    enter,
    function_environment,
    load_env_vars,
    load_function,
    map_container_host,
    masked,
    read_json,
)


def key_value(item: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{item!r}: expected KEY=VALUE")
    return name, value


def describe_event(event: dict[str, Any]) -> str:
    """What the event asks for: `GET /health, HTTP API 2.0 event`."""
    if "httpMethod" in event:
        return f"{event['httpMethod']} {event.get('path')}, REST API 1.0 event"
    if event.get("version") != "2.0":
        return "custom event"
    context = event.get("requestContext") or {}
    kind = "function URL" if "lambda-url" in str(context.get("domainName")) else "HTTP API"
    method = (context.get("http") or {}).get("method")
    return f"{method} {event.get('rawPath')}, {kind} 2.0 event"


def response_fields(result: Any) -> dict[str, Any]:
    """The invocation's result, its body decoded when it is an HTTP response."""
    if not (isinstance(result, dict) and "statusCode" in result):
        return {"result": result}
    raw = response_body(result)
    try:
        body, kind = json.loads(raw.decode("utf-8")), "json"
    except UnicodeDecodeError:
        body, kind = f"<{len(raw)} bytes>", "binary"
    except json.JSONDecodeError:
        body, kind = raw.decode("utf-8"), "text"
    return {
        "statusCode": result["statusCode"],
        "headers": result.get("headers") or {},
        "multiValueHeaders": result.get("multiValueHeaders") or {},
        "cookies": result.get("cookies") or [],
        "isBase64Encoded": bool(result.get("isBase64Encoded")),
        "body": body,
        "bodyKind": kind,
    }


def invoke_one(
    runner: LambdaRunner, path: Path, event: dict[str, Any], cold: bool, init_ms: float
) -> dict[str, Any]:
    """One event through the function: the record of the invocation (as --json prints it)."""
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
        fields = response_fields(runner.invoke(event, context))
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


def readable(record: dict[str, Any]) -> str:
    """A --json record as sam local prints it: the function, or an invocation's response."""
    if record["kind"] == "function":
        shown, sources = record["environment"], record["sources"]
        width = max(map(len, shown), default=0)
        return "\n".join(
            [
                f"function {record['function']} ({record['logicalId']}): {record['handler']}, "
                f"{record['runtime']} {record['architecture']}, timeout "
                f"{record['timeoutSeconds']:g} s, {record['memoryMB']} MB",
                f"code: {record['codeDir']}",
                "environment (beside the Lambda runtime's own variables):",
                *(f"  {k:<{width}} = {v}  [{sources[k]}]" for k, v in shown.items()),
                *(f"note: {note}" for note in record["notes"]),
            ]
        )
    init = f"  Init Duration: {record['initMs']:.1f} ms" if record["cold"] else ""
    lines = [
        f"\n== {record['event']}  ({record['request']})",
        f"REPORT RequestId: {record['requestId']}  Duration: {record['durationMs']:.1f} ms{init}",
    ]
    if "statusCode" in record:
        body = record["body"]
        lines.append(f"HTTP {record['statusCode']}")
        lines += (f"{name}: {value}" for name, value in response_headers(record))
        lines.append("\n" + (json.dumps(body, indent=2) if record["bodyKind"] == "json" else body))
    else:
        lines.append(json.dumps(record.get("error", record.get("result")), indent=2))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.invoke",
        description="Invoke the synthesized Lambda function in-process with API Gateway "
        "events (sam local invoke without Docker).",
    )
    parser.add_argument(
        "-e", "--event", dest="events", action="extend", nargs="+", type=Path, required=True,
        metavar="EVENT", help="event files (see events/), run in order (repeatable)",
    )  # fmt: skip
    add_function_options(parser, DEFAULT_TEMPLATE)
    parser.add_argument(
        "-n", "--env-vars", type=Path, default=None,
        help="sam-style env.json, for the variables the template declares; its "
        "host.docker.internal is 127.0.0.1 here (default env.json when present)",
    )  # fmt: skip
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], type=key_value,
        metavar="KEY=VALUE", help="set any variable of the function; wins over all (repeatable)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="one JSON object per line on stdout")
    parser.add_argument(
        "--migrate", action="store_true",
        help="apply the migrations to the function's database first (users_api.migrate)",
    )  # fmt: skip
    return parser


def run(args: argparse.Namespace, out: Any) -> int:
    """Set the function up, then invoke it with each event; `out` gets the responses."""

    def emit(record: dict[str, Any]) -> None:
        # Without --json, the function's description goes to stderr with its logs.
        stream = out if args.json or record["kind"] == "invocation" else sys.stderr
        stream.write((json.dumps(record, default=str) if args.json else readable(record)) + "\n")
        stream.flush()

    # Read every event first: a bad file stops the run before the cold start.
    events = [(path, read_json(path, "event", " (see events/)")) for path in args.events]
    spec = load_function(args.template, args.function)
    env_json = args.env_vars or Path("env.json")
    sections = load_env_vars(env_json, required=args.env_vars is not None)
    env = function_environment(spec, sections, dict(args.overrides), os.environ, str(env_json))
    map_container_host(env)
    # The function sees what Lambda would give it, not this shell's settings.
    code_dir, notes = enter(spec, env.variables)
    emit(
        {
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
            "notes": env.notes + notes,
        }
    )
    # The migrations run in a process of their own: the function's cold start stays its own.
    migrate_env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    if args.migrate and subprocess.call(
        [sys.executable, "-m", "users_api.migrate"], env=migrate_env, stdout=sys.stderr
    ):
        raise SetupError("the migrations failed (see above): is the database reachable?")
    status = 0
    with spec.runner() as runner:
        init_ms = runner.init()
        for index, (path, event) in enumerate(events):
            record = invoke_one(runner, path, event, index == 0, init_ms)
            emit(record)
            status = 1 if "error" in record else status
    return status


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The function's logs and metrics go to stderr, as sam's container logs; stdout: responses.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    try:
        return run(args, out)
    except (SetupError, InitError) as exc:
        return cannot_start("invoke", exc)
    finally:
        out.flush()


if __name__ == "__main__":
    sys.exit(main())
