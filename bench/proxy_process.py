"""`devtools.tcp_proxy.TcpProxy` in a process of its own, driven over a pipe.

In the benchmark's own process the proxy's thread would compete with the handler under
measurement for the GIL; on Lambda the hop to RDS Proxy costs the function no CPU. The
child serves `python -m bench.proxy_process HOST PORT DELAY_S` and answers one line per
command on stdin: `reset` -> `ok`; `counts` -> `ROUND_TRIPS CONNECTIONS` once every proxied
connection has ended (so a closing Terminate is counted); `quit`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _serve(host: str, port: int, delay_s: float) -> None:
    from devtools.tcp_proxy import TcpProxy

    with TcpProxy(host, port, delay_s=delay_s) as proxy:
        print(proxy.port, flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "reset":
                proxy.reset_counts()
                print("ok", flush=True)
            elif command == "counts":
                print(*proxy.counts(), flush=True)
            elif command == "quit":
                break


class ProxyProcess:
    """The parent's handle: same counting as TcpProxy, the proxy in another process."""

    def __init__(self, host: str, port: int, *, delay_s: float) -> None:
        self._args = [sys.executable, "-m", "bench.proxy_process", host, str(port), str(delay_s)]
        self._proc: subprocess.Popen[str] | None = None
        self.port = 0

    def __enter__(self) -> ProxyProcess:
        self._proc = subprocess.Popen(
            self._args,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.port = int(self._ask(None))
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._proc is not None
        try:
            self._ask("quit", answer=False)
            self._proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self._proc.kill()

    def _ask(self, command: str | None, *, answer: bool = True) -> str:
        assert self._proc is not None
        assert self._proc.stdin is not None
        assert self._proc.stdout is not None
        if command is not None:
            self._proc.stdin.write(command + "\n")
            self._proc.stdin.flush()
        return self._proc.stdout.readline().strip() if answer else ""

    def reset_counts(self) -> None:
        self._ask("reset")

    def counts(self) -> tuple[int, int]:
        """(round trips, connections) since the last reset, once the proxy is idle."""
        round_trips, connections = self._ask("counts").split()
        return int(round_trips), int(connections)


if __name__ == "__main__":
    _serve(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
