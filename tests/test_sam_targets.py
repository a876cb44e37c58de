"""The make targets of sam.mk on a machine without a container runtime (this one).

`make sam-invoke` and `make sam-start-api` stop at once with one clear message that names
the container runtime and the Docker-free equivalents, and exit non-zero; `make invoke`
runs the events in-process and says `make synth` when the template is missing.
The synthesized template is handed in (SAM_TEMPLATE=...), so the runtime is the only thing
missing; a dead DOCKER_HOST makes sure of that wherever the tests run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import empty_tables
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
    return subprocess.run(
        ["make", "--no-print-directory", *keep, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.mark.parametrize(
    "target", [["sam-invoke", "EVENT=events/http-api/health.json"], ["sam-start-api"]]
)
def test_sam_targets_need_a_container_runtime(
    template_path: Path, tmp_path: Path, target: list[str]
) -> None:
    if not SAM_INSTALLED.exists():
        pytest.skip("SAM CLI not installed (`make sam-setup`); this test does not install it")
    if shutil.which("finch"):
        pytest.skip("finch is on PATH: a container runtime may be running here")
    sam_copy = tmp_path / "sam" / template_path.name
    result = make(*target, f"SAM_TEMPLATE={template_path}", f"SAM_LOCAL_TEMPLATE={sam_copy}")
    assert result.returncode != 0
    message = result.stderr
    assert f"make {target[0]}: cannot run sam local:" in message
    assert "sam local needs a container runtime (Docker or Finch)" in message
    assert "`make invoke EVENT=...` or `make run-lambda`" in message
    assert "does not exist" not in message  # the template and event are there
    assert not sam_copy.exists()  # stopped before anything else ran


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
