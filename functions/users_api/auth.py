"""Who may write: API Gateway validates the JWT; the app checks that it did.

With REQUIRE_AUTH=true a write must arrive through an authorizer (its claims are in the
API Gateway event), so a route left without an authorizer by mistake cannot open the API.
The bearer scheme is declared so /docs can send a token.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from users_api.schemas import ErrorDetail
from users_api.settings import get_settings

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearerAuth",
    description="A JWT from the stage's issuer; API Gateway's JWT authorizer validates it.",
)

UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorDetail, "description": "Writes need a valid bearer token"}
}


def authorizer_claims(event: dict[str, Any] | None) -> dict[str, Any] | None:
    """The claims an API Gateway authorizer attached to the event, if any."""
    authorizer = ((event or {}).get("requestContext") or {}).get("authorizer") or {}
    claims = (
        (authorizer.get("jwt") or {}).get("claims")  # HTTP API JWT authorizer
        or authorizer.get("claims")  # REST API Cognito authorizer
        or authorizer.get("lambda")  # Lambda authorizer context
    )
    return claims or None


async def require_writer(
    request: Request,
    _token: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    if not get_settings().require_auth:
        return
    if authorizer_claims(request.scope.get("aws.event")) is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Not authenticated",
            headers={"WWW-Authenticate": "Bearer"},
        )


WriteAccess = Depends(require_writer)
