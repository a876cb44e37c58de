"""REQUIRE_AUTH: writes need an authorizer's claims in the event; the OpenAPI document
declares the bearer scheme so /docs can send a token."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from devtools.lambda_runtime import LambdaContext, http_api_event, rest_api_event
from tests.support.serving import Configure, ensure_event_loop

CLAIMS = {"sub": "3f1c", "iss": "https://issuer.example/pool", "token_use": "access"}
BODY = b'{"name": "Ada", "email": "ada@example.com"}'
JSON = {"content-type": "application/json"}


@pytest.fixture
def guarded(clean_sqlite: str, configure: Configure):  # type: ignore[no-untyped-def]
    configure(DATABASE_URL=clean_sqlite, REQUIRE_AUTH="true", AWS_LAMBDA_FUNCTION_NAME="fn")
    from users_api.handler import handler

    ensure_event_loop()

    def call(event: dict) -> tuple[int, dict, object]:  # type: ignore[type-arg]
        response = handler(event, LambdaContext())
        headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
        return response["statusCode"], headers, json.loads(response["body"] or "null")

    return call


@pytest.mark.parametrize("make_event", [http_api_event, rest_api_event])
def test_writes_without_claims_get_401_and_reads_stay_open(
    guarded: Callable, make_event: Callable
) -> None:
    status, headers, body = guarded(make_event("POST", "/users", headers=JSON, body=BODY))
    assert status == 401
    assert body == {"detail": "Not authenticated"}
    assert headers["www-authenticate"] == "Bearer"
    for method, path in (("PATCH", "/users/1"), ("DELETE", "/users/1")):
        event = make_event(method, path, headers=JSON, body=b'{"name": "X"}')
        assert guarded(event)[0] == 401
    # A token in the header is not enough: only a validated token (claims) counts.
    forged = make_event(
        "POST", "/users", headers={**JSON, "authorization": "Bearer x.y.z"}, body=BODY
    )
    assert guarded(forged)[0] == 401
    assert guarded(make_event("GET", "/users"))[0] == 200
    assert guarded(make_event("GET", "/health"))[0] == 200


@pytest.mark.parametrize("make_event", [http_api_event, rest_api_event])
def test_writes_with_authorizer_claims_go_through(guarded: Callable, make_event: Callable) -> None:
    status, _, created = guarded(
        make_event("POST", "/users", headers=JSON, body=BODY, claims=CLAIMS)
    )
    assert status == 201
    user_id = created["id"]  # type: ignore[index]
    patch = make_event(
        "PATCH", f"/users/{user_id}", headers=JSON, body=b'{"name": "B"}', claims=CLAIMS
    )
    assert guarded(patch)[0] == 200
    assert guarded(make_event("DELETE", f"/users/{user_id}", claims=CLAIMS))[0] == 200


def test_openapi_declares_the_bearer_scheme_on_writes(guarded: Callable) -> None:
    status, _, spec = guarded(http_api_event("GET", "/openapi.json"))
    assert status == 200
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {  # type: ignore[index]
        "type": "http",
        "scheme": "bearer",
        "description": "A JWT from the stage's issuer; API Gateway's JWT authorizer validates it.",
    }
    paths = spec["paths"]  # type: ignore[index]
    for path, method in (
        ("/users", "post"),
        ("/users/{user_id}", "patch"),
        ("/users/{user_id}", "delete"),
    ):
        assert paths[path][method]["security"] == [{"bearerAuth": []}], (path, method)
        assert "401" in paths[path][method]["responses"]
    assert "security" not in paths["/users"]["get"]
