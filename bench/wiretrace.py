"""A loopback TCP proxy that decodes the PostgreSQL wire protocol the client sends.

A `devtools.tcp_proxy.TcpProxy` that keeps what the client sends per round trip as it counts
them (a new round trip starts each time the client speaks after the server did), then decodes
the messages and their SQL. Diagnostic only: no delay, and it reports counts, never timings.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path
from typing import Any

from bench.child import HANDLERS, spawn
from bench.routes import GET_ONE, ROUTES
from bench.warm import Handlers, host_port, with_host
from devtools.tcp_proxy import TcpProxy

# Request codes in place of a protocol version, before the StartupMessage.
_STARTUP_CODES = {80877103: "SSLRequest", 80877104: "GSSENCRequest", 80877102: "CancelRequest"}

# Frontend message types (protocol 3.0) these clients send; another shows as its letter.
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
}


def _cstring(payload: bytes, start: int = 0) -> tuple[str, int]:
    end = payload.index(b"\0", start)
    return payload[start:end].decode("utf-8", "replace"), end + 1


def _describe(flights: list[bytearray]) -> list[str]:
    """One line per round trip (flight) of one connection: its message names, then the SQL
    they carry (on one line: the client's formatting spans several). A flight holds whole
    messages: these clients finish a message before the server answers. The packets before
    the StartupMessage have no type byte: they are named by their request code."""
    lines, prepared = [], {}  # SQL per prepared statement name ("": the unnamed one)
    startup = True  # until the StartupMessage (possibly after an SSLRequest)
    for flight in flights:
        kinds, sql, offset = [], [], 0
        while offset < len(flight):
            if startup:
                length, code = struct.unpack_from("!II", flight, offset)
                kinds.append(_STARTUP_CODES.get(code, "Startup"))
                startup = code in _STARTUP_CODES
                offset += length
                continue
            (length,) = struct.unpack_from("!I", flight, offset + 1)
            kind, payload = chr(flight[offset]), bytes(flight[offset + 5 : offset + 1 + length])
            kinds.append(_NAMES.get(kind, kind))
            offset += 1 + length  # the type byte, then the length's span
            if kind == "Q":
                sql.append(_cstring(payload)[0])
            elif kind == "P":
                name, start = _cstring(payload)
                prepared[name] = _cstring(payload, start)[0]
                sql.append(prepared[name])
            elif kind == "B":  # the portal's name, then the statement's
                sql.append(prepared.get(_cstring(payload, _cstring(payload)[1])[0], ""))
        statements = " | ".join(dict.fromkeys(" ".join(text.split()) for text in sql))
        names = "+".join(dict.fromkeys(kinds))
        lines.append(f"{names}: {statements}" if statements else names)
    return lines


class TracingProxy(TcpProxy):
    """Forwards loopback connections to a PostgreSQL server and keeps what clients send."""

    def __init__(self, target_host: str, target_port: int) -> None:
        super().__init__(target_host, target_port)
        self.sent: list[list[bytearray]] = []  # per connection in order of opening, per flight

    def take(self) -> list[str]:
        """Every round trip since the last take, one line each, once the connections ended."""
        self.wait_idle()
        with self._lock:
            sent, self.sent = self.sent, []
        return [line for flights in sent for line in _describe(flights)]

    def _opened(self) -> list[bytearray]:
        flights: list[bytearray] = []
        with self._lock:
            self.sent.append(flights)
        return flights

    def _client_sent(self, flights: list[bytearray], data: bytes, new_round_trip: bool) -> None:
        if new_round_trip:
            flights.append(bytearray())
        flights[-1] += data


def _extras(project: list[str], floor: list[str]) -> list[str]:
    """The project's round trips that the floor does not make.

    Both open with Startup and end with Terminate, and run the route's statement in two
    round trips (Parse/Describe, then Parse/Bind/Execute: no statement cache), each in its
    own SQL; anything else the project sends is beyond the floor. The route's statement is
    the last one sent.
    """
    statements = [trip.partition(": ")[2] for trip in project if ": " in trip]
    route_sql = statements[-1] if statements else None
    return [t for t in project if t not in floor and t.partition(": ")[2] != route_sql]


def run_trace(handlers: Handlers, url: str, bytecode: Path) -> dict[str, Any]:
    """The round trips of a first invocation (a fresh interpreter importing from the `bytecode`
    copy) and of a warm one of every route, for both handlers, and those beyond the floor's."""
    out: dict[str, Any] = {"first": {}, "warm": {}}
    with TracingProxy(*host_port(url)) as tracer:
        traced_url = with_host(url, "127.0.0.1", tracer.port)
        for name, module in HANDLERS.items():
            spawn([sys.executable], [bytecode], {"DATABASE_URL": traced_url}, module)
            out["first"][name] = tracer.take()
        handlers.point_at(traced_url)
        for name in HANDLERS:  # the engine's first connect happens here
            handlers.invoke(name, GET_ONE.event(0))
        for route in ROUTES:
            per_route = {}
            for name in HANDLERS:
                tracer.take()  # what came before: not this invocation's
                handlers.invoke(name, route.event(1))
                per_route[name] = tracer.take()
            per_route["extra"] = _extras(per_route["project"], per_route["floor"])
            out["warm"][route.label] = per_route
    out["first"]["extra"] = _extras(out["first"]["project"], out["first"]["floor"])
    return out
