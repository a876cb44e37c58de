"""Schemathesis over the OpenAPI document: in-process against the ASGI app and through the
Lambda handler with generated API Gateway events. Zero server errors, zero responses that
break the schema, zero undocumented status codes or content types.

`make test` runs a bounded number of examples per operation (FUZZ_EXAMPLES, default 25);
`make fuzz` runs many more.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from devtools.lambda_runner import LambdaRunner
from devtools.lambda_server import LambdaGateway
from tests.support.serving import Configure
from users_api.app import app

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Every operation of the document (it does not depend on the settings).
OPERATIONS = [
    (method.upper(), path) for path, methods in app.openapi()["paths"].items() for method in methods
]


@pytest.fixture(params=["asgi", "lambda"])
def api_schema(request: pytest.FixtureRequest, clean_sqlite: str, configure: Configure) -> Any:
    if request.param == "asgi":
        configure(DATABASE_URL=clean_sqlite, AWS_LAMBDA_FUNCTION_NAME=None)
        from users_api.app import create_app

        app: Any = create_app()
    else:
        configure(DATABASE_URL=clean_sqlite, AWS_LAMBDA_FUNCTION_NAME="UsersApiFunction")
        from users_api.handler import handler

        app = LambdaGateway(LambdaRunner(handler))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_operation_honours_its_schema(api_schema: Any, method: str, path: str) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=os.environ.get("FUZZ_RANDOM") is None,
        database=None,
    )
    def fuzz(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=CHECKS)

    fuzz()
