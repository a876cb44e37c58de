"""Find a PostgreSQL for the tests and the bench, or start a throwaway one.

Order: TEST_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/test) when it
answers; else a private server from PostgreSQL binaries on this machine (run as `nobody`
when we are root, as initdb refuses root); else pgserver's bundled binaries. Never skip.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
HOW_TO = (
    "No PostgreSQL is reachable and none could be started. Point the tests at one with "
    "TEST_DATABASE_URL=postgresql://USER@HOST:PORT/DB, or install PostgreSQL "
    "(apt-get install postgresql) so the tests can start a private server."
)


def run(coro):  # type: ignore[no-untyped-def]
    """Run a coroutine on a private loop, leaving the thread's current loop alone.

    Called from inside a running loop (an async test), it runs in a worker thread.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(coro)
        finally:
            loop.close()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(run, coro).result()


def reachable(url: str, timeout: float = 3.0) -> bool:
    async def probe() -> None:
        conn = await asyncpg.connect(url, timeout=timeout)
        await conn.close()

    try:
        run(probe())
    except (OSError, TimeoutError, asyncpg.PostgresError):
        return False
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bindirs() -> list[Path]:
    found = [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    if pg_config := shutil.which("pg_config"):
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)  # noqa: S603
        found.append(Path(out.stdout.strip()))
    if initdb := shutil.which("initdb"):
        found.append(Path(initdb).parent)
    return [d for d in found if (d / "initdb").exists() and (d / "pg_ctl").exists()]


@contextmanager
def _private_server(bindir: Path, **server_settings: str | int) -> Iterator[str]:
    data = Path(tempfile.mkdtemp(prefix="users-api-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(data, "nobody")
        as_user = ["runuser", "-u", "nobody", "--"]
    port = free_port()
    pgdata = data / "pgdata"
    subprocess.run(  # noqa: S603 - PostgreSQL binaries of this machine
        [*as_user, str(bindir / "initdb"), "-D", str(pgdata), "-U", "postgres", "-A", "trust"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -h 127.0.0.1 -k {data} -F"
    options += "".join(f" -c {name}={value}" for name, value in server_settings.items())
    subprocess.run(  # noqa: S603 - PostgreSQL binaries of this machine
        [
            *as_user,
            str(bindir / "pg_ctl"),
            "-D",
            str(pgdata),
            "-o",
            options,
            "-w",
            "start",
            "-l",
            str(data / "log"),
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(  # noqa: S603 - PostgreSQL binaries of this machine
            [*as_user, str(bindir / "pg_ctl"), "-D", str(pgdata), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(data, ignore_errors=True)


@contextmanager
def _pgserver() -> Iterator[str]:
    import pgserver  # the fallback: a pip-installed PostgreSQL

    data = Path(tempfile.mkdtemp(prefix="users-api-pgserver-"))
    server = pgserver.get_server(data, cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


@contextmanager
def private_postgres(**server_settings: str | int) -> Iterator[str]:
    """A throwaway server of our own, with settings (`max_connections=...`) no shared one
    may be given: from this machine's PostgreSQL binaries, else pgserver's bundled ones."""
    bindirs = _bindirs()
    try:
        from pgserver._commands import POSTGRES_BIN_PATH  # where pgserver keeps them

        bindirs.append(POSTGRES_BIN_PATH)
    except ImportError:
        pass
    if not bindirs:
        raise RuntimeError(HOW_TO)
    with _private_server(bindirs[0], **server_settings) as url:
        yield url


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yields a URL (postgresql://...) of a server the tests may create databases on."""
    url = os.environ.get("TEST_DATABASE_URL", DEFAULT_URL)
    if reachable(url):
        yield url
        return
    errors: list[str] = [f"{url}: not reachable"]
    for bindir in _bindirs():
        try:
            with _private_server(bindir) as private_url:
                print(f"\n[tests] started a private PostgreSQL from {bindir}: {private_url}")
                yield private_url
            return
        except (OSError, subprocess.CalledProcessError) as exc:
            errors.append(f"{bindir}: {exc}")
    try:
        with _pgserver() as pgserver_url:
            print(f"\n[tests] started PostgreSQL from pgserver: {pgserver_url}")
            yield pgserver_url
        return
    except Exception as exc:
        errors.append(f"pgserver: {exc}")
    raise RuntimeError(HOW_TO + "\nTried: " + "; ".join(errors))


@contextmanager
def scratch_database(server_url: str, name: str) -> Iterator[str]:
    """A fresh database on the server, dropped afterwards. Yields its asyncpg URL."""
    base = server_url.rsplit("/", 1)[0]

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(server_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{base}/{name}"
    finally:
        run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def migrate(url: str) -> str:
    """Apply the project's migrations to the database at the asyncpg `url` (as Lambda runs
    them: NullPool); returns its SQLAlchemy URL."""
    from users_api.migrate import migrate_database
    from users_api.settings import Settings

    sa_url = url.replace("postgresql://", "postgresql+asyncpg://", 1)
    run(migrate_database(Settings(database_url=sa_url, db_nullpool=True)))
    return sa_url
