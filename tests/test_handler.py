"""The Lambda handler: stage prefixes, function URLs, and many invocations in one process."""

from __future__ import annotations

import pytest

from devtools.lambda_runtime import LambdaContext, http_api_event, response_body, rest_api_event
from tests.support.serving import Configure, ensure_event_loop


@pytest.fixture
def prod_stage_handler(clean_sqlite: str, configure: Configure):  # type: ignore[no-untyped-def]
    configure(DATABASE_URL=clean_sqlite, API_ROOT_PATH="/prod", AWS_LAMBDA_FUNCTION_NAME="fn")
    from users_api.handler import build_adapter, instrument
    from users_api.settings import get_settings

    ensure_event_loop()
    return instrument(build_adapter(get_settings()))


@pytest.mark.parametrize("make_event", [rest_api_event, http_api_event])
def test_docs_behind_a_stage_prefix_load_their_openapi_document(
    prod_stage_handler,
    make_event,  # type: ignore[no-untyped-def]
) -> None:
    # REST API: `path` has no stage, requestContext.path has it. HTTP API with a named
    # stage: rawPath has it. Either way /docs must point at /prod/openapi.json.
    docs = prod_stage_handler(make_event("GET", "/docs", stage="prod"), LambdaContext())
    assert docs["statusCode"] == 200
    assert "/prod/openapi.json" in response_body(docs).decode()
    spec = prod_stage_handler(make_event("GET", "/openapi.json", stage="prod"), LambdaContext())
    assert spec["statusCode"] == 200
    created = prod_stage_handler(
        make_event(
            "POST",
            "/users",
            stage="prod",
            headers={"content-type": "application/json"},
            body=b'{"name": "Stage", "email": "stage@example.com"}',
        ),
        LambdaContext(),
    )
    assert created["statusCode"] == 201, created
    headers = {k.lower(): v for k, v in (created.get("headers") or {}).items()}
    assert headers["location"].startswith("/prod/users/")
