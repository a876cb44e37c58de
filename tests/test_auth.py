"""REQUIRE_AUTH: /users needs an authorizer's claims (401 without) carrying the operation's
scope (403 without), on the Lambda path with HTTP API (2.0) and REST API (1.0) events; the
OpenAPI document declares the bearer scheme and both statuses."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.lambda_runtime import LambdaContext, http_api_event, rest_api_event
from tests.support.serving import Configure, ensure_event_loop

READ, WRITE = "users/read", "users/write"
BODY = b'{"name": "Ada", "email": "ada@example.com"}'
JSON = {"content-type": "application/json"}
Call = Callable[[dict[str, Any]], tuple[int, dict[str, str], Any]]
MakeEvent = Callable[..., dict[str, Any]]
EVENTS = [http_api_event, rest_api_event]


def token(*scopes: str, **extra: Any) -> dict[str, Any]:
    """Claims of a validated Cognito access token with these scopes (`scope` claim)."""
    claims = {"sub": "3f1c", "iss": "https://issuer.example/pool", "token_use": "access"}
    return {**claims, "scope": " ".join(("aws.cognito.signin.user.admin", *scopes)), **extra}


@pytest.fixture
def serve(clean_sqlite: str, configure: Configure) -> Callable[..., Call]:
    """`serve(**env)`: the Lambda handler with REQUIRE_AUTH=true and `env`."""

    def start(**env: str) -> Call:
        configure(
            DATABASE_URL=clean_sqlite,
            REQUIRE_AUTH="true",
            AWS_LAMBDA_FUNCTION_NAME="fn",
            **{"AUTH_PUBLIC_READS": "false", **env},
        )
        from users_api.handler import handler

        ensure_event_loop()

        def call(event: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
            response = handler(event, LambdaContext())
            headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
            body = response["body"] or "null"
            if not headers.get("content-type", "").startswith("application/json"):
                return response["statusCode"], headers, body
            return response["statusCode"], headers, json.loads(body)

        return call

    return start


@pytest.fixture
def guarded(serve: Callable[..., Call]) -> Call:
    return serve()


def operations(make_event: MakeEvent, claims: dict[str, Any] | None) -> dict[str, dict]:  # type: ignore[type-arg]
    """One event per /users operation (reads first), as `make_event` builds them."""
    return {
        "list": make_event("GET", "/users", claims=claims),
        "read": make_event("GET", "/users/1", claims=claims),
        "create": make_event("POST", "/users", headers=JSON, body=BODY, claims=claims),
        "update": make_event("PATCH", "/users/1", headers=JSON, body=b"{}", claims=claims),
        "delete": make_event("DELETE", "/users/1", claims=claims),
    }


@pytest.mark.parametrize("make_event", EVENTS)
def test_no_claims_is_401_on_every_users_operation(guarded: Call, make_event: MakeEvent) -> None:
    for name, event in operations(make_event, None).items():
        status, headers, body = guarded(event)
        assert (status, body) == (401, {"detail": "Not authenticated"}), name
        assert headers["www-authenticate"] == "Bearer"
    # A token in the header is not enough: only a validated token (claims) counts.
    forged = make_event(
        "POST", "/users", headers={**JSON, "authorization": "Bearer x.y.z"}, body=BODY
    )
    assert guarded(forged)[0] == 401
    for path in ("/health", "/openapi.json", "/docs"):
        assert guarded(make_event("GET", path))[0] == 200, path


@pytest.mark.parametrize("make_event", EVENTS)
def test_a_read_only_token_reads_and_cannot_write(guarded: Call, make_event: MakeEvent) -> None:
    for name, event in operations(make_event, token(READ)).items():
        status, headers, body = guarded(event)
        if name in ("list", "read"):
            assert status == (200 if name == "list" else 404), (name, body)
            continue
        assert status == 403, (name, body)
        assert body == {"detail": f"Insufficient scope: this operation needs {WRITE}"}
        assert headers["www-authenticate"] == (
            f'Bearer error="insufficient_scope", scope="{WRITE}"'
        )


@pytest.mark.parametrize("make_event", EVENTS)
def test_a_token_without_the_apis_scopes_is_403_everywhere(
    guarded: Call, make_event: MakeEvent
) -> None:
    # e.g. an ID token, or an access token from before the user joined a group.
    for name, event in operations(make_event, token()).items():
        status, _, body = guarded(event)
        needed = READ if name in ("list", "read") else WRITE
        assert (status, body) == (
            403,
            {"detail": f"Insufficient scope: this operation needs {needed}"},
        )


@pytest.mark.parametrize("make_event", EVENTS)
def test_a_writer_does_everything(guarded: Call, make_event: MakeEvent) -> None:
    writer = token(READ, WRITE)
    status, _, created = guarded(
        make_event("POST", "/users", headers=JSON, body=BODY, claims=writer)
    )
    assert status == 201, created
    user = f"/users/{created['id']}"
    patch = make_event("PATCH", user, headers=JSON, body=b'{"name": "B"}', claims=writer)
    assert guarded(patch)[0] == 200
    assert guarded(make_event("GET", user, claims=writer))[2]["name"] == "B"
    assert guarded(make_event("DELETE", user, claims=writer))[0] == 200
    # The write scope alone does not read: reads need the read scope.
    assert guarded(make_event("GET", "/users", claims=token(WRITE)))[0] == 403


def test_http_api_scopes_list_counts(guarded: Call) -> None:
    """The HTTP API's `authorizer.jwt.scopes` grants, whatever the claims say."""
    event = http_api_event("POST", "/users", headers=JSON, body=BODY, claims={"sub": "x"})
    assert guarded(event)[0] == 403
    event["requestContext"]["authorizer"]["jwt"]["scopes"] = [READ, WRITE]
    assert guarded(event)[0] == 201


def test_public_reads_need_no_token_writes_still_do(serve: Callable[..., Call]) -> None:
    call = serve(AUTH_PUBLIC_READS="true")
    for make_event in EVENTS:
        for name, event in operations(make_event, None).items():
            expected = {"list": 200, "read": 404}.get(name, 401)
            assert call(event)[0] == expected, name
        assert (
            call(make_event("POST", "/users", headers=JSON, body=BODY, claims=token(READ)))[0]
            == 403
        )


def test_an_external_issuers_scope_names_and_scp_claim(serve: Callable[..., Call]) -> None:
    """Entra ID style: scopes in `scp`, an array API Gateway flattens to "[a b]"."""
    call = serve(AUTH_READ_SCOPE="Users.Read", AUTH_WRITE_SCOPE="Users.Write")
    reader = {"sub": "x", "scp": "[Users.Read]"}
    writer = {"sub": "x", "scp": "[Users.Read Users.Write]"}
    assert call(http_api_event("GET", "/users", claims=reader))[0] == 200
    assert call(http_api_event("POST", "/users", headers=JSON, body=BODY, claims=reader))[0] == 403
    assert call(http_api_event("POST", "/users", headers=JSON, body=BODY, claims=writer))[0] == 201
    # The default names mean nothing to this stage.
    cognito_writer = token(READ, WRITE)
    assert call(http_api_event("GET", "/users", claims=cognito_writer))[0] == 403


def test_auth_off_locally_everything_is_open(clean_sqlite: str, configure: Configure) -> None:
    configure(DATABASE_URL=clean_sqlite, REQUIRE_AUTH=None, AWS_LAMBDA_FUNCTION_NAME="fn")
    from users_api.handler import handler

    ensure_event_loop()
    response = handler(http_api_event("POST", "/users", headers=JSON, body=BODY), LambdaContext())
    assert response["statusCode"] == 201


# -- where the scopes are, for any scopes (generated) ---------------------------------------

SCOPE_TOKEN = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters='"\\[],'),
    min_size=1,
    max_size=20,
)


def placements(scopes: list[str]) -> list[dict[str, Any]]:
    """Every place an authorizer may put these scopes, as an event."""
    spaced = " ".join(scopes)
    return [
        {"jwt": {"claims": {"sub": "x"}, "scopes": scopes}},  # HTTP API, scopes list
        {"jwt": {"claims": {"sub": "x", "scope": spaced}, "scopes": None}},  # 2.0, scope claim
        {"jwt": {"claims": {"sub": "x", "scp": f"[{spaced}]"}}},  # 2.0, flattened array
        {"claims": {"sub": "x", "scope": spaced}},  # REST API Cognito authorizer
        {"lambda": {"sub": "x", "scp": scopes}},  # a Lambda authorizer's context
    ]


@given(scopes=st.lists(SCOPE_TOKEN, max_size=6), needed=SCOPE_TOKEN)
@settings(max_examples=200, deadline=None)
def test_granted_exactly_when_the_token_carries_the_scope(scopes: list[str], needed: str) -> None:
    from fastapi import HTTPException

    from users_api.auth import Access, check_access, granted_scopes
    from users_api.settings import Settings

    stage = Settings(require_auth=True, auth_write_scope=needed, auth_read_scope=needed + "r")
    for authorizer in placements(scopes):
        event = {"requestContext": {"authorizer": authorizer}}
        assert granted_scopes(event) == frozenset(scopes), authorizer
        if needed in scopes:
            check_access(event, Access.WRITE, stage)
            continue
        # A prefix, suffix or superstring of the scope does not count.
        with pytest.raises(HTTPException) as refused:
            check_access(event, Access.WRITE, stage)
        assert refused.value.status_code == 403


NOT_CLAIMS = st.text(max_size=8).filter(lambda key: key not in ("jwt", "claims", "lambda"))


@given(
    other=st.dictionaries(NOT_CLAIMS, st.none() | st.text(max_size=20), max_size=4),
    scopes=st.lists(SCOPE_TOKEN, max_size=3),
    empty_claims=st.sampled_from([None, {}]),
)
@settings(max_examples=100, deadline=None)
def test_scopes_without_claims_are_still_401(
    other: dict[str, Any], scopes: list[str], empty_claims: dict[str, Any] | None
) -> None:
    from fastapi import HTTPException

    from users_api.auth import Access, check_access
    from users_api.settings import Settings

    authorizer = {**other, "jwt": {"claims": empty_claims, "scopes": scopes}}
    event = {"requestContext": {"authorizer": authorizer}}
    for access in Access:
        with pytest.raises(HTTPException) as refused:
            check_access(event, access, Settings(require_auth=True, auth_public_reads=False))
        assert refused.value.status_code == 401


# -- the OpenAPI document --------------------------------------------------------------------


def test_openapi_declares_the_bearer_scheme_and_401_403_on_users(guarded: Call) -> None:
    status, _, spec = guarded(http_api_event("GET", "/openapi.json"))
    assert status == 200
    scheme = spec["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert READ in scheme["description"]
    assert WRITE in scheme["description"]
    users_operations = [
        (path, method)
        for path, methods in spec["paths"].items()
        if path.startswith("/users")
        for method in methods
    ]
    assert len(users_operations) == 5
    for path, method in users_operations:
        operation = spec["paths"][path][method]
        assert operation["security"] == [{"bearerAuth": []}], (path, method)
        assert {"401", "403"} <= set(operation["responses"]), (path, method)
        error = operation["responses"]["403"]["content"]["application/json"]["schema"]
        assert error == {"$ref": "#/components/schemas/ErrorDetail"}
    health = spec["paths"]["/health"]["get"]
    assert "security" not in health
    assert not {"401", "403"} & set(health["responses"])
