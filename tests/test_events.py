"""The Lambda test events in events/: shape, internal consistency, and provenance.

Every event is written by events/generate.py from the raw SAM CLI samples in events/templates/;
these tests check that the committed files are exactly what the script writes, that each keeps
its template's key structure, that its method and path fields agree, and (with the SAM CLI
virtualenv present) that the stored templates are still what `sam local generate-event` prints.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

from tests.support.processes import run
from tests.support.sam import SAM, sam_env

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
TEMPLATES = EVENTS / "templates"
GENERATOR = EVENTS / "generate.py"

KINDS = {
    # folder: (template file, payload version)
    "http-api": ("http-api-proxy.json", "2.0"),
    "rest-api": ("aws-proxy.json", "1.0"),
    "function-url": ("function-url.json", "2.0"),
}
ROUTES = {
    # name: (method, route template, path, query, body)
    "health": ("GET", "/health", "/health", {}, None),
    "openapi": ("GET", "/openapi.json", "/openapi.json", {}, None),
    "docs": ("GET", "/docs", "/docs", {}, None),
    "create_user": (
        "POST",
        "/users",
        "/users",
        {},
        {"name": "Ada Lovelace", "email": "ada@example.com"},
    ),
    "list_users": ("GET", "/users", "/users", {"limit": "2", "after_id": "0"}, None),
    "get_user": ("GET", "/users/{id}", "/users/1", {}, None),
    "update_user": ("PATCH", "/users/{id}", "/users/1", {}, {"name": "Ada King"}),
    "delete_user": ("DELETE", "/users/{id}", "/users/1", {}, None),
    "not_found": ("GET", "/users/{id}", "/users/999999", {}, None),
    "invalid_body": ("POST", "/users", "/users", {}, {"name": "", "email": "not-an-email"}),
}
# Maps whose keys are the request's own (header names, parameter names): free to differ.
FREE_MAPS = {
    "headers",
    "multiValueHeaders",
    "pathParameters",
    "queryStringParameters",
    "multiValueQueryStringParameters",
    "stageVariables",
}
REST_STAGE = "prod"


def _event_files() -> list[Path]:
    return sorted(p for kind in KINDS for p in (EVENTS / kind).glob("*.json"))


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _template(kind: str) -> dict[str, Any]:
    return _load(TEMPLATES / KINDS[kind][0])


def _id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


EVENT_FILES = _event_files()


def _shape_problems(template: Any, event: Any, where: str = "$") -> list[str]:
    """Differences in key structure: dict keys must match at every level (except FREE_MAPS)."""
    if isinstance(template, dict):
        if not isinstance(event, dict):
            return [f"{where}: an object in the template, {type(event).__name__} here"]
        problems = []
        if missing := template.keys() - event.keys():
            problems.append(f"{where}: missing {sorted(missing)}")
        if extra := event.keys() - template.keys():
            problems.append(f"{where}: extra {sorted(extra)}")
        for key in template.keys() & event.keys():
            if key in FREE_MAPS:
                problems += _free_map_problems(event[key], f"{where}.{key}")
            else:
                problems += _shape_problems(template[key], event[key], f"{where}.{key}")
        return problems
    if isinstance(template, list):
        if not isinstance(event, list):
            return [f"{where}: a list in the template, {type(event).__name__} here"]
        if template and isinstance(template[0], dict):
            return [
                p
                for i, item in enumerate(event)
                for p in _shape_problems(template[0], item, f"{where}[{i}]")
            ]
        return [f"{where}[{i}]: not a scalar" for i, v in enumerate(event) if _is_container(v)]
    if _is_container(event):
        return [f"{where}: a scalar in the template, {type(event).__name__} here"]
    return []


def _is_container(value: Any) -> bool:
    return isinstance(value, dict | list)


def _free_map_problems(value: Any, where: str) -> list[str]:
    """null, or a map of strings to a string (or, for the multiValue maps, to strings)."""
    if value is None:
        return []
    if not isinstance(value, dict):
        return [f"{where}: neither null nor an object"]
    multi = where.rsplit(".", 1)[-1].startswith("multiValue")
    problems = []
    for key, item in value.items():
        ok = (
            isinstance(item, list) and all(isinstance(v, str) for v in item)
            if multi
            else isinstance(item, str)
        )
        if not ok:
            problems.append(f"{where}.{key}: {item!r}")
    return problems


def test_every_route_has_its_events() -> None:
    assert EVENT_FILES, "no events: run `python events/generate.py`"
    for kind in KINDS:
        assert {p.stem for p in (EVENTS / kind).glob("*.json")} == set(ROUTES), kind


@pytest.mark.parametrize("path", EVENT_FILES, ids=_id)
def test_event_keeps_the_template_structure(path: Path) -> None:
    assert _shape_problems(_template(path.parent.name), _load(path)) == []


@pytest.mark.parametrize("path", EVENT_FILES, ids=_id)
def test_event_fields_agree(path: Path) -> None:
    kind, event = path.parent.name, _load(path)
    method, route, request_path, query, body = ROUTES[path.stem]
    context = event["requestContext"]
    headers = {k.lower(): v for k, v in event["headers"].items()}

    if kind != "function-url":  # function URLs have no routes, so no path parameters
        assert route.format_map(event["pathParameters"] or {}) == request_path
    assert event["isBase64Encoded"] is False
    if body is None:
        assert event["body"] is None
        assert "content-type" not in headers
    else:
        assert json.loads(event["body"]) == body
        assert headers["content-type"] == "application/json"
        assert headers["content-length"] == str(len(event["body"].encode()))

    if KINDS[kind][1] == "2.0":
        assert event["version"] == "2.0"
        assert event["rawPath"] == context["http"]["path"] == request_path
        assert context["http"]["method"] == method
        assert event["routeKey"] == context["routeKey"]
        assert context["stage"] == "$default"
        assert dict(parse_qsl(event["rawQueryString"])) == query
        assert (event["queryStringParameters"] or {}) == query
        assert headers["host"] == context["domainName"]
        if kind == "http-api":
            assert event["routeKey"] == f"{method} {route}"
        else:
            assert event["routeKey"] == "$default"
            assert event["pathParameters"] is None
            assert context["domainName"] == f"{context['domainPrefix']}.lambda-url.us-east-1.on.aws"
    else:
        assert event["httpMethod"] == context["httpMethod"] == method
        assert event["resource"] == context["resourcePath"] == route
        assert event["path"] == request_path
        assert context["stage"] == REST_STAGE
        assert context["path"] == f"/{REST_STAGE}{request_path}"
        assert (event["queryStringParameters"] or {}) == query
        assert (event["multiValueQueryStringParameters"] or {}) == {
            k: [v] for k, v in query.items()
        }
        assert event["multiValueHeaders"] == {k: [v] for k, v in event["headers"].items()}


def test_request_ids_are_unique() -> None:
    ids = [_load(p)["requestContext"]["requestId"] for p in EVENT_FILES]
    assert len(ids) == len(set(ids))


def test_generator_reproduces_the_committed_events(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(GENERATOR), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    generated = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.json")}
    committed = {p.relative_to(EVENTS).as_posix() for p in EVENT_FILES}
    assert generated == committed
    stale = [
        name
        for name in sorted(committed)
        if (tmp_path / name).read_bytes() != (EVENTS / name).read_bytes()
    ]
    assert stale == [], "run `python events/generate.py` and commit the result"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("generator", "template"),
    [("http-api-proxy", "http-api-proxy.json"), ("aws-proxy", "aws-proxy.json")],
)
def test_templates_are_what_sam_generates(generator: str, template: str, tmp_path: Path) -> None:
    if not SAM.exists():
        pytest.skip("SAM CLI not installed: `make .venv-sam/.installed` builds .venv-sam")
    env = sam_env()
    result = run([SAM, "local", "generate-event", "apigateway", generator], cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == _load(TEMPLATES / template)
