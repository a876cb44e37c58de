"""The benchmark's report: one section per part that ran, then the issue's targets (reported
beside the measured values, never enforced)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Iterator
from typing import Any

from bench.warm import PROXY_DELAY_S

TARGET_WARM_RATIO = 1.15
TARGET_FIRST_ROUND_TRIPS = 12
TARGET_FIRST_RATIO = 3.0
TARGET_TOTAL_RATIO = 9.0  # import + first invocation
TARGET_BUNDLE_MB = 25.0  # code: the docs pages' static files apart, as tests/infra count it


def mib(n: int) -> float:
    return n / 2**20


def _range(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}"


# Each section's title, formatted with the run's settings (`meta`) and the section's part of
# the report (`part`: what `--json` writes under the section's name).
TITLES = {
    "warm": (
        "WARM INVOCATIONS (ms per invocation; ratio = project / floor, same run; "
        "{meta[iterations]} per route per handler, interleaved A B A B after {meta[warmup]} "
        "warm-up each; proxy = {proxy_ms:.1f} ms per chunk one way; RT = round trips per "
        "invocation, counted by the proxy; conn = connections)"
    ),
    "trace": "ROUND TRIPS, statement by statement (protocol-decoding proxy)",
    "cold": (
        "COLD START AND WARM p50, per serving and configuration (through pgbouncer behind the "
        "proxy; {meta[cold_runs]} cold rounds, {meta[warm_processes]} warm processes x "
        "{meta[iterations]} invocations of GET /users/{{id}} per handler; medians, ratio "
        "ranges in parentheses)"
    ),
    "imports": (
        "IMPORT PROFILE of users_api.handler (-X importtime, bytecode, per-module medians of "
        "{meta[import_runs]} run(s)): {part[total_ms]:.0f} ms, {part[modules_loaded]} modules"
    ),
    "bundle": "BUNDLE (the CDK recipe's, as deployed: {part[path]})",
}


def _warm(rows: list[dict[str, Any]]) -> Iterator[str]:
    header = (
        f"{'mode':6} {'route':20} {'floor p50':>9} {'p99':>7} {'project p50':>11} {'p99':>7} "
        f"{'x p50':>6} {'x p99':>6} {'RT floor':>8} {'RT proj':>7} {'conn':>4} {'err':>3}"
    )
    yield header
    yield "-" * len(header)
    for row in rows:  # direct: no proxy counted, so round trips are "-"
        f, p = row["floor"], row["project"]
        yield (
            f"{row['mode']:6} {row['route']:20} {f['p50_ms']:9.2f} {f['p99_ms']:7.2f} "
            f"{p['p50_ms']:11.2f} {p['p99_ms']:7.2f} {row['ratio_p50']:5.2f}x "
            f"{row['ratio_p99']:5.2f}x {f['round_trips']:>8} {p['round_trips']:>7} "
            f"{p['connections']:>4} {f['errors'] + p['errors']:>3}"
        )
    direct = {row["route"]: row for row in rows if row["mode"] == "direct"}
    per_trip = [
        (row["floor"]["p50_ms"] - direct[row["route"]]["floor"]["p50_ms"])
        / min(row["samples"]["round_trips"]["floor"])
        for row in rows
        if row["mode"] == "proxy" and row["route"] in direct
    ]
    yield (
        f"the proxy adds {statistics.median(per_trip):.2f} ms per round trip to the floor's "
        f"p50 (median over routes; asked for {2 * PROXY_DELAY_S * 1000:.1f} ms of delay)"
    )


def _trace(trace: dict[str, Any]) -> Iterator[str]:
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


def _cold(rows: list[dict[str, Any]]) -> Iterator[str]:
    yield (
        "| config | serving | floor import / 1st ms | project import / 1st ms "
        "| x import (fastest) | x 1st (rounds) | x import+1st (rounds) "
        "| 1st RT floor / project | conn | lazy | warm p50 floor / project ms "
        "| x warm p50 (processes) |"
    )
    yield "|---|---|---|---|---|---|---|---|---|---|---|---|"
    for row in rows:
        f, p = row["median"]["floor"], row["median"]["project"]
        yield (
            f"| {row['config']} | {row['serving']} "
            f"| {f['import_ms']:.0f} / {f['first_ms']:.1f} "
            f"| {p['import_ms']:.0f} / {p['first_ms']:.1f} "
            f"| {row['import_ratio']:.2f}x ({row['import_ratio_fastest']:.2f}x) "
            f"| {row['first_ratio']:.2f}x ({_range(row['first_ratio_rounds'])}) "
            f"| {row['total_ratio']:.2f}x ({_range(row['total_ratio_rounds'])}) "
            f"| {row['round_trips']['floor']} / {row['round_trips']['project']} "
            f"| {row['connections']} | {row['lazy_modules']} "
            f"| {row['warm_p50_ms']['floor']:.2f} / {row['warm_p50_ms']['project']:.2f} "
            f"| {row['warm_ratio']:.2f}x ({_range(row['warm_ratio_processes'])}) |"
        )
    lazy = sorted({name for row in rows for name in row["lazy_packages"]})
    yield (
        "fastest = fastest import / the floor's fastest; conn, lazy = the project's connections "
        f"and modules first imported in its first invocation ({', '.join(lazy) or 'none'})"
    )


def _imports(imports: dict[str, Any]) -> Iterator[str]:
    yield "  top 15 by cumulative time:"
    for item in imports["top_cumulative"]:
        indent = "  " * min(item["depth"], 6)
        yield f"    {item['cumulative_ms']:8.1f} ms  {indent}{item['module']}"
    yield "  self time by top-level package:"
    for item in imports["self_by_package"]:
        yield f"    {item['self_ms']:8.1f} ms  {item['share']:5.1%}  {item['package']}"
    yield "  imported by `import users_api.handler`:"
    for name, info in imports["watched"].items():  # info: None when not imported
        if info is None:
            yield f"    {name:18} no"
        else:
            via = " <- ".join(info["via"])
            yield f"    {name:18} yes  {info['cumulative_ms']:6.1f} ms  via {via}"


def _bundle(bundle: dict[str, Any]) -> Iterator[str]:
    zipped = f", {mib(bundle['zipped_bytes']):.1f} MiB zipped" if bundle["zipped_bytes"] else ""
    kinds = ", ".join(f"{kind} {mib(size):.1f}" for kind, size in bundle["by_kind"].items())
    yield f"  {mib(bundle['unzipped_bytes']):.1f} MiB unzipped{zipped}; by kind (MiB): {kinds}"
    yield "  largest top-level entries:"
    for item in bundle["largest"]:
        yield f"    {mib(item['bytes']):7.2f} MiB  {item['name']}"


def _targets(report: dict[str, Any]) -> Iterator[tuple[str, str, bool]]:
    """(target, measured, met); each cold-start target against the row furthest from it."""
    if "warm" in report:
        proxied = [row for row in report["warm"] if row["mode"] == "proxy"]
        worst = max(proxied, key=lambda row: row["ratio_p50"])
        yield (
            f"warm p50 through proxy <= {TARGET_WARM_RATIO}x floor (worst route)",
            f"{worst['ratio_p50']:.2f}x ({worst['route']})",
            worst["ratio_p50"] <= TARGET_WARM_RATIO,
        )
        trips = [(row["project"]["round_trips"], row["floor"]["round_trips"]) for row in proxied]
        yield (
            "warm round trips equal to the floor's (project/floor)",
            ", ".join(f"{project}/{floor}" for project, floor in trips),
            all(project == floor for project, floor in trips),
        )
    tcp = "password/TCP"  # the round trips over plain TCP: TLS adds two to every connection
    for what, key, limit, unit, config in (
        ("first invocation", "most_round_trips", TARGET_FIRST_ROUND_TRIPS, " round trips", tcp),
        ("first invocation", "first_ratio", TARGET_FIRST_RATIO, "x floor's", ""),
        ("import + first invocation", "total_ratio", TARGET_TOTAL_RATIO, "x floor's", ""),
        ("warm p50 (own processes)", "warm_ratio", TARGET_WARM_RATIO, "x floor's", ""),
    ):
        rows = [row for row in report.get("cold", []) if config in row["config"]]
        if rows:
            row = max(rows, key=lambda row: row[key])
            value = f"{row[key]:.2f}x" if isinstance(row[key], float) else str(row[key])
            target = f"{what} <= {limit:g}{unit}" + (f" ({config})" if config else "")
            yield target, f"{value} ({row['config']} {row['serving']})", row[key] <= limit
    if "bundle" in report:
        bundle = report["bundle"]
        code_mb = (bundle["unzipped_bytes"] - bundle["docs_static_bytes"]) / 10**6
        static = f"+ {bundle['docs_static_bytes'] / 10**6:.1f} MB docs static files"
        target = f"bundle code < {TARGET_BUNDLE_MB:g} MB unzipped"
        yield target, f"{code_mb:.1f} MB ({static})", code_mb < TARGET_BUNDLE_MB


def format_report(report: dict[str, Any]) -> str:
    meta = report["meta"]
    sections: list[Iterable[str]] = [
        [
            f"users API benchmark  {meta['date']}  Python {meta['python']}  {meta['machine']}  "
            f"{meta['cpus']} CPUs  PostgreSQL via {meta['database']}"
        ]
    ]
    parts = {"warm": _warm, "trace": _trace, "cold": _cold, "imports": _imports, "bundle": _bundle}
    for part, section in parts.items():
        if part in report:
            title = TITLES[part].format(meta=meta, part=report[part], proxy_ms=PROXY_DELAY_S * 1e3)
            sections.append([title, *section(report[part])])
    sections += [[f"{part.upper()}: not measured ({why})"] for part, why in meta["skipped"].items()]
    targets = [
        f"  {target:55} {measured:>30}   {'met' if met else 'NOT met'}"
        for target, measured, met in _targets(report)
    ]
    sections.append(["TARGETS (reported, never enforced)", *targets])
    return "\n\n".join("\n".join(section) for section in sections)
