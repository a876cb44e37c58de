"""Raw requests, and the servings that take them, for the hostile-input property tests.

A `Raw` request is bytes on the wire as a careless or hostile client would send them: any
body, any header values (a Content-Length that lies, or none), odd path segments. Each
serving sends it its own way: uvicorn in a child process over a loopback socket (a body
sent chunked when asked), or the Lambda handler fed an API Gateway event (payload 2.0 or
1.0) built with exactly the given headers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import strategies as st

from devtools.lambda_runtime import (
    LambdaContext,
    http_api_event,
    response_body,
    response_headers,
    rest_api_event,
)
from tests.support.serving import Configure, ensure_event_loop, uvicorn_client

# `make test` runs a modest number of examples; `make fuzz` many more.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
# Every status the contract (docs/api-contract.md) lets a request get, server errors aside.
DOCUMENTED = {200, 201, 404, 405, 409, 413, 415, 422}
# Headers that frame the request on the wire: the HTTP client sets them for uvicorn.
FRAMING = {"content-length", "transfer-encoding", "host", "connection", "expect"}


@dataclass(frozen=True)
class Raw:
    method: str
    path: str
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    query: str = ""
    chunked: bool = False  # uvicorn: send the body in chunks, without a Content-Length


@dataclass
class Answer:
    status: int
    headers: httpx.Headers
    body: bytes = field(repr=False)

    def json(self) -> Any:
        """The body as strict JSON: UTF-8, no NaN/Infinity (ValueError otherwise)."""

        def reject(name: str) -> Any:
            raise ValueError(f"{name} in a response")

        return json.loads(self.body.decode("utf-8"), parse_constant=reject)


Send = Callable[[Raw], Answer]


def _chunks(body: bytes, size: int = 4096) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


@contextmanager
def over_uvicorn(database_url: str) -> Iterator[Send]:
    with uvicorn_client(database_url) as client:

        def send(raw: Raw) -> Answer:
            # On the wire a value has no surrounding whitespace (RFC 9110 5.5): strip it.
            headers = [
                (k.encode("latin-1"), v.strip(" \t").encode("latin-1"))
                for k, v in raw.headers
                if k.lower() not in FRAMING
            ]
            content = _chunks(raw.body) if raw.chunked else raw.body
            # Absolute: a path may start with "//", which a relative URL cannot.
            url = str(client.base_url).rstrip("/") + raw.path
            url += f"?{raw.query}" if raw.query else ""
            request = client.build_request(raw.method, url, headers=headers, content=content)
            response = client.send(request)
            return Answer(response.status_code, response.headers, response.read())

        yield send


@contextmanager
def over_lambda(
    database_url: str, configure: Configure, build_event: Callable[..., dict[str, Any]]
) -> Iterator[Send]:
    configure(DATABASE_URL=database_url, AWS_LAMBDA_FUNCTION_NAME="UsersApiFunction")
    from users_api.handler import handler

    def send(raw: Raw) -> Answer:
        # The event carries exactly these headers: no Content-Length unless given one.
        headers: dict[str, str] = {}
        for name, value in raw.headers:
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        event = build_event(raw.method, raw.path, query=raw.query, headers=headers, body=raw.body)
        ensure_event_loop()
        result = handler(event, LambdaContext())
        return Answer(
            result["statusCode"],
            httpx.Headers(response_headers(result)),
            response_body(result),
        )

    yield send


Serve = Callable[[str, Configure], AbstractContextManager[Send]]
SERVINGS: dict[str, tuple[str, Serve]] = {
    "uvicorn-sqlite": ("sqlite", lambda url, _configure: over_uvicorn(url)),
    "uvicorn-postgres": ("postgres", lambda url, _configure: over_uvicorn(url)),
    "lambda-httpapi-sqlite": ("sqlite", lambda url, c: over_lambda(url, c, http_api_event)),
    "lambda-httpapi-postgres": ("postgres", lambda url, c: over_lambda(url, c, http_api_event)),
    "lambda-restapi-sqlite": ("sqlite", lambda url, c: over_lambda(url, c, rest_api_event)),
    "lambda-restapi-postgres": ("postgres", lambda url, c: over_lambda(url, c, rest_api_event)),
}


def assert_contract_answer(raw: Raw, answer: Answer) -> None:
    """A documented status; an error is JSON with a `detail`; never a redirect away."""
    assert answer.status in DOCUMENTED, (answer.status, answer.body[:500])
    assert "location" not in answer.headers or answer.status == 201
    if raw.method == "HEAD":
        assert answer.body == b""
        return
    body = answer.json()
    if answer.status >= 400:
        assert isinstance(body, dict), body
        assert "detail" in body, body
    if answer.status == 405:
        allowed = {m.strip() for m in answer.headers["allow"].split(",")}
        assert raw.method not in allowed
        assert {"GET", "HEAD"} <= allowed


# --- generated input ------------------------------------------------------------------------

# Text from the whole code space: unpaired surrogates and control characters included.
any_text = st.text(st.characters(exclude_categories=()), max_size=40)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | any_text
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=12,
)


def _dumps(value: Any, ascii_only: bool) -> bytes:
    # Python writes NaN/Infinity literals and, with ensure_ascii off, raw surrogates (which
    # "surrogatepass" turns into bytes that are not UTF-8): both are what the app must refuse.
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def _nested(depth: int, leaf: str) -> bytes:
    return ("[" * depth + leaf + "]" * depth).encode()


user_like = st.fixed_dictionaries(
    {"name": json_values, "email": json_values},
    optional={"extra": json_values},
)
bodies = st.one_of(
    st.binary(max_size=200),
    st.builds(_dumps, json_values | user_like, st.booleans()),
    st.builds(_nested, st.integers(1, 5000), st.sampled_from(["", "1", '"x"', "NaN"])),
    st.builds(
        lambda depth, name: json.dumps({"name": "[" * depth, "email": name}).encode(),
        st.integers(0, 3),
        any_text,
    ),
    st.sampled_from([b"NaN", b"Infinity", b'{"name": -Infinity}', b"1e999", b'"\\ud800"']),
)
content_types = st.sampled_from(
    [None, "application/json", "application/merge-patch+json", "text/plain", "application/x"]
)
# Header values as API Gateway or an HTTP server can carry them: visible Latin-1.
header_values = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=60,
)
header_names = st.sampled_from(
    [
        "accept",
        "authorization",
        "content-encoding",
        "content-type",
        "cookie",
        "x-request-id",
        "x-forwarded-for",
        "x-amzn-trace-id",
        "user-agent",
        "accept-encoding",
        "content-length",
    ]
)
path_segments = st.text(st.characters(exclude_categories=()), max_size=12).map(
    lambda s: quote(s.encode("utf-8", "surrogatepass"), safe="")
)
