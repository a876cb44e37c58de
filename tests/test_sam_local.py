"""`sam local invoke` for real: the function in a container, against PostgreSQL.

Through devtools/sam_local.py, as `make sam-invoke` runs it: on Docker or Finch when one
answers, else on podman with the local look-alike Lambda image (built on first use) and a
copy of the synthesized template for this machine's architecture. Skipped, with the
reason, only where no container engine can run at all. `sam local start-api` runs the HTTP
contract suite (tests/contract, serving "sam-start-api-postgres").

And the synthesized template as `make synth` writes it is what sam reads: no sam-only copy.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from devtools import sam_local
from devtools.postgres import run
from tests.conftest import empty_tables
from tests.support.sam import SAM, SYNTH_DIR, sam_env, sam_session
from tests.support.synth import synthesize_bundled_dev

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events" / "http-api"


@pytest.fixture(scope="module")
def session(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[sam_local.Session]:
    with sam_session(pg_url, tmp_path_factory.mktemp("sam-local")) as s:
        yield s


def invoke(session: sam_local.Session, event: str) -> dict[str, object]:
    result = sam_local.invoke(session, "UsersApiFunction", EVENTS / event)
    assert result.returncode == 0, result.stderr[-3000:]
    # sam prints the function's result as the last line of stdout.
    response = json.loads(result.stdout.strip().splitlines()[-1])
    assert isinstance(response, dict)
    return response


def test_health_through_sam_local_invoke(session: sam_local.Session) -> None:
    response = invoke(session, "health.json")
    assert response["statusCode"] == 200
    assert json.loads(str(response["body"])) == {"status": "ok", "database": "ok"}


def test_create_through_sam_local_invoke_writes_the_row(
    session: sam_local.Session, pg_url: str
) -> None:
    empty_tables(pg_url)
    event = json.loads((EVENTS / "create_user.json").read_text())
    response = invoke(session, "create_user.json")
    assert response["statusCode"] == 201
    created = json.loads(str(response["body"]))
    assert created["email"] == json.loads(event["body"])["email"]

    async def stored() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(pg_url.replace("+asyncpg", ""))
        try:
            return await conn.fetch("SELECT id, email FROM users")
        finally:
            await conn.close()

    assert [(r["id"], r["email"]) for r in run(stored())] == [(created["id"], created["email"])]


def test_sam_reads_the_synthesized_template_as_is(tmp_path: Path) -> None:
    """No sam-only copy is needed: sam parses cdk.out's template and assets and stops only
    at the (here deliberately dead) container engine."""
    if not SAM.exists():
        pytest.skip("SAM CLI not installed: `make sam-setup` builds .venv-sam")
    template = synthesize_bundled_dev(SYNTH_DIR)
    result = subprocess.run(
        [
            str(SAM), "local", "invoke", "-t", str(template), "UsersApiFunction",
            "-e", str(EVENTS / "health.json"), "--env-vars", str(ROOT / "env.json"),
        ],
        cwd=tmp_path,
        env=sam_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "requires a container runtime" in output, output[-3000:]
    for template_problem in ("serverlessrepo", "Could not connect", "Traceback", "not found"):
        assert template_problem not in output, output[-3000:]
