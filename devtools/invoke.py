"""`sam local invoke` without Docker: events through the synthesized function, in-process.

    python -m devtools.invoke -e events/http-api/health.json
    python -m devtools.invoke --set DB_HOST=127.0.0.1 \
        events/http-api/create_user.json events/http-api/get_user.json

It reads the function's handler, runtime, timeout, memory and environment from the
synthesized template (default: the dev stack in cdk.out/dev/, `make synth`), applies
env.json the way `sam local invoke --env-vars` does (see devtools.local_function), imports
the handler from the function's code directory (the asset directory of `aws:asset:path`) and
calls it with each event and a fresh Lambda context. Several events run in one process, one
after the other, like invocations of one warm execution environment: the first pays the
cold start (the import), the others reuse the module state, the engine and the event loop.

env.json points the function at host.docker.internal, which is the host as seen from sam's
containers; this process runs on the host, where that name means 127.0.0.1, so it is mapped
to that (with a note). `--set DB_HOST=...` or `--set DATABASE_URL=postgresql+asyncpg://...`
(which wins over the DB_* parts) points it elsewhere. `--migrate` first applies the
migrations to that database (`make invoke` does).

Like sam, the function's log lines go to stderr and the responses to stdout: readable by
default, or one JSON object per line with --json (first the function, then one object per
invocation). Exit status: 0 when every invocation returned, 1 when one raised, 2 when the
function could not be set up (no template, unknown function, unreadable event, import error).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from devtools.lambda_runner import InitError, LambdaRunner
from devtools.lambda_runtime import response_body, response_headers
from devtools.local_function import (
    DEFAULT_ENV_VARS,
    DEFAULT_FUNCTION,
    DEFAULT_TEMPLATE,
    FunctionSpec,
    SetupError,
    add_code_path,
    cannot_start,
    find_function,
    function_environment,
    host_variables,
    load_env_vars,
    load_template,
    map_container_host,
    masked,
    resolves,
    runtime_variables,
)


def parse_set(values: list[str]) -> dict[str, str]:
    overrides = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SetupError(f"--set {item!r}: expected KEY=VALUE")
        overrides[name] = value
    return overrides


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
        http = context.get("http") or {}
        url = "lambda-url" in str(context.get("domainName", ""))
        kind = "function URL" if url else "HTTP API"
        return f"{http.get('method')} {event.get('rawPath')}, {kind} 2.0 event"
    if "httpMethod" in event:
        return f"{event['httpMethod']} {event.get('path')}, REST API 1.0 event"
    return "custom event"


def _decoded_body(result: dict[str, Any]) -> tuple[Any, str]:
    """The body for printing, and how it was read: "json", "text" or "binary"."""
    raw = response_body(result)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return f"<{len(raw)} bytes>", "binary"
    try:
        return json.loads(text), "json"
    except json.JSONDecodeError:
        return text, "text"


class Printer:
    def __init__(self, out: TextIO, *, as_json: bool) -> None:
        self.out = out
        self.as_json = as_json

    def _line(self, obj: dict[str, Any]) -> None:
        self.out.write(json.dumps(obj, default=str) + "\n")
        self.out.flush()

    def function(self, spec: FunctionSpec, code_dir: Path, env: Any, notes: list[str]) -> None:
        shown = {k: masked(k, v) for k, v in env.variables.items()}
        if self.as_json:
            self._line(
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
                    "environment": shown,
                    "sources": env.sources,
                    "notes": notes,
                }
            )
            return
        err = sys.stderr
        print(
            f"function {spec.name} ({spec.logical_id}): {spec.handler}, {spec.runtime} "
            f"{spec.architecture}, timeout {spec.timeout_s:g} s, {spec.memory_mb} MB",
            file=err,
        )
        print(f"code: {code_dir}", file=err)
        print("environment (beside the Lambda runtime's own variables):", file=err)
        width = max((len(k) for k in shown), default=0)
        for name, value in shown.items():
            print(f"  {name:<{width}} = {value}  [{env.sources[name]}]", file=err)
        for note in notes:
            print(f"note: {note}", file=err)
        err.flush()

    def invocation(self, record: dict[str, Any], result: Any) -> None:
        if self.as_json:
            self._line({"kind": "invocation", **record})
            return
        out = self.out
        out.write(f"\n== {record['event']}  ({record['request']})\n")
        init = f"  Init Duration: {record['initMs']:.1f} ms" if record["cold"] else ""
        out.write(
            f"REPORT RequestId: {record['requestId']}  Duration: {record['durationMs']:.1f} ms"
            f"{init}\n"
        )
        if "error" in record:
            out.write(json.dumps(record["error"], indent=2) + "\n")
        elif isinstance(result, dict) and "statusCode" in result:
            out.write(f"HTTP {result['statusCode']}\n")
            for name, value in response_headers(result):
                out.write(f"{name}: {value}\n")
            body, how = _decoded_body(result)
            out.write("\n" + (json.dumps(body, indent=2) if how == "json" else str(body)) + "\n")
        else:
            out.write(json.dumps(result, indent=2) + "\n")
        out.flush()


def invoke_all(
    spec: FunctionSpec, runner: LambdaRunner, events: list[Path], printer: Printer, init_ms: float
) -> int:
    status = 0
    for index, path in enumerate(events):
        event = load_event(path)
        context = runner.context()
        record: dict[str, Any] = {
            "event": str(path),
            "request": describe_event(event),
            "requestId": context.aws_request_id,
            "eventRequestId": (event.get("requestContext") or {}).get("requestId"),
            "cold": index == 0,
            "initMs": round(init_ms, 1),
            "pid": os.getpid(),
        }
        started = time.perf_counter()
        result: Any = None
        try:
            result = runner.invoke(event, context)
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            record["error"] = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
            status = 1
        record["durationMs"] = round((time.perf_counter() - started) * 1000, 1)
        if record["durationMs"] > spec.timeout_s * 1000:
            print(
                f"note: {path} took {record['durationMs']:.0f} ms, over the function's "
                f"{spec.timeout_s:g} s timeout: Lambda would have stopped it",
                file=sys.stderr,
            )
        if "error" not in record and isinstance(result, dict) and "statusCode" in result:
            body, how = _decoded_body(result)
            record.update(
                statusCode=result["statusCode"],
                headers=result.get("headers") or {},
                multiValueHeaders=result.get("multiValueHeaders") or {},
                cookies=result.get("cookies") or [],
                isBase64Encoded=bool(result.get("isBase64Encoded")),
                body=body,
                bodyKind=how,
            )
        elif "error" not in record:
            record["result"] = result
        printer.invocation(record, result)
    return status


def migrate(env: Mapping[str, str]) -> None:
    """The migrations, in a process of their own: the function's cold start stays its own."""
    result = subprocess.run(
        [sys.executable, "-m", "users_api.migrate"],
        env={**env, "PYTHONPATH": os.pathsep.join(sys.path)},
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
        epilog="env.json only overrides variables the template declares (as sam does); "
        "--set KEY=VALUE sets any variable and wins over everything, e.g. "
        "--set DB_HOST=db.example (env.json's host.docker.internal is mapped to 127.0.0.1) "
        "or --set DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test.",
    )
    parser.add_argument("events", nargs="*", type=Path, metavar="EVENT", help="event files")
    parser.add_argument(
        "-e", "--event", dest="more_events", action="append", type=Path, default=[],
        metavar="EVENT", help="an event file (repeatable; these run before positional ones)",
    )  # fmt: skip
    parser.add_argument(
        "-t", "--template", type=Path, default=DEFAULT_TEMPLATE,
        help="the synthesized template (default %(default)s, written by `make synth`)",
    )  # fmt: skip
    parser.add_argument(
        "-f", "--function", default=DEFAULT_FUNCTION,
        help="SamResourceId, logical id or aws:cdk:path (default %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "-n", "--env-vars", type=Path, default=None,
        help=f"sam-style env.json (default {DEFAULT_ENV_VARS} when present)",
    )  # fmt: skip
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="set a variable of the function (repeatable)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="one JSON object per line on stdout")
    parser.add_argument(
        "--migrate", action="store_true",
        help="apply the migrations to the function's database first (users_api.migrate)",
    )  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    events = [*args.more_events, *args.events]
    # The function's own output (logs, metrics) goes to stderr, as sam prints container
    # logs; stdout carries only the responses.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    printer = Printer(out, as_json=args.json)
    try:
        if not events:
            raise SetupError("no event: pass EVENT files or -e EVENT (see events/)")
        overrides = parse_set(args.overrides)
        for path in events:
            load_event(path)  # fail before the cold start on a bad file
        template = load_template(args.template)
        spec = find_function(template, args.template, args.function)
        env_vars_path = args.env_vars or DEFAULT_ENV_VARS
        env_vars = load_env_vars(env_vars_path, required=args.env_vars is not None)
        shell = dict(os.environ)
        env = function_environment(spec, env_vars, overrides, shell, str(env_vars_path))
        map_container_host(env, resolves)
        code_dir, code_notes = add_code_path(spec)
        printer.function(spec, code_dir, env, env.notes + code_notes)
        # The function sees what Lambda would give it, not this shell's settings.
        os.environ.clear()
        os.environ.update(
            {**host_variables(shell), **runtime_variables(spec, code_dir), **env.variables}
        )
        if args.migrate:
            migrate(os.environ)
        with spec.runner() as runner:
            init_ms = runner.init()
            return invoke_all(spec, runner, events, printer, init_ms)
    except (SetupError, InitError) as exc:
        return cannot_start("invoke", exc)
    finally:
        out.flush()


if __name__ == "__main__":
    sys.exit(main())
