"""One cold start, in a fresh interpreter: import a handler module, then invoke it once.

Run by bench.run as `python -m bench.child MODULE OUT_JSON [--route ROUTE] [--no-invoke]`,
with the environment (PYTHONPATH, DATABASE_URL, AWS_LAMBDA_FUNCTION_NAME) already set. Only
the import and the first invocation are timed; building the event is not. The result goes
to OUT_JSON because the project's handler writes its logs and metrics to stdout.
"""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
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
