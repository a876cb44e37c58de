"""A fresh interpreter's part of the benchmark, and `spawn`, which starts one.

`python -m bench.child OUT_JSON MODULE` times the import of a handler module, then its first
invocation, GET /users/{id} (not building the event). `python -m bench.child OUT_JSON
--warm N` interleaves N warm invocations of GET /users/{id} by both handlers
(bench.warm). The result goes to OUT_JSON: the project's handler logs to stdout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bench import ROOT

HANDLERS = {"floor": "floor_handler", "project": "users_api.handler"}  # the modules to import


def spawn(
    python: Sequence[str], path: Iterable[Path], db_env: dict[str, str], *args: str
) -> tuple[dict[str, Any], str]:
    """`PYTHON -m bench.child OUT_JSON ARGS...`: its JSON result and its stderr.

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
    with tempfile.TemporaryDirectory(prefix="bench-child-") as tmp:
        out_path = Path(tmp) / "result.json"
        proc = subprocess.run(
            [*python, "-m", "bench.child", str(out_path), *args],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"child {' '.join(args)} failed: {proc.stderr[-3000:]}")
        return json.loads(out_path.read_text()), proc.stderr


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
    out_path, args = sys.argv[1], sys.argv[2:]
    if args[0] == "--warm":
        from bench.routes import GET_ONE
        from bench.warm import Handlers

        warm = Handlers().interleave(GET_ONE, int(args[1]), warmup=10)
        result: dict[str, Any] = {"ms": warm.ms, "errors": warm.errors}
    else:
        result = cold_start(args[0])
    with open(out_path, "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main()
