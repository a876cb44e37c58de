"""The connection storm: many Lambda execution environments at once, then no connections left.

Lambda scales out by adding execution environments, each a process with its own NullPool
engine, each serving one invocation at a time. This runs that shape on loopback:

0. floor: one worker alone, 100 invocations through the same pooler (the storm's ratios).
1. storm: W worker processes (default 50) import the real handler and serve one /health, then
   all at once serve N invocations in all (default 2,000: create, get, list, patch, delete
   in turn), through pgbouncer in transaction mode with 10 server connections, the stand-in
   for RDS Proxy's connection budget. Reported: statuses, p50/p99 of the handler call, the
   most server connections PostgreSQL saw.
2. pooler client limit: pgbouncer's max_client_conn is lowered (online reload) and every
   client slot is held by idle connections; the same workers invoke again: each answer
   should be 503 within the bound; the slots are released and the same processes, not
   restarted, invoke again.
3. max_connections: a private PostgreSQL of our own (max_connections = workers + 10) with every
   slot held, the workers connecting to it directly; 503 within the bound, then recovery.

Run: `make storm` (or `python -m bench.storm --help` with PYTHONPATH=functions:.). Like
bench.run it only reports: the exit status is non-zero only when the run itself fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
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

from devtools.lambda_runtime import FAKE_AWS_CREDENTIALS

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
HELD_CLIENT_SLOTS = 10
SOLO_INVOCATIONS = 100  # the pooler's lowered max_client_conn, all held
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

    pid = os.getpid()
    user_id: int | None = None
    done = 0

    def invoke(method: str, path: str, body: dict[str, Any] | None, query: str = "") -> Any:
        raw = json.dumps(body).encode() if body is not None else b""
        headers = {"content-type": "application/json"} if body is not None else {}
        event = http_api_event(method, path, query=query, headers=headers, body=raw)
        started = time.perf_counter()
        result = handler(event, LambdaContext(timeout_s=15))
        elapsed = (time.perf_counter() - started) * 1000
        payload = json.loads(response_body(result) or b"null")
        return result["statusCode"], elapsed, payload

    # One invocation before the burst: the driver and dialect load on first use, and 50 of
    # those at once on a 2-core machine would measure the CPU, not the connections. (Cold
    # starts are bench/run.py's subject.) It need not succeed: the database may be full.
    status, warmup_ms, _ = invoke("GET", "/health", None)
    print(json.dumps({"ready": pid, "warmup": [status, warmup_ms]}), file=out, flush=True)
    for line in sys.stdin:
        count = int(line)
        samples: list[tuple[int, float]] = []
        for _ in range(count):
            step = done % 5
            target = f"/users/{user_id}"
            if step == 0 or user_id is None:  # (again, when the last create failed)
                email = f"storm{pid}-{done}@example.com"
                status, ms, payload = invoke("POST", "/users", {"name": "S", "email": email})
                user_id = payload.get("id") if status == 201 else None
            elif step == 1:
                status, ms, _ = invoke("GET", target, None)
            elif step == 2:
                status, ms, _ = invoke("GET", "/users", None, "limit=50")
            elif step == 3:
                status, ms, _ = invoke("PATCH", target, {"name": f"S{done}"})
            else:
                status, ms, _ = invoke("DELETE", target, None)
                user_id = None
            samples.append((status, ms))
            done += 1
        print(json.dumps({"samples": samples}), file=out, flush=True)


# --- the fleet of workers ----------------------------------------------------------------


@dataclass
class Phase:
    name: str
    invocations: int = 0
    wall_s: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    max_server_connections: int | None = None
    slowest_5xx_ms: float | None = None

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        pct = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) >= 2 else lat * 99
        return {
            "phase": self.name,
            "invocations": self.invocations,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "p50_ms": round(pct[49], 1),
            "p99_ms": round(pct[98], 1),
            "max_ms": round(lat[-1], 1),
            "wall_s": round(self.wall_s, 2),
            "per_s": round(self.invocations / self.wall_s, 1) if self.wall_s else None,
            "max_server_connections": self.max_server_connections,
            "slowest_5xx_ms": round(self.slowest_5xx_ms, 1) if self.slowest_5xx_ms else None,
            "5xx_within_bound": self.slowest_5xx_ms is None
            or self.slowest_5xx_ms <= BOUND_S * 1000,
        }


class Fleet:
    """W worker processes, started at once, each importing the handler before the first go."""

    def __init__(self, count: int, database_url: str) -> None:
        env = {
            **os.environ,
            **FAKE_AWS_CREDENTIALS,
            "PYTHONPATH": f"{ROOT / 'functions'}:{ROOT}",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_LAMBDA_FUNCTION_NAME": "UsersApiFunction",
            "DATABASE_URL": database_url,
            "DB_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT_S),
            "DB_STATEMENT_TIMEOUT": str(STATEMENT_TIMEOUT_S),
            "POWERTOOLS_METRICS_NAMESPACE": "UsersApiStorm",
            "LOG_LEVEL": "WARNING",
        }
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
        # Ready: imported, and one invocation served.
        self.warmups = [self._read(process)["warmup"] for process in self.processes]

    def _read(self, process: subprocess.Popen[str]) -> dict[str, Any]:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {process.pid} exited ({process.poll()})")
        return dict(json.loads(line))

    def run(self, phase: Phase, total: int) -> Phase:
        shares = [total // len(self.processes)] * len(self.processes)
        for i in range(total % len(self.processes)):
            shares[i] += 1
        started = time.perf_counter()
        for process, share in zip(self.processes, shares, strict=True):
            assert process.stdin is not None
            process.stdin.write(f"{share}\n")
            process.stdin.flush()
        results: list[dict[str, Any]] = [{}] * len(self.processes)

        def collect(i: int) -> None:
            results[i] = self._read(self.processes[i])

        threads = [threading.Thread(target=collect, args=(i,)) for i in range(len(shares))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(PHASE_TIMEOUT_S)
            if thread.is_alive():
                raise RuntimeError(f"{phase.name}: a worker did not finish in {PHASE_TIMEOUT_S} s")
        phase.wall_s = time.perf_counter() - started
        for result in results:
            for status, ms in result["samples"]:
                phase.statuses[status] += 1
                phase.latencies_ms.append(ms)
                if status >= 500:
                    phase.slowest_5xx_ms = max(phase.slowest_5xx_ms or 0.0, ms)
        phase.invocations = sum(phase.statuses.values())
        return phase

    def close(self) -> None:
        for process in self.processes:
            if process.stdin is not None:
                process.stdin.close()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def fleet(count: int, database_url: str) -> Iterator[Fleet]:
    started = time.perf_counter()
    workers = Fleet(count, database_url)
    statuses = Counter(status for status, _ in workers.warmups)
    log(
        f"{count} workers ready in {time.perf_counter() - started:.1f} s "
        f"(imported, one /health served: {dict(statuses)})"
    )
    try:
        yield workers
    finally:
        workers.close()


# --- the database side ----------------------------------------------------------------


def run_async(coro: Any) -> Any:
    from devtools.postgres import run

    return run(coro)


class ServerConnections:
    """Samples PostgreSQL's client backends on one database while a phase runs."""

    def __init__(self, admin_url: str, database: str) -> None:
        self.admin_url = admin_url
        self.database = database
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: run_async(self._sample()), daemon=True)

    async def _sample(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.admin_url)
        try:
            while not self._stop.is_set():
                count = await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = $1 AND backend_type = 'client backend'"
                    " AND pid <> pg_backend_pid()",
                    self.database,
                )
                self.peak = max(self.peak, count)
                await asyncio.sleep(0.02)
        finally:
            await conn.close()

    def __enter__(self) -> ServerConnections:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


@contextlib.contextmanager
def held_connections(url: str, at_most: int) -> Iterator[int]:
    """Open idle connections until the server refuses one (or `at_most`), and hold them."""
    import asyncpg

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


def migrated(url: str) -> str:
    from users_api.migrate import migrate_database
    from users_api.settings import Settings

    sa_url = url.replace("postgresql://", "postgresql+asyncpg://", 1)
    run_async(migrate_database(Settings(database_url=sa_url, db_nullpool=True)))
    return sa_url


def tuned_pgbouncer(target_host: str, target_port: int) -> Any:
    from devtools.pgbouncer import Pgbouncer

    class StormPgbouncer(Pgbouncer):
        """The tests' pgbouncer with the storm's pool size and a client limit to lower."""

        max_clients: int = 1000

        def _write_config(self) -> Path:
            config = super()._write_config()
            text = config.read_text()
            text = text.replace(
                "default_pool_size = 4", f"default_pool_size = {SERVER_CONNECTIONS}"
            )
            text = text.replace("max_client_conn = 500", f"max_client_conn = {self.max_clients}")
            text = text.replace(
                "query_wait_timeout = 5", f"query_wait_timeout = {POOLER_WAIT_TIMEOUT_S}"
            )
            config.write_text(text)
            return config

    return StormPgbouncer(target_host, target_port)


# --- the run --------------------------------------------------------------------------


def exhausted_then_recovered(
    workers: Fleet, name: str, hold: contextlib.AbstractContextManager[int], per_worker: int
) -> list[Phase]:
    total = per_worker * len(workers.processes)
    with hold as slots:
        log(f"{name}: {slots} slots held; {total} invocations")
        exhausted = workers.run(Phase(f"{name}: exhausted"), total)
        log(f"{name}: {exhausted.summary()}")
    recovered = workers.run(Phase(f"{name}: released, same processes"), total)
    log(f"{name}: {recovered.summary()}")
    return [exhausted, recovered]


@contextlib.contextmanager
def client_limit(bouncer: Any, url: str) -> Iterator[int]:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=50)
    parser.add_argument("--invocations", type=int, default=2000)
    parser.add_argument(
        "--exhaustion-invocations", type=int, default=5, help="per worker and phase"
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker()
        return 0

    os.environ.update(FAKE_AWS_CREDENTIALS)
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    from sqlalchemy.engine import make_url

    from devtools.postgres import postgres_server, private_postgres, scratch_database

    phases: list[Phase] = []
    database = f"users_api_storm_{os.getpid()}"
    with postgres_server() as server, scratch_database(server, database) as url:
        target = make_url(url)
        migrated(url)
        bouncer = tuned_pgbouncer(target.host or "127.0.0.1", target.port or 5432).start()
        try:
            via_bouncer = f"{bouncer.url}/{database}"
            # The floor, same run, same pooler: one environment alone, no one to wait for.
            with fleet(1, via_bouncer) as alone:
                solo = alone.run(Phase("one worker alone (floor)"), SOLO_INVOCATIONS)
            phases.append(solo)
            log(f"floor: {solo.summary()}")
            with fleet(args.workers, via_bouncer) as workers:
                with ServerConnections(url, database) as seen:
                    storm = workers.run(Phase("storm through pgbouncer"), args.invocations)
                storm.max_server_connections = seen.peak
                phases.append(storm)
                log(f"storm: {storm.summary()}")

                hold = client_limit(bouncer, via_bouncer.replace("+asyncpg", ""))
                phases += exhausted_then_recovered(
                    workers, "pooler client limit", hold, args.exhaustion_invocations
                )
        finally:
            bouncer.stop()

    # Room for every worker once the slots are released: recovery needs no luck.
    max_connections = args.workers + PRIVATE_HEADROOM
    with (
        private_postgres(max_connections=max_connections) as private,
        scratch_database(private, "users_api_storm") as url,
        fleet(args.workers, migrated(url)) as workers,
    ):
        hold = held_connections(url, max_connections)
        phases += exhausted_then_recovered(
            workers, "PostgreSQL max_connections", hold, args.exhaustion_invocations
        )

    report = [phase.summary() for phase in phases]
    floor, storm_row = report[0], report[1]
    for key in ("p50_ms", "p99_ms"):
        storm_row[f"{key[:3]}_x_floor"] = round(storm_row[key] / floor[key], 1)
    print_report(report, args.workers)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


def print_report(report: list[dict[str, Any]], workers: int) -> None:
    print(f"\n{workers} worker processes; bound for a 503: {BOUND_S:.0f} s")
    print(
        "| phase | invocations | statuses | p50 ms | p99 ms | max ms | slowest 5xx ms "
        "| wall s | per s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for row in report:
        statuses = ", ".join(f"{k}: {v}" for k, v in row["statuses"].items())
        slowest = row["slowest_5xx_ms"] or "-"
        if row["slowest_5xx_ms"] and not row["5xx_within_bound"]:
            slowest = f"{slowest} (over the bound)"
        print(
            f"| {row['phase']} | {row['invocations']} | {statuses} | {row['p50_ms']} "
            f"| {row['p99_ms']} | {row['max_ms']} | {slowest} | {row['wall_s']} | {row['per_s']} |"
        )
    storm_row = report[1]
    print(
        f"storm / one worker alone: p50 {storm_row['p50_x_floor']}x, "
        f"p99 {storm_row['p99_x_floor']}x ({workers} processes sharing this machine's CPUs)"
    )
    for row in report:
        if row["max_server_connections"] is not None:
            print(f"{row['phase']}: at most {row['max_server_connections']} server connections")


if __name__ == "__main__":
    sys.exit(main())
