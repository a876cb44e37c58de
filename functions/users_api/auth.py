"""Who may read and write: API Gateway validates the JWT and its scopes; the app checks that
it did.

With REQUIRE_AUTH=true every /users operation must arrive through an authorizer (its claims
are in the API Gateway event) and carry the operation's scope: AUTH_READ_SCOPE for reads
(unless AUTH_PUBLIC_READS), AUTH_WRITE_SCOPE for writes. So a route deployed without an
authorizer, or without its `AuthorizationScopes`, by mistake cannot open the API. No claims
is 401 (who are you?); claims without the scope is 403 (you may not), with RFC 6750's
`insufficient_scope` challenge. The bearer scheme is declared so /docs can send a token.

Where the scopes are in the event (the token's `scope` claim, space-separated; `scp` for
issuers such as Microsoft Entra ID):
- HTTP API (payload 2.0) JWT authorizer: `requestContext.authorizer.jwt.scopes` and
  `.jwt.claims.scope`; API Gateway flattens array claims to the string `[a b]`.
- REST API (payload 1.0) Cognito authorizer: `requestContext.authorizer.claims.scope`.
- A Lambda authorizer: whatever context it returns, read the same way.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from users_api.schemas import ErrorDetail
from users_api.settings import Settings, get_settings

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearerAuth",
    description=(
        "A JWT from the stage's issuer; API Gateway's JWT authorizer validates it. Reads need "
        "the read scope (users/read by default), writes the write scope (users/write)."
    ),
)

AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorDetail, "description": "No valid bearer token (auth on)"},
    403: {
        "model": ErrorDetail,
        "description": "The token lacks the scope this operation needs (auth on)",
    },
}

SCOPE_CLAIMS = ("scope", "scp")


class Access(Enum):
    READ = "read"
    WRITE = "write"

    def scope(self, settings: Settings) -> str:
        return settings.auth_read_scope if self is Access.READ else settings.auth_write_scope


def _authorizer(event: dict[str, Any] | None) -> dict[str, Any]:
    return ((event or {}).get("requestContext") or {}).get("authorizer") or {}


def authorizer_claims(event: dict[str, Any] | None) -> dict[str, Any] | None:
    """The claims an API Gateway authorizer attached to the event, if any."""
    authorizer = _authorizer(event)
    claims = (
        (authorizer.get("jwt") or {}).get("claims")  # HTTP API JWT authorizer
        or authorizer.get("claims")  # REST API Cognito authorizer
        or authorizer.get("lambda")  # Lambda authorizer context
    )
    return claims or None


def _words(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(item) for item in value]
    if isinstance(value, str):
        # "a b" (the `scope` claim), or "[a b]" (an array claim flattened by API Gateway).
        return value.strip().removeprefix("[").removesuffix("]").replace(",", " ").split()
    return []


def granted_scopes(event: dict[str, Any] | None) -> frozenset[str]:
    """Every scope the validated token carried, wherever the authorizer put it."""
    scopes = set(_words((_authorizer(event).get("jwt") or {}).get("scopes")))
    claims = authorizer_claims(event) or {}
    for name in SCOPE_CLAIMS:
        scopes.update(_words(claims.get(name)))
    return frozenset(scopes)


def check_access(event: dict[str, Any] | None, access: Access, settings: Settings) -> None:
    """Raise the 401 or 403 this event deserves for `access`; return when it may proceed."""
    if not settings.require_auth or (access is Access.READ and settings.auth_public_reads):
        return
    if authorizer_claims(event) is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Not authenticated",
            headers={"WWW-Authenticate": "Bearer"},
        )
    needed = access.scope(settings)
    if needed not in granted_scopes(event):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"Insufficient scope: this operation needs {needed}",
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{needed}"'},
        )


def _require(access: Access) -> Any:
    async def dependency(
        request: Request,
        _token: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        check_access(request.scope.get("aws.event"), access, get_settings())

    return Depends(dependency)


ReadAccess = _require(Access.READ)
WriteAccess = _require(Access.WRITE)
