"""Waiting for a child process to be ready: the one loop every local server start shares."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from typing import Any


class NotReady(RuntimeError):
    pass


def wait_until_ready(
    process: subprocess.Popen[Any],
    ready: Callable[[], bool],
    *,
    what: str,
    seconds: float,
    interval: float = 0.1,
    output: Callable[[], str] = lambda: "",
) -> None:
    """Return once `ready()` holds; raise NotReady (with `output()`) if `process` exits first
    or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while not ready():
        if process.poll() is not None:
            raise NotReady(f"{what} exited ({process.returncode}): {output()}")
        if time.monotonic() > deadline:
            raise NotReady(f"{what} did not answer within {seconds:g} s")
        time.sleep(interval)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something listens on `host`:`port` (a connection, no request)."""
    with socket.socket() as probe:
        return probe.connect_ex((host, port)) == 0
