"""A loopback TCP proxy for tests and benchmarks of the database path: it forwards to a real
server and can delay every chunk (the hop from a function to RDS Proxy), count round trips (the
client speaking after the server did), refuse and cut connections (an outage), or accept them
and never answer (a black hole). Its event loop runs in a thread: callers may be on any loop.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from asyncio import StreamReader, StreamWriter
from typing import Any

_CHUNK = 65536
_IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)  # Linux; named in Python 3.12+
Address = tuple[str, int]
_LOCAL: Address = ("127.0.0.1", 0)  # loopback, a free port


class TcpProxy:
    def __init__(
        self, target_host: str, target_port: int, *, delay_s: float = 0.0, listen: Address = _LOCAL
    ) -> None:
        """`listen`: by default a free loopback port, the same one again after a stop; it may
        be an address that appears later (a container bridge's gateway: IP_FREEBIND)."""
        self.target = (target_host, target_port)
        self.host, self.port = listen
        self.delay_s = delay_s
        self.blackhole = False
        self.round_trips = self.connections = 0
        self._lock = threading.Lock()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # one per open connection
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def start(self) -> TcpProxy:
        if self._server is None:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_IP, _IP_FREEBIND, 1)
            sock.bind((self.host, self.port))
            self.port = sock.getsockname()[1]
            listening = asyncio.start_server(self._serve, sock=sock)
            self._server = asyncio.run_coroutine_threadsafe(listening, self._loop).result(10)
        return self

    def stop(self) -> None:
        """Refuse new connections and cut the open ones."""
        server, self._server = self._server, None
        asyncio.run_coroutine_threadsafe(self._cut(server), self._loop).result(10)

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    __enter__ = start

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reset_counts(self) -> None:
        with self._lock:
            self.round_trips = self.connections = 0

    def wait_idle(self, timeout: float = 2.0) -> None:
        """Wait until every proxied connection has ended (its closing message is seen)."""
        deadline = time.monotonic() + timeout
        while self._tasks and time.monotonic() < deadline:
            time.sleep(0.0002)

    def counts(self) -> tuple[int, int]:
        """(round trips, connections) since the reset, once idle (so a closing Terminate counts)."""
        self.wait_idle()
        return self.round_trips, self.connections

    def _opened(self) -> Any:
        """Hook (bench/wiretrace.py): state for one new connection, handed to `_client_sent`."""

    def _client_sent(self, connection: Any, data: bytes, new_round_trip: bool) -> None:
        """A chunk from the client; `new_round_trip` when it speaks after the server did."""

    async def _cut(self, server: asyncio.Server | None) -> None:
        if server is not None:
            server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)  # each cuts both its ends

    async def _serve(self, client_r: StreamReader, client_w: StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # start_server runs each connection as a task
        self._tasks.add(task)
        with self._lock:
            self.connections += 1
        try:
            if self.blackhole:
                await client_r.read()  # never answer; wait for the client to give up
                return
            server_r, server_w = await asyncio.open_connection(*self.target)
            connection = self._opened()
            server_spoke = True  # spoke last: so the client's first message opens a round trip

            async def pump(src: StreamReader, dst: StreamWriter, from_client: bool) -> None:
                nonlocal server_spoke
                try:
                    while data := await src.read(_CHUNK):
                        if from_client:
                            with self._lock:
                                self.round_trips += server_spoke
                            self._client_sent(connection, data, server_spoke)
                        server_spoke = not from_client
                        if self.delay_s:
                            await asyncio.sleep(self.delay_s)
                        dst.write(data)
                        await dst.drain()
                finally:
                    dst.transport.abort()  # one side ended: end the other too

            pumps = pump(client_r, server_w, True), pump(server_r, client_w, False)
            await asyncio.gather(*pumps, return_exceptions=True)  # a reset ends one: both end
        except OSError:  # the target refused the connection
            pass
        finally:
            client_w.transport.abort()  # the target refused, a black hole or a stop: cut it off
            self._tasks.discard(task)
