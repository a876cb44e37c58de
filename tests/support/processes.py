"""Child processes and in-process servers for tests: one way to run, wait for and stop them."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from socketserver import BaseServer
from typing import TypeVar

import httpx

ROOT = Path(__file__).resolve().parents[2]
S = TypeVar("S", bound=BaseServer)


def function_env(**variables: str) -> dict[str, str]:
    """A bare environment as inside Lambda: the system PATH, the function's code (and the
    repository) importable, the function's name (so the engine uses NullPool), `variables`."""
    return {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": f"{ROOT / 'functions'}:{ROOT}",
        "AWS_LAMBDA_FUNCTION_NAME": "UsersApiFunction",
        **variables,
    }


def run(
    command: Sequence[str | Path],
    *,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """`command`, from the repository root unless told, its output captured as text."""
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def run_module(
    module: str,
    *args: str,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """`python -m module args` (see run)."""
    return run([sys.executable, "-m", module, *args], cwd=cwd, env=env, timeout=timeout)


def wait_until_answers(
    url: str, process: subprocess.Popen[bytes], output: Callable[[], str], seconds: float
) -> httpx.Response:
    """The first response of `url`, while `process` runs (else fail with its output's tail)."""
    deadline = time.monotonic() + seconds
    while True:
        assert process.poll() is None, output()[-3000:]
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            assert time.monotonic() < deadline, f"{url} did not answer in {seconds} s"
            time.sleep(0.2)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """End a process started with start_new_session=True and everything it started (make)."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextmanager
def serving_in_thread(server: S) -> Iterator[S]:
    """`server` answering on a daemon thread until the block ends; then shut down and closed."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
