"""Smoke test of a running users API: `python -m devtools.smoke URL`.

    python -m devtools.smoke https://abc123.execute-api.eu-west-1.amazonaws.com/
    python -m devtools.smoke --outputs-file outputs-dev.json      # the ApiUrl `cdk deploy` wrote
    SMOKE_TOKEN=... python -m devtools.smoke URL                   # Bearer token, when auth is on
    SMOKE_TOKEN=... SMOKE_READ_TOKEN=... python -m devtools.smoke URL  # + a read-only token

It walks one user through its whole life against the base URL: health, create (with a unique
email), read, list (finds it), update (`updated_at` advances), a second create with the same
email in another case (409), delete, and a read after the delete (404). Each step prints one
line with its timing:

    PASS  create user              41 ms

The exit code is 0 when every step passed, 1 when one failed (the steps after it are
skipped: each builds on the one before), 2 for bad arguments. Without a token, against an
API that requires one for writes (401), the run checks what it can (health, and that the
write is refused), prints `AUTH` for the create step, skips the rest and exits 0, or 1 with
`--require-writes`. Whatever it created is deleted
again in a `finally`, even when a step failed; a user it could not delete is reported by id.

With a read-only token (`--read-token` or $SMOKE_READ_TOKEN: the read scope, not the write
scope), one more step right after health checks the scopes: that token lists users (200)
and is refused a write (403, from API Gateway's scope check or the app's own).

Standard library only (urllib): it runs as is in a pipeline's post-deploy step or on any
machine with Python 3.11+, with nothing to install.
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
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.message import Message
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

DEFAULT_TIMEOUT_S = 10.0
TOKEN_ENV = "SMOKE_TOKEN"  # noqa: S105 - the name of the variable, not a token
READ_TOKEN_ENV = "SMOKE_READ_TOKEN"  # noqa: S105 - the name of the variable, not a token
USER_AGENT = "users-api-smoke/1"
NAME_WIDTH = 22

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
    """A step's check did not hold; the message says what was expected and what came back."""


class WritesNeedToken(Exception):
    """No token was given and the API refused a write with 401: writes are protected."""


@dataclass(frozen=True)
class Response:
    method: str
    path: str
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise StepFailed(f"{self}: the body is not JSON: {self.excerpt()}") from None

    def excerpt(self, limit: int = 200) -> str:
        text = self.body.decode("utf-8", errors="replace").strip()
        return text if len(text) <= limit else text[:limit] + "..."

    def expect(self, status: int) -> Response:
        if self.status != status:
            request_id = self.headers.get("x-request-id")
            where = f" (x-request-id {request_id})" if request_id else ""
            raise StepFailed(
                f"{self}: expected {status}, got {self.status}{where}: {self.excerpt()}"
            )
        return self

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """The API never redirects: a 3xx is reported as it is, not followed."""

    def redirect_request(self, *_args: object, **_kwargs: object) -> None:
        return None


@dataclass
class Client:
    """A minimal JSON client of one base URL (`https://host[/stage]`)."""

    base_url: str
    token: str | None = None
    read_token: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    require_writes: bool = False
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    _count: int = 0

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self._opener = urllib.request.build_opener(_NoRedirects)

    @property
    def steps(self) -> tuple[str, ...]:
        """The steps this client runs: the read-only check only with a read-only token."""
        if self.read_token:
            return (STEPS[0], READ_ONLY_STEP, *STEPS[1:])
        return STEPS

    def reader(self) -> Client:
        """The same client, sending the read-only token."""
        return replace(self, token=self.read_token, read_token=None)

    def request(self, method: str, path: str, body: object = None) -> Response:
        self._count += 1
        headers = {
            "accept": "application/json",
            "user-agent": USER_AGENT,
            # Served directly the API echoes it; through API Gateway its own id wins.
            "x-request-id": f"smoke-{self.run_id}-{self._count}",
        }
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in parse_args
            self.base_url + path, data=data, headers=headers, method=method
        )
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                return Response(method, path, response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            with error:
                return Response(method, path, error.code, error.headers, error.read())
        except urllib.error.URLError as error:
            raise StepFailed(f"{method} {path}: {error.reason}") from None
        except (TimeoutError, OSError) as error:
            raise StepFailed(f"{method} {path}: {error or type(error).__name__}") from None


def parse_time(value: object) -> datetime:
    if not isinstance(value, str):
        raise StepFailed(f"not a timestamp: {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise StepFailed(f"not an RFC 3339 timestamp: {value!r}") from None
    if parsed.tzinfo is None:
        raise StepFailed(f"timestamp without a timezone: {value!r}")
    return parsed


def check(condition: bool, message: str) -> None:
    if not condition:
        raise StepFailed(message)


def check_user(user: object, what: str) -> dict[str, Any]:
    fields = {"id", "name", "email", "created_at", "updated_at"}
    check(isinstance(user, dict), f"{what}: expected a user object, got {user!r}")
    assert isinstance(user, dict)
    check(set(user) == fields, f"{what}: expected the fields {sorted(fields)}, got {sorted(user)}")
    check(isinstance(user["id"], int) and user["id"] >= 1, f"{what}: bad id {user['id']!r}")
    parse_time(user["created_at"])
    parse_time(user["updated_at"])
    return user


@dataclass
class Report:
    """Prints one line per step as it finishes."""

    out: TextIO
    names: tuple[str, ...] = STEPS
    failed: bool = False
    steps: dict[str, str] = field(default_factory=dict)

    def line(self, status: str, name: str, elapsed_ms: float | None, detail: str = "") -> None:
        timing = f"{elapsed_ms:>6.0f} ms" if elapsed_ms is not None else f"{'-':>6}   "
        text = f"{status:<5} {name:<{NAME_WIDTH}} {timing}"
        self.out.write((f"{text}  {detail}" if detail else text).rstrip() + "\n")
        self.out.flush()

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Times the block; a StepFailed (or any error) in it fails the step."""
        started = time.perf_counter()
        try:
            yield
        except WritesNeedToken as refused:
            self.steps[name] = "AUTH"
            self.line("AUTH", name, (time.perf_counter() - started) * 1000, str(refused))
            raise
        except StepFailed as failure:
            self._fail(name, started, str(failure))
            raise
        except Exception as error:
            self._fail(name, started, f"{type(error).__name__}: {error}")
            raise StepFailed(str(error)) from error
        self.steps[name] = "PASS"
        self.line("PASS", name, (time.perf_counter() - started) * 1000)

    def _fail(self, name: str, started: float, detail: str) -> None:
        self.failed = True
        self.steps[name] = "FAIL"
        self.line("FAIL", name, (time.perf_counter() - started) * 1000, detail)

    def skip_rest(self) -> None:
        for name in self.names:
            if name not in self.steps:
                self.steps[name] = "SKIP"
                self.line("SKIP", name, None)


def run(client: Client, out: TextIO = sys.stdout) -> int:
    """Run every step against `client`; 0 when all passed, 1 otherwise."""
    report = Report(out, client.steps)
    created: list[int] = []  # ids this run created and has not deleted yet
    started = time.perf_counter()
    email = f"smoke-{client.run_id}@example.com"
    name = f"Smoke Test {client.run_id}"
    writes_refused = False
    try:
        _steps(client, report, created, email=email, name=name)
    except StepFailed:
        report.skip_rest()
    except WritesNeedToken:
        writes_refused = True
        report.skip_rest()
    finally:
        _clean_up(client, report, created)
    total_ms = (time.perf_counter() - started) * 1000
    if writes_refused and not report.failed:
        verdict = "FAILED" if client.require_writes else "OK    "
        out.write(
            f"{verdict} healthy; writes need a token (401 without one): pass --token or "
            f"${TOKEN_ENV} to run the write steps against {client.base_url} ({total_ms:.0f} ms)\n"
        )
        return 1 if client.require_writes else 0
    if report.failed:
        failed = [n for n, s in report.steps.items() if s == "FAIL"] or ["cleanup"]
        out.write(f"FAILED {', '.join(failed)} against {client.base_url} ({total_ms:.0f} ms)\n")
        return 1
    out.write(
        f"OK     {len(client.steps)} steps passed against {client.base_url} ({total_ms:.0f} ms)\n"
    )
    return 0


def _steps(client: Client, report: Report, created: list[int], *, email: str, name: str) -> None:
    with report.step("health"):
        response = client.request("GET", "/health").expect(200)
        body = response.json()
        check(body.get("status") == "ok", f"GET /health: status is not ok: {body!r}")
        check("x-request-id" in response.headers, "GET /health: no x-request-id header")

    if client.read_token:
        with report.step(READ_ONLY_STEP):
            _read_only_cannot_write(client.reader(), created, email=email, name=name)

    with report.step("create user"):
        response = client.request("POST", "/users", {"name": name, "email": email})
        if response.status == 401 and not client.token:
            raise WritesNeedToken("POST /users: 401 without a token, as it should be")
        remember_created(response, created)
        response.expect(201)
        user = check_user(response.json(), "POST /users")
        user_id = user["id"]
        check(user["name"] == name, f"POST /users: name {user['name']!r}, sent {name!r}")
        check(user["email"] == email, f"POST /users: email {user['email']!r}, sent {email!r}")
        location = response.headers.get("location", "")
        check(
            location.endswith(f"/users/{user_id}"),
            f"POST /users: Location {location!r} does not name /users/{user_id}",
        )

    with report.step("read user"):
        read = client.request("GET", f"/users/{user_id}").expect(200).json()
        check(read == user, f"GET /users/{user_id}: {read!r} differs from the created {user!r}")

    with report.step("list users"):
        path = f"/users?limit=100&after_id={user_id - 1}"
        listed = client.request("GET", path).expect(200).json()
        check(isinstance(listed, list), f"GET {path}: expected a list, got {listed!r}")
        ids = [u.get("id") for u in listed if isinstance(u, dict)]
        check(ids == sorted(ids), f"GET {path}: ids not in ascending order: {ids}")
        check(bool(ids) and ids[0] == user_id, f"GET {path}: user {user_id} not first in {ids}")
        check(listed[0] == user, f"GET {path}: {listed[0]!r} differs from {user!r}")

    with report.step("update user"):
        new_name = f"{name} (updated)"
        updated = client.request("PATCH", f"/users/{user_id}", {"name": new_name}).expect(200)
        updated_user = check_user(updated.json(), f"PATCH /users/{user_id}")
        check(updated_user["name"] == new_name, f"PATCH: name is {updated_user['name']!r}")
        check(updated_user["email"] == email, f"PATCH: email changed to {updated_user['email']!r}")
        check(
            updated_user["created_at"] == user["created_at"],
            "PATCH: created_at changed",
        )
        check(
            parse_time(updated_user["updated_at"]) > parse_time(user["updated_at"]),
            f"PATCH: updated_at did not advance ({user['updated_at']} -> "
            f"{updated_user['updated_at']})",
        )

    with report.step("duplicate email 409"):
        # The same address in another case: emails are unique case-insensitively.
        duplicate = client.request("POST", "/users", {"name": name, "email": email.upper()})
        remember_created(duplicate, created)  # a 201 here is a bug, and a user to delete
        duplicate.expect(409)
        check("detail" in duplicate.json(), "POST /users 409: no detail in the body")

    with report.step("delete user"):
        deleted = client.request("DELETE", f"/users/{user_id}").expect(200).json()
        created.remove(user_id)
        check(deleted == {"message": "User deleted"}, f"DELETE: unexpected body {deleted!r}")

    with report.step("read deleted 404"):
        gone = client.request("GET", f"/users/{user_id}").expect(404).json()
        check("detail" in gone, f"GET /users/{user_id} 404: no detail in the body")


def _read_only_cannot_write(reader: Client, created: list[int], *, email: str, name: str) -> None:
    reader.request("GET", "/users?limit=1").expect(200)
    refused = reader.request("POST", "/users", {"name": name, "email": f"read-only-{email}"})
    remember_created(refused, created)  # a 201 here is a hole, and a user to delete
    check(
        refused.status == 403,
        f"POST /users with the read-only token: expected 403, got {refused.status}: "
        f"{refused.excerpt()}",
    )


def remember_created(response: Response, created: list[int]) -> None:
    """Note the id of a user a 201 created, before anything else is checked."""
    if response.status != 201:
        return
    try:
        user_id = json.loads(response.body).get("id")
    except (ValueError, AttributeError):
        return
    if isinstance(user_id, int):
        created.append(user_id)


def _clean_up(client: Client, report: Report, created: list[int]) -> None:
    """Delete every user this run created and did not delete itself."""
    for user_id in list(created):
        started = time.perf_counter()
        try:
            status = client.request("DELETE", f"/users/{user_id}").status
        except StepFailed as failure:
            status, detail = None, str(failure)
        else:
            detail = f"DELETE /users/{user_id}: {status}"
        elapsed_ms = (time.perf_counter() - started) * 1000
        if status in (200, 404):  # 404: already gone
            created.remove(user_id)
            report.line("CLEAN", f"delete user {user_id}", elapsed_ms)
        else:
            report.failed = True
            report.line("LEFT", f"user {user_id}", elapsed_ms, f"not deleted: {detail}")


def api_url_from_outputs(path: Path, stack: str | None = None) -> str:
    """The `ApiUrl` output of `stack` (or of the only stack that has one) in a
    `cdk deploy --outputs-file` file."""
    try:
        outputs = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read {path}: {error}") from None
    urls = {
        name: values["ApiUrl"]
        for name, values in outputs.items()
        if isinstance(values, dict) and "ApiUrl" in values
    }
    if stack is not None:
        if stack not in urls:
            raise ValueError(f"{path}: no ApiUrl output for stack {stack!r} (found {sorted(urls)})")
        return urls[stack]
    if len(urls) != 1:
        raise ValueError(f"{path}: expected one stack with an ApiUrl output, found {sorted(urls)}")
    return next(iter(urls.values()))


def _check_base_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) base URL: {url!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"a base URL takes no query or fragment: {url!r}")
    return url


def parse_args(argv: list[str] | None) -> Client:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.smoke",
        description="Smoke-test a running users API (exit 0: every step passed, 1: a step failed).",
    )
    parser.add_argument("url", nargs="?", help="base URL of the API, e.g. the stack's ApiUrl")
    parser.add_argument(
        "--outputs-file",
        type=Path,
        help="read the URL from the ApiUrl output in this `cdk deploy --outputs-file` file",
    )
    parser.add_argument("--stack", help="with --outputs-file: the stack whose ApiUrl to use")
    parser.add_argument(
        "--token",
        default=os.environ.get(TOKEN_ENV) or None,
        help=f"Bearer token sent on every request (default: ${TOKEN_ENV})",
    )
    parser.add_argument(
        "--read-token",
        default=os.environ.get(READ_TOKEN_ENV) or None,
        help=f"a read-only Bearer token: check it cannot write (default: ${READ_TOKEN_ENV})",
    )
    parser.add_argument(
        "--require-writes",
        action="store_true",
        help="fail (exit 1) when writes need a token and none was given",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"seconds per request (default {DEFAULT_TIMEOUT_S:g})",
    )
    args = parser.parse_args(argv)
    if (args.url is None) == (args.outputs_file is None):
        parser.error("give either a URL or --outputs-file")
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    try:
        url = args.url or api_url_from_outputs(args.outputs_file, args.stack)
        return Client(
            _check_base_url(url),
            token=args.token,
            read_token=args.read_token,
            timeout_s=args.timeout,
            require_writes=args.require_writes,
        )
    except ValueError as exc:
        parser.error(str(exc))


def main(argv: list[str] | None = None) -> int:
    client = parse_args(argv)
    return run(client)


if __name__ == "__main__":
    sys.exit(main())
