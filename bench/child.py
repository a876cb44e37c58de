"""A fresh interpreter's part of the benchmark, and `spawn`, which starts one.

`python -m bench.child MODULE` times the import of a handler module, then its first
invocation, GET /users/{id} (not building the event). `python -m bench.child --warm N`
interleaves N warm invocations of GET /users/{id} by both handlers (bench.warm).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile  # noqa: F401  (see below)
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bench import ROOT

HANDLERS = {"floor": "floor_handler", "project": "users_api.handler"}  # the modules to import
# The standard library this child has loaded before the timed import (tempfile pulls in
# random, shutil, bz2, lzma, ...) is the same set as when bench/README.md's figures were
# recorded: dropping it would move those modules into both handlers' import times.


def spawn(
    python: Sequence[str], path: Iterable[Path], db_env: dict[str, str], *args: str
) -> tuple[dict[str, Any], str]:
    """`PYTHON -m bench.child ARGS...`: its JSON result and its stderr.

    The child's environment is this one's (bench.run's, acting as the function inside
    Lambda) without its database, Python and TLS settings, plus `path` (then the repository)
    and `db_env`.
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DB_", "PYTHON", "SSL_")) and name != "DATABASE_URL"
    }
    env |= db_env
    env["PYTHONPATH"] = os.pathsep.join(map(str, [*path, ROOT]))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    command = [*python, "-m", "bench.child", *args]
    proc = subprocess.run(
        command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {' '.join(args)} failed: {proc.stderr[-3000:]}")
    return json.loads(proc.stdout), proc.stderr


def cold_start(module_name: str) -> dict[str, Any]:
    started = time.perf_counter()
    __import__(module_name)  # the C import path, which -X importtime reports
    import_ms = (time.perf_counter() - started) * 1000

    from bench.routes import GET_ONE
    from devtools.lambda_runtime import LambdaContext

    event, context = GET_ONE.event(0), LambdaContext()
    before = set(sys.modules)
    started = time.perf_counter()
    response = sys.modules[module_name].handler(event, context)
    first_invocation_ms = (time.perf_counter() - started) * 1000
    return {
        "import_ms": import_ms,
        "first_invocation_ms": first_invocation_ms,
        "status": response["statusCode"],
        # Imported lazily, during the first invocation (the engine, the driver, ...).
        "imported_on_first_invocation": sorted(set(sys.modules) - before),
    }


def main() -> None:
    args = sys.argv[1:]
    # The result goes to stdout; the handlers' logs and metrics, to /dev/null.
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        if args[0] == "--warm":
            from bench.routes import GET_ONE
            from bench.warm import Handlers

            warm = Handlers().interleave(GET_ONE, int(args[1]), warmup=10)
            result: dict[str, Any] = {"ms": warm.ms, "errors": warm.errors}
        else:
            result = cold_start(args[0])
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
