"""What the Lambda runtime hands a handler, built locally: API Gateway events and a context.

The events have the shape API Gateway sends (HTTP API payload 2.0, REST API payload 1.0),
so a request through these passes the exact code path it takes on Lambda.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterable, Mapping
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
    log_stream_name: str = "local"
    _started: float = field(default_factory=time.monotonic)

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self.timeout_s - (time.monotonic() - self._started)) * 1000), 0)


Headers = Mapping[str, str] | Iterable[tuple[str, str]]  # as pairs, a name may repeat


def _multi(pairs: Headers | None, *, lower: bool = False) -> dict[str, list[str]]:
    """Each name with all its values, in order."""
    multi: dict[str, list[str]] = {}
    for key, value in pairs.items() if isinstance(pairs, Mapping) else pairs or ():
        multi.setdefault(key.lower() if lower else key, []).append(value)
    return multi


def _body_fields(body: bytes) -> dict[str, Any]:
    if not body:
        return {"body": None, "isBase64Encoded": False}
    try:
        return {"body": body.decode("utf-8"), "isBase64Encoded": False}
    except UnicodeDecodeError:
        return {"body": base64.b64encode(body).decode(), "isBase64Encoded": True}


def _now() -> tuple[str, int]:
    now = datetime.now(UTC)
    return now.strftime("%d/%b/%Y:%H:%M:%S +0000"), int(now.timestamp() * 1000)


def http_api_event(
    method: str,
    path: str,
    *,
    query: str = "",
    headers: Headers | None = None,
    body: bytes = b"",
    stage: str | None = None,
    claims: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) proxy event for the `$default` route.

    Repeated headers and query parameters are joined with commas, cookies go to `cookies`.
    `stage`: None for the API's default stage; `claims`: what a JWT authorizer passed on
    after validating the caller's token.
    """
    multi_headers = _multi(headers, lower=True)
    cookie_headers = multi_headers.pop("cookie", [])
    cookies = [c.strip() for v in cookie_headers for c in v.split(";") if c.strip()]
    joined = {k: ",".join(v) for k, v in multi_headers.items()}
    time_text, time_epoch = _now()
    stage = stage or "$default"
    raw_path = path if stage == "$default" else f"/{stage}{path}"
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": joined,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": joined.get("host", f"{API_ID}.execute-api.us-east-1.amazonaws.com"),
            "domainPrefix": API_ID,
            "http": {
                "method": method.upper(),
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": joined.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex[:16] + "=",
            "routeKey": "$default",
            "stage": stage,
            "time": time_text,
            "timeEpoch": time_epoch,
        },
        **_body_fields(body),
    }
    if claims is not None:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    if query_multi := _multi(parse_qsl(query, keep_blank_values=True)):
        event["queryStringParameters"] = {k: ",".join(v) for k, v in query_multi.items()}
    if cookies:
        event["cookies"] = cookies
    return event


def rest_api_event(
    method: str,
    path: str,
    *,
    query: str = "",
    headers: Headers | None = None,
    body: bytes = b"",
    stage: str | None = None,
    claims: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An API Gateway REST API (payload 1.0) proxy event, as for a `/{proxy+}` resource.

    `stage`: None for "prod"; `claims`: what a Cognito user pool authorizer passed on.
    """
    multi_headers = _multi(headers)
    single_headers = {k: v[-1] for k, v in multi_headers.items()}
    multi_query = _multi(parse_qsl(query, keep_blank_values=True))
    time_text, time_epoch = _now()
    stage = stage or "prod"
    event: dict[str, Any] = {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method.upper(),
        "headers": single_headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "resourceId": "abc123",
            "resourcePath": "/{proxy+}",
            "httpMethod": method.upper(),
            "path": f"/{stage}{path}",
            "protocol": "HTTP/1.1",
            "requestId": str(uuid.uuid4()),
            "requestTime": time_text,
            "requestTimeEpoch": time_epoch,
            "stage": stage,
            "identity": {
                "sourceIp": "127.0.0.1",
                "userAgent": single_headers.get("User-Agent", ""),
            },
        },
        **_body_fields(body),
    }
    if claims is not None:
        event["requestContext"]["authorizer"] = {"claims": claims}
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
