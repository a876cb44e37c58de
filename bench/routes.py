"""The benchmarked routes, as API Gateway HTTP API (2.0) events both handlers accept."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from devtools.lambda_runtime import http_api_event

SEEDED_USERS = 300  # ids 1..SEEDED_USERS exist before the benchmark starts
_JSON = {"content-type": "application/json"}


@dataclass(frozen=True)
class Route:
    label: str
    expected_status: int
    event: Callable[[int], dict[str, Any]]  # the i-th event (ids cycle through the seeded users)


def _user_id(i: int) -> int:
    return i % SEEDED_USERS + 1


def _get_one(i: int) -> dict[str, Any]:
    return http_api_event("GET", f"/users/{_user_id(i)}")


def _create(i: int) -> dict[str, Any]:
    body = {"name": "Bench User", "email": f"bench-{uuid.uuid4().hex}@example.com"}
    return http_api_event("POST", "/users", headers=_JSON, body=json.dumps(body).encode())


def _list(i: int) -> dict[str, Any]:
    return http_api_event("GET", "/users", query="limit=50")


def _patch(i: int) -> dict[str, Any]:
    body = json.dumps({"name": f"Renamed {i}"}).encode()
    return http_api_event("PATCH", f"/users/{_user_id(i)}", headers=_JSON, body=body)


GET_ONE = Route("GET /users/{id}", 200, _get_one)  # the cold starts' route
ROUTES = (
    GET_ONE,
    Route("POST /users", 201, _create),
    Route("GET /users?limit=50", 200, _list),
    Route("PATCH /users/{id}", 200, _patch),
)
