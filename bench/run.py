"""The benchmark: the project's Lambda handler against a bare asyncpg floor (see README.md).

`python -m bench.run [--quick] [--iterations N] [--cold-runs N] [--json PATH]
[--proxy-in-process]`

1. warm invocations, floor and project interleaved (A B A B ...) in one process, per route,
   direct and through a loopback proxy that delays each chunk and counts round trips;
2. the SQL of every round trip of a first and a warm invocation (a protocol-decoding proxy);
3. cold starts in fresh interpreters: import time, first invocation, its round trips;
4. what the project's import spends its time on;
5. the Lambda bundle: unzipped size and largest packages;
6. the production configuration (IAM auth, TLS verify-full, through pgbouncer) against a
   floor doing the same, from the virtualenv and from the bundle (bench/matrix.py).

It only reports: no timing is ever a pass/fail check, and the exit status is 0 unless the
benchmark itself could not run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.child import spawn
from devtools.lambda_runner import Handler
from devtools.lambda_runtime import FAKE_AWS_CREDENTIALS

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = ROOT / "functions" / "users_api"
FLOOR_SOURCE = Path(__file__).resolve().parent / "floor_handler.py"
REQUIREMENTS = ROOT / "requirements" / "function.txt"
PROXY_DELAY_S = 0.0005  # one way, per chunk: the function-to-RDS-Proxy hop
FUNCTION_NAME = "UsersApiFunction"
# As the CDK bundler compiles: the asset zip resets timestamps, so hash-based .pyc.
COMPILE_ALL = (sys.executable, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash")
WATCHED_IMPORTS = ("boto3", "botocore", "alembic", "mako", "uvicorn", "httpx", "pydantic_settings")

# The targets of the issue, reported against (never enforced).
TARGET_WARM_RATIO = 1.15
TARGET_FIRST_ROUND_TRIPS = 12
TARGET_IMPORT_RATIO = 9.0  # import + first invocation
TARGET_FIRST_RATIO = 3.0
TARGET_BUNDLE_MIB = 25.0

# Sources only: the copies are byte-compiled (or not) on purpose.
SOURCES_ONLY = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- statistics ---------------------------------------------------------------------------


def p50(values: list[float]) -> float:
    return statistics.median(values)


def p99(values: list[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def span(values: list[int]) -> str:
    """A round-trip count: `4`, or `4-5` when invocations differed."""
    if not values:
        return "-"
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}-{high}"


# --- database -----------------------------------------------------------------------------


def host_port(url: str) -> tuple[str, int]:
    from sqlalchemy.engine import make_url

    target = make_url(url)
    return target.host or "127.0.0.1", target.port or 5432


def with_host(url: str, host: str, port: int) -> str:
    """`url` for SQLAlchemy's asyncpg driver, at `host`:`port`."""
    from sqlalchemy.engine import make_url

    return (
        make_url(url)
        .set(drivername="postgresql+asyncpg", host=host, port=port)
        .render_as_string(False)
    )


def prepare_database(url: str) -> None:
    """Migrate with the project's own migration, then seed users 1..SEEDED_USERS."""
    import asyncpg

    from bench.routes import SEEDED_USERS
    from devtools.postgres import run
    from users_api.migrate import migrate_database
    from users_api.settings import Settings

    sa_url = url.replace("postgresql://", "postgresql+asyncpg://", 1)

    async def upgrade_and_seed() -> None:
        await migrate_database(Settings(database_url=sa_url, db_nullpool=True))
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

    run(upgrade_and_seed())


# --- in-process handlers ------------------------------------------------------------------


class Handlers:
    """The floor and the project's handler in this process, pointed at one database URL,
    both invoked on one LambdaRunner (one thread, one loop, as in the Lambda runtime)."""

    def __init__(self) -> None:
        import bench.floor_handler as floor
        from devtools.lambda_runner import LambdaRunner
        from users_api.handler import handler

        self._floor = floor
        self._runner = LambdaRunner(handler)
        self.by_name: dict[str, Handler] = {"floor": floor.handler, "project": handler}

    def point_at(self, url: str) -> None:
        from users_api.db import dispose_engine
        from users_api.settings import get_settings

        os.environ["DATABASE_URL"] = url
        self._floor.configure(url)
        # What a new execution environment would do: new settings, a new (lazy) engine.
        self._runner.run(dispose_engine)
        get_settings.cache_clear()

    def invoke(self, name: str, event: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        """(ms in the handler, its response)."""
        return self._runner.submit(event, handler=self.by_name[name]).result()


def counting_proxy(url: str, in_process: bool) -> Any:
    """The delaying, round-trip-counting proxy in front of the database at `url`; with
    `in_process` its thread shares the GIL with the handler (`--proxy-in-process`, to compare
    with the default: the same proxy in a process of its own)."""
    from bench.proxy_process import ProxyProcess
    from devtools.tcp_proxy import TcpProxy

    kind = TcpProxy if in_process else ProxyProcess
    return kind(*host_port(url), delay_s=PROXY_DELAY_S)


# --- 1. warm invocations ------------------------------------------------------------------


@dataclass
class WarmResult:
    mode: str
    route: str
    label: str
    iterations: int
    # Per handler ("floor", "project").
    ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    round_trips: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    connections: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": self.mode, "route": self.label, "n": self.iterations}
        for name in ("floor", "project"):
            out[name] = {
                "p50_ms": p50(self.ms[name]),
                "p99_ms": p99(self.ms[name]),
                "round_trips": span(self.round_trips[name]),
                "connections": span(self.connections[name]),
                "errors": self.errors[name],
            }
        out["ratio_p50"] = out["project"]["p50_ms"] / out["floor"]["p50_ms"]
        out["ratio_p99"] = out["project"]["p99_ms"] / out["floor"]["p99_ms"]
        return out


def run_warm(
    handlers: Handlers, mode: str, url: str, proxy: Any, iterations: int, warmup: int
) -> list[WarmResult]:
    from bench.routes import ROUTES

    handlers.point_at(url)
    results = []
    for route in ROUTES.values():
        result = WarmResult(mode, route.key, route.label, iterations)
        for i in range(warmup):  # the engine's first connect, lazy imports, caches
            for name in ("floor", "project"):
                handlers.invoke(name, route.event(i))
        for i in range(iterations):
            for name in ("floor", "project"):  # A B A B ...
                event = route.event(warmup + i)
                if proxy is not None:
                    proxy.reset_counts()
                elapsed, response = handlers.invoke(name, event)
                if proxy is not None:
                    round_trips, connections = proxy.counts()
                    result.round_trips[name].append(round_trips)
                    result.connections[name].append(connections)
                result.ms[name].append(elapsed)
                if response["statusCode"] != route.expected_status:
                    result.errors[name] += 1
        log(
            f"warm {mode:6} {route.label:20} floor p50 {p50(result.ms['floor']):6.2f} ms, "
            f"project p50 {p50(result.ms['project']):6.2f} ms"
        )
        results.append(result)
    return results


# --- 2. the SQL of each round trip ----------------------------------------------------------


def child_env(path: Iterable[Path], db_env: dict[str, str]) -> dict[str, str]:
    """A fresh interpreter's environment: this one's without its database, Python and TLS
    settings, plus fake AWS credentials, the function's name, `path` and `db_env`."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DB_", "PYTHON", "SSL_")) and name != "DATABASE_URL"
    }
    return {
        **env,
        **FAKE_AWS_CREDENTIALS,
        **db_env,
        "PYTHONPATH": os.pathsep.join(map(str, path)),
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,
    }


def run_child(
    module: str,
    code_path: list[Path],
    database_url: str,
    *extra: str,
    python_args: tuple[str, ...] = (),
) -> tuple[dict[str, Any], str]:
    """Import `module` in a fresh interpreter (and invoke it once); returns its JSON, stderr."""
    env = child_env([*code_path, ROOT], {"DATABASE_URL": database_url})
    return spawn([sys.executable, *python_args], [module], extra, env, timeout=180)


def _statement_trips(trips: list[Any]) -> list[str]:
    """Each round trip on one line (SQL as the client formatted it spans several)."""
    return [" ".join(trip.describe().split()) for trip in trips]


def _extras(project: list[str], floor: list[str]) -> list[str]:
    """The project's round trips that the floor does not make.

    Both open with Startup and end with Terminate, and run the route's statement in two
    round trips (Parse/Describe, then Parse/Bind/Execute: no statement cache); anything else
    the project sends is beyond the floor. The route's statement is the last one sent.
    """
    statements = [t for t in project if ":" in t]
    if not statements:
        return []
    route_sql = statements[-1].split(": ", 1)[1]
    floor_kinds = {t for t in floor if ":" not in t}
    return [
        t
        for t in project
        if (":" in t and t.split(": ", 1)[1] != route_sql)
        or (":" not in t and t not in floor_kinds)
    ]


def run_trace(handlers: Handlers, url: str, code_path: list[Path]) -> dict[str, Any]:
    from bench.routes import ROUTES
    from bench.wiretrace import TracingProxy

    out: dict[str, Any] = {"first": {}, "warm": {}}
    with TracingProxy(*host_port(url)) as tracer:
        traced_url = with_host(url, "127.0.0.1", tracer.port)
        for name, module in (("floor", "floor_handler"), ("project", "users_api.handler")):
            tracer.reset()
            run_child(module, code_path, traced_url, "--route", "get_one")
            tracer.wait_idle()
            out["first"][name] = _statement_trips(tracer.trips())
        handlers.point_at(traced_url)
        for name in ("floor", "project"):  # the engine's first connect happens here
            handlers.invoke(name, ROUTES["get_one"].event(0))
        for route in ROUTES.values():
            per_route = {}
            for name in ("floor", "project"):
                tracer.wait_idle()
                tracer.reset()
                handlers.invoke(name, route.event(1))
                tracer.wait_idle()
                per_route[name] = _statement_trips(tracer.trips())
            per_route["extra"] = _extras(per_route["project"], per_route["floor"])
            out["warm"][route.label] = per_route
    out["first"]["extra"] = _extras(out["first"]["project"], out["first"]["floor"])
    return out


# --- 3. cold starts -------------------------------------------------------------------------


def _requirement_names() -> list[str]:
    names = []
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):  # not a `--hash=` continuation
            names.append(line.split("==")[0].split("[")[0].strip())
    return names


def _copy_site_packages(dest: Path) -> None:
    """The bundle's packages (this machine's builds of the same pins), sources only."""
    import importlib.metadata

    dest.mkdir(parents=True)
    for name in _requirement_names():
        dist = importlib.metadata.distribution(name)
        tops = {Path(str(f)).parts[0] for f in dist.files or ()}
        for top in sorted(t for t in tops if t not in ("..", "__pycache__")):
            source = Path(str(dist.locate_file(top)))
            if source.is_dir():
                shutil.copytree(source, dest / top, ignore=SOURCES_ONLY, dirs_exist_ok=True)
            elif source.is_file() and source.suffix not in (".pyc", ".pyo"):
                shutil.copy2(source, dest / top)


@contextlib.contextmanager
def code_copies() -> Iterator[dict[str, list[Path]]]:
    """sys.path heads for the cold-start variants, in a temporary directory.

    `bytecode`: the project's package and the floor, byte-compiled as the bundle is
    (unchecked-hash .pyc); `source`: the same without .pyc; `nothing`: no .pyc for the
    package nor for the bundle's packages (copied from this virtualenv). Site-packages keep
    their .pyc in the first two, as they have in the bundle; the standard library always does.
    """
    with tempfile.TemporaryDirectory(prefix="users-api-bench-") as tmp:
        base = Path(tmp)
        for name in ("bytecode", "source"):
            shutil.copytree(PACKAGE_DIR, base / name / "users_api", ignore=SOURCES_ONLY)
            shutil.copy2(FLOOR_SOURCE, base / name / "floor_handler.py")
        subprocess.run([*COMPILE_ALL, str(base / "bytecode")], check=True)
        _copy_site_packages(base / "site")
        yield {
            "bytecode": [base / "bytecode"],
            "source": [base / "source"],
            "nothing": [base / "source", base / "site"],
        }


COLD_VARIANTS = (
    ("floor", "floor (asyncpg), bytecode", "floor_handler", "bytecode"),
    ("project", "project, bytecode", "users_api.handler", "bytecode"),
    ("project_source", "project, no .pyc for users_api", "users_api.handler", "source"),
    ("project_nothing", "project, no .pyc for any package", "users_api.handler", "nothing"),
)


def run_cold(url: str, paths: dict[str, list[Path]], runs: int, in_process: bool) -> dict[str, Any]:
    samples: dict[str, dict[str, list[Any]]] = {key: defaultdict(list) for key, *_ in COLD_VARIANTS}
    with counting_proxy(url, in_process) as proxy:
        proxied = with_host(url, "127.0.0.1", proxy.port)
        for i in range(runs):  # interleaved, so noise spreads over every variant
            for key, _label, module, code in COLD_VARIANTS:
                proxy.reset_counts()
                result, _ = run_child(module, paths[code], proxied, "--route", "get_one")
                round_trips, connections = proxy.counts()
                samples[key]["import_ms"].append(result["import_ms"])
                samples[key]["first_ms"].append(result["first_invocation_ms"])
                samples[key]["round_trips"].append(round_trips)
                samples[key]["connections"].append(connections)
                samples[key]["status"].append(result["status"])
                samples[key]["lazy_modules"].append(result["imported_on_first_invocation"])
            log(f"cold start round {i + 1}/{runs} done")
    floor_import = statistics.median(samples["floor"]["import_ms"])
    floor_min = min(samples["floor"]["import_ms"])
    for s in samples.values():
        s["total_ms"] = [a + b for a, b in zip(s["import_ms"], s["first_ms"], strict=True)]
    floor_total = statistics.median(samples["floor"]["total_ms"])
    summary = {}
    for key, label, module, code in COLD_VARIANTS:
        s = samples[key]
        import_ms = statistics.median(s["import_ms"])
        lazy = s.pop("lazy_modules")[-1]
        summary[key] = {
            "label": label,
            "module": module,
            "code": code,
            "runs": runs,
            "import_ms_median": import_ms,
            "import_ms_min": min(s["import_ms"]),
            "import_ratio": import_ms / floor_import,
            "import_ratio_min": min(s["import_ms"]) / floor_min,
            "lazy_modules": len(lazy),
            "lazy_packages": sorted({m.split(".")[0] for m in lazy if not m.startswith("_")}),
            "first_invocation_ms_median": statistics.median(s["first_ms"]),
            "total_ms_median": statistics.median(s["total_ms"]),
            "total_ratio": statistics.median(s["total_ms"]) / floor_total,
            "first_round_trips": span(s["round_trips"]),
            "first_round_trips_median": statistics.median(s["round_trips"]),
            "first_connections": span(s["connections"]),
            "statuses": sorted(set(s["status"])),
            "samples": dict(s),
        }
    return summary


# --- 4. import profile ----------------------------------------------------------------------


@dataclass
class ImportLine:
    self_us: int
    cumulative_us: int
    depth: int
    name: str


def parse_importtime(stderr: str) -> list[ImportLine]:
    lines = []
    for raw in stderr.splitlines():
        if not raw.startswith("import time:") or "self [us]" in raw:
            continue
        self_us, cumulative_us, name_part = raw[len("import time:") :].split("|", 2)
        name = name_part.strip()
        depth = (len(name_part) - len(name_part.lstrip()) - 1) // 2
        lines.append(ImportLine(int(self_us), int(cumulative_us), depth, name))
    return lines


def _import_tree(url: str, paths: dict[str, list[Path]]) -> tuple[list[ImportLine], list[str]]:
    """The -X importtime lines of `import users_api.handler`, and sys.modules after it."""
    result, stderr = run_child(
        "users_api.handler",
        paths["bytecode"],
        url,
        "--no-invoke",
        python_args=("-X", "importtime"),
    )
    lines = parse_importtime(stderr)
    end = next(i for i, line in enumerate(lines) if line.name == "users_api.handler")
    start = end
    while start > 0 and lines[start - 1].depth > 0:
        start -= 1
    return lines[start : end + 1], result["modules"]


def import_profile(url: str, paths: dict[str, list[Path]], runs: int) -> dict[str, Any]:
    """-X importtime in `runs` fresh interpreters; each module's times are the medians."""
    trees = [_import_tree(url, paths) for _ in range(runs)]
    tree, modules = trees[0]
    for line in tree:
        same = [next((o for o in other if o.name == line.name), line) for other, _ in trees]
        line.self_us = int(statistics.median(o.self_us for o in same))
        line.cumulative_us = int(statistics.median(o.cumulative_us for o in same))
    by_package: dict[str, int] = defaultdict(int)
    for line in tree:
        by_package[line.name.split(".")[0]] += line.self_us
    total_us = tree[-1].cumulative_us

    def importer_chain(index: int) -> list[str]:
        chain, depth = [], tree[index].depth
        for line in tree[index + 1 :]:
            if line.depth < depth:
                chain.append(line.name)
                depth = line.depth
        return chain

    watched = {}
    for name in WATCHED_IMPORTS:
        index = next((i for i, line in enumerate(tree) if line.name == name), None)
        watched[name] = {
            "imported": name in modules,
            "cumulative_ms": tree[index].cumulative_us / 1000 if index is not None else None,
            "via": importer_chain(index)[:4] if index is not None else [],
        }
    return {
        "runs": runs,
        "total_ms": total_us / 1000,
        "modules_loaded": len(tree),
        "top_cumulative": [
            {"module": line.name, "cumulative_ms": line.cumulative_us / 1000, "depth": line.depth}
            for line in sorted(tree, key=lambda line: -line.cumulative_us)[:15]
        ],
        "self_by_package": [
            {"package": name, "self_ms": us / 1000, "share": us / total_us}
            for name, us in sorted(by_package.items(), key=lambda item: -item[1])[:12]
        ],
        "watched": watched,
    }


# --- 5. the bundle --------------------------------------------------------------------------


def _dir_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _zipped_size(path: Path) -> int:
    with tempfile.TemporaryFile() as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(path.rglob("*")):
                if file.is_file():
                    archive.write(file, file.relative_to(path).as_posix())
        return tmp.tell()


def _bundle() -> tuple[Path, str]:
    """The Lambda bundle of the current sources: the CDK bundler's cache entry (the same
    recipe, keyed by the same input hash), built with that recipe when missing."""
    from infra import bundling  # starts jsii (Node): only imported when the bundle is needed

    cache = bundling.bundle_cache_root() or ROOT / ".build" / "lambda-bundles"
    path = cache / bundling.source_hash()
    if path.is_dir():
        return path, "the CDK bundler's cache"
    log(f"building the bundle into {path.relative_to(ROOT)} (the CDK bundler's recipe)")
    staging = path.with_name(path.name + ".bench.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    bundling.build_bundle(staging)
    staging.rename(path)
    return path, "built by the benchmark with the CDK bundler's recipe"


def bundle_report(zipped: bool) -> dict[str, Any]:
    """The bundle's size; `zipped` also zips it."""
    try:
        path, origin = _bundle()
    except (OSError, subprocess.CalledProcessError) as exc:
        return {"error": f"no bundle: {exc}"}
    by_kind: dict[str, int] = defaultdict(int)
    for file in path.rglob("*"):
        if file.is_file():
            kind = file.suffix if file.suffix in (".so", ".pyc", ".py") else "other"
            by_kind[kind] += file.stat().st_size
    packages = [
        {"name": child.name, "bytes": _dir_size(child)}
        for child in path.iterdir()
        if not child.name.endswith(".dist-info") and child.name != "__pycache__"
    ]
    packages.sort(key=lambda item: -item["bytes"])
    return {
        "origin": origin,
        "path": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path),
        "unzipped_bytes": _dir_size(path),
        "zipped_bytes": _zipped_size(path) if zipped else None,
        "by_kind": dict(by_kind),
        "largest": packages[:10],
    }


# --- the report -----------------------------------------------------------------------------


def mib(n: int) -> float:
    return n / 2**20


def _report_header(report: dict[str, Any]) -> Iterator[str]:
    """What ran where, and how to read the tables."""
    meta = report["meta"]
    yield (
        f"users API benchmark  {meta['date']}  Python {meta['python']}  {meta['machine']}  "
        f"{meta['cpus']} CPUs  PostgreSQL via {meta['database']}"
    )
    yield (
        f"warm: {meta['iterations']} invocations per route per handler, interleaved A B A B "
        f"after {meta['warmup']} warm-up each; proxy ({meta['proxy']}) delays each chunk "
        f"{PROXY_DELAY_S * 1000:.1f} ms one way; RT = round trips per invocation (counted by "
        "the proxy), conn = connections"
    )


def _warm_section(report: dict[str, Any]) -> Iterator[str]:
    """Warm invocations, floor against project, and what the proxy adds."""
    yield "WARM INVOCATIONS (ms per invocation; ratio = project / floor, same run)"
    header = (
        f"{'mode':6} {'route':20} {'floor p50':>9} {'p99':>7} {'project p50':>11} {'p99':>7} "
        f"{'x p50':>6} {'x p99':>6} {'RT floor':>8} {'RT proj':>7} {'conn':>4} {'err':>3}"
    )
    yield header
    yield "-" * len(header)
    for row in report["warm"]:  # direct: no proxy counted, so round trips are "-"
        f, p = row["floor"], row["project"]
        yield (
            f"{row['mode']:6} {row['route']:20} {f['p50_ms']:9.2f} {f['p99_ms']:7.2f} "
            f"{p['p50_ms']:11.2f} {p['p99_ms']:7.2f} {row['ratio_p50']:5.2f}x "
            f"{row['ratio_p99']:5.2f}x {f['round_trips']:>8} {p['round_trips']:>7} "
            f"{p['connections']:>4} {f['errors'] + p['errors']:>3}"
        )
    direct = {row["route"]: row for row in report["warm"] if row["mode"] == "direct"}
    per_trip = [
        (row["floor"]["p50_ms"] - direct[row["route"]]["floor"]["p50_ms"])
        / int(row["floor"]["round_trips"].split("-")[0])
        for row in report["warm"]
        if row["mode"] == "proxy" and row["route"] in direct
    ]
    if per_trip:
        yield (
            f"the proxy adds {statistics.median(per_trip):.2f} ms per round trip to the floor's "
            f"p50 (median over routes; asked for {2 * PROXY_DELAY_S * 1000:.1f} ms of delay)"
        )


def _cold_section(report: dict[str, Any]) -> Iterator[str]:
    """Cold starts per variant."""
    cold = report["cold"]
    runs = next(iter(cold.values()))["runs"]
    yield (
        f"COLD START (fresh interpreters, median of {runs}; first invocation = GET /users/{{id}} "
        "through the delaying proxy)"
    )
    header = (
        f"{'variant':34} {'import ms':>9} {'x floor':>7} {'min ms':>7} {'x (min)':>7} "
        f"{'1st inv ms':>10} {'1st RT':>6} {'conn':>4} {'lazy':>4} {'both ms':>7} {'x floor':>7}"
    )
    yield header
    yield "-" * len(header)
    for row in cold.values():
        yield (
            f"{row['label']:34} {row['import_ms_median']:9.1f} {row['import_ratio']:6.2f}x "
            f"{row['import_ms_min']:7.1f} {row['import_ratio_min']:6.2f}x "
            f"{row['first_invocation_ms_median']:10.1f} {row['first_round_trips']:>6} "
            f"{row['first_connections']:>4} {row['lazy_modules']:>4} "
            f"{row['total_ms_median']:7.1f} {row['total_ratio']:6.2f}x"
        )
    yield (
        "x (min) = fastest run / the floor's fastest; lazy = modules first imported during the "
        "first invocation (the project's: "
        + (", ".join(cold["project"]["lazy_packages"]) or "none")
        + "); "
        "both = import + first invocation, what a cold start adds before the first answer"
    )


def _trace_section(report: dict[str, Any]) -> Iterator[str]:
    """Round trips statement by statement, and those beyond the floor."""
    trace = report["trace"]
    yield "ROUND TRIPS, statement by statement (protocol-decoding proxy)"
    for title, trips in (
        ("first invocation, floor", trace["first"]["floor"]),
        ("first invocation, project", trace["first"]["project"]),
        ("warm GET /users/{id}, project", trace["warm"]["GET /users/{id}"]["project"]),
    ):
        yield f"  {title}: {len(trips)} round trips"
        yield from (f"    {i:2}. {trip}" for i, trip in enumerate(trips, 1))
    warm = [(f"warm {label}", trips) for label, trips in trace["warm"].items()]
    for label, trips in [("first invocation", trace["first"]), *warm]:
        yield (
            f"  beyond the floor, {label}: {len(trips['extra'])} "
            f"(floor {len(trips['floor'])}, project {len(trips['project'])})"
        )
        yield from (f"    + {trip}" for trip in trips["extra"])


def _imports_section(report: dict[str, Any]) -> Iterator[str]:
    """Where the handler's import time goes."""
    imports = report["imports"]
    yield (
        f"IMPORT PROFILE of users_api.handler (-X importtime, bytecode, per-module medians of "
        f"{imports['runs']} run{'s' if imports['runs'] > 1 else ''}): "
        f"{imports['total_ms']:.0f} ms, {imports['modules_loaded']} modules"
    )
    yield "  top 15 by cumulative time:"
    for item in imports["top_cumulative"]:
        indent = "  " * min(item["depth"], 6)
        yield f"    {item['cumulative_ms']:8.1f} ms  {indent}{item['module']}"
    yield "  self time by top-level package:"
    for item in imports["self_by_package"]:
        yield f"    {item['self_ms']:8.1f} ms  {item['share']:5.1%}  {item['package']}"
    yield "  imported by `import users_api.handler`:"
    for name, info in imports["watched"].items():
        if info["imported"]:
            ms = f"{info['cumulative_ms']:.1f} ms" if info["cumulative_ms"] is not None else ""
            via = " <- ".join(info["via"])
            yield f"    {name:18} yes  {ms:>9}  via {via}"
        else:
            yield f"    {name:18} no"


def _bundle_section(report: dict[str, Any]) -> Iterator[str]:
    """The deployment bundle's size by kind."""
    bundle = report["bundle"]
    if "error" in bundle:
        yield f"BUNDLE: {bundle['error']}"
    else:
        zipped = f", {mib(bundle['zipped_bytes']):.1f} MiB zipped" if bundle["zipped_bytes"] else ""
        kinds = ", ".join(
            f"{kind} {mib(size):.1f}"
            for kind, size in sorted(bundle["by_kind"].items(), key=lambda item: -item[1])
        )
        yield f"BUNDLE ({bundle['origin']}: {bundle['path']})"
        yield (
            f"  {mib(bundle['unzipped_bytes']):.1f} MiB unzipped{zipped}; by kind (MiB): {kinds}"
        )
        yield "  largest top-level entries:"
        for item in bundle["largest"]:
            yield f"    {mib(item['bytes']):7.2f} MiB  {item['name']}"


def format_report(report: dict[str, Any]) -> str:
    sections: list[Iterable[str]] = [
        _report_header(report),
        _warm_section(report),
        _cold_section(report),
        _trace_section(report),
        _imports_section(report),
        _bundle_section(report),
    ]
    if "matrix" in report:
        from bench.matrix import format_section

        sections.append([format_section(report["matrix"]["rows"], report["matrix"]["meta"])])
    targets = [
        f"  {line['target']:52} {line['measured']:>24}   {line['verdict']}"
        for line in report["targets"]
    ]
    sections.append(["TARGETS (reported, never enforced)", *targets])
    return "\n\n".join("\n".join(section) for section in sections)


def target(name: str, measured: str, met: bool) -> dict[str, str]:
    """One line of the TARGETS table."""
    return {"target": name, "measured": measured, "verdict": "met" if met else "NOT met"}


def evaluate_targets(report: dict[str, Any]) -> list[dict[str, str]]:
    proxied = [row for row in report["warm"] if row["mode"] == "proxy"]
    worst = max(proxied, key=lambda row: row["ratio_p50"])
    cold = report["cold"]
    trips = cold["project"]["first_round_trips_median"]
    first = (
        cold["project"]["first_invocation_ms_median"] / cold["floor"]["first_invocation_ms_median"]
    )
    rows = [
        target(
            f"warm p50 through proxy <= {TARGET_WARM_RATIO}x floor (worst route)",
            f"{worst['ratio_p50']:.2f}x ({worst['route']})",
            worst["ratio_p50"] <= TARGET_WARM_RATIO,
        ),
        target(
            "warm round trips equal to the floor's (project/floor)",
            ", ".join(
                f"{r['project']['round_trips']}/{r['floor']['round_trips']}" for r in proxied
            ),
            all(r["floor"]["round_trips"] == r["project"]["round_trips"] for r in proxied),
        ),
        target(
            f"first invocation <= {TARGET_FIRST_ROUND_TRIPS} round trips",
            f"{trips:g} (floor {cold['floor']['first_round_trips']})",
            trips <= TARGET_FIRST_ROUND_TRIPS,
        ),
        target(
            f"first invocation <= {TARGET_FIRST_RATIO:g}x floor's (bytecode)",
            f"{first:.2f}x",
            first <= TARGET_FIRST_RATIO,
        ),
        target(
            f"import + first invocation <= {TARGET_IMPORT_RATIO:g}x floor's (bytecode)",
            f"{cold['project']['total_ratio']:.2f}x",
            cold["project"]["total_ratio"] <= TARGET_IMPORT_RATIO,
        ),
    ]
    if "error" not in report["bundle"]:
        size = mib(report["bundle"]["unzipped_bytes"])
        rows.append(
            target(
                f"bundle < {TARGET_BUNDLE_MIB:g} MiB unzipped",
                f"{size:.1f} MiB",
                size < TARGET_BUNDLE_MIB,
            )
        )
    return rows


def matrix_runnable() -> bool:
    """The production configuration needs pgbouncer (`make bench` installs it)."""
    from devtools.pgbouncer import pgbouncer_binary

    try:
        pgbouncer_binary()
    except RuntimeError as exc:
        log(f"production configuration not measured: {exc}")
        return False
    return True


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, help="warm invocations per route per handler")
    parser.add_argument("--cold-runs", type=int, help="fresh interpreters per cold-start variant")
    parser.add_argument("--quick", action="store_true", help="a short run (under a minute)")
    parser.add_argument("--json", type=Path, help="also write every number to this file")
    parser.add_argument(
        "--proxy-in-process",
        action="store_true",
        help="run the delaying proxy as a thread of this process (default: its own process)",
    )
    parser.add_argument(
        "--no-matrix",
        action="store_true",
        help="skip the production configuration (IAM/TLS, bundle; bench/matrix.py)",
    )
    return parser.parse_args(argv)


def act_as_lambda() -> None:
    """This process's environment and import path as the function's inside Lambda."""
    os.environ.update(FAKE_AWS_CREDENTIALS)
    os.environ["AWS_LAMBDA_FUNCTION_NAME"] = FUNCTION_NAME  # NullPool, as inside Lambda
    for name in ("AWS_PROFILE", "DB_HOST", "DB_NULLPOOL", "API_ROOT_PATH"):
        os.environ.pop(name, None)
    for path in (str(ROOT / "functions"), str(ROOT)):
        if path not in sys.path:
            sys.path.insert(0, path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    iterations = args.iterations or (30 if args.quick else 200)
    cold_runs = args.cold_runs or (3 if args.quick else 7)
    warmup = 3 if args.quick else 10

    act_as_lambda()

    from sqlalchemy.engine import make_url

    from devtools.postgres import postgres_server, scratch_database

    started = time.monotonic()
    report: dict[str, Any] = {}
    # The project's handler writes a JSON log line and an EMF metrics blob per invocation to
    # stdout (CloudWatch on Lambda): here they go to /dev/null; the report is printed after.
    with (
        open(os.devnull, "w") as devnull,
        postgres_server() as server,
        scratch_database(server, f"users_api_bench_{os.getpid()}") as url,
    ):
        target = make_url(url)
        report["meta"] = {
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "python": platform.python_version(),
            "machine": f"{platform.system()} {platform.machine()}",
            "cpus": os.cpu_count(),
            "database": f"{target.host}:{target.port}",
            "iterations": iterations,
            "warmup": warmup,
            "cold_runs": cold_runs,
            "proxy": "in-process thread" if args.proxy_in_process else "own process",
        }
        log(f"database {target.database} on {target.host}:{target.port}")
        with contextlib.redirect_stdout(devnull):  # before the app's logger binds stdout
            prepare_database(url)
            handlers = Handlers()
            warm: list[WarmResult] = []
            direct = with_host(url, *host_port(url))
            warm += run_warm(handlers, "direct", direct, None, iterations, warmup)
            with counting_proxy(url, args.proxy_in_process) as proxy:
                proxied = with_host(url, "127.0.0.1", proxy.port)
                warm += run_warm(handlers, "proxy", proxied, proxy, iterations, warmup)
            report["warm"] = [result.summary() for result in warm]
            with code_copies() as paths:
                report["trace"] = run_trace(handlers, url, paths["bytecode"])
                report["cold"] = run_cold(url, paths, cold_runs, args.proxy_in_process)
                report["imports"] = import_profile(direct, paths, 1 if args.quick else 3)
                if not args.no_matrix and matrix_runnable():
                    from bench.matrix import run_matrix

                    report["matrix"] = run_matrix(
                        url,
                        paths["bytecode"][0],
                        rounds=cold_runs,
                        warm_children=1 if args.quick else 3,
                        iterations=iterations,
                    )
            handlers.point_at(direct)
    report["bundle"] = bundle_report(zipped=not args.quick)
    report["targets"] = evaluate_targets(report)
    if "matrix" in report:
        report["targets"] += report["matrix"]["targets"]
    report["meta"]["duration_s"] = round(time.monotonic() - started, 1)
    print(format_report(report))
    print(f"\n(benchmark took {report['meta']['duration_s']:.0f} s)")
    if args.json:
        samples = {"warm_samples": [asdict(result) for result in warm]}
        args.json.write_text(json.dumps({**report, **samples}, indent=2, default=str))
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
