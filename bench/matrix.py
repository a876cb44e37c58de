"""The configuration production runs, measured: IAM auth and TLS verify-full through a pooler,
from the virtualenv and from the Lambda bundle, each against the floor doing the same.

`python -m bench.matrix [--rounds N] [--warm-children N] [--iterations N] [--json PATH]`
(also part of `python -m bench.run`).

Two configurations, each through pgbouncer (the stand-in for RDS Proxy) behind the counting
proxy that delays each chunk 0.5 ms one way:
- `password/TCP`: plain TCP, no password (pgbouncer trusts the user), as the rest of the
  benchmark;
- `IAM/TLS`: DB_AUTH_MODE=iam and DB_SSL=verify-full to a pgbouncer that terminates TLS with
  a certificate from a throwaway CA (trusted through SSL_CERT_FILE, which
  `ssl.create_default_context()` reads) for the name the client dials. The floor does the
  same: bare asyncpg, the same TLS context, a token from the same signer. pgbouncer trusts
  the user, so it does not ask for the token (RDS Proxy does, in one more round trip for
  both); signing it is measured all the same.

Two servings: `venv` (this virtualenv's packages, the project byte-compiled as the bundle
is) and `bundle` (the CDK recipe's bundle built for this machine's architecture, run by a
Python 3.12 with -S: nothing but the bundle, as on Lambda).

Per serving and configuration: `rounds` fresh interpreters per handler, floor and project
interleaved, each timing its import and its first invocation (GET /users/{id}; round trips
counted by the proxy); then `warm_children` processes that each import both handlers and
time `iterations` warm invocations of each, interleaved. Ratios are project / floor of the
same run; their spread is the range over rounds (cold) and over processes (warm).
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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.child import spawn
from bench.run import (
    COMPILE_ALL,
    PROXY_DELAY_S,
    ROOT,
    TARGET_FIRST_RATIO,
    TARGET_FIRST_ROUND_TRIPS,
    TARGET_WARM_RATIO,
    child_env,
    code_copies,
    host_port,
    prepare_database,
    target,
)
from bench.run import TARGET_IMPORT_RATIO as TARGET_TOTAL_RATIO
from devtools.lambda_runtime import FAKE_AWS_CREDENTIALS

TLS_HOSTNAME = "localhost"  # the certificate's only name; the client dials it
CONFIGS = ("password/TCP", "IAM/TLS")
SERVINGS = ("venv", "bundle")
HANDLERS = {"floor": "floor_handler", "project": "users_api.handler"}


def log(message: str) -> None:
    print(f"[bench.matrix] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Serving:
    name: str
    python: tuple[str, ...]
    path: tuple[Path, ...]


def native_bundle() -> Path:
    """The CDK recipe's bundle for this machine's architecture (as tests/infra builds it)."""
    from infra import bundling  # starts jsii (Node): only when the bundle is needed

    platforms = bundling.X86_64_PLATFORMS if platform.machine() == "x86_64" else bundling.PLATFORMS
    target = ROOT / ".build" / f"bundle-{platform.machine()}" / bundling.source_hash()
    if not target.is_dir():
        log(f"building the bundle into {target.relative_to(ROOT)} (the CDK recipe, {platforms})")
        shutil.rmtree(target.parent, ignore_errors=True)
        staging = target.with_name(target.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        bundling.build_bundle(staging, platforms)
        staging.rename(target)
    return target


@contextlib.contextmanager
def servings(bytecode_copy: Path) -> Iterator[list[Serving]]:
    """`bytecode_copy` holds the project and the floor byte-compiled (bench.run's copies)."""
    from infra import bundling

    found = [Serving("venv", (sys.executable,), (bytecode_copy, ROOT))]
    python = bundling.find_python312()
    if python is None:
        log("no Python 3.12 on this machine: the bundle is not measured")
        yield found
        return
    bundle = native_bundle()
    with tempfile.TemporaryDirectory(prefix="users-api-floor-") as tmp:
        floor_dir = Path(tmp)  # the floor's one module, beside (not inside) the bundle
        shutil.copy2(bytecode_copy / "floor_handler.py", floor_dir)
        subprocess.run([python, *COMPILE_ALL[1:], tmp], check=True)
        # -S: no site-packages, only the bundle (as /var/task); ROOT for bench and devtools.
        yield [*found, Serving("bundle", (python, "-S"), (floor_dir, bundle, ROOT))]


@contextlib.contextmanager
def configurations(pg_url: str) -> Iterator[dict[str, tuple[dict[str, str], Any]]]:
    """Per configuration: the child's database environment and the counting proxy."""
    from sqlalchemy.engine import make_url

    from bench.proxy_process import ProxyProcess
    from devtools.pgbouncer import pgbouncer
    from devtools.tls import make_certificates

    host, port = host_port(pg_url)
    database = make_url(pg_url).database
    with contextlib.ExitStack() as stack:
        certs_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-tls-")))
        certs = make_certificates(certs_dir, TLS_HOSTNAME)
        plain = stack.enter_context(pgbouncer(host, port))
        tls = stack.enter_context(pgbouncer(host, port, tls_cert=certs.cert, tls_key=certs.key))
        plain_proxy = stack.enter_context(
            ProxyProcess("127.0.0.1", plain.port, delay_s=PROXY_DELAY_S)
        )
        tls_proxy = stack.enter_context(ProxyProcess("127.0.0.1", tls.port, delay_s=PROXY_DELAY_S))
        yield {
            "password/TCP": (
                {
                    "DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:{plain_proxy.port}/"
                    f"{database}"
                },
                plain_proxy,
            ),
            "IAM/TLS": (
                {
                    "DB_AUTH_MODE": "iam",
                    "DB_SSL": "verify-full",
                    "DB_HOST": TLS_HOSTNAME,
                    "DB_PORT": str(tls_proxy.port),
                    "DB_NAME": str(database),
                    "DB_USER": "postgres",
                    "SSL_CERT_FILE": str(certs.ca),
                },
                tls_proxy,
            ),
        }


def _child(
    serving: Serving, db_env: dict[str, str], before: list[str], after: list[str]
) -> dict[str, Any]:
    """`python -m bench.child BEFORE... OUT_JSON AFTER...` in a fresh interpreter."""
    try:
        result, _ = spawn(
            serving.python, before, after, child_env(serving.path, db_env), timeout=300
        )
    except RuntimeError as exc:
        raise RuntimeError(f"{serving.name}: {exc}") from None
    return result


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def measure(
    servings_: list[Serving],
    configs: dict[str, tuple[dict[str, str], Any]],
    rounds: int,
    warm_children: int,
    iterations: int,
) -> list[dict[str, Any]]:
    rows = []
    for serving in servings_:
        for config in CONFIGS:
            db_env, proxy = configs[config]
            cold: dict[str, dict[str, list[float]]] = {
                name: {"import_ms": [], "first_ms": [], "round_trips": []} for name in HANDLERS
            }
            for _ in range(rounds):
                for name, module in HANDLERS.items():
                    proxy.reset_counts()
                    result = _child(serving, db_env, [module], ["--route", "get_one"])
                    trips, _connections = proxy.counts()
                    if result["status"] != 200:
                        raise RuntimeError(f"{serving.name} {config} {name}: {result['status']}")
                    cold[name]["import_ms"].append(result["import_ms"])
                    cold[name]["first_ms"].append(result["first_invocation_ms"])
                    cold[name]["round_trips"].append(trips)
            warm_ratios, warm_p50 = [], {"floor": [], "project": []}
            for _ in range(warm_children):
                result = _child(serving, db_env, ["--warm", str(iterations)], [])
                if result["statuses"] != [200]:
                    raise RuntimeError(f"{serving.name} {config} warm: {result['statuses']}")
                p50 = {name: statistics.median(ms) for name, ms in result["ms"].items()}
                for name in p50:
                    warm_p50[name].append(p50[name])
                warm_ratios.append(p50["project"] / p50["floor"])
            row = summarize(serving.name, config, cold, warm_p50, warm_ratios)
            log(
                f"{serving.name:6} {config:12} x1st {row['first_ratio']:.2f} "
                f"x(import+1st) {row['total_ratio']:.2f} x warm p50 {row['warm_ratio']:.2f}"
            )
            rows.append(row)
    return rows


def summarize(
    serving: str,
    config: str,
    cold: dict[str, dict[str, list[float]]],
    warm_p50: dict[str, list[float]],
    warm_ratios: list[float],
) -> dict[str, Any]:
    def per_round(key: str) -> list[float]:
        return [p / f for p, f in zip(cold["project"][key], cold["floor"][key], strict=True)]

    for side in cold.values():
        side["total_ms"] = [a + b for a, b in zip(side["import_ms"], side["first_ms"], strict=True)]
    median = {
        name: {key: statistics.median(values) for key, values in side.items()}
        for name, side in cold.items()
    }
    return {
        "serving": serving,
        "config": config,
        "rounds": len(cold["floor"]["import_ms"]),
        "median": median,
        "first_ratio": median["project"]["first_ms"] / median["floor"]["first_ms"],
        "first_ratio_rounds": _spread(per_round("first_ms")),
        "total_ratio": median["project"]["total_ms"] / median["floor"]["total_ms"],
        "total_ratio_rounds": _spread(per_round("total_ms")),
        "import_ratio": median["project"]["import_ms"] / median["floor"]["import_ms"],
        "round_trips": {name: sorted(set(side["round_trips"])) for name, side in cold.items()},
        "warm_p50_ms": {name: statistics.median(values) for name, values in warm_p50.items()},
        "warm_ratio": statistics.median(warm_ratios),
        "warm_ratio_children": _spread(warm_ratios),
        "samples": {"cold": cold, "warm_p50": warm_p50},
    }


def _trips(values: list[int]) -> str:
    return str(values[0]) if len(values) == 1 else f"{values[0]}-{values[-1]}"


def _range(spread: dict[str, float]) -> str:
    return f"{spread['min']:.2f}-{spread['max']:.2f}"


def format_table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table, ready for bench/README.md."""
    out = [
        "| config | serving | floor import / 1st ms | project import / 1st ms | x 1st (rounds) "
        "| x import+1st (rounds) | 1st RT floor / project | warm p50 floor / project ms "
        "| x warm p50 (processes) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        f, p = row["median"]["floor"], row["median"]["project"]
        out.append(
            f"| {row['config']} | {row['serving']} "
            f"| {f['import_ms']:.0f} / {f['first_ms']:.1f} "
            f"| {p['import_ms']:.0f} / {p['first_ms']:.1f} "
            f"| {row['first_ratio']:.2f}x ({_range(row['first_ratio_rounds'])}) "
            f"| {row['total_ratio']:.2f}x ({_range(row['total_ratio_rounds'])}) "
            f"| {_trips(row['round_trips']['floor'])} / {_trips(row['round_trips']['project'])} "
            f"| {row['warm_p50_ms']['floor']:.2f} / {row['warm_p50_ms']['project']:.2f} "
            f"| {row['warm_ratio']:.2f}x ({_range(row['warm_ratio_children'])}) |"
        )
    return "\n".join(out)


def evaluate_targets(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    def check(name: str, values: list[tuple[str, float]], limit: float, unit: str) -> None:
        worst_label, worst = max(values, key=lambda item: item[1])
        verdicts.append(target(name, f"{worst:.2f}{unit} (worst: {worst_label})", worst <= limit))

    verdicts: list[dict[str, str]] = []
    label = [f"{row['config']} {row['serving']}" for row in rows]
    check(
        f"first call <= {TARGET_FIRST_RATIO:g}x floor's",
        list(zip(label, (row["first_ratio"] for row in rows), strict=True)),
        TARGET_FIRST_RATIO,
        "x",
    )
    check(
        f"import + first call <= {TARGET_TOTAL_RATIO:g}x floor's",
        list(zip(label, (row["total_ratio"] for row in rows), strict=True)),
        TARGET_TOTAL_RATIO,
        "x",
    )
    check(
        f"first call <= {TARGET_FIRST_ROUND_TRIPS} round trips (password/TCP)",
        [
            (lab, float(row["round_trips"]["project"][-1]))
            for lab, row in zip(label, rows, strict=True)
            if row["config"] == "password/TCP"
        ],
        TARGET_FIRST_ROUND_TRIPS,
        "",
    )
    check(
        f"warm p50 <= {TARGET_WARM_RATIO}x floor's",
        list(zip(label, (row["warm_ratio"] for row in rows), strict=True)),
        TARGET_WARM_RATIO,
        "x",
    )
    return verdicts


def format_section(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"PRODUCTION CONFIGURATION (through pgbouncer behind the proxy; {meta['rounds']} "
            f"cold rounds, {meta['warm_children']} warm processes x {meta['iterations']} "
            "invocations per handler; medians, ratio ranges in parentheses)",
            format_table(rows),
        ]
    )


def format_targets(targets: list[dict[str, str]]) -> str:
    return "\n".join(
        f"  {line['target']:52} {line['measured']:>34}   {line['verdict']}" for line in targets
    )


def run_matrix(
    pg_url: str, bytecode_copy: Path, rounds: int, warm_children: int, iterations: int
) -> dict[str, Any]:
    with servings(bytecode_copy) as found, configurations(pg_url) as configs:
        rows = measure(found, configs, rounds, warm_children, iterations)
    meta = {"rounds": rounds, "warm_children": warm_children, "iterations": iterations}
    return {"meta": meta, "rows": rows, "targets": evaluate_targets(rows)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.matrix", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="cold starts per handler")
    parser.add_argument("--warm-children", type=int, default=3, help="warm processes")
    parser.add_argument("--iterations", type=int, default=150, help="warm calls per process")
    parser.add_argument("--json", type=Path, help="also write every number to this file")
    args = parser.parse_args(argv)
    os.environ.update(FAKE_AWS_CREDENTIALS)

    from devtools.postgres import postgres_server, scratch_database

    started = time.monotonic()
    with (
        postgres_server() as server,
        scratch_database(server, f"users_api_matrix_{os.getpid()}") as url,
        code_copies() as paths,
    ):
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            prepare_database(url)
        report = run_matrix(
            url, paths["bytecode"][0], args.rounds, args.warm_children, args.iterations
        )
    print(format_section(report["rows"], report["meta"]))
    print("\nTARGETS (reported, never enforced)")
    print(format_targets(report["targets"]))
    print(f"\n(took {time.monotonic() - started:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
