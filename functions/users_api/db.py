"""The database engine: built once per process (per Lambda cold start), lazily.

Inside Lambda the engine uses NullPool: a frozen execution environment must not keep
sockets that the proxy has long closed, and RDS Proxy does the pooling. A local server
keeps a normal pool. Request sessions run in autocommit: every route is one statement,
so a BEGIN/COMMIT pair would only add round trips.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterator
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from users_api import credentials
from users_api.errors import is_db_unavailable
from users_api.observability import record_db_connect
from users_api.settings import Settings, SslMode, get_settings


def _ssl_context(mode: SslMode, root_cert: Path | None = None) -> ssl.SSLContext | bool:
    if mode is SslMode.DISABLE:
        return False
    # The system trust store, or only the CAs of `root_cert` (libpq's sslrootcert).
    context = ssl.create_default_context(cafile=root_cert)
    if mode is SslMode.REQUIRE:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _connect_args(settings: Settings) -> dict[str, Any]:
    if make_url(settings.url).get_backend_name() != "postgresql":
        return {"timeout": settings.db_connect_timeout}  # sqlite3's busy timeout
    return {
        # Both caches off: behind a transaction-pooling proxy (RDS Proxy, pgbouncer) a
        # named prepared statement may live on another server connection.
        "statement_cache_size": 0,
        "prepared_statement_cache_size": 0,
        "timeout": settings.db_connect_timeout,
        # Client-side statement timeout: asyncpg cancels the query. Startup parameters
        # such as statement_timeout are refused by poolers, so none are sent.
        "command_timeout": settings.db_statement_timeout,
        "ssl": _ssl_context(settings.db_ssl, settings.db_ssl_root_cert),
    }


def terminate_abandoned_connections(engine: AsyncEngine) -> None:
    """A connection given up on (timed out, cut, cancelled) is aborted, not closed politely.

    SQLAlchemy invalidates such a connection and then closes it gracefully, waiting up to
    2 s for the server's goodbye (sqlalchemy.connectors.asyncio, `_terminate_graceful_close`):
    on a silent network that wait is pure delay, and past a Lambda deadline it is fatal.
    """

    @event.listens_for(engine.sync_engine, "handle_error")
    def _abandon_unavailable(context: Any) -> None:
        # A statement timeout leaves the connection open mid-query: no longer usable. (Not
        # for a pool's pre-ping, where a "disconnect" means trying a new connection within
        # the same request; its failure discards the connection anyway.)
        if not context.is_pre_ping and is_db_unavailable(context.original_exception):
            context.is_disconnect = True

    @event.listens_for(engine.sync_engine, "invalidate")
    def _terminate(dbapi_connection: Any, connection_record: Any, exception: Any) -> None:
        terminate = getattr(dbapi_connection.driver_connection, "terminate", None)
        if terminate is not None:  # asyncpg: abort the socket now
            terminate()


def create_engine(
    settings: Settings, source: credentials.CredentialSource | None = None
) -> AsyncEngine:
    pool_args: dict[str, Any] = (
        {"poolclass": NullPool}
        if settings.use_nullpool
        # A long-lived local server: check a pooled connection before use, so the first
        # request after a database restart does not fail on a dead socket.
        else {"pool_size": settings.db_pool_size, "pool_pre_ping": True, "pool_recycle": 300}
    )
    engine = create_async_engine(
        settings.url,
        connect_args=_connect_args(settings),
        echo=settings.db_echo,
        # Autocommit from the first connection on: even the dialect's one-time setup
        # queries then run without a BEGIN/ROLLBACK pair. Migrations ask for a transaction.
        isolation_level="AUTOCOMMIT",
        # Errors and echo show statements without their values: those are user data.
        hide_parameters=True,
        **pool_args,
    )
    terminate_abandoned_connections(engine)
    password_source = source or credentials.source_for(settings)

    @event.listens_for(engine.sync_engine, "do_connect")
    def _supply_credentials(
        dialect: Any, conn_rec: Any, cargs: tuple[Any, ...], cparams: dict[str, Any]
    ) -> Any:
        started = time.perf_counter()
        try:
            return password_source.connect(dialect, cargs, cparams)
        finally:
            record_db_connect((time.perf_counter() - started) * 1000)

    return engine


class Database:
    """What one process keeps: its credentials (built at once, cheap) and the engine and
    session factory built from them on first use (nothing connects until a request)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.credentials = credentials.source_for(settings)

    @cached_property
    def engine(self) -> AsyncEngine:
        return create_engine(self.settings, self.credentials)

    @cached_property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        return async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def has_engine(self) -> bool:
        return "engine" in vars(self)


@cache
def database() -> Database:
    """The process's one Database, from the current settings; dispose_engine() forgets it."""
    return Database(get_settings())


def get_engine() -> AsyncEngine:
    return database().engine


def get_credentials() -> credentials.CredentialSource:
    return database().credentials


async def session_scope() -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: one session per request, closed when the response is sent."""
    async with database().sessionmaker() as session:
        yield session


async def dispose_engine() -> None:
    """Close pooled connections and forget engine and credentials (tests, settings changes):
    the next use builds them again from the current settings."""
    if database.cache_info().currsize and database().has_engine:
        await database().engine.dispose()
    database.cache_clear()
