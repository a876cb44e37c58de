"""Smoke test of a running users API, run after every deploy.

    python -m devtools.smoke https://abc123.execute-api.eu-west-1.amazonaws.com/
    python -m devtools.smoke --outputs-file outputs-dev.json  # the ApiUrl `cdk deploy` wrote
    SMOKE_TOKEN=... SMOKE_READ_TOKEN=... python -m devtools.smoke URL

It walks one user through its life: health, create (a unique email), read, list (finds it),
update (`updated_at` advances), create again with the email in upper case (409), delete, read
(404); one timed line per step. Exit 0 when every step passed; 1 when one failed (the rest
are skipped: each builds on the one before); 2 for bad arguments. Whatever it created is
deleted again (`CLEAN`), even after a failure; a user it could not delete (`LEFT`) fails it.

Without a token, against an API whose writes need one (401), it checks health and that the
write is refused (`AUTH`), skips the rest and exits 0 (1 with --require-writes). A read-only
token adds a step after health: that token lists users (200) and is refused a write (403).

Standard library only: it runs in a pipeline's post-deploy step, or on any machine with
Python 3.11+, with nothing to install. Redirects are not followed: the API never sends one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

STEPS = (
    "health",
    "create user",
    "read user",
    "list users",
    "update user",
    "duplicate email 409",
    "delete user",
    "read deleted 404",
)
READ_ONLY_STEP = "read-only cannot write"


class StepFailed(Exception):
    """A check did not hold; the message says what was expected and what came back."""


class WritesNeedToken(StepFailed):
    """No token was given and the API refused a write with 401, as it should."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise StepFailed(message)


@dataclass(frozen=True)
class Response:
    request: str  # "METHOD /path"
    status: int
    headers: Message
    body: bytes

    def json(self, status: int) -> Any:
        """The JSON body, once the status is the `status` expected."""
        text = self.body.decode("utf-8", errors="replace").strip()
        excerpt = text if len(text) <= 200 else text[:200] + "..."
        request_id = self.headers.get("x-request-id")
        got = f"got {self.status}" + (f" (x-request-id {request_id})" if request_id else "")
        check(self.status == status, f"{self.request}: expected {status}, {got}: {excerpt}")
        try:
            return json.loads(self.body)
        except ValueError:
            raise StepFailed(f"{self.request}: the body is not JSON: {excerpt}") from None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: object, **_kwargs: object) -> None:
        return None  # the 3xx comes back as an HTTPError, reported as it is


@dataclass(frozen=True)
class Client:
    """JSON requests to one base URL (`https://host[/stage]`), with an optional Bearer token."""

    base_url: str
    token: str | None
    timeout_s: float
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    _opener = urllib.request.build_opener(_NoRedirects)  # one for every client

    def request(self, method: str, path: str, body: object = None) -> Response:
        what = f"{method} {path}"
        headers = {
            "accept": "application/json",
            "user-agent": "users-api-smoke/1",
            # Served directly the API echoes it; through API Gateway its own id wins.
            "x-request-id": f"smoke-{self.run_id}-{uuid.uuid4().hex[:8]}",
        }
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        if body is not None:
            headers["content-type"] = "application/json"
        data = None if body is None else json.dumps(body).encode()
        url = self.base_url + path  # its scheme is checked in parse_args
        request = urllib.request.Request(url, data, headers, method=method)  # noqa: S310
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                return Response(what, response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            with error:
                return Response(what, error.code, error.headers, error.read())
        except urllib.error.URLError as error:
            raise StepFailed(f"{what}: {error.reason}") from None
        except OSError as error:  # a timeout or a reset while reading the response
            raise StepFailed(f"{what}: {error or type(error).__name__}") from None


def parse_time(value: object) -> datetime:
    try:
        parsed = datetime.fromisoformat(value if isinstance(value, str) else "")
    except ValueError:
        raise StepFailed(f"not an RFC 3339 timestamp: {value!r}") from None
    check(parsed.tzinfo is not None, f"timestamp without a timezone: {value!r}")
    return parsed


def check_user(user: object, what: str, **expected: object) -> dict[str, Any]:
    fields = {"id", "name", "email", "created_at", "updated_at"}
    if not isinstance(user, dict):
        raise StepFailed(f"{what}: expected a user object, got {user!r}")
    check(set(user) == fields, f"{what}: expected the fields {sorted(fields)}, got {sorted(user)}")
    check(isinstance(user["id"], int) and user["id"] >= 1, f"{what}: bad id {user['id']!r}")
    parse_time(user["created_at"])
    parse_time(user["updated_at"])
    for key, value in expected.items():
        check(user[key] == value, f"{what}: {key} is {user[key]!r}, expected {value!r}")
    return user


@dataclass
class Report:
    """Prints one line per step (and per clean-up) as it ends; remembers each one's status."""

    statuses: dict[str, str] = field(default_factory=dict)

    def record(self, status: str, name: str, started: float | None, detail: str = "") -> None:
        ms = "-   " if started is None else f"{(time.perf_counter() - started) * 1000:.0f} ms"
        self.statuses[name] = status
        print(f"{status:<5} {name:<22} {ms:>9}  {detail}".rstrip(), flush=True)

    @contextmanager
    def step(self, name: str, passed: str = "PASS", failed: str = "FAIL") -> Iterator[None]:
        """Times the block: `passed` unless it raises (`failed`, or AUTH for WritesNeedToken)."""
        started = time.perf_counter()
        try:
            yield
        except WritesNeedToken as refused:
            self.record("AUTH", name, started, str(refused))
            raise
        except StepFailed as failure:
            self.record(failed, name, started, str(failure))
            raise
        except Exception as error:
            detail = f"{type(error).__name__}: {error}"
            self.record(failed, name, started, detail)
            raise StepFailed(detail) from error
        self.record(passed, name, started)


def main(argv: list[str] | None = None) -> int:
    """Run every step, then the clean-up; return the exit code."""
    args = parse_args(argv)
    client = Client(args.url.rstrip("/"), args.token, args.timeout)
    steps = (STEPS[0], READ_ONLY_STEP, *STEPS[1:]) if args.read_token else STEPS
    report = Report()
    created: list[int] = []  # ids this run created and has not deleted yet
    started = time.perf_counter()
    try:
        _steps(client, args.read_token, report, created)
    except StepFailed:
        pass  # its step reported it, and each later step builds on it
    finally:
        for name in [step for step in steps if step not in report.statuses]:
            report.record("SKIP", name, None)
        _clean_up(client, report, created)
    against = f"against {client.base_url} ({(time.perf_counter() - started) * 1000:.0f} ms)"
    failed = [name for name, status in report.statuses.items() if status in ("FAIL", "LEFT")]
    if failed:
        print(f"FAILED {', '.join(failed)} {against}")
        return 1
    if report.statuses.get("create user") == "AUTH":
        verdict = "FAILED" if args.require_writes else "OK    "
        print(
            f"{verdict} healthy; writes need a token (401 without one): pass --token or "
            f"$SMOKE_TOKEN to run the write steps {against}"
        )
        return int(args.require_writes)
    print(f"OK     {len(steps)} steps passed {against}")
    return 0


def _steps(client: Client, read_token: str | None, report: Report, created: list[int]) -> None:
    email, name = f"smoke-{client.run_id}@example.com", f"Smoke Test {client.run_id}"
    with report.step("health"):
        response = client.request("GET", "/health")
        body = response.json(200)
        check(body.get("status") == "ok", f"GET /health: status is not ok: {body!r}")
        check("x-request-id" in response.headers, "GET /health: no x-request-id header")

    if read_token:
        with report.step(READ_ONLY_STEP):
            reader = replace(client, token=read_token)
            reader.request("GET", "/users?limit=1").json(200)
            refused = reader.request("POST", "/users", {"name": name, "email": f"reader-{email}"})
            remember_created(refused, created)  # a 201 here is a hole, and a user to delete
            refused.json(403)

    with report.step("create user"):
        response = client.request("POST", "/users", {"name": name, "email": email})
        if response.status == 401 and not client.token:
            raise WritesNeedToken("POST /users: 401 without a token, as it should be")
        remember_created(response, created)
        user = check_user(response.json(201), "POST /users", name=name, email=email)
        user_id, location = user["id"], response.headers.get("location", "")
        want = f"/users/{user_id}"
        check(location.endswith(want), f"POST /users: Location {location!r} does not name {want}")

    with report.step("read user"):
        read = client.request("GET", f"/users/{user_id}").json(200)
        check(read == user, f"GET /users/{user_id}: {read!r} differs from the created {user!r}")

    with report.step("list users"):
        path = f"/users?limit=100&after_id={user_id - 1}"
        listed = client.request("GET", path).json(200)
        check(isinstance(listed, list), f"GET {path}: expected a list, got {listed!r}")
        ids = [u.get("id") for u in listed if isinstance(u, dict)]
        check(ids == sorted(ids), f"GET {path}: ids not in ascending order: {ids}")
        check(bool(ids) and ids[0] == user_id, f"GET {path}: user {user_id} not first in {ids}")
        check(listed[0] == user, f"GET {path}: {listed[0]!r} differs from {user!r}")

    with report.step("update user"):
        new_name = f"{name} (updated)"
        patched = client.request("PATCH", f"/users/{user_id}", {"name": new_name}).json(200)
        same = {"email": email, "created_at": user["created_at"]}
        updated = check_user(patched, "PATCH", name=new_name, **same)
        before, after = user["updated_at"], updated["updated_at"]
        advanced = parse_time(after) > parse_time(before)
        check(advanced, f"PATCH: updated_at did not advance ({before} -> {after})")

    with report.step("duplicate email 409"):
        # The same address in another case: emails are unique case-insensitively.
        duplicate = client.request("POST", "/users", {"name": name, "email": email.upper()})
        remember_created(duplicate, created)  # a 201 here is a bug, and a user to delete
        check("detail" in duplicate.json(409), "POST /users 409: no detail in the body")

    with report.step("delete user"):
        deleted = client.request("DELETE", f"/users/{user_id}").json(200)
        created.remove(user_id)
        check(deleted == {"message": "User deleted"}, f"DELETE: unexpected body {deleted!r}")

    with report.step("read deleted 404"):
        gone = client.request("GET", f"/users/{user_id}").json(404)
        check("detail" in gone, f"GET /users/{user_id} 404: no detail in the body")


def remember_created(response: Response, created: list[int]) -> None:
    """Note the id of a user a 201 created, before anything else is checked."""
    with suppress(ValueError, AttributeError):
        user_id = json.loads(response.body).get("id") if response.status == 201 else None
        if isinstance(user_id, int):
            created.append(user_id)


def _clean_up(client: Client, report: Report, created: list[int]) -> None:
    """Delete every user this run created and did not delete itself (a 404: already gone)."""
    for user_id in created:
        with suppress(StepFailed), report.step(f"delete user {user_id}", "CLEAN", "LEFT"):
            status = client.request("DELETE", f"/users/{user_id}").status
            check(status in (200, 404), f"DELETE /users/{user_id}: {status}, not deleted")


def api_url_from_outputs(path: Path, stack: str | None = None) -> str:
    """The ApiUrl output of `stack`, or of the only stack with one, in a cdk outputs file."""
    try:
        outputs = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read {path}: {error}") from None
    urls = {k: v["ApiUrl"] for k, v in outputs.items() if isinstance(v, dict) and "ApiUrl" in v}
    if stack is None and len(urls) != 1:
        raise ValueError(f"{path}: expected one stack with an ApiUrl, found {sorted(urls)}")
    stack = next(iter(urls)) if stack is None else stack
    if stack not in urls:
        raise ValueError(f"{path}: no ApiUrl output for stack {stack!r} (found {sorted(urls)})")
    return urls[stack]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        "python -m devtools.smoke",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("url", nargs="?", help="base URL of the API, e.g. the stack's ApiUrl")
    add("--outputs-file", type=Path, help="take the URL from this `cdk deploy` outputs file")
    add("--stack", help="with --outputs-file: the stack whose ApiUrl to use")
    add("--token", help="Bearer token sent on every request (default: $SMOKE_TOKEN)")
    add("--read-token", help="read-only token: check it cannot write (default: $SMOKE_READ_TOKEN)")
    parser.set_defaults(
        token=os.environ.get("SMOKE_TOKEN"), read_token=os.environ.get("SMOKE_READ_TOKEN")
    )
    add("--require-writes", action="store_true", help="exit 1 when writes need a missing token")
    add("--timeout", type=float, default=10.0, help="seconds per request (default %(default)g)")
    args = parser.parse_args(argv)
    if (args.url is None) == (args.outputs_file is None):
        parser.error("give either a URL or --outputs-file")
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    try:
        args.url = args.url or api_url_from_outputs(args.outputs_file, args.stack)
    except ValueError as error:
        parser.error(str(error))
    parts = urlsplit(args.url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        parser.error(f"not an http(s) base URL without query or fragment: {args.url!r}")
    return args


if __name__ == "__main__":
    sys.exit(main())
