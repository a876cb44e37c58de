"""A TCP proxy on loopback, for tests and benchmarks of the database path.

It forwards to a real server and can: delay every chunk (emulating the network hop from a
function to RDS Proxy), count round trips (each time the client speaks after the server
did), refuse new connections and cut open ones (an outage), or accept connections and never
answer (a black hole, where only a connect timeout helps).
It runs its own event loop in a thread, so callers may be synchronous or on any loop.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Coroutine
from typing import Any

_CHUNK = 65536
_IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)  # Linux; named in Python 3.12+


class TcpProxy:
    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        delay_s: float = 0.0,
        listen: tuple[str, int] | None = None,
    ) -> None:
        """`listen`: an address of the caller's choosing instead of a free loopback port;
        it may be one that appears later (a container bridge's gateway: IP_FREEBIND)."""
        self.target = (target_host, target_port)
        self.delay_s = delay_s
        self.round_trips = 0
        self.connections = 0
        self.blackhole = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._lock = threading.Lock()
        self.host, self.port = listen or ("127.0.0.1", 0)
        if not self.port:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                self.port = s.getsockname()[1]

    # --- control, from any thread -------------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    def start(self) -> TcpProxy:
        if not self._thread.is_alive():
            self._thread.start()
        self._call(self._listen())
        return self

    def stop(self) -> None:
        """Refuse new connections and cut the open ones."""
        self._call(self._close())

    def close(self) -> None:
        self.stop()
        self.wait_idle()  # let the cut connections' tasks end before their loop stops
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def reset_counts(self) -> None:
        with self._lock:
            self.round_trips = 0
            self.connections = 0

    def wait_idle(self, timeout: float = 2.0) -> None:
        """Wait until every proxied connection has ended (its closing message is seen)."""
        deadline = time.monotonic() + timeout
        while self._writers and time.monotonic() < deadline:
            time.sleep(0.0002)

    def counts(self) -> tuple[int, int]:
        """(round trips, connections) since the last reset, once the proxy is idle (so a
        closing Terminate is counted)."""
        self.wait_idle()
        return self.round_trips, self.connections

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- hooks for a subclass that reads what clients send (bench/wiretrace.py) ---------

    def _opened(self) -> Any:
        """State for one new connection, handed to `_client_sent`."""
        return None

    def _client_sent(self, connection: Any, data: bytes, new_round_trip: bool) -> None:
        """A chunk from the client; `new_round_trip` when it speaks after the server did."""

    # --- the proxy, on its own loop -----------------------------------------------------

    async def _listen(self) -> None:
        if self._server is None:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_IP, _IP_FREEBIND, 1)
            sock.bind((self.host, self.port))
            self._server = await asyncio.start_server(self._serve, sock=sock)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):  # each connection's task then ends and drops them
            writer.transport.abort()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self._writers.add(client_w)
        with self._lock:
            self.connections += 1
        if self.blackhole:
            await client_r.read()  # never answer; wait for the client to give up
            self._writers.discard(client_w)
            client_w.close()
            return
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.transport.abort()
            self._writers.discard(client_w)
            return
        self._writers.add(server_w)
        connection = self._opened()
        last = {"from": "server"}  # a connection opens with the client speaking first

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, side: str) -> None:
            try:
                while data := await src.read(_CHUNK):
                    if side == "client":
                        new_round_trip = last["from"] == "server"
                        if new_round_trip:
                            with self._lock:
                                self.round_trips += 1
                        self._client_sent(connection, data, new_round_trip)
                    last["from"] = side
                    if self.delay_s:
                        await asyncio.sleep(self.delay_s)
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()  # one side ended: end the other too

        await asyncio.gather(pump(client_r, server_w, "client"), pump(server_r, client_w, "server"))
        self._writers.discard(client_w)
        self._writers.discard(server_w)
