"""The HTTP contract (docs/api-contract.md), run unchanged against every serving."""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

import pytest

from tests.contract.conftest import Api

MAX_ID = 2**63 - 1


def create(api: Api, name: str = "Ada Lovelace", email: str = "ada@example.com") -> dict[str, Any]:
    response = api.post("/users", json={"name": name, "email": email})
    assert response.status_code == 201, response.text
    return response.json()


def assert_error(response: Any, status: int) -> Any:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    if status == 422:
        assert isinstance(detail, list)
        assert detail
    else:
        assert isinstance(detail, str)
        assert detail
    return detail


def parse_time(value: str) -> datetime:
    # RFC 3339 with a time zone
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value), value
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None
    return parsed


# --- create -------------------------------------------------------------------------------


def test_create_returns_the_user_and_its_location(api: Api) -> None:
    response = api.post("/users", json={"name": "  Ada Lovelace  ", "email": "Ada@Example.COM"})
    assert response.status_code == 201
    user = response.json()
    assert set(user) == {"id", "name", "email", "created_at", "updated_at"}
    assert user["id"] >= 1
    assert user["name"] == "Ada Lovelace"
    assert user["email"] == "Ada@example.com"
    assert parse_time(user["created_at"]) == parse_time(user["updated_at"])
    assert response.headers["location"] == f"/users/{user['id']}"
    assert api.get(response.headers["location"]).json() == user


def test_create_with_taken_email_is_409_whatever_the_case(api: Api) -> None:
    create(api, email="ann@example.com")
    assert_error(api.post("/users", json={"name": "Ann", "email": "ANN@EXAMPLE.com"}), 409)
    assert len(api.get("/users").json()) == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": "Ada"},
        {"email": "ada@example.com"},
        {"name": 123, "email": "ada@example.com"},
        {"name": "Ada", "email": ["ada@example.com"]},
        {"name": "", "email": "ada@example.com"},
        {"name": "   ", "email": "ada@example.com"},
        {"name": "x" * 101, "email": "ada@example.com"},
        {"name": None, "email": "ada@example.com"},
        {"name": "Ada", "email": "not-an-email"},
        {"name": "Ada", "email": "ada@"},
        {"name": "Ada", "email": "ada@example.com", "role": "admin"},
        [],
        "Ada",
        None,
    ],
)
def test_create_rejects_invalid_bodies(api: Api, body: Any) -> None:
    assert_error(api.post("/users", json=body), 422)


def test_create_accepts_a_100_character_name(api: Api) -> None:
    assert create(api, name="x" * 100)["name"] == "x" * 100


@pytest.mark.parametrize(
    "raw", [b"{not json", b"", b'{"name": "Ada", "email": "ada@example.com"', b"\xff\xfe"]
)
def test_create_rejects_bodies_that_are_not_json(api: Api, raw: bytes) -> None:
    response = api.post("/users", content=raw, headers={"content-type": "application/json"})
    assert_error(response, 422)


def test_body_over_one_mebibyte_is_413(api: Api) -> None:
    body = b'{"name": "' + b"x" * (1024 * 1024) + b'", "email": "a@example.com"}'
    response = api.post("/users", content=body, headers={"content-type": "application/json"})
    assert_error(response, 413)
    assert api.get("/users").json() == []


# --- list ---------------------------------------------------------------------------------


def test_list_is_empty_at_first(api: Api) -> None:
    response = api.get("/users")
    assert response.status_code == 200
    assert response.json() == []
    assert "link" not in response.headers


def test_list_pages_by_id_with_a_next_link(api: Api) -> None:
    ids = [create(api, f"User {i}", f"user{i}@example.com")["id"] for i in range(5)]

    first = api.get("/users", params={"limit": 2})
    assert [u["id"] for u in first.json()] == ids[:2]
    assert first.headers["link"] == f'</users?limit=2&after_id={ids[1]}>; rel="next"'

    second = api.get(re.fullmatch(r"<(.+)>; rel=\"next\"", first.headers["link"]).group(1))
    assert [u["id"] for u in second.json()] == ids[2:4]

    last = api.get("/users", params={"limit": 2, "after_id": ids[3]})
    assert [u["id"] for u in last.json()] == ids[4:]
    assert "link" not in last.headers

    assert [u["id"] for u in api.get("/users").json()] == ids  # default limit 50


def test_list_with_exactly_limit_users_has_no_next_link(api: Api) -> None:
    for i in range(2):
        create(api, f"User {i}", f"user{i}@example.com")
    response = api.get("/users", params={"limit": 2})
    assert len(response.json()) == 2
    assert "link" not in response.headers


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"limit": -1},
        {"limit": "abc"},
        {"after_id": -1},
        {"after_id": "x"},
        {"after_id": MAX_ID + 1},
    ],
)
def test_list_rejects_bad_parameters(api: Api, params: dict[str, Any]) -> None:
    assert_error(api.get("/users", params=params), 422)


def test_list_accepts_limit_bounds(api: Api) -> None:
    create(api)
    assert len(api.get("/users", params={"limit": 1}).json()) == 1
    assert len(api.get("/users", params={"limit": 100}).json()) == 1


# --- get ----------------------------------------------------------------------------------


def test_get_returns_the_user(api: Api) -> None:
    user = create(api)
    response = api.get(f"/users/{user['id']}")
    assert response.status_code == 200
    assert response.json() == user


@pytest.mark.parametrize("user_id", [999_999, MAX_ID])
def test_get_unknown_id_is_404(api: Api, user_id: int) -> None:
    assert_error(api.get(f"/users/{user_id}"), 404)


@pytest.mark.parametrize("user_id", ["0", "-1", str(MAX_ID + 1), "abc", "1.5", "1e3"])
def test_get_invalid_id_is_422(api: Api, user_id: str) -> None:
    assert_error(api.get(f"/users/{user_id}"), 422)


# --- update -------------------------------------------------------------------------------


def test_patch_changes_the_given_fields_and_advances_updated_at(api: Api) -> None:
    user = create(api)
    time.sleep(0.01)
    response = api.patch(f"/users/{user['id']}", json={"name": " Ada King "})
    assert response.status_code == 200
    updated = response.json()
    assert updated["name"] == "Ada King"
    assert updated["email"] == user["email"]
    assert updated["created_at"] == user["created_at"]
    assert parse_time(updated["updated_at"]) > parse_time(user["updated_at"])
    assert api.get(f"/users/{user['id']}").json() == updated

    email = api.patch(f"/users/{user['id']}", json={"email": "King@Example.ORG"}).json()
    assert email["email"] == "King@example.org"
    assert email["name"] == "Ada King"


def test_patch_with_empty_body_changes_nothing(api: Api) -> None:
    user = create(api)
    response = api.patch(f"/users/{user['id']}", json={})
    assert response.status_code == 200
    assert response.json() == user


def test_patch_may_keep_its_own_email_in_another_case(api: Api) -> None:
    user = create(api, email="ada@example.com")
    response = api.patch(f"/users/{user['id']}", json={"email": "ADA@example.com"})
    assert response.status_code == 200
    assert response.json()["email"] == "ADA@example.com"


def test_patch_to_a_taken_email_is_409(api: Api) -> None:
    create(api, email="ann@example.com")
    bob = create(api, name="Bob", email="bob@example.com")
    assert_error(api.patch(f"/users/{bob['id']}", json={"email": "Ann@example.com"}), 409)
    assert api.get(f"/users/{bob['id']}").json() == bob


@pytest.mark.parametrize(
    "body",
    [
        {"name": None},
        {"email": None},
        {"name": ""},
        {"name": "x" * 101},
        {"email": "nope"},
        {"nickname": "Ada"},
        ["name"],
    ],
)
def test_patch_rejects_invalid_bodies(api: Api, body: Any) -> None:
    user = create(api)
    assert_error(api.patch(f"/users/{user['id']}", json=body), 422)
    assert api.get(f"/users/{user['id']}").json() == user


def test_patch_unknown_user_is_404(api: Api) -> None:
    assert_error(api.patch("/users/424242", json={"name": "Nobody"}), 404)


def test_patch_invalid_id_is_422(api: Api) -> None:
    assert_error(api.patch("/users/0", json={"name": "Nobody"}), 422)


# --- delete -------------------------------------------------------------------------------


def test_delete_removes_the_user(api: Api) -> None:
    user = create(api)
    response = api.delete(f"/users/{user['id']}")
    assert response.status_code == 200
    assert response.json() == {"message": "User deleted"}
    assert_error(api.get(f"/users/{user['id']}"), 404)
    assert_error(api.delete(f"/users/{user['id']}"), 404)


@pytest.mark.parametrize("user_id", ["0", "-5", "abc", str(MAX_ID + 1)])
def test_delete_invalid_id_is_422(api: Api, user_id: str) -> None:
    assert_error(api.delete(f"/users/{user_id}"), 422)


# --- health, docs, errors -----------------------------------------------------------------


def test_health_reports_the_database(api: Api) -> None:
    response = api.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_openapi_document_and_docs_page(api: Api) -> None:
    document = api.get("/openapi.json")
    assert document.status_code == 200
    spec = document.json()
    assert spec["openapi"].startswith("3.")
    assert {"/users", "/users/{user_id}", "/health"} <= set(spec["paths"])
    docs = api.get("/docs")
    assert docs.status_code == 200
    assert "text/html" in docs.headers["content-type"]
    assert "/openapi.json" in docs.text


def test_unknown_route_is_404_and_wrong_method_is_405(api: Api) -> None:
    assert_error(api.get("/nope"), 404)
    assert_error(api.put("/users/1", json={}), 405)
    assert_error(api.post("/health"), 405)


def test_every_response_carries_a_request_id(api: Api) -> None:
    for response in (api.get("/health"), api.get("/nope"), api.get("/users/abc")):
        assert response.headers.get("x-request-id")


def test_request_id_rules(api: Api) -> None:
    mine = api.get("/health", headers={"x-request-id": "trace-1.2_3"})
    bad = api.get("/health", headers={"x-request-id": "no spaces allowed"})
    long = api.get("/health", headers={"x-request-id": "a" * 129})
    if api.gateway:
        # API Gateway's own id wins (the event's, sent back as apigw-requestid where the
        # gateway says it); the caller's header is ignored.
        assert mine.headers["x-request-id"] != "trace-1.2_3"
        if "apigw-requestid" in mine.headers:
            assert mine.headers["x-request-id"] == mine.headers["apigw-requestid"]
    else:
        assert mine.headers["x-request-id"] == "trace-1.2_3"
    assert bad.headers["x-request-id"] != "no spaces allowed"
    assert long.headers["x-request-id"] != "a" * 129
    assert len({mine.headers["x-request-id"], bad.headers["x-request-id"]}) == 2
