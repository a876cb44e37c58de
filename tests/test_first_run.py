"""What a newcomer meets first: `make help`, `make run`'s log lines, the plain `alembic`
command and `make migration`, the package build, the pre-commit hook."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devtools.postgres import free_port
from tests.infra.pins import read_pins
from tests.support.processes import stop_group, wait_until_answers
from tests.support.release_queries import head_revision
from users_api.log_format import TextFormatter
from users_api.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
# -o: never rebuild the virtualenv from inside a test session that runs from it.
MAKE = ["make", "--no-print-directory", "-o", ".venv/.installed", "-o", ".venv/.installed-local"]


def app_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "DB_"))}
    env.pop("AWS_LAMBDA_FUNCTION_NAME", None)
    return {**env, **extra}


def test_make_help_lists_every_target_with_its_defaults_expanded() -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "$(" not in result.stdout
    lines = {line.split()[1]: line for line in result.stdout.splitlines()}
    assert "http://127.0.0.1:8000" in lines["run"]
    phony = re.findall(r"^\.PHONY:(.*)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert phony
    for target in " ".join(phony).split():
        assert target in lines, f"`make help` does not list {target}"


@pytest.fixture
def make_run(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, Path]]:
    """`make run` on a free port, its SQLite in tmp_path; yields (base URL, its output file)."""
    port = free_port()
    output = tmp_path / "make-run.log"
    extra = getattr(request, "param", {})
    with output.open("w") as sink:
        process = subprocess.Popen(
            [*MAKE, "run", f"PORT={port}", *(f"{k}={v}" for k, v in extra.items())],
            cwd=ROOT,
            env=app_env(USERS_API_DATA_DIR=str(tmp_path)),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(f"{base}/openapi.json", process, output.read_text, seconds=60)
        yield base, output
    finally:
        stop_group(process)


def _wait_for(output: Path, text: str) -> str:
    deadline = time.monotonic() + 10
    while text not in (log := output.read_text()):
        assert time.monotonic() < deadline, log[-3000:]
        time.sleep(0.1)
    return log


@pytest.mark.slow
def test_make_run_logs_one_readable_line_per_request(make_run: tuple[str, Path]) -> None:
    base, output = make_run
    assert httpx.get(f"{base}/health", headers={"x-request-id": "probe-1"}).status_code == 200
    created = httpx.post(f"{base}/users", json={"name": "Ada", "email": "ada@example.com"})
    assert created.status_code == 201
    log = _wait_for(output, created.headers["x-request-id"])
    health = [line for line in log.splitlines() if "/health" in line]
    assert len(health) == 1, log  # no second (uvicorn access) line
    assert re.search(r"\d\d:\d\d:\d\d\.\d{3} INFO +GET /health 200 [\d.]+ms id=probe-1$", health[0])
    assert re.search(r" POST /users 201 [\d.]+ms id=\w+$", log, re.MULTILINE)
    assert "HTTP/1.1" not in log


@pytest.mark.slow
@pytest.mark.parametrize("make_run", [{"LOG_FORMAT": "json"}], indirect=True)
def test_make_run_log_format_json_gives_the_lambda_lines(make_run: tuple[str, Path]) -> None:
    base, output = make_run
    request_id = httpx.get(f"{base}/health").headers["x-request-id"]
    log = _wait_for(output, request_id)
    (line,) = [line for line in log.splitlines() if request_id in line]
    record = json.loads(line)
    assert (record["method"], record["path"], record["status"]) == ("GET", "/health", 200)


def test_text_logs_are_never_chosen_inside_lambda() -> None:
    assert Settings(log_format="text").text_logs
    assert not Settings(log_format="text", aws_lambda_function_name="fn").text_logs
    assert not Settings().text_logs


def test_the_text_format_keeps_fields_and_tracebacks() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    record.request_id = "r-1"
    line = TextFormatter().format(record)
    first, *rest = line.splitlines()
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3} ERROR failed request_id=r-1", first)
    assert "ValueError: boom" in rest[-1]


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_the_plain_alembic_command_finds_models_and_migrations_in_step(
    database: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    # On SQLite from nothing; on PostgreSQL the session's database, already at head.
    url = (
        request.getfixturevalue("pg_url")
        if database == "postgres"
        else f"sqlite+aiosqlite:///{tmp_path}/users.db"
    )
    for args in (["upgrade", "head"], ["check"], ["current"]):
        result = subprocess.run(
            [VENV_BIN / "alembic", *args],
            cwd=ROOT,
            env=app_env(DATABASE_URL=url),
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    assert f"{head_revision()} (head)" in result.stdout


def test_make_migration_autogenerates_against_a_scratch_database() -> None:
    versions = ROOT / "functions" / "users_api" / "migrations" / "versions"
    before = set(versions.iterdir())
    head = head_revision()
    refused = subprocess.run([*MAKE, "migration"], cwd=ROOT, capture_output=True, text=True)
    assert refused.returncode != 0
    assert 'MSG="' in refused.stderr
    result = subprocess.run(
        [*MAKE, "migration", "MSG=nothing changed"],
        cwd=ROOT,
        env=app_env(),
        capture_output=True,
        text=True,
    )
    created = set(versions.iterdir()) - before
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        (revision,) = created
        assert revision.name == f"{int(head) + 1:04d}_nothing_changed.py"
        text = revision.read_text()
        assert f"down_revision: str | None = '{head}'" in text
        # The models match the migrations: nothing to upgrade.
        assert re.search(r"def upgrade\(\) -> None:\n\s+# ### commands auto generated", text)
        assert "op." not in text.split("def upgrade")[1]
    finally:
        for path in created:
            path.unlink()


@pytest.mark.slow
def test_the_wheel_ships_the_package_and_its_migrations(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = tmp_path.glob("users_api-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "users_api/handler.py",
        "users_api/routes/docs.py",
        "users_api/migrations/env.py",
        "users_api/migrations/script.py.mako",
        "users_api/migrations/versions/0001_create_users.py",
    ):
        assert expected in names
    assert not any(n.startswith(("tests/", "infra/", "devtools/", "functions/")) for n in names)
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "License-Expression: MIT" in text
    assert "Provides-Extra: local" in text


def test_the_build_backend_is_the_pinned_one() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (requirement,) = pyproject["build-system"]["requires"]
    name, version = requirement.split("==")
    assert read_pins(ROOT / "requirements" / "dev.txt")[name] == version


def test_pre_commit_runs_make_lint_from_a_local_hook() -> None:
    result = subprocess.run(
        [VENV_BIN / "pre-commit", "validate-config", ".pre-commit-config.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    config = (ROOT / ".pre-commit-config.yaml").read_text()
    assert "repo: local" in config
    assert "entry: make --no-print-directory lint" in config
