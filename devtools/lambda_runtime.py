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
from typing import Any, TypedDict, Unpack
from urllib.parse import parse_qs

ACCOUNT_ID = "123456789012"
API_ID = "local"

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


Event = dict[str, Any]
Headers = Mapping[str, str] | Iterable[tuple[str, str]]  # as pairs, a name may repeat


class RequestFields(TypedDict, total=False):
    """What both event builders take besides the method and the path."""

    query: str  # the raw query string
    headers: Headers | None
    body: bytes
    stage: str | None  # None: the API's default stage
    claims: dict[str, Any] | None  # what the API's authorizer passed on after checking a token


class _Request:
    """The parts of a request both payloads carry, each derived once."""

    def __init__(self, method: str, fields: RequestFields) -> None:
        headers = fields.get("headers") or ()
        self.method = method.upper()
        self.query = fields.get("query", "")
        self.query_lists = parse_qs(self.query, keep_blank_values=True)
        self.header_pairs = list(headers.items() if isinstance(headers, Mapping) else headers)
        self.stage = fields.get("stage")
        self.claims = fields.get("claims")
        now = datetime.now(UTC)
        self.time = now.strftime("%d/%b/%Y:%H:%M:%S +0000")
        self.epoch_ms = int(now.timestamp() * 1000)
        body = fields.get("body") or b""
        try:
            self.body_fields = {"body": body.decode("utf-8") or None, "isBase64Encoded": False}
        except UnicodeDecodeError:
            self.body_fields = {"body": base64.b64encode(body).decode(), "isBase64Encoded": True}


def _lists(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Each name with all its values, in order."""
    lists: dict[str, list[str]] = {}
    for key, value in pairs:
        lists.setdefault(key, []).append(value)
    return lists


def http_api_event(method: str, path: str, **fields: Unpack[RequestFields]) -> Event:
    """An API Gateway HTTP API (payload 2.0) proxy event for the `$default` route.

    Repeated headers and query parameters are joined with commas, cookies go to `cookies`;
    `claims` are a JWT authorizer's.
    """
    request = _Request(method, fields)
    headers = _lists((key.lower(), value) for key, value in request.header_pairs)
    cookies = [c.strip() for v in headers.pop("cookie", []) for c in v.split(";") if c.strip()]
    joined = {key: ",".join(values) for key, values in headers.items()}
    stage = request.stage or "$default"
    raw_path = path if stage == "$default" else f"/{stage}{path}"
    event: Event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": request.query,
        "headers": joined,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": joined.get("host", f"{API_ID}.execute-api.us-east-1.amazonaws.com"),
            "domainPrefix": API_ID,
            "http": {
                "method": request.method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": joined.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex[:16] + "=",
            "routeKey": "$default",
            "stage": stage,
            "time": request.time,
            "timeEpoch": request.epoch_ms,
        },
        **request.body_fields,
    }
    if request.claims is not None:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": request.claims, "scopes": None}}
    if request.query_lists:
        event["queryStringParameters"] = {k: ",".join(v) for k, v in request.query_lists.items()}
    if cookies:
        event["cookies"] = cookies
    return event


def rest_api_event(method: str, path: str, **fields: Unpack[RequestFields]) -> Event:
    """An API Gateway REST API (payload 1.0) proxy event, as for a `/{proxy+}` resource.

    `stage` None is "prod"; `claims` are a Cognito user pool authorizer's.
    """
    request = _Request(method, fields)
    headers = _lists(request.header_pairs)
    last_header = {key: values[-1] for key, values in headers.items()}
    stage = request.stage or "prod"
    event: Event = {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": request.method,
        "headers": last_header,
        "multiValueHeaders": headers,
        "queryStringParameters": {k: v[-1] for k, v in request.query_lists.items()} or None,
        "multiValueQueryStringParameters": request.query_lists or None,
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
            "requestId": str(uuid.uuid4()),
            "requestTime": request.time,
            "requestTimeEpoch": request.epoch_ms,
            "stage": stage,
            "identity": {"sourceIp": "127.0.0.1", "userAgent": last_header.get("User-Agent", "")},
        },
        **request.body_fields,
    }
    if request.claims is not None:
        event["requestContext"]["authorizer"] = {"claims": request.claims}
    return event


def response_body(response: Event) -> bytes:
    """The raw body of a Lambda proxy response."""
    body = response.get("body") or ""
    return base64.b64decode(body) if response.get("isBase64Encoded") else body.encode("utf-8")


def response_headers(response: Event) -> list[tuple[str, str]]:
    """Headers of a proxy response, from `headers`, `multiValueHeaders` and `cookies`."""
    pairs = list((response.get("headers") or {}).items())
    for key, values in (response.get("multiValueHeaders") or {}).items():
        pairs.extend((key, v) for v in values)
    pairs.extend(("set-cookie", c) for c in response.get("cookies") or [])
    return pairs
