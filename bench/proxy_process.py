"""The delaying, round-trip-counting proxy of the benchmark, in a process of its own.

`devtools.tcp_proxy.TcpProxy` delays each chunk PROXY_DELAY_S one way (the function-to-RDS-
Proxy hop) and counts round trips. As a thread of the benchmark it would compete with the
handler under measurement for the GIL, where on Lambda the hop costs the function no CPU;
so it runs in a child process, driven over a pipe.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import Connection

PROXY_DELAY_S = 0.0005  # one way, per chunk


def host_port(url: str) -> tuple[str, int]:
    from sqlalchemy.engine import make_url

    target = make_url(url)
    return target.host or "127.0.0.1", target.port or 5432


def with_host(url: str, host: str, port: int) -> str:
    """`url` for SQLAlchemy's asyncpg driver, at `host`:`port`."""
    from sqlalchemy.engine import make_url

    return (
        make_url(url)
        .set(drivername="postgresql+asyncpg", host=host, port=port)
        .render_as_string(False)
    )


def _serve(pipe: Connection, host: str, port: int) -> None:
    from devtools.tcp_proxy import TcpProxy

    with TcpProxy(host, port, delay_s=PROXY_DELAY_S) as proxy:
        pipe.send(proxy.port)
        while (command := pipe.recv()) != "quit":
            pipe.send(proxy.counts() if command == "counts" else proxy.reset_counts())


class ProxyProcess:
    """The parent's handle, counting as TcpProxy does; the proxy forwards to `host`:`port`."""

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
        self._pipe.send("reset")
        self._pipe.recv()

    def counts(self) -> tuple[int, int]:
        """(round trips, connections) since the last reset, once every proxied connection
        has ended (so a closing Terminate is counted)."""
        self._pipe.send("counts")
        return self._pipe.recv()

    def url(self, url: str) -> str:
        """`url`, through this proxy."""
        return with_host(url, "127.0.0.1", self.port)
