"""What the Lambda runtime hands a handler, built locally: API Gateway events and a context.

The events have the shape API Gateway sends (HTTP API payload 2.0, REST API payload 1.0),
so a request through these passes the exact code path it takes on Lambda.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

ACCOUNT_ID = "123456789012"

# Fake credentials and no instance-metadata lookups: whatever runs locally with these can
# sign requests but never authenticate anywhere (tests, benchmarks, local invocations).
FAKE_AWS_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}
# ... and every AWS endpoint on a closed loopback port, no profile files (outside moto).
OFFLINE_AWS = {
    **FAKE_AWS_CREDENTIALS,
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "AWS_CONFIG_FILE": "/dev/null",
}
API_ID = "local"


@dataclass
class LambdaContext:
    """The attributes and methods of the runtime's context object that code relies on."""

    function_name: str = "UsersApiFunction"
    memory_limit_in_mb: int = 512
    timeout_s: float = 10.0
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/UsersApiFunction"
    log_stream_name: str = "local"
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self.timeout_s - (time.monotonic() - self._started)) * 1000), 0)


@dataclass(frozen=True)
class Request:
    """What a client sent, as both payload formats carry it: the one signature of
    `http_api_event(method, path, query=..., headers=..., body=..., ...)` and
    `rest_api_event(...)`."""

    method: str
    path: str
    query: str = ""
    headers: dict[str, str] | None = None
    body: bytes = b""
    request_id: str | None = None
    stage: str | None = None  # None: the API's default stage
    claims: dict[str, Any] | None = None  # what the API's authorizer passed on

    def body_fields(self) -> dict[str, Any]:
        if not self.body:
            return {"body": None, "isBase64Encoded": False}
        try:
            return {"body": self.body.decode("utf-8"), "isBase64Encoded": False}
        except UnicodeDecodeError:
            return {"body": base64.b64encode(self.body).decode(), "isBase64Encoded": True}


def _now() -> tuple[str, int]:
    now = datetime.now(UTC)
    return now.strftime("%d/%b/%Y:%H:%M:%S +0000"), int(now.timestamp() * 1000)


def _event_builder(shape: Callable[[Request], dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """`shape`, called as `builder(method, path, **the other fields of Request)`."""

    def build(method: str, path: str, **fields: Any) -> dict[str, Any]:
        return shape(Request(method.upper(), path, **fields))

    # Not functools.wraps: the builder's signature is its own, not the shape's.
    build.__name__ = build.__qualname__ = shape.__name__
    build.__doc__ = shape.__doc__
    return build


@_event_builder
def http_api_event(request: Request) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) proxy event for the `$default` route.

    `claims`: what a JWT authorizer passed on after validating the caller's token.
    """
    headers = {k.lower(): v for k, v in (request.headers or {}).items()}
    time_text, time_epoch = _now()
    stage = request.stage or "$default"
    raw_path = request.path if stage == "$default" else f"/{stage}{request.path}"
    query_params: dict[str, str] = {}
    for key, value in parse_qsl(request.query, keep_blank_values=True):
        query_params[key] = f"{query_params[key]},{value}" if key in query_params else value
    cookies = [c.strip() for c in headers.pop("cookie", "").split(";") if c.strip()]
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": request.query,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": headers.get("host", f"{API_ID}.execute-api.us-east-1.amazonaws.com"),
            "domainPrefix": API_ID,
            "http": {
                "method": request.method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": request.request_id or uuid.uuid4().hex[:16] + "=",
            "routeKey": "$default",
            "stage": stage,
            "time": time_text,
            "timeEpoch": time_epoch,
        },
        **request.body_fields(),
    }
    if request.claims is not None:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": request.claims, "scopes": None}}
    if query_params:
        event["queryStringParameters"] = query_params
    if cookies:
        event["cookies"] = cookies
    return event


@_event_builder
def rest_api_event(request: Request) -> dict[str, Any]:
    """An API Gateway REST API (payload 1.0) proxy event, as for a `/{proxy+}` resource.

    `claims`: what a Cognito user pool authorizer passed on.
    """
    headers = dict(request.headers or {})
    time_text, time_epoch = _now()
    stage, path = request.stage or "prod", request.path
    multi: dict[str, list[str]] = {}
    for key, value in parse_qsl(request.query, keep_blank_values=True):
        multi.setdefault(key, []).append(value)
    event: dict[str, Any] = {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": request.method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in multi.items()} or None,
        "multiValueQueryStringParameters": multi or None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "resourceId": "abc123",
            "resourcePath": "/{proxy+}",
            "httpMethod": request.method,
            "path": f"/{stage}{path}",
            "protocol": "HTTP/1.1",
            "requestId": request.request_id or str(uuid.uuid4()),
            "requestTime": time_text,
            "requestTimeEpoch": time_epoch,
            "stage": stage,
            "identity": {"sourceIp": "127.0.0.1", "userAgent": headers.get("User-Agent", "")},
        },
        **request.body_fields(),
    }
    if request.claims is not None:
        event["requestContext"]["authorizer"] = {"claims": request.claims}
    return event


def response_body(response: dict[str, Any]) -> bytes:
    """The raw body of a Lambda proxy response."""
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        return base64.b64decode(body)
    return body.encode("utf-8")


def response_headers(response: dict[str, Any]) -> list[tuple[str, str]]:
    """Headers of a proxy response, from `headers`, `multiValueHeaders` and `cookies`."""
    pairs = [(k, v) for k, v in (response.get("headers") or {}).items()]
    for key, values in (response.get("multiValueHeaders") or {}).items():
        pairs.extend((key, v) for v in values)
    pairs.extend(("set-cookie", c) for c in response.get("cookies") or [])
    return pairs
