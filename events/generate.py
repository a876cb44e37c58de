#!/usr/bin/env python3
"""Write the Lambda test events under events/ from the raw samples in events/templates/.

Templates (kept byte for byte as produced; tests/test_events.py checks them against sam):
  templates/http-api-proxy.json  `sam local generate-event apigateway http-api-proxy` (payload 2.0)
  templates/aws-proxy.json       `sam local generate-event apigateway aws-proxy` (REST, payload 1.0)
  templates/function-url.json    a Lambda function URL request (payload 2.0) in the shape the
                                 Lambda developer guide documents ("Invoking Lambda function
                                 URLs"): SAM CLI has no generator for it. Lambda fills
                                 `routeKey` and `requestContext.stage` with the `$default`
                                 placeholder and `pathParameters`/`stageVariables` with null.

Output: <out>/http-api/<route>.json, <out>/rest-api/<route>.json, <out>/function-url/<route>.json.
Each event keeps its template's key structure: only values change, and the keys inside
headers, multiValueHeaders, pathParameters, queryStringParameters,
multiValueQueryStringParameters and stageVariables. A field the request does not have
(no body, no query, no path parameters) is null, as API Gateway sends it in payload 1.0.

HTTP API events name their route (`routeKey` "GET /users/{id}" with pathParameters {"id": "1"});
REST API events name their resource the same way (`resource` "/users/{id}"). Mangum reads only
the method, path, query, headers and body, so a `$default` or `{proxy+}` API behaves the same.

Deterministic (no clock, no randomness: request ids are UUIDv5 of the output file name), stdlib
only. Usage: python events/generate.py [--out DIR]   (default: the folder of this script)
"""

from __future__ import annotations

import argparse
import copy
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"

HTTP_API = "http-api"
REST_API = "rest-api"
FUNCTION_URL = "function-url"
TEMPLATE_FILES = {
    HTTP_API: "http-api-proxy.json",
    REST_API: "aws-proxy.json",
    FUNCTION_URL: "function-url.json",
}
REST_STAGE = "prod"
HTTP_STAGE = "$default"  # HTTP API default stage; also Lambda's placeholder for function URLs
REQUEST_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "users-api:events")

Event = dict[str, Any]


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    resource: str  # the route template, e.g. /users/{id}
    path_params: tuple[tuple[str, str], ...] = ()
    query: tuple[tuple[str, str], ...] = ()
    body: Any = None  # JSON-serialisable, sent as a JSON string
    accept: str = "application/json"

    @property
    def path(self) -> str:
        return self.resource.format_map(dict(self.path_params))

    @property
    def body_text(self) -> str | None:
        return None if self.body is None else json.dumps(self.body, separators=(",", ":"))


ROUTES: tuple[Route, ...] = (
    Route("health", "GET", "/health"),
    Route("openapi", "GET", "/openapi.json"),
    Route("docs", "GET", "/docs", accept="text/html"),
    Route(
        "create_user", "POST", "/users", body={"name": "Ada Lovelace", "email": "ada@example.com"}
    ),
    Route("list_users", "GET", "/users", query=(("limit", "2"), ("after_id", "0"))),
    Route("get_user", "GET", "/users/{id}", path_params=(("id", "1"),)),
    Route(
        "update_user", "PATCH", "/users/{id}", path_params=(("id", "1"),), body={"name": "Ada King"}
    ),
    Route("delete_user", "DELETE", "/users/{id}", path_params=(("id", "1"),)),
    Route("not_found", "GET", "/users/{id}", path_params=(("id", "999999"),)),
    Route("invalid_body", "POST", "/users", body={"name": "", "email": "not-an-email"}),
)


def request_id(kind: str, route: Route) -> str:
    return str(uuid.uuid5(REQUEST_ID_NAMESPACE, f"{kind}/{route.name}"))


def _content_headers(route: Route, *, title_case: bool) -> dict[str, str]:
    text = route.body_text
    if text is None:
        return {}
    headers = {"content-length": str(len(text.encode())), "content-type": "application/json"}
    if title_case:
        return {"-".join(p.capitalize() for p in k.split("-")): v for k, v in headers.items()}
    return headers


def payload_v2_event(template: Event, route: Route, kind: str) -> Event:
    """HTTP API (payload 2.0) or function URL event: same schema, different placeholders."""
    event = copy.deepcopy(template)
    context = event["requestContext"]
    route_key = "$default" if kind == FUNCTION_URL else f"{route.method} {route.resource}"
    query = dict(route.query)

    event["routeKey"] = route_key
    event["rawPath"] = route.path
    event["rawQueryString"] = urlencode(route.query)
    event["cookies"] = []
    # Both front doors lower-case header names in payload 2.0.
    event["headers"] = {
        "accept": route.accept,
        **_content_headers(route, title_case=False),
        "host": context["domainName"],
        "user-agent": context["http"]["userAgent"],
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    event["queryStringParameters"] = query or None
    context["http"]["method"] = route.method
    context["http"]["path"] = route.path
    context["requestId"] = request_id(kind, route)
    context["routeKey"] = route_key
    context["stage"] = HTTP_STAGE
    event["body"] = route.body_text
    # Function URLs have no routes, hence no path parameters.
    event["pathParameters"] = (dict(route.path_params) or None) if kind == HTTP_API else None
    event["isBase64Encoded"] = False
    event["stageVariables"] = None
    return event


def rest_api_event(template: Event, route: Route) -> Event:
    """REST API (payload 1.0) event: `path` without the stage, `requestContext.path` with it."""
    event = copy.deepcopy(template)
    context = event["requestContext"]
    multi_query: dict[str, list[str]] = {}
    for key, value in route.query:
        multi_query.setdefault(key, []).append(value)

    headers = dict(template["headers"])
    headers["Accept"] = route.accept
    headers.update(_content_headers(route, title_case=True))
    headers = dict(sorted(headers.items(), key=lambda item: item[0].lower()))

    event["body"] = route.body_text
    event["resource"] = route.resource
    event["path"] = route.path
    event["httpMethod"] = route.method
    event["isBase64Encoded"] = False
    event["queryStringParameters"] = {k: v[-1] for k, v in multi_query.items()} or None
    event["multiValueQueryStringParameters"] = multi_query or None
    event["pathParameters"] = dict(route.path_params) or None
    event["stageVariables"] = None
    event["headers"] = headers
    event["multiValueHeaders"] = {key: [value] for key, value in headers.items()}
    context["stage"] = REST_STAGE
    context["requestId"] = request_id(REST_API, route)
    context["path"] = f"/{REST_STAGE}{route.path}"
    context["resourcePath"] = route.resource
    context["httpMethod"] = route.method
    return event


def load_templates(folder: Path = TEMPLATES) -> dict[str, Event]:
    return {
        kind: json.loads((folder / name).read_text(encoding="utf-8"))
        for kind, name in TEMPLATE_FILES.items()
    }


def build_events(templates: dict[str, Event]) -> dict[str, Event]:
    """Every event, keyed by its path relative to the output folder."""
    events: dict[str, Event] = {}
    for route in ROUTES:
        events[f"{HTTP_API}/{route.name}.json"] = payload_v2_event(
            templates[HTTP_API], route, HTTP_API
        )
        events[f"{REST_API}/{route.name}.json"] = rest_api_event(templates[REST_API], route)
        events[f"{FUNCTION_URL}/{route.name}.json"] = payload_v2_event(
            templates[FUNCTION_URL], route, FUNCTION_URL
        )
    return events


def render(event: Event) -> str:
    return json.dumps(event, indent=2, ensure_ascii=False) + "\n"


def write_events(out: Path) -> list[Path]:
    written = []
    for relative, event in build_events(load_templates()).items():
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render(event), encoding="utf-8", newline="\n")
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=HERE, help="output folder (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    written = write_events(args.out)
    print(f"wrote {len(written)} events under {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
