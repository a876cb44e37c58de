"""Liveness with a real database round trip."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from users_api import users_repo
from users_api.deps import SessionDep
from users_api.errors import is_db_unavailable
from users_api.observability import logger
from users_api.schemas import Health

router = APIRouter(tags=["health"])

UNAVAILABLE = Health(status="error", database="unavailable")


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "The database is unreachable"}},
)
async def health(session: SessionDep) -> Health | JSONResponse:
    try:
        await users_repo.ping(session)
    except Exception as exc:
        if not is_db_unavailable(exc):
            raise
        logger.warning("health check failed", extra={"error": type(exc).__name__})
        return JSONResponse(UNAVAILABLE.model_dump(), status_code=503)
    return Health(status="ok", database="ok")
