"""The SAM CLI as the tests run it: sam.mk's environment, nothing off loopback."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from devtools import container_engine, lambda_image, sam_local
from tests.support.synth import synthesize_bundled_dev

ROOT = Path(__file__).resolve().parents[2]
SAM = sam_local.SAM
# Where the sam tests synthesize the dev stage (with its bundle) once per test session.
SYNTH_DIR = ROOT / ".build" / "sam-local" / "cdk.out-tests"


def sam_env() -> dict[str, str]:
    """sam_local's environment (nothing off loopback), and no container runtime, whatever
    this machine has: sam must stop there, and never pull an image."""
    return {**sam_local.sam_environment(), "DOCKER_HOST": "unix:///nonexistent/docker.sock"}


def skip_without_engine() -> None:
    """Skip (with the reason) when sam cannot run here: no SAM CLI, or no engine at all."""
    if not SAM.exists():
        pytest.skip("SAM CLI not installed: `make sam-setup` builds .venv-sam")
    try:
        container_engine.find_engine(start=False)
    except container_engine.NoEngine as exc:
        pytest.skip(f"no container engine can run here: {exc}")


@contextmanager
def sam_session(database_url: str, workdir: Path) -> Iterator[sam_local.Session]:
    """`sam local` on the synthesized dev stage, its function pointed at `database_url`
    (a PostgreSQL on loopback) through env.json's host name, as `make sam-invoke` runs it."""
    skip_without_engine()
    template = synthesize_bundled_dev(SYNTH_DIR)
    url = make_url(database_url)
    env_vars = json.loads((ROOT / "env.json").read_text())
    env_vars["UsersApiFunction"].update(
        DB_NAME=url.database, DB_USER=url.username, DB_PORT=str(url.port or 5432)
    )
    workdir.mkdir(parents=True, exist_ok=True)
    env_file = workdir / "env.json"
    env_file.write_text(json.dumps(env_vars))
    db = (url.host or "127.0.0.1", url.port or 5432)
    with contextlib.ExitStack() as stack:
        try:
            session = stack.enter_context(sam_local.session(template, env_file, db=db))
        except lambda_image.CannotBuild as exc:
            pytest.skip(f"cannot build the local Lambda image: {exc}")
        yield session
