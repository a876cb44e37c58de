"""Warm invocations, the floor and the project's handler interleaved A B A B in one process.

bench.run runs them in its own process, per route, straight to PostgreSQL and through the
counting proxy (round trips per invocation); bench.child runs the same loop in a fresh
interpreter per serving and configuration (bench.cold). Only the `handler(event, context)`
call is timed, on one LambdaRunner: one thread, one loop, as in the Lambda runtime.
"""

from __future__ import annotations

import os
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from bench import log
from bench.routes import ROUTES, Route


def p99(values: list[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def span(values: list[int]) -> str:
    """A count: `4`, or `4-5` when invocations differed."""
    if not values:
        return "-"
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}-{high}"


class Handlers:
    """The floor and the project's handler in this process, both configured from the
    environment, invoked on one LambdaRunner."""

    def __init__(self) -> None:
        import bench.floor_handler as floor
        from devtools.lambda_runner import Handler, LambdaRunner
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


@dataclass
class WarmResult:
    mode: str
    route: str
    iterations: int
    # Per handler ("floor", "project").
    ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    round_trips: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    connections: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": self.mode, "route": self.route, "n": self.iterations}
        for name in ("floor", "project"):
            out[name] = {
                "p50_ms": statistics.median(self.ms[name]),
                "p99_ms": p99(self.ms[name]),
                "round_trips": span(self.round_trips[name]),
                "connections": span(self.connections[name]),
                "errors": self.errors[name],
            }
        out["ratio_p50"] = out["project"]["p50_ms"] / out["floor"]["p50_ms"]
        out["ratio_p99"] = out["project"]["p99_ms"] / out["floor"]["p99_ms"]
        return out


def interleave(
    handlers: Handlers, mode: str, route: Route, iterations: int, warmup: int, proxy: Any = None
) -> WarmResult:
    """`warmup` invocations of each handler (the engine's first connect, caches), then
    `iterations` of each, interleaved; `proxy` (counting) gives each one's round trips."""
    result = WarmResult(mode, route.label, iterations)
    for i in range(warmup):
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
    return result


def run_warm(handlers: Handlers, url: str, iterations: int, warmup: int) -> list[WarmResult]:
    """Every route, straight to PostgreSQL at `url`, then through the counting proxy."""
    from bench.proxy_process import ProxyProcess, host_port, with_host

    results = []
    with ProxyProcess(*host_port(url)) as proxy:
        for mode, target, counter in (
            ("direct", with_host(url, *host_port(url)), None),
            ("proxy", proxy.url(url), proxy),
        ):
            handlers.point_at(target)
            for route in ROUTES.values():
                result = interleave(handlers, mode, route, iterations, warmup, counter)
                log(f"warm {mode:6} {route.label:20} x p50 {result.summary()['ratio_p50']:.2f}")
                results.append(result)
    return results
