"""The slimmed bundle really runs: built for this machine's architecture by the same recipe
(pruned packages, stripped extensions, sourceless third-party bytecode), then the API handler
and the migration handler are run from it alone, in a fresh Python 3.12, against PostgreSQL.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from devtools.postgres import scratch_database
from infra import bundling

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

RUN_FROM_BUNDLE = textwrap.dedent(
    """
    import json, sys
    assert not any("site-packages" in p for p in sys.path), sys.path
    from users_api import migrate
    result = {"migration": migrate.handler({}, None)}
    from devtools.lambda_runtime import LambdaContext, http_api_event
    from users_api.handler import handler

    def call(method, path, body=None, query=""):
        raw = json.dumps(body).encode() if body is not None else b""
        event = http_api_event(method, path, body=raw, query=query,
                               headers={"content-type": "application/json"})
        response = handler(event, LambdaContext())
        return response["statusCode"], json.loads(response["body"] or "null")

    result["calls"] = [
        call("GET", "/health"),
        call("POST", "/users", {"name": "Bundle", "email": "bundle@example.com"}),
        call("GET", "/users/1"),
        call("PATCH", "/users/1", {"name": "Bundled"}),
        call("GET", "/users", query="limit=5"),
        call("DELETE", "/users/1"),
        call("GET", "/openapi.json"),
    ]
    result["modules"] = sorted({m.split(".")[0] for m in sys.modules})
    print(json.dumps(result))
    """
)


@pytest.fixture(scope="module")
def native_bundle() -> Path:
    if platform.machine() != "x86_64":
        pytest.skip(f"the twin bundle is built for x86_64 hosts; this one is {platform.machine()}")
    python = bundling.find_python312()
    if python is None:
        pytest.skip("no Python 3.12 interpreter on this machine to run the bundle with")
    target = ROOT / ".build" / "bundle-x86_64" / bundling.source_hash()
    if not target.is_dir():
        shutil.rmtree(target.parent, ignore_errors=True)
        staging = target.with_name(target.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        bundling.build_bundle(staging, bundling.X86_64_PLATFORMS)
        staging.rename(target)
    return target


def test_handlers_run_from_the_slimmed_bundle(native_bundle: Path, pg_server: str) -> None:
    python = bundling.find_python312()
    assert python is not None
    # devtools only builds the events; it is stdlib-only and not part of the bundle.
    devtools = native_bundle.parent / "devtools-for-test"
    shutil.rmtree(devtools, ignore_errors=True)
    shutil.copytree(ROOT / "devtools", devtools / "devtools")
    with scratch_database(pg_server, "users_api_bundle_test") as url:
        env = {
            "PATH": "/usr/bin:/bin",
            # -S: no site-packages; the bundle (as /var/task) and the event builder only
            "PYTHONPATH": f"{native_bundle}:{devtools}",
            "DATABASE_URL": url.replace("postgresql://", "postgresql+asyncpg://"),
            "AWS_LAMBDA_FUNCTION_NAME": "UsersApiFunction",
            "AWS_EC2_METADATA_DISABLED": "true",
            "LOG_LEVEL": "WARNING",
            "HOME": os.environ.get("HOME", "/tmp"),
        }
        result = subprocess.run(
            [python, "-S", "-c", RUN_FROM_BUNDLE],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["migration"]["revision"] == "0002"
    statuses = [status for status, _ in report["calls"]]
    assert statuses == [200, 201, 200, 200, 200, 200, 200], report["calls"]
    assert report["calls"][3][1]["name"] == "Bundled"
    assert "boto3" not in report["modules"]


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_two_builds_in_different_folders_are_byte_identical(
    native_bundle: Path, tmp_path: Path
) -> None:
    """Reproducible artifacts: the same commit bundled again, elsewhere, gives the same bytes
    (the .pyc files record /var/task paths, not the build folder)."""
    again = tmp_path / "elsewhere" / "deeper"
    bundling.build_bundle(again, bundling.X86_64_PLATFORMS)
    first, second = _tree(native_bundle), _tree(again)
    assert sorted(first) == sorted(second)
    differing = [name for name in first if first[name] != second[name]]
    assert differing == [], f"{len(differing)} files differ, e.g. {differing[:5]}"
    assert sum(name.endswith(".pyc") for name in first) > 500
