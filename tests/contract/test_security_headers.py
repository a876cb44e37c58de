"""Protective headers on every response of every serving (functions/users_api/security_headers.py):
nosniff, no-store on user data, a short cache for the documentation, a CSP, and HSTS when the
request came through API Gateway."""

from __future__ import annotations

import base64
import hashlib
import re

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.contract.conftest import Api

HSTS = "max-age=31536000; includeSubDomains"


def assert_protective(response: httpx.Response, api: Api) -> None:
    headers = response.headers
    where = f"{response.request.method} {response.request.url.path} -> {response.status_code}"
    assert headers["x-content-type-options"] == "nosniff", where
    assert headers["referrer-policy"] == "no-referrer", where
    assert headers["x-frame-options"] == "DENY", where
    assert "frame-ancestors 'none'" in headers["content-security-policy"], where
    # Through API Gateway (the event in the scope) the transport was HTTPS; served locally
    # over plain http a browser would ignore the header, so it is not sent.
    assert headers.get("strict-transport-security") == (HSTS if api.gateway else None), where


def test_user_data_and_errors_are_never_stored(api: Api) -> None:
    created = api.post("/users", json={"name": "Ada", "email": "ada@example.com"})
    user = f"/users/{created.json()['id']}"
    responses = [
        created,
        api.get("/users"),
        api.get(user),
        api.patch(user, json={"name": "B"}),
        api.post("/users", json={"name": "Ada", "email": "ADA@example.com"}),  # 409
        api.post("/users", content=b"{", headers={"content-type": "application/json"}),  # 422
        api.get("/users/99999999"),  # 404
        api.get("/nowhere"),  # 404 from the router
        api.put("/users"),  # 405
        api.post("/users", content=b"x" * (1024 * 1024 + 1)),  # 413 from the middleware
        api.delete(user),
        api.get("/health"),
    ]
    for response in responses:
        assert response.headers["cache-control"] == "no-store", response.request.url
        assert response.headers["content-security-policy"] == (
            "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
        )
        assert_protective(response, api)
    assert [r.status_code for r in responses] == [
        201, 200, 200, 200, 409, 422, 404, 404, 405, 413, 200, 200,
    ]  # fmt: skip


def test_the_documentation_is_cached_briefly_and_its_pages_allow_their_own_scripts(
    api: Api,
) -> None:
    schema = api.get("/openapi.json")
    assert schema.headers["cache-control"] == "public, max-age=300"
    assert_protective(schema, api)
    for page in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        response = api.get(page)
        assert response.status_code == 200, page
        assert response.headers["cache-control"] == "public, max-age=3600", page
        assert_protective(response, api)
        directives = response.headers["content-security-policy"].split(";")
        csp = dict(d.strip().split(" ", 1) for d in directives)
        assert csp["default-src"] == "'none'"
        assert "'unsafe-inline'" not in csp["script-src"]
        assert "'unsafe-eval'" not in csp["script-src"]
        # Each inline script of the page as sent is allowed by its hash, and nothing else is.
        inline = re.findall(rb"<script>(.*?)</script>", response.content, re.DOTALL)
        assert bool(inline) == (page != "/redoc"), page  # ReDoc's page has none
        hashes = {
            f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
            for script in inline
        }
        allowed = set(csp["script-src"].split())
        assert allowed - hashes == {"'self'"}, page
        assert hashes <= allowed, page
        # Every script and stylesheet the page loads comes from the app itself.
        for url in re.findall(rb'<(?:script src|link[^>]*href)="([^"]+)"', response.content):
            assert url.startswith(b"/"), (page, url)
            assert not url.startswith(b"//"), (page, url)
        assert int(response.headers["content-length"]) == len(response.content)


def test_a_header_the_app_set_itself_wins() -> None:
    """The middleware only fills in what is missing (no duplicate header, no override)."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from users_api.security_headers import SecurityHeadersMiddleware

    def cached(_request: object) -> PlainTextResponse:
        return PlainTextResponse("x", headers={"Cache-Control": "public, max-age=60"})

    app = SecurityHeadersMiddleware(Starlette(routes=[Route("/cached", cached)]))
    response = TestClient(app).get("/cached")
    assert response.headers.get_list("cache-control") == ["public, max-age=60"]
    assert response.headers["x-content-type-options"] == "nosniff"


@given(path=st.from_regex(r"/users(/[A-Za-z0-9%._~-]{0,12}){0,2}", fullmatch=True))
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_any_users_path_is_no_store(api: Api, method: str, path: str) -> None:
    response = api.request(method, path)
    assert response.headers["cache-control"] == "no-store", (method, path, response.status_code)
    assert_protective(response, api)
