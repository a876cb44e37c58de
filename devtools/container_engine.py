"""The container engine `sam local` talks to: Docker, Finch or podman, whichever answers.

SAM CLI speaks the Docker API and finds Docker (DOCKER_HOST or the default socket) and
Finch by itself. Podman serves the same API only while `podman system service` runs, so
when neither answers, a podman service is started on a socket of the project's own
(.build/podman/podman.sock) with the project's containers.conf (runc, cgroupfs, no default
rlimits: what runs inside sandboxes and CI machines), and stopped again afterwards.

    python -m devtools.container_engine     # which engine answers, or why none does
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from devtools.processes import NotReady, wait_until_ready

ROOT = Path(__file__).resolve().parent.parent
CONTAINERS_CONF = Path(__file__).resolve().parent / "podman" / "containers.conf"
PODMAN_ENV = {"CONTAINERS_CONF": str(CONTAINERS_CONF)}
STATE_DIR = ROOT / ".build" / "podman"
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"


class NoEngine(Exception):
    """No container engine can run here; the message says what was tried."""


@dataclass
class Engine:
    name: str  # docker, finch or podman
    # What sam needs in DOCKER_HOST; None when sam finds the engine by itself.
    docker_host: str | None = None
    service: subprocess.Popen[bytes] | None = None  # a podman service started here

    @property
    def env(self) -> dict[str, str]:
        env = dict(PODMAN_ENV) if self.name == "podman" else {}
        return {**env, "DOCKER_HOST": self.docker_host} if self.docker_host else env


def podman(
    *args: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - podman with fixed arguments
        ["podman", *args],  # noqa: S607 - podman from PATH
        env={**os.environ, **PODMAN_ENV},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )


def docker_api_answers(docker_host: str, timeout: float = 5) -> bool:
    """Does a Docker API answer `GET /_ping` on this unix:// address?"""
    if not docker_host.startswith("unix://"):
        return False  # tcp:// and ssh:// engines: let sam find out
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(timeout)
            sock.connect(docker_host.removeprefix("unix://"))
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: localhost\r\n\r\n")
            return sock.makefile("rb").readline().split()[1:2] == [b"200"]
    except OSError:
        return False


def podman_can_run() -> str | None:
    """None when podman can run containers here, else why not."""
    for tool in ("podman", "runc"):
        if not shutil.which(tool):
            return f"no {tool} on PATH (`make podman` installs it with apt)"
    try:
        result = podman("info", "--format", "{{.Host.OCIRuntime.Name}}", timeout=60, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"`podman info` failed: {exc}"
    if result.returncode != 0:
        return f"`podman info` failed: {result.stderr.strip()[-500:]}"
    return None


def start_podman_service() -> Engine:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    socket_path = STATE_DIR / "podman.sock"
    socket_path.unlink(missing_ok=True)
    log = (STATE_DIR / "service.log").open("ab")
    docker_host = f"unix://{socket_path}"
    service = subprocess.Popen(  # noqa: S603 - podman with fixed arguments
        ["podman", "system", "service", "--time=0", docker_host],  # noqa: S607
        env={**os.environ, **PODMAN_ENV},
        stdout=log,
        stderr=log,
        start_new_session=True,  # a Ctrl-C in make reaches sam, then we stop this
    )
    engine = Engine("podman", docker_host, service)
    try:
        wait_until_ready(
            service,
            lambda: docker_api_answers(docker_host, timeout=2),
            what="`podman system service`",
            seconds=30,
        )
    except NotReady:
        stop(engine)
        raise NoEngine(f"`podman system service` did not answer (see {log.name})") from None
    return engine


def stop(engine: Engine) -> None:
    if engine.service is not None and engine.service.poll() is None:
        engine.service.terminate()
        try:
            engine.service.wait(timeout=10)
        except subprocess.TimeoutExpired:
            engine.service.kill()
            engine.service.wait()


def find_engine(*, start: bool = True) -> Engine:
    """The first engine that answers: Docker, then Finch, then podman (started here)."""
    docker_host = os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
    if docker_api_answers(docker_host):
        return Engine("docker", os.environ.get("DOCKER_HOST"))
    why = [f"no Docker API answers at {docker_host} (is Docker running?)"]
    if not shutil.which("finch"):
        why.append("no finch on PATH")
    else:
        info = subprocess.run(
            ["finch", "info"],  # noqa: S607 - finch from PATH, as sam finds it
            capture_output=True,
            timeout=30,
            check=False,
        )
        if info.returncode == 0:
            return Engine("finch")
        why.append("finch is installed but `finch info` fails (run `finch vm start`)")
    reason = podman_can_run()
    if reason is not None:
        raise NoEngine("; ".join([*why, reason]))
    return start_podman_service() if start else Engine("podman")


def main() -> int:
    try:
        engine = find_engine(start=False)
    except NoEngine as exc:
        print(
            f"sam local needs a container engine (Docker, Finch or podman); none can run here: "
            f"{exc}. Install one (`make podman`), or use `make invoke EVENT=...` or "
            "`make run-lambda`, the Docker-free equivalents.",
            file=sys.stderr,
        )
        return 1
    print(engine.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
