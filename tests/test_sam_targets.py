"""The container-engine check of sam.mk, and `make invoke` (no container at all).

Where no engine can run, `make sam-invoke` and `make sam-start-api` stop at once with one
clear message (devtools/container_engine.py) naming what was tried and the Docker-free
equivalents; `make invoke` runs the events in-process and says `make synth` when the
template is missing. (tests/test_sam_local.py runs sam local itself.)
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import empty_tables
from tests.support.processes import run, run_module
from tests.support.synth import synthesize_bundled_dev

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SAM_INSTALLED = ROOT / ".venv-sam" / ".installed"


@pytest.fixture(scope="module")
def template_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize_bundled_dev(tmp_path_factory.getbasetemp() / "cdk-bundled-dev")


def make(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    # -o: never (re)build a virtualenv from inside the test session.
    keep = ["-o", ".venv/.installed", "-o", ".venv-sam/.installed"]
    return run(["make", "--no-print-directory", *keep, *args], env=env, timeout=180)


def test_no_container_engine_gets_one_clear_message(tmp_path: Path) -> None:
    """Neither Docker, Finch nor podman on PATH, no Docker socket: one message names what
    was tried, how to get an engine, and the Docker-free equivalents."""
    env = {"PATH": str(tmp_path), "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    result = run_module(
        "devtools.container_engine", env={**env, "PYTHONPATH": str(ROOT)}, timeout=60
    )
    assert result.returncode == 1
    message = result.stderr
    assert "sam local needs a container engine (Docker, Finch or podman)" in message
    assert "no Docker API answers at unix:///nonexistent/docker.sock" in message
    assert "no finch on PATH" in message
    assert "no podman on PATH (`make podman` installs it with apt)" in message
    assert "`make invoke EVENT=...` or `make run-lambda`" in message


@pytest.mark.postgres
def test_make_invoke_runs_several_events_in_one_process(template_path: Path, pg_url: str) -> None:
    empty_tables(pg_url)
    events = "events/http-api/create_user.json events/rest-api/get_user.json"
    result = make(
        "invoke",
        f"SAM_TEMPLATE={template_path}",
        f"EVENT={events}",
        f"SET=DATABASE_URL={pg_url}",
        "INVOKE_ARGS=--json",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    function, create, get = lines
    assert function["function"] == "UsersApiFunction"
    assert (create["statusCode"], get["statusCode"]) == (201, 200)
    assert get["body"] == create["body"]
    assert create["pid"] == get["pid"]


def test_make_invoke_without_the_template_says_make_synth(tmp_path: Path) -> None:
    result = make("invoke", f"SAM_TEMPLATE={tmp_path / 'none.template.json'}")
    assert result.returncode != 0
    assert "does not exist: run `make synth` first" in result.stderr
