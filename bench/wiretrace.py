"""A loopback TCP proxy that decodes the PostgreSQL wire protocol the client sends.

A `devtools.tcp_proxy.TcpProxy` that groups the client's messages into round trips as it
counts them (a new round trip starts each time the client speaks after the server did) and
keeps the SQL of each one, so the benchmark can list the exact statements a handler sends.
Diagnostic only: no delay, and the numbers it reports are counts, never timings.
`run_trace` lists the statements of a first invocation (a fresh interpreter) and of a warm
invocation of every route, for both handlers, and those the floor does not send.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.warm import Handlers
from devtools.tcp_proxy import TcpProxy

# Request codes in place of a protocol version, before the StartupMessage.
_STARTUP_CODES = {80877103: "SSLRequest", 80877104: "GSSENCRequest", 80877102: "CancelRequest"}

# Frontend message types (protocol 3.0) that can appear in a round trip.
_NAMES = {
    "Q": "Query",
    "P": "Parse",
    "B": "Bind",
    "D": "Describe",
    "E": "Execute",
    "S": "Sync",
    "H": "Flush",
    "C": "Close",
    "X": "Terminate",
    "p": "Password",
    "d": "CopyData",
    "c": "CopyDone",
    "f": "CopyFail",
    "F": "FunctionCall",
}


def _cstring(payload: bytes, start: int = 0) -> tuple[str, int]:
    end = payload.index(b"\0", start)
    return payload[start:end].decode("utf-8", "replace"), end + 1


@dataclass
class RoundTrip:
    """What the client sent in one flight: message names and the SQL they carried."""

    messages: list[str] = field(default_factory=list)
    sql: list[str] = field(default_factory=list)

    def describe(self) -> str:
        kinds = "+".join(dict.fromkeys(self.messages))
        if self.sql:
            return f"{kinds}: " + " | ".join(self.sql)
        return kinds


class _ClientStream:
    """Incremental parser of the frontend side of one connection."""

    def __init__(self) -> None:
        self.buffer = b""
        self.startup = True  # until the StartupMessage (possibly after an SSLRequest)
        self.unnamed_sql = ""  # the SQL of the last unnamed Parse, for a later Bind
        self.named_sql: dict[str, str] = {}

    def feed(self, data: bytes, flight: RoundTrip) -> None:
        self.buffer += data
        while True:
            if self.startup:
                if len(self.buffer) < 8:
                    return
                length, code = struct.unpack("!II", self.buffer[:8])
                if len(self.buffer) < length:
                    return
                self.buffer = self.buffer[length:]
                flight.messages.append(_STARTUP_CODES.get(code, "Startup"))
                self.startup = code in _STARTUP_CODES
                continue
            if len(self.buffer) < 5:
                return
            kind = chr(self.buffer[0])
            (length,) = struct.unpack("!I", self.buffer[1:5])
            if len(self.buffer) < 1 + length:
                return
            payload = self.buffer[5 : 1 + length]
            self.buffer = self.buffer[1 + length :]
            self._message(kind, payload, flight)

    def _message(self, kind: str, payload: bytes, flight: RoundTrip) -> None:
        flight.messages.append(_NAMES.get(kind, kind))
        if kind == "Q":
            flight.sql.append(_cstring(payload)[0].strip())
        elif kind == "P":
            name, offset = _cstring(payload)
            sql = _cstring(payload, offset)[0].strip()
            if name:
                self.named_sql[name] = sql
            else:
                self.unnamed_sql = sql
            flight.sql.append(sql)
        elif kind == "B":
            _portal, offset = _cstring(payload)
            statement = _cstring(payload, offset)[0]
            sql = self.named_sql.get(statement, "") if statement else self.unnamed_sql
            if "Parse" not in flight.messages and sql not in flight.sql:
                flight.sql.append(sql)


class TracingProxy(TcpProxy):
    """Forwards loopback connections to a PostgreSQL server and records what clients send."""

    def __init__(self, target_host: str, target_port: int) -> None:
        super().__init__(target_host, target_port)
        self.traced: list[list[RoundTrip]] = []  # per connection, in order of opening

    def reset(self) -> None:
        with self._lock:
            self.traced = []

    def trips(self) -> list[str]:
        """Every round trip since the last reset, one line each (SQL as the client formatted
        it spans several), connections in order of opening."""
        with self._lock:
            return [" ".join(trip.describe().split()) for conn in self.traced for trip in conn]

    def _opened(self) -> tuple[list[RoundTrip], _ClientStream]:
        trips: list[RoundTrip] = []
        with self._lock:
            self.traced.append(trips)
        return trips, _ClientStream()

    def _client_sent(
        self, connection: tuple[list[RoundTrip], _ClientStream], data: bytes, new_round_trip: bool
    ) -> None:
        trips, parser = connection
        if new_round_trip:
            trips.append(RoundTrip())
        parser.feed(data, trips[-1])


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


def run_trace(handlers: Handlers, url: str, bytecode: Path) -> dict[str, Any]:
    """The first invocations are fresh interpreters importing from the `bytecode` copy."""
    from bench.child import spawn
    from bench.proxy_process import host_port, with_host
    from bench.routes import ROUTES

    out: dict[str, Any] = {"first": {}, "warm": {}}
    with TracingProxy(*host_port(url)) as tracer:
        traced_url = with_host(url, "127.0.0.1", tracer.port)
        for name, module in (("floor", "floor_handler"), ("project", "users_api.handler")):
            tracer.reset()
            spawn([sys.executable], [bytecode], {"DATABASE_URL": traced_url}, module)
            tracer.wait_idle()
            out["first"][name] = tracer.trips()
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
                per_route[name] = tracer.trips()
            per_route["extra"] = _extras(per_route["project"], per_route["floor"])
            out["warm"][route.label] = per_route
    out["first"]["extra"] = _extras(out["first"]["project"], out["first"]["floor"])
    return out
