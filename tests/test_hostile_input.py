"""Generated hostile requests against uvicorn and the Lambda handler (v1 and v2 events), on
SQLite and PostgreSQL: every answer is a documented status with a JSON `detail`, never a
5xx, and each class of edge answers the same on every serving (docs/api-contract.md).

Example counts: FUZZ_EXAMPLES (modest in `make test`, large in `make fuzz`).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.support.hostile import (
    EXAMPLES,
    SERVINGS,
    Raw,
    Send,
    any_text,
    assert_contract_answer,
    bodies,
    content_types,
    header_names,
    header_values,
    path_segments,
)
from tests.support.serving import Configure
from users_api.models import email_key
from users_api.settings import Settings

LIMIT = Settings().max_body_bytes

JSON = (("content-type", "application/json"),)


def post_user(body: dict[str, str]) -> Raw:
    return Raw("POST", "/users", json.dumps(body).encode(), JSON)


fuzz = settings(
    max_examples=EXAMPLES,
    derandomize=os.environ.get("FUZZ_RANDOM") is None,  # `make test` repeats itself
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module", params=list(SERVINGS))
def send(request: pytest.FixtureRequest) -> Iterator[Send]:
    database, serve = SERVINGS[request.param]
    url = request.getfixturevalue("pg_url" if database == "postgres" else "sqlite_url")
    with pytest.MonkeyPatch.context() as monkeypatch:
        configure = Configure(monkeypatch)
        try:
            with serve(url, configure) as sender:
                yield sender
        finally:
            configure.reset()


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate: bytes that are not UTF-8


routes = st.sampled_from(["/users", "/users/1", "/users/9223372036854775807"])


@fuzz
@given(
    method=st.sampled_from(["POST", "PATCH", "PUT", "GET", "DELETE"]),
    path=routes,
    body=bodies,
    content_type=content_types,
    encoding=st.sampled_from([None, None, "identity", "gzip", "br", "x"]),
    chunked=st.booleans(),
)
def test_any_body_gets_a_contract_answer(
    send: Send,
    method: str,
    path: str,
    body: bytes,
    content_type: str | None,
    encoding: str | None,
    chunked: bool,
) -> None:
    headers = [("content-length", str(len(body)))] if body and not chunked else []
    headers += [("content-type", content_type)] if content_type else []
    headers += [("content-encoding", encoding)] if encoding else []
    raw = Raw(method, path, body, tuple(headers), chunked=chunked)
    answer = send(raw)
    assert_contract_answer(raw, answer)
    if encoding not in (None, "identity"):
        assert answer.status == 415


@fuzz
@given(
    method=st.sampled_from(["GET", "HEAD", "POST", "PATCH"]),
    headers=st.lists(st.tuples(header_names, header_values), max_size=6),
    query=st.lists(st.tuples(any_text, any_text), max_size=3),
)
def test_any_header_and_query_values_get_a_contract_answer(
    send: Send, method: str, headers: list[tuple[str, str]], query: list[tuple[str, str]]
) -> None:
    body = json.dumps({"name": "H", "email": f"h{uuid.uuid4().hex}@example.com"}).encode()
    path = "/users" if method != "PATCH" else "/users/1"
    encoded = urlencode([(_bytes(k), _bytes(v)) for k, v in query])
    raw = Raw(method, path, body if method in ("POST", "PATCH") else b"", tuple(headers), encoded)
    assert_contract_answer(raw, send(raw))


@fuzz
@given(
    method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
    segments=st.lists(path_segments, min_size=0, max_size=4),
    prefix=st.sampled_from(["", "/users", "/health", "/openapi.json"]),
    trailing_slash=st.booleans(),
)
def test_odd_paths_get_a_contract_answer_and_no_redirect(
    send: Send, method: str, segments: list[str], prefix: str, trailing_slash: bool
) -> None:
    path = prefix + "".join(f"/{s}" for s in segments) + ("/" if trailing_slash else "")
    raw = Raw(method, path or "/")
    answer = send(raw)
    assert_contract_answer(raw, answer)
    assert not 300 <= answer.status < 400


@fuzz
@given(
    excess=st.integers(1, 64 * 1024),
    declared=st.sampled_from(["exact", "absent", "understated", "zero"]),
    chunked=st.booleans(),
    path=st.sampled_from(["/users", "/users/1", "/health"]),
)
def test_a_body_over_the_limit_is_413_however_it_is_framed(
    send: Send, excess: int, declared: str, chunked: bool, path: str
) -> None:
    body = b" " * (LIMIT + excess)
    length = {"exact": len(body), "understated": LIMIT // 2, "zero": 0}.get(declared)
    headers = [("content-type", "application/json")]
    headers += [("content-length", str(length))] if length is not None else []
    raw = Raw("POST", path, body, tuple(headers), chunked=chunked)
    answer = send(raw)
    assert answer.status == 413, answer.body[:300]
    assert answer.json() == {"detail": "Request body too large"}


# Letters with case: ASCII and beyond, as email-validator accepts them in a local part.
cased_letters = st.characters(categories=["Lu", "Ll", "Lt"], max_codepoint=0x2FFF)


@fuzz
@given(
    local=st.text(cased_letters, min_size=1, max_size=12),
    variant=st.sampled_from(["upper", "lower", "swapcase", "title"]),
)
def test_one_address_in_two_spellings_is_one_user_on_every_backend(
    send: Send, local: str, variant: str
) -> None:
    domain = f"d{uuid.uuid4().hex[:12]}.example.com"
    first = f"{local}@{domain}"
    second = f"{getattr(local, variant)()}@{domain}"
    created = send(post_user({"name": "C", "email": first}))
    assume(created.status == 201)  # email-validator's own rules decide what an address is
    again = send(post_user({"name": "C", "email": second}))
    if again.status == 422:  # the other spelling is not an address of its own
        return
    # The contract's rule (canonical caseless match) decides; the database enforces it.
    if email_key(second) == email_key(created.json()["email"]):
        assert again.status == 409, (first, second, again.body)
    else:
        assert again.status == 201, (first, second, again.body)


@fuzz
@given(
    field=st.sampled_from(["name", "email"]),
    before=st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=8),
    bad=st.sampled_from(["\x00", "\ud800", "\udfff", "\udbff"]),
    method=st.sampled_from(["POST", "PATCH"]),
)
def test_text_no_backend_can_store_is_a_422_naming_the_field(
    send: Send, field: str, before: str, bad: str, method: str
) -> None:
    value = before + bad + ("@example.com" if field == "email" else "")
    valid = {"name": "N", "email": f"n{uuid.uuid4().hex}@example.com"}
    path, body = "/users", {**valid, field: value}
    if method == "PATCH":
        created = send(post_user(valid))
        assert created.status == 201, created.body
        path, body = f"/users/{created.json()['id']}", {field: value}
    raw = Raw(method, path, json.dumps(body).encode(), JSON)
    answer = send(raw)
    assert answer.status == 422, answer.body[:300]
    assert ["body", field] in [problem["loc"] for problem in answer.json()["detail"]]


@fuzz
@given(
    path=st.sampled_from(["/users", "/users/1", "/health", "/openapi.json", "/docs"]),
    query=st.sampled_from(["", "limit=1", "limit=0", "after_id=-1"]),
)
def test_head_answers_like_get_without_a_body(send: Send, path: str, query: str) -> None:
    got = send(Raw("GET", path, query=query))
    head = send(Raw("HEAD", path, query=query))
    assert head.status == got.status
    assert head.body == b""
    assert head.headers.get("content-type") == got.headers.get("content-type")
    if "content-length" in head.headers and path != "/health":  # /health's time varies
        assert head.headers["content-length"] == got.headers["content-length"]
