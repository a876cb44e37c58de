"""The benchmark: the project's Lambda handler against a bare asyncpg floor (see README.md).

The parts, in the order they run: `warm` (bench.warm), `trace` (bench.wiretrace), `cold`
(bench.cold), `imports` and `bundle` (bench.footprint). It only reports: the exit status is 0
unless the benchmark itself could not run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import log

PARTS = ("warm", "trace", "cold", "imports", "bundle")


def prepare_database(url: str) -> None:
    """Migrate with the project's own migration, then seed users 1..SEEDED_USERS."""
    import asyncpg

    from bench.routes import SEEDED_USERS
    from devtools.postgres import migrate, run

    migrate(url)

    async def seed() -> None:
        conn = await asyncpg.connect(url)
        try:
            # ASCII addresses: their email_key is the address itself.
            await conn.execute(
                "INSERT INTO users (name, email, email_key) SELECT 'Seeded ' || n, e, e FROM"
                " generate_series(1, $1) AS n, LATERAL (SELECT 'seeded-' || n || '@example.com')"
                " AS a(e)",
                SEEDED_USERS,
            )
            await conn.execute("ANALYZE users")
        finally:
            await conn.close()

    run(seed())


def act_as_lambda() -> None:
    """This process's environment as the function's inside Lambda."""
    from devtools.lambda_runtime import FAKE_AWS_CREDENTIALS

    os.environ.update(FAKE_AWS_CREDENTIALS)
    os.environ["AWS_LAMBDA_FUNCTION_NAME"] = "UsersApiFunction"  # NullPool, as inside Lambda
    for name in ("AWS_PROFILE", "DB_HOST", "DB_NULLPOOL", "API_ROOT_PATH"):
        os.environ.pop(name, None)


def measure(parts: set[str], url: str, meta: dict[str, Any]) -> dict[str, Any]:
    """Every part in `parts`, against the scratch database at `url`."""
    from bench.cold import bytecode_copy, run_cold
    from bench.footprint import bundle_report, import_profile
    from bench.warm import Handlers, host_port, run_warm, with_host
    from bench.wiretrace import run_trace

    report: dict[str, Any] = {}
    direct = with_host(url, *host_port(url))  # for SQLAlchemy's asyncpg driver
    prepare_database(url)
    handlers = Handlers()
    if "warm" in parts:
        report["warm"] = run_warm(handlers, url, meta["iterations"], meta["warmup"])
    with bytecode_copy() as bytecode:
        if "trace" in parts:
            report["trace"] = run_trace(handlers, url, bytecode)
        if "cold" in parts:
            report["cold"] = run_cold(
                url, bytecode, meta["cold_runs"], meta["warm_processes"], meta["iterations"]
            )
        if "imports" in parts:
            report["imports"] = import_profile(direct, bytecode, meta["import_runs"])
    handlers.point_at(direct)  # the engine disposed of before the database is dropped
    if "bundle" in parts:
        try:
            report["bundle"] = bundle_report(zipped=not meta["quick"])
        except (OSError, subprocess.CalledProcessError) as exc:
            meta["skipped"]["bundle"] = f"no bundle: {exc}"
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", choices=PARTS, default=PARTS, help="parts to run")
    parser.add_argument("--quick", action="store_true", help="a short run (a few minutes)")
    parser.add_argument("--iterations", type=int, help="warm invocations per route per handler")
    parser.add_argument("--cold-runs", type=int, help="fresh interpreters per cold-start row")
    parser.add_argument("--json", type=Path, help="also write every number to this file")
    args = parser.parse_args(argv)
    parts = set(args.only)
    act_as_lambda()

    from bench.report import format_report
    from bench.warm import host_port
    from devtools.pgbouncer import pgbouncer_binary
    from devtools.postgres import postgres_server, scratch_database

    started = time.monotonic()
    meta: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}",
        "cpus": os.cpu_count(),
        "quick": args.quick,
        "iterations": args.iterations or (30 if args.quick else 200),
        "warmup": 3 if args.quick else 10,
        "cold_runs": args.cold_runs or (3 if args.quick else 7),
        "warm_processes": 1 if args.quick else 3,
        "import_runs": 1 if args.quick else 3,
        "skipped": {},
    }
    if "cold" in parts:
        try:
            pgbouncer_binary()  # `make bench` installs it
        except RuntimeError as exc:
            meta["skipped"]["cold"] = str(exc)
            parts.discard("cold")
    report: dict[str, Any] = {"meta": meta}
    # The project's handler writes a JSON log line and an EMF metrics blob per invocation to
    # stdout (CloudWatch on Lambda): here they go to /dev/null; the report is printed after.
    with (
        open(os.devnull, "w") as devnull,
        postgres_server() as server,
        scratch_database(server, f"users_api_bench_{os.getpid()}") as url,
    ):
        meta["database"] = "{}:{}".format(*host_port(url))
        log(f"scratch database {url}")
        with contextlib.redirect_stdout(devnull):  # before the app's logger binds stdout
            report |= measure(parts, url, meta)
    meta["duration_s"] = round(time.monotonic() - started, 1)
    print(format_report(report))
    print(f"\n(benchmark took {meta['duration_s']:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
