"""Cold starts, and warm p50 in processes of their own, per serving and configuration.

Each row times the floor against the project's handler, served and configured alike (see
`servings` and `configurations`), through pgbouncer (the stand-in for RDS Proxy) behind the
counting proxy: fresh interpreters per handler, interleaved, then warm processes.
"""

from __future__ import annotations

import contextlib
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from bench import ROOT, log
from bench.child import HANDLERS, spawn
from bench.warm import ProxyProcess, host_port, span

# As the CDK bundler compiles: the asset zip resets timestamps, so hash-based .pyc.
COMPILE_ALL = ("-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash")
TLS_HOSTNAME = "localhost"  # the certificate's only name; the client dials it


class Serving(NamedTuple):
    name: str
    python: tuple[str, ...]
    path: tuple[Path, ...]


@contextlib.contextmanager
def bytecode_copy() -> Iterator[Path]:
    """The project's package and the floor, byte-compiled as the bundle is, in a temporary
    directory (site-packages keep their own .pyc, as they have in the bundle)."""
    with tempfile.TemporaryDirectory(prefix="users-api-bench-") as tmp:
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")
        shutil.copytree(ROOT / "functions" / "users_api", Path(tmp) / "users_api", ignore=ignore)
        shutil.copy2(ROOT / "bench" / "floor_handler.py", tmp)
        subprocess.run([sys.executable, *COMPILE_ALL, tmp], check=True)
        yield Path(tmp)


@contextlib.contextmanager
def servings(bytecode: Path) -> Iterator[list[Serving]]:
    """This virtualenv, and the bundle when there is a Python 3.12 to run it."""
    from bench.footprint import built_bundle
    from infra import bundling

    found = [Serving("venv", (sys.executable,), (bytecode,))]
    python = bundling.find_python312()
    native = bundling.X86_64_PLATFORMS if platform.machine() == "x86_64" else bundling.PLATFORMS
    bundle_dir = ROOT / ".build" / f"bundle-{platform.machine()}" / bundling.source_hash()
    try:
        if python is None:
            raise OSError("no Python 3.12 on this machine")
        bundle = built_bundle(bundle_dir, native)
    except (OSError, subprocess.CalledProcessError) as exc:
        log(f"the bundle is not measured: {exc}")
        yield found
        return
    with tempfile.TemporaryDirectory(prefix="users-api-floor-") as floor_dir:
        # The floor's one module beside (not inside) the bundle, compiled by that Python.
        shutil.copy2(bytecode / "floor_handler.py", floor_dir)
        subprocess.run([python, *COMPILE_ALL, floor_dir], check=True)
        # -S: no site-packages, only the bundle (and the repository, for bench and devtools).
        yield [*found, Serving("bundle", (python, "-S"), (Path(floor_dir), bundle))]


@contextlib.contextmanager
def configurations(pg_url: str) -> Iterator[dict[str, tuple[dict[str, str], ProxyProcess]]]:
    """Per configuration: the child's database environment, and the counting proxy. IAM/TLS
    checks a throwaway CA's certificate; pgbouncer never asks for the token, signed all the
    same."""
    from sqlalchemy.engine import make_url

    from devtools.pgbouncer import pgbouncer
    from devtools.tls import make_certificates

    host, port = host_port(pg_url)
    database = str(make_url(pg_url).database)
    with contextlib.ExitStack() as stack:
        certs_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-tls-")))
        certs = make_certificates(certs_dir, TLS_HOSTNAME)
        plain = stack.enter_context(pgbouncer(host, port))
        tls = stack.enter_context(pgbouncer(host, port, tls_cert=certs.cert, tls_key=certs.key))
        plain_proxy = stack.enter_context(ProxyProcess("127.0.0.1", plain.port))
        tls_proxy = stack.enter_context(ProxyProcess("127.0.0.1", tls.port))
        iam_tls = {
            "DB_AUTH_MODE": "iam",
            "DB_SSL": "verify-full",
            "DB_HOST": TLS_HOSTNAME,
            "DB_PORT": str(tls_proxy.port),
            "DB_NAME": database,
            "DB_USER": "postgres",
            "SSL_CERT_FILE": str(certs.ca),
        }
        yield {
            "password/TCP": ({"DATABASE_URL": plain_proxy.url(pg_url)}, plain_proxy),
            "IAM/TLS": (iam_tls, tls_proxy),
        }


def _cold_rounds(
    serving: Serving, db_env: dict[str, str], proxy: ProxyProcess, rounds: int
) -> dict[str, dict[str, list[Any]]]:
    """Per handler, per round: import and first-invocation ms, round trips, connections."""
    cold: dict[str, dict[str, list[Any]]] = {name: defaultdict(list) for name in HANDLERS}
    for _ in range(rounds):  # interleaved, so the machine's noise spreads over both
        for name, module in HANDLERS.items():
            proxy.reset_counts()
            result, _ = spawn(serving.python, serving.path, db_env, module)
            trips, connections = proxy.counts()
            if result["status"] != 200:
                raise RuntimeError(f"{serving.name} {name}: status {result['status']}")
            side = cold[name]
            side["import_ms"].append(result["import_ms"])
            side["first_ms"].append(result["first_invocation_ms"])
            side["total_ms"].append(result["import_ms"] + result["first_invocation_ms"])
            side["round_trips"].append(trips)
            side["connections"].append(connections)
            side["lazy"] = result["imported_on_first_invocation"]
    return cold


def _warm_processes(
    serving: Serving, db_env: dict[str, str], processes: int, iterations: int
) -> dict[str, list[float]]:
    """Per handler, each process's warm p50."""
    warm_p50: dict[str, list[float]] = {name: [] for name in HANDLERS}
    for _ in range(processes):
        result, _ = spawn(serving.python, serving.path, db_env, "--warm", str(iterations))
        if any(result["errors"].values()):
            raise RuntimeError(f"{serving.name} warm: errors {result['errors']}")
        for name, ms in result["ms"].items():
            warm_p50[name].append(statistics.median(ms))
    return warm_p50


def summarize(
    serving: str, config: str, cold: dict[str, dict[str, Any]], warm_p50: dict[str, list[float]]
) -> dict[str, Any]:
    """One row: medians and project / floor ratios, with the per-round and per-process
    ratios whose range the report prints beside them."""
    floor, project = cold["floor"], cold["project"]

    def ratio(key: str, of: Callable[[list[float]], float] = statistics.median) -> float:
        return of(project[key]) / of(floor[key])

    def ratios(p_values: list[float], f_values: list[float]) -> list[float]:
        return [p / f for p, f in zip(p_values, f_values, strict=True)]

    warm_ratios = ratios(warm_p50["project"], warm_p50["floor"])
    return {
        "serving": serving,
        "config": config,
        "median": {
            name: {key: statistics.median(side[key]) for key in ("import_ms", "first_ms")}
            for name, side in cold.items()
        },
        "import_ratio": ratio("import_ms"),
        "import_ratio_fastest": ratio("import_ms", min),
        "first_ratio": ratio("first_ms"),
        "first_ratio_rounds": ratios(project["first_ms"], floor["first_ms"]),
        "total_ratio": ratio("total_ms"),
        "total_ratio_rounds": ratios(project["total_ms"], floor["total_ms"]),
        "round_trips": {name: span(side["round_trips"]) for name, side in cold.items()},
        "most_round_trips": max(project["round_trips"]),
        "connections": span(project["connections"]),
        "lazy_modules": len(project["lazy"]),
        "lazy_packages": sorted({m.split(".")[0] for m in project["lazy"] if m[0] != "_"}),
        "warm_p50_ms": {name: statistics.median(values) for name, values in warm_p50.items()},
        "warm_ratio": statistics.median(warm_ratios),
        "warm_ratio_processes": warm_ratios,
        "samples": {"cold": cold, "warm_p50": warm_p50},
    }


def run_cold(
    pg_url: str, bytecode: Path, rounds: int, warm_processes: int, iterations: int
) -> list[dict[str, Any]]:
    """Every serving in every configuration, one row each."""
    rows = []
    with servings(bytecode) as found, configurations(pg_url) as configs:
        for serving in found:
            for config, (db_env, proxy) in configs.items():
                cold = _cold_rounds(serving, db_env, proxy, rounds)
                warm_p50 = _warm_processes(serving, db_env, warm_processes, iterations)
                row = summarize(serving.name, config, cold, warm_p50)
                log(f"cold {serving.name:6} {config:12} x import+1st {row['total_ratio']:.2f}")
                rows.append(row)
    return rows
