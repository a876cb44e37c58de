"""Warm invocations, the floor and the project's handler interleaved A B A B in one process,
and the delaying, round-trip-counting proxy they go through.

bench.run runs them in its own process, per route, straight to PostgreSQL and through the
counting proxy (round trips per invocation); bench.child runs the same loop in a fresh
interpreter per serving and configuration (bench.cold). Only the `handler(event, context)`
call is timed, on one LambdaRunner: one thread, one loop, as in the Lambda runtime.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from bench import log
from bench.routes import ROUTES, Route

PROXY_DELAY_S = 0.0005  # one way, per chunk


def host_port(url: str) -> tuple[str, int]:
    from sqlalchemy.engine import make_url

    target = make_url(url)
    return target.host or "127.0.0.1", target.port or 5432


def with_host(url: str, host: str, port: int) -> str:
    """`url` for SQLAlchemy's asyncpg driver, at `host`:`port`."""
    from sqlalchemy.engine import make_url

    target = make_url(url).set(drivername="postgresql+asyncpg", host=host, port=port)
    return target.render_as_string(False)


def _serve(pipe: Connection, host: str, port: int) -> None:
    """The child: a TcpProxy calling, per message, the method named in it."""
    from devtools.tcp_proxy import TcpProxy

    with TcpProxy(host, port, delay_s=PROXY_DELAY_S) as proxy:
        pipe.send(proxy.port)
        while (method := pipe.recv()) != "quit":
            pipe.send(getattr(proxy, method)())


class ProxyProcess:
    """`devtools.tcp_proxy.TcpProxy`, delaying each chunk PROXY_DELAY_S one way (the function-
    to-RDS-Proxy hop) and counting round trips, in a child process driven over a pipe: as a
    thread of the benchmark it would compete with the handler under measurement for the GIL,
    where on Lambda the hop costs the function no CPU. It forwards to `host`:`port`."""

    def __init__(self, host: str, port: int) -> None:
        context = multiprocessing.get_context("spawn")  # no copy of this process's threads
        self._pipe, child_end = context.Pipe()
        self._process = context.Process(target=_serve, args=(child_end, host, port), daemon=True)
        self.port = 0

    def __enter__(self) -> ProxyProcess:
        self._process.start()
        self.port = self._pipe.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        self._pipe.send("quit")
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()

    def reset_counts(self) -> None:
        self._pipe.send("reset_counts")
        self._pipe.recv()

    def counts(self) -> tuple[int, int]:
        """(round trips, connections) since the last reset, once every proxied connection
        has ended (so a closing Terminate is counted)."""
        self._pipe.send("counts")
        return self._pipe.recv()

    def url(self, url: str) -> str:
        """`url`, through this proxy."""
        return with_host(url, "127.0.0.1", self.port)


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

    def interleave(
        self, route: Route, iterations: int, warmup: int, proxy: ProxyProcess | None = None
    ) -> WarmResult:
        """`warmup` invocations of each handler (the engine's first connect, caches), then
        `iterations` of each, interleaved; `proxy` (counting) gives each one's round trips."""
        result = WarmResult()
        for i in range(warmup):
            for name in self.by_name:
                self.invoke(name, route.event(i))
        for i in range(iterations):
            for name in self.by_name:  # A B A B ...
                event = route.event(warmup + i)
                if proxy is not None:
                    proxy.reset_counts()
                elapsed, response = self.invoke(name, event)
                if proxy is not None:
                    round_trips, connections = proxy.counts()
                    result.round_trips[name].append(round_trips)
                    result.connections[name].append(connections)
                result.ms[name].append(elapsed)
                result.errors[name] += response["statusCode"] != route.expected_status
        return result


@dataclass
class WarmResult:
    """Per handler ("floor", "project"): each invocation's ms, and the proxy's counts."""

    ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    round_trips: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    connections: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
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


def run_warm(handlers: Handlers, url: str, iterations: int, warmup: int) -> list[dict[str, Any]]:
    """Every route, straight to PostgreSQL at `url`, then through the counting proxy: per
    route and mode, the summary and the samples."""
    rows = []
    with ProxyProcess(*host_port(url)) as proxy:
        for mode, target, counter in (
            ("direct", with_host(url, *host_port(url)), None),
            ("proxy", proxy.url(url), proxy),
        ):
            handlers.point_at(target)
            for route in ROUTES:
                result = handlers.interleave(route, iterations, warmup, counter)
                rows.append({"mode": mode, "route": route.label} | result.summary())
                rows[-1]["samples"] = asdict(result)
                log(f"warm {mode:6} {route.label:20} x p50 {rows[-1]['ratio_p50']:.2f}")
    return rows
