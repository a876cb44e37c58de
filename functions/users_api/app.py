"""The FastAPI application: routers, error mapping and the request middleware."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from users_api.db import dispose_engine
from users_api.errors import install_exception_handlers
from users_api.middleware import RequestMiddleware
from users_api.routes import docs, health, users
from users_api.schemas import ErrorDetail
from users_api.security_headers import SecurityHeadersMiddleware
from users_api.settings import Settings, get_settings

# Statuses any route may answer with, documented so clients (and schema fuzzers) know them.
COMMON_RESPONSES: dict[int | str, dict[str, object]] = {
    413: {"model": ErrorDetail, "description": "Request body larger than the limit"},
    415: {"model": ErrorDetail, "description": "Content-Encoding other than identity"},
    503: {"model": ErrorDetail, "description": "Database unavailable"},
}


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Served by uvicorn only (Mangum runs with lifespan="off"): the engine is still built
    # lazily on first use; shutting down returns its pooled connections.
    yield
    await dispose_engine()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="Users API",
        version="1.0.0",
        summary="Create, list, read, update and delete users.",
        lifespan=_lifespan,
        docs_url=None,  # served by routes.docs, without a CDN
        redoc_url=None,
        # No trailing-slash redirects: Starlette builds their target from the Host header
        # and without the stage prefix. `/users/` is a 404 like any unknown path.
        redirect_slashes=False,
    )
    install_exception_handlers(app)
    app.include_router(users.router, responses=COMMON_RESPONSES)
    app.include_router(health.router)
    app.include_router(docs.router)
    app.add_middleware(
        RequestMiddleware,
        max_body_bytes=settings.max_body_bytes,
        root_path=settings.api_root_path,
        routes=app.router.routes,
    )
    app.add_middleware(SecurityHeadersMiddleware)  # outermost: on every response, 413/500 too
    return app


app = create_app()
