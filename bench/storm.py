"""The connection storm: many Lambda execution environments at once, then no connections left.

Lambda scales out by adding execution environments, each a process with its own NullPool
engine serving one invocation at a time. This runs that shape on loopback (bench/README.md,
"The connection storm and exhaustion", tells more and shows a run):

0. floor: one worker alone, 100 invocations through the same pooler (the storm's ratios).
1. storm: W workers (default 50), warm, serve N invocations in all (default 2,000) through
   pgbouncer with 10 server connections (RDS Proxy's budget): statuses, p50/p99 of the
   handler call, the most server connections PostgreSQL saw.
2. pooler client limit: max_client_conn lowered online, every slot held: each answer should
   be a 503 within the bound; then the slots are released and the same processes invoke again.
3. max_connections: the same on a private PostgreSQL (max_connections = workers + 10).

Run: `make storm` (or `python -m bench.storm --help` with PYTHONPATH=functions:.). Like
bench.run it only reports: the exit status is non-zero only when the run itself fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import re
import select
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from devtools.lambda_runtime import FAKE_AWS_CREDENTIALS
from devtools.pgbouncer import Pgbouncer
from devtools.postgres import migrate, postgres_server, private_postgres, scratch_database
from devtools.postgres import run as run_async

ROOT = Path(__file__).resolve().parents[1]
SERVER_CONNECTIONS = 10  # pgbouncer's default_pool_size: RDS Proxy's budget, scaled down
# The app's defaults (settings.py): a refused connection answers within the connect timeout
# + 1 s (docs/api-contract.md, "Time bounds").
CONNECT_TIMEOUT_S = 5.0
STATEMENT_TIMEOUT_S = 10.0
BOUND_S = CONNECT_TIMEOUT_S + 1.0
# How long a transaction may wait for a server connection: RDS Proxy's borrow timeout is
# 120 s by default; here it is longer than the statement timeout, so the app's own bound
# is the one that shows.
POOLER_WAIT_TIMEOUT_S = 30
PHASE_TIMEOUT_S = 600.0
HELD_CLIENT_SLOTS = 10  # the pooler's lowered max_client_conn, all held
SOLO_INVOCATIONS = 100
PRIVATE_HEADROOM = 10  # max_connections of the private PostgreSQL: workers + this


def log(message: str) -> None:
    print(f"[storm] {message}", file=sys.stderr, flush=True)


# --- the worker: one Lambda execution environment --------------------------------------


def worker() -> None:
    """Import the handler (cold start), then serve each batch asked on stdin, one by one."""
    # Results go to the parent through a copy of stdout; the handler's JSON logs and EMF
    # lines (written to fd 1, as on Lambda) go nowhere.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    from devtools.lambda_runtime import LambdaContext, http_api_event, response_body
    from users_api.handler import handler

    def invoke(method: str, path: str, body: Any = None, query: str = "") -> tuple[int, float, Any]:
        raw = json.dumps(body).encode() if body is not None else b""
        headers = {"content-type": "application/json"} if body is not None else {}
        event = http_api_event(method, path, query=query, headers=headers, body=raw)
        started = time.perf_counter()
        result = handler(event, LambdaContext(timeout_s=15))
        elapsed = (time.perf_counter() - started) * 1000
        return result["statusCode"], elapsed, json.loads(response_body(result) or b"null")

    # One invocation before the burst: the driver and dialect load on first use, and 50 of
    # those at once on a 2-core machine would measure the CPU, not the connections. (Cold
    # starts are bench/run.py's subject.) It need not succeed: the database may be full.
    status, warmup_ms, _ = invoke("GET", "/health")
    print(json.dumps([status, warmup_ms]), file=out, flush=True)
    user_id: int | None = None
    numbers = itertools.count()  # this worker's invocations, across batches
    for line in sys.stdin:
        samples: list[tuple[int, float]] = []
        for n in itertools.islice(numbers, int(line)):
            target = f"/users/{user_id}"
            if n % 5 == 0 or user_id is None:  # (again, when the last create failed)
                body = {"name": "S", "email": f"storm{os.getpid()}-{n}@example.com"}
                status, ms, payload = invoke("POST", "/users", body)
                user_id = payload.get("id") if status == 201 else None
            elif n % 5 == 1:
                status, ms, _ = invoke("GET", target)
            elif n % 5 == 2:
                status, ms, _ = invoke("GET", "/users", query="limit=50")
            elif n % 5 == 3:
                status, ms, _ = invoke("PATCH", target, {"name": f"S{n}"})
            else:
                status, ms, _ = invoke("DELETE", target)
                user_id = None
            samples.append((status, ms))
        print(json.dumps(samples), file=out, flush=True)


# --- the fleet of workers ----------------------------------------------------------------


@dataclass
class Phase:
    name: str
    samples: list[tuple[int, float]] = field(default_factory=list)  # (status, ms) each
    wall_s: float = 0.0
    max_server_connections: int | None = None

    def summary(self) -> dict[str, Any]:
        lat = sorted(ms for _, ms in self.samples)
        pct = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) >= 2 else lat * 99
        statuses = Counter(status for status, _ in self.samples)
        slowest_5xx = max((ms for status, ms in self.samples if status >= 500), default=None)
        return {
            "phase": self.name,
            "invocations": len(self.samples),
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "p50_ms": round(pct[49], 1),
            "p99_ms": round(pct[98], 1),
            "max_ms": round(lat[-1], 1),
            "wall_s": round(self.wall_s, 2),
            "per_s": round(len(self.samples) / self.wall_s, 1) if self.wall_s else None,
            "max_server_connections": self.max_server_connections,
            "slowest_5xx_ms": round(slowest_5xx, 1) if slowest_5xx else None,
            "5xx_within_bound": slowest_5xx is None or slowest_5xx <= BOUND_S * 1000,
        }


class Fleet:
    """W worker processes, started at once, each importing the handler and serving one
    /health before the first phase; stopped when the `with` block ends."""

    def __init__(self, count: int, database_url: str) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": f"{ROOT / 'functions'}:{ROOT}",
            "AWS_LAMBDA_FUNCTION_NAME": "UsersApiFunction",
            "DATABASE_URL": database_url,
            "DB_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT_S),
            "DB_STATEMENT_TIMEOUT": str(STATEMENT_TIMEOUT_S),
            "POWERTOOLS_METRICS_NAMESPACE": "UsersApiStorm",
            "LOG_LEVEL": "WARNING",
        }
        started = time.perf_counter()
        self.processes = [
            subprocess.Popen(
                [sys.executable, "-m", "bench.storm", "--worker"],
                cwd=ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,  # stderr inherited: a worker's crash is shown
            )
            for _ in range(count)
        ]
        warmups = Counter(status for status, _ in self._answers())
        ready_s = time.perf_counter() - started
        log(f"{count} workers ready in {ready_s:.1f} s (one /health served: {dict(warmups)})")

    def _answers(self) -> Iterator[Any]:
        """Each worker's next line, within PHASE_TIMEOUT_S for them all."""
        deadline = time.monotonic() + PHASE_TIMEOUT_S
        for process in self.processes:
            assert process.stdout is not None
            if not select.select([process.stdout], [], [], max(deadline - time.monotonic(), 0))[0]:
                raise RuntimeError(f"worker {process.pid}: no answer within {PHASE_TIMEOUT_S} s")
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"worker {process.pid} exited ({process.poll()})")
            yield json.loads(line)

    def run(self, phase: Phase, total: int) -> Phase:
        """`total` invocations shared among the workers, all at once."""
        count = len(self.processes)
        started = time.perf_counter()
        for i, process in enumerate(self.processes):
            assert process.stdin is not None
            process.stdin.write(f"{total // count + (i < total % count)}\n")
            process.stdin.flush()
        phase.samples = [(status, ms) for answer in self._answers() for status, ms in answer]
        phase.wall_s = time.perf_counter() - started
        log(f"{phase.name}: {phase.summary()}")
        return phase

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self.processes:
            if process.stdin is not None:
                process.stdin.close()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# --- the database side ----------------------------------------------------------------


@contextlib.contextmanager
def peak_server_connections(phase: Phase, admin_url: str, database: str) -> Iterator[None]:
    """PostgreSQL's client backends on `database`, sampled every 20 ms while the block
    runs: the most seen is the phase's max_server_connections."""
    phase.max_server_connections = 0
    stop = threading.Event()

    async def sample() -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            peak = 0
            while not stop.is_set():
                count = await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = $1 AND backend_type = 'client backend'"
                    " AND pid <> pg_backend_pid()",
                    database,
                )
                phase.max_server_connections = peak = max(peak, count)
                await asyncio.sleep(0.02)
        finally:
            await conn.close()

    thread = threading.Thread(target=run_async, args=(sample(),), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


@contextlib.contextmanager
def held_connections(url: str, at_most: int) -> Iterator[int]:
    """Open idle connections until the server refuses one (or `at_most`), and hold them."""
    loop = asyncio.new_event_loop()
    held: list[Any] = []
    try:
        while len(held) < at_most:
            try:
                held.append(loop.run_until_complete(asyncpg.connect(url, timeout=5)))
            except (asyncpg.PostgresError, OSError, TimeoutError):
                break
        yield len(held)
    finally:
        for conn in held:
            conn.terminate()
        loop.close()


class StormPgbouncer(Pgbouncer):
    """The tests' pgbouncer with the storm's pool size and wait, and a client limit to lower."""

    max_clients: int = 1000

    def _write_config(self) -> Path:
        config = super()._write_config()
        settings = {
            "default_pool_size": SERVER_CONNECTIONS,
            "max_client_conn": self.max_clients,
            "query_wait_timeout": POOLER_WAIT_TIMEOUT_S,
        }
        text = config.read_text()
        for key, value in settings.items():
            text = re.sub(rf"^{key} = .*$", f"{key} = {value}", text, flags=re.MULTILINE)
        config.write_text(text)
        return config


@contextlib.contextmanager
def client_limit(bouncer: StormPgbouncer, url: str) -> Iterator[int]:
    """pgbouncer's max_client_conn lowered online and every slot held; then put back."""
    limit = bouncer.max_clients
    bouncer.max_clients = HELD_CLIENT_SLOTS
    bouncer.reload(bouncer.users)
    try:
        with held_connections(url, HELD_CLIENT_SLOTS) as held:
            yield held
    finally:
        bouncer.max_clients = limit
        bouncer.reload(bouncer.users)


# --- the run --------------------------------------------------------------------------


def exhausted_then_recovered(
    workers: Fleet, name: str, hold: contextlib.AbstractContextManager[int], per_worker: int
) -> list[Phase]:
    total = per_worker * len(workers.processes)
    with hold as slots:
        log(f"{name}: {slots} slots held; {total} invocations")
        exhausted = workers.run(Phase(f"{name}: exhausted"), total)
    return [exhausted, workers.run(Phase(f"{name}: released, same processes"), total)]


def through_pgbouncer(args: argparse.Namespace) -> list[Phase]:
    """Phases 0 to 2, on the tests' PostgreSQL: the floor, the storm, the client limit."""
    database = f"users_api_storm_{os.getpid()}"
    with postgres_server() as server, scratch_database(server, database) as url:
        migrate(url)
        target = urlsplit(url)
        bouncer = StormPgbouncer(target.hostname or "127.0.0.1", target.port or 5432)
        bouncer.start()
        try:
            via_bouncer = f"{bouncer.url}/{database}"
            # The floor, same run, same pooler: one environment alone, no one to wait for.
            with Fleet(1, via_bouncer) as alone:
                floor = alone.run(Phase("one worker alone (floor)"), SOLO_INVOCATIONS)
            storm = Phase("storm through pgbouncer")
            with Fleet(args.workers, via_bouncer) as workers:
                with peak_server_connections(storm, url, database):
                    workers.run(storm, args.invocations)
                hold = client_limit(bouncer, via_bouncer.replace("+asyncpg", ""))
                name, per_worker = "pooler client limit", args.exhaustion_invocations
                return [floor, storm, *exhausted_then_recovered(workers, name, hold, per_worker)]
        finally:
            bouncer.stop()


def at_max_connections(args: argparse.Namespace) -> list[Phase]:
    """Phase 3, on a private PostgreSQL with room for every worker once the slots are
    released: recovery needs no luck."""
    max_connections = args.workers + PRIVATE_HEADROOM
    with (
        private_postgres(max_connections=max_connections) as private,
        scratch_database(private, "users_api_storm") as url,
        Fleet(args.workers, migrate(url)) as workers,
    ):
        hold = held_connections(url, max_connections)
        name, per_worker = "PostgreSQL max_connections", args.exhaustion_invocations
        return exhausted_then_recovered(workers, name, hold, per_worker)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=50)
    parser.add_argument("--invocations", type=int, default=2000)
    parser.add_argument("--exhaustion-invocations", type=int, default=5, help="per worker")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker()
        return 0
    os.environ.update(FAKE_AWS_CREDENTIALS)  # for the migrations here and the workers
    report = [phase.summary() for phase in through_pgbouncer(args) + at_max_connections(args)]
    floor, storm = report[0], report[1]
    for key in ("p50_ms", "p99_ms"):
        storm[f"{key[:3]}_x_floor"] = round(storm[key] / floor[key], 1)
    print_report(report, args.workers)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


def print_report(report: list[dict[str, Any]], workers: int) -> None:
    print(f"\n{workers} worker processes; bound for a 503: {BOUND_S:.0f} s")
    columns = ["phase", "invocations", "statuses", "p50_ms", "p99_ms", "max_ms"]
    columns += ["slowest_5xx_ms", "wall_s", "per_s"]
    print("| " + " | ".join(c.replace("_", " ") for c in columns) + " |")
    print("|---" * len(columns) + "|")
    for row in report:
        cells = {**row, "statuses": ", ".join(f"{k}: {v}" for k, v in row["statuses"].items())}
        cells["slowest_5xx_ms"] = row["slowest_5xx_ms"] or "-"
        if not row["5xx_within_bound"]:
            cells["slowest_5xx_ms"] = f"{row['slowest_5xx_ms']} (over the bound)"
        print("| " + " | ".join(str(cells[c]) for c in columns) + " |")
    storm = report[1]
    print(
        f"storm / one worker alone: p50 {storm['p50_x_floor']}x, "
        f"p99 {storm['p99_x_floor']}x ({workers} processes sharing this machine's CPUs)"
    )
    for row in report:
        if row["max_server_connections"] is not None:
            print(f"{row['phase']}: at most {row['max_server_connections']} server connections")


if __name__ == "__main__":
    sys.exit(main())
