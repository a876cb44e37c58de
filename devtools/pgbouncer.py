"""pgbouncer in transaction pooling mode: the tests' stand-in for RDS Proxy.

Like RDS Proxy it multiplexes client connections over a few server connections per
transaction, so a named prepared statement made on one client connection may land on a
server connection another client uses. It can also require TLS and check passwords.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from devtools.postgres import free_port
from devtools.processes import port_open, wait_until_ready

HOW_TO = (
    "pgbouncer is not installed: `make test` installs it (apt-get install pgbouncer); "
    "install it by hand where that is not allowed."
)


def pgbouncer_binary() -> str:
    found = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )
    if found is None:
        raise RuntimeError(HOW_TO)
    return found


@dataclass
class Pgbouncer:
    target_host: str
    target_port: int
    auth_type: str = "trust"
    # Even with trust, pgbouncer only admits users listed in its auth file.
    users: dict[str, str] = field(default_factory=lambda: {"postgres": ""})
    tls_cert: Path | None = None
    tls_key: Path | None = None
    port: int = field(default_factory=free_port)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pgbouncer-")))
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        userlist = self.workdir / "userlist.txt"
        userlist.write_text("".join(f'"{u}" "{p}"\n' for u, p in self.users.items()))
        lines = [
            "[databases]",
            f"* = host={self.target_host} port={self.target_port}",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {self.port}",
            f"unix_socket_dir = {self.workdir}",
            f"auth_type = {self.auth_type}",
            f"auth_file = {userlist}",
            "pool_mode = transaction",
            "default_pool_size = 4",
            "max_client_conn = 500",
            "server_connect_timeout = 2",
            "server_login_retry = 1",
            "query_wait_timeout = 5",
            "log_connections = 0",
            "log_disconnections = 0",
            f"logfile = {self.workdir / 'pgbouncer.log'}",
            f"pidfile = {self.workdir / 'pgbouncer.pid'}",
        ]
        if self.tls_cert and self.tls_key:
            lines += [
                "client_tls_sslmode = require",
                f"client_tls_cert_file = {self.tls_cert}",
                f"client_tls_key_file = {self.tls_key}",
            ]
        config = self.workdir / "pgbouncer.ini"
        config.write_text("\n".join(lines) + "\n")
        if os.geteuid() == 0:  # pgbouncer refuses to run as root; it switches to -u
            for path in [self.workdir, *self.workdir.iterdir()]:
                shutil.chown(path, "nobody")
        return config

    def start(self) -> Pgbouncer:
        config = self._write_config()
        args = [pgbouncer_binary(), str(config)]
        if os.geteuid() == 0:
            args[1:1] = ["-u", "nobody"]
        # Its log goes to the logfile; a pipe nobody reads would fill up and stall it.
        self.process = subprocess.Popen(  # noqa: S603 - pgbouncer with a config written here
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_until_ready(
            self.process,
            lambda: port_open(self.port),
            what="pgbouncer",
            seconds=10,
            interval=0.05,
            output=lambda: (self.workdir / "pgbouncer.log").read_text(errors="replace"),
        )
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # immediate shutdown
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def reload(self, users: dict[str, str]) -> None:
        """Replace the password list (a rotation) and make pgbouncer re-read it."""
        self.users = users
        self._write_config()
        assert self.process is not None
        self.process.send_signal(signal.SIGHUP)
        time.sleep(0.3)


@contextmanager
def pgbouncer(target_host: str, target_port: int, **options: object) -> Iterator[Pgbouncer]:
    bouncer = Pgbouncer(target_host, target_port, **options)  # type: ignore[arg-type]
    try:
        yield bouncer.start()
    finally:
        bouncer.stop()
        shutil.rmtree(bouncer.workdir, ignore_errors=True)
