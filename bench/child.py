"""One cold start, in a fresh interpreter: import a handler module, then invoke it once.

Run by bench.run as `python -m bench.child MODULE OUT_JSON [--route ROUTE] [--no-invoke]`,
with the environment (PYTHONPATH, DATABASE_URL, AWS_LAMBDA_FUNCTION_NAME) already set. Only
the import and the first invocation are timed; building the event is not. The result goes
to OUT_JSON because the project's handler writes its logs and metrics to stdout.

`python -m bench.child --warm N OUT_JSON` (bench.matrix) instead imports the floor and the
project's handler side by side and times N warm invocations of each, interleaved A B A B
after a warm-up, so both see the same machine at the same moment.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def spawn(
    python: Sequence[str],
    before: Sequence[str],
    after: Sequence[str],
    env: dict[str, str],
    timeout: float,
) -> tuple[dict[str, Any], str]:
    """`PYTHON -m bench.child BEFORE... OUT_JSON AFTER...`: its JSON result and its stderr."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        out_path = Path(out.name)
    try:
        proc = subprocess.run(
            [*python, "-m", "bench.child", *before, str(out_path), *after],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"child {' '.join(before)} failed: {proc.stderr[-3000:]}")
        return json.loads(out_path.read_text()), proc.stderr
    finally:
        out_path.unlink(missing_ok=True)


def warm(iterations: int, out_path: str) -> None:
    from bench.routes import ROUTES
    from devtools.lambda_runtime import LambdaContext

    handlers = {
        "floor": __import__("floor_handler").handler,
        "project": __import__("users_api.handler", fromlist=["handler"]).handler,
    }
    route = ROUTES["get_one"]
    ms: dict[str, list[float]] = {name: [] for name in handlers}
    statuses: set[int] = set()
    for i in range(-10, iterations):  # ten warm-up rounds, not kept
        for name, handler in handlers.items():
            event, context = route.event(i), LambdaContext()
            started = time.perf_counter()
            response = handler(event, context)
            elapsed = (time.perf_counter() - started) * 1000
            statuses.add(response["statusCode"])
            if i >= 0:
                ms[name].append(elapsed)
    with open(out_path, "w") as out:
        json.dump({"ms": ms, "statuses": sorted(statuses)}, out)


def main() -> None:
    if sys.argv[1] == "--warm":
        warm(int(sys.argv[2]), sys.argv[3])
        return
    module_name, out_path = sys.argv[1], sys.argv[2]
    route = sys.argv[sys.argv.index("--route") + 1] if "--route" in sys.argv else "get_one"
    started = time.perf_counter()
    __import__(module_name)  # the C import path, which -X importtime reports
    module = sys.modules[module_name]
    imported = time.perf_counter()
    result: dict[str, object] = {
        "import_ms": (imported - started) * 1000,
        "modules": sorted(sys.modules),
    }
    if "--no-invoke" not in sys.argv:
        from bench.routes import ROUTES
        from devtools.lambda_runtime import LambdaContext

        event = ROUTES[route].event(0)
        context = LambdaContext()
        before = set(sys.modules)
        started = time.perf_counter()
        response = module.handler(event, context)
        result["first_invocation_ms"] = (time.perf_counter() - started) * 1000
        result["status"] = response["statusCode"]
        # Imported lazily, during the first invocation (the engine, the driver, ...).
        result["imported_on_first_invocation"] = sorted(set(sys.modules) - before)
    with open(out_path, "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main()
