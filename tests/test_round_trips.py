"""Round trips per invocation, counted on the wire (deterministic, unlike timings).

A warm invocation of the project's handler must cost exactly what the bare asyncpg floor
(bench/floor_handler.py) costs for the same route; the first invocation after a cold start
pays for SQLAlchemy's dialect setup on top, within a fixed budget.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

from bench import floor_handler
from devtools.lambda_runtime import LambdaContext, http_api_event
from devtools.tcp_proxy import TcpProxy
from tests.support.serving import Configure, ensure_event_loop

pytestmark = pytest.mark.postgres

# Floor + four dialect setup statements (version, current_schema, isolation level,
# standard_conforming_strings), each prepared and then executed: 4 + 4 x 2.
FIRST_INVOCATION_BUDGET = 12


@pytest.fixture
def counted(clean_pg: str, configure: Configure) -> Iterator[tuple[TcpProxy, str]]:
    target = make_url(clean_pg)
    with TcpProxy(target.host or "127.0.0.1", target.port or 5432) as proxy:
        url = target.set(host="127.0.0.1", port=proxy.port).render_as_string(False)
        configure(DATABASE_URL=url, AWS_LAMBDA_FUNCTION_NAME="UsersApiFunction")
        floor_handler.configure(url)
        ensure_event_loop()
        yield proxy, url


def trips(proxy: TcpProxy, handler, event: dict) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    proxy.reset_counts()
    response = handler(event, LambdaContext())
    assert proxy.connections == 1
    return proxy.round_trips, response


def route_events(user_id: int) -> dict[str, dict]:
    body = json.dumps({"name": "Rt", "email": f"rt{user_id}@example.com"}).encode()
    return {
        "GET /users/{id}": http_api_event("GET", f"/users/{user_id}"),
        "GET /users?limit=50": http_api_event("GET", "/users", query="limit=50"),
        "POST /users": http_api_event(
            "POST", "/users", headers={"content-type": "application/json"}, body=body
        ),
        "PATCH /users/{id}": http_api_event(
            "PATCH",
            f"/users/{user_id}",
            headers={"content-type": "application/json"},
            body=b'{"name": "Patched"}',
        ),
    }


def test_warm_invocations_cost_exactly_the_floors_round_trips(
    counted: tuple[TcpProxy, str],
) -> None:
    from users_api.handler import handler

    proxy, _ = counted
    created = handler(
        http_api_event(
            "POST",
            "/users",
            headers={"content-type": "application/json"},
            body=b'{"name": "Seed", "email": "seed@example.com"}',
        ),
        LambdaContext(),
    )
    user_id = json.loads(created["body"])["id"]
    for route, event in route_events(user_id).items():
        if route == "POST /users":
            floor_event = {**event, "body": event["body"].replace("rt", "floor")}
        else:
            floor_event = event
        floor_trips, floor_response = trips(proxy, floor_handler.handler, floor_event)
        project_trips, project_response = trips(proxy, handler, event)
        assert project_response["statusCode"] == floor_response["statusCode"] < 300, route
        assert project_trips == floor_trips, route


def test_the_first_invocation_stays_within_its_budget(counted: tuple[TcpProxy, str]) -> None:
    from users_api.handler import handler

    proxy, _ = counted
    first, response = trips(proxy, handler, http_api_event("GET", "/users/1"))
    assert response["statusCode"] == 404
    floor, _ = trips(proxy, floor_handler.handler, http_api_event("GET", "/users/1"))
    second, _ = trips(proxy, handler, http_api_event("GET", "/users/1"))
    assert second == floor
    assert first <= FIRST_INVOCATION_BUDGET, (first, floor)
