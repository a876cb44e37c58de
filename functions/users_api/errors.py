"""Domain errors and the mapping of every failure to a JSON error the contract allows."""

from __future__ import annotations

import math
import sys

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
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


def _utf8_safe(text: str) -> str:
    # Surrogate pairs become their character, unpaired halves U+FFFD.
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def json_safe(value: object) -> object:
    """`value` as something strict JSON (RFC 8259, UTF-8) can always carry.

    A validation error echoes the input: NaN and Infinity have no JSON form, a lone
    surrogate no UTF-8 form, and an exception in `ctx` none at all. Nesting is bounded by
    the body decoder (body.MAX_JSON_DEPTH), so the recursion is too.
    """
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return _utf8_safe(value)
    if isinstance(value, dict):
        return {_utf8_safe(str(k)): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return json_safe(str(value))


async def _email_taken(request: Request, exc: Exception) -> JSONResponse:
    return error_response(409, "Email already registered")


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": json_safe(exc.errors())}, status_code=422)


def install_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(EmailTaken, _email_taken)
    app.add_exception_handler(RequestValidationError, _invalid_request)
