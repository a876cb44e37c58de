"""A loopback TCP proxy that decodes the PostgreSQL wire protocol the client sends.

It groups the client's messages into round trips the way `devtools.tcp_proxy.TcpProxy`
counts them (a new round trip starts each time the client speaks after the server did) and
keeps the SQL of each one, so the benchmark can list the exact statements a handler sends.
Diagnostic only: no delay, and the numbers it reports are counts, never timings.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

_CHUNK = 65536
_SSL_REQUEST = 80877103
_GSS_REQUEST = 80877104
_CANCEL_REQUEST = 80877102

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
                if code == _SSL_REQUEST:
                    flight.messages.append("SSLRequest")
                elif code == _GSS_REQUEST:
                    flight.messages.append("GSSENCRequest")
                elif code == _CANCEL_REQUEST:
                    flight.messages.append("CancelRequest")
                else:
                    flight.messages.append("Startup")
                    self.startup = False
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


class TracingProxy:
    """Forwards loopback connections to a PostgreSQL server and records what clients send."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.connections: list[list[RoundTrip]] = []
        self._open = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port: int = s.getsockname()[1]

    def __enter__(self) -> TracingProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def reset(self) -> None:
        with self._lock:
            self.connections = []

    def wait_idle(self, timeout: float = 2.0) -> bool:
        """Wait until every proxied connection has ended (its last message is counted)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._open == 0:
                    return True
            time.sleep(0.002)
        return False

    def round_trips(self) -> list[RoundTrip]:
        """Every round trip since the last reset, connections in order of opening."""
        with self._lock:
            return [trip for conn in self.connections for trip in conn]

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        trips: list[RoundTrip] = []
        with self._lock:
            self.connections.append(trips)
            self._open += 1
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.transport.abort()
            with self._lock:
                self._open -= 1
            return
        parser = _ClientStream()
        last = {"from": "server"}

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, side: str) -> None:
            try:
                while data := await src.read(_CHUNK):
                    if side == "client":
                        if last["from"] == "server":
                            trips.append(RoundTrip())
                        parser.feed(data, trips[-1])
                    last["from"] = side
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()

        try:
            await asyncio.gather(
                pump(client_r, server_w, "client"), pump(server_r, client_w, "server")
            )
        finally:
            with self._lock:
                self._open -= 1
