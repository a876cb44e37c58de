"""Domain errors and the mapping of every failure to a JSON error the contract allows."""

from __future__ import annotations

import sys

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc


class EmailTaken(Exception):
    """The email is already registered (case-insensitively)."""


DB_UNAVAILABLE = "Database unavailable"
INTERNAL_ERROR = "Internal Server Error"

# SQLAlchemy wraps DBAPI errors raised on an open connection; errors raised while opening
# one (refused, timed out, TLS, authentication) reach us as the driver's or the OS's own.
_SA_UNAVAILABLE = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError)
_ASYNCPG_UNAVAILABLE = (
    "PostgresConnectionError",  # SQLSTATE class 08
    "CannotConnectNowError",
    "TooManyConnectionsError",
    "InvalidAuthorizationSpecificationError",
    "InterfaceError",
    "QueryCanceledError",  # the statement timeout
)


def is_db_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, (*_SA_UNAVAILABLE, OSError, TimeoutError)):
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if "asyncpg" in sys.modules:
        import asyncpg.exceptions as pg_exc

        bases = tuple(getattr(pg_exc, name) for name in _ASYNCPG_UNAVAILABLE)
        candidate = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
        return isinstance(candidate, bases) or isinstance(
            getattr(candidate, "__cause__", None), bases
        )
    return False


def error_response(status_code: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status_code)


async def _email_taken(request: Request, exc: Exception) -> JSONResponse:
    return error_response(409, "Email already registered")


def install_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(EmailTaken, _email_taken)
