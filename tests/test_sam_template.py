"""The sam-only copy of the synthesized template (devtools/sam_template.py).

`sam local` runs the SAM translator over the template, which fetches every
AWS::Serverless::Application (CDK's `add_rotation_single_user` secret rotation is one) from
AWS first; the copy has none, nor anything referencing one, and keeps what sam local needs:
both functions with their SamResourceId, handler, runtime and asset metadata (made
absolute). The stack itself may have no such application (a hosted rotation has none): the
copy then differs only by its absolute asset paths, and the removal is checked on a template
of that shape. With the SAM CLI installed, `sam local invoke` on the copy of the synthesized
stack gets as far as needing a container runtime.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devtools.sam_template import (
    SERVERLESS_APPLICATION,
    referenced_ids,
    strip_template,
    write_sam_template,
)
from tests.support.sam import SAM, sam_env
from tests.support.synth import synthesize_bundled_dev

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = {
    "UsersApiFunction": "users_api.handler.handler",
    "UsersApiMigrationFunction": "users_api.migrate.handler",
}


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize_bundled_dev(tmp_path_factory.getbasetemp() / "cdk-bundled-dev")


@pytest.fixture(scope="module")
def sam_template(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("sam") / source.name
    write_sam_template(source, target)
    return target


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def test_the_copy_has_no_serverless_application_nor_reference_to_one(
    source: Path, sam_template: Path
) -> None:
    original, copy = _load(source), _load(sam_template)
    applications = {
        k for k, r in original["Resources"].items() if r["Type"] == SERVERLESS_APPLICATION
    }
    resources = copy["Resources"]
    assert {r["Type"] for r in resources.values()}.isdisjoint({SERVERLESS_APPLICATION})
    removed = set(original["Resources"]) - set(resources)
    assert applications <= removed
    # Nothing left names a removed resource: no Ref/GetAtt/Sub, no DependsOn.
    assert removed.isdisjoint(referenced_ids(copy))
    for logical_id, resource in resources.items():
        depends_on = resource.get("DependsOn", [])
        depends_on = [depends_on] if isinstance(depends_on, str) else depends_on
        assert removed.isdisjoint(depends_on), logical_id
    # Only the applications and what referenced them went; everything else is unchanged.
    for logical_id in removed - applications:
        assert not applications.isdisjoint(referenced_ids(original["Resources"][logical_id]))
    assert len(removed) <= len(applications) * 2


@pytest.mark.parametrize(("sam_id", "handler"), FUNCTIONS.items())
def test_the_copy_keeps_the_functions(
    source: Path, sam_template: Path, sam_id: str, handler: str
) -> None:
    def function(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        (found,) = [
            (k, r)
            for k, r in template["Resources"].items()
            if r.get("Metadata", {}).get("SamResourceId") == sam_id
        ]
        return found

    original_id, original = function(_load(source))
    copy_id, copy = function(_load(sam_template))
    assert copy_id == original_id
    assert copy["Type"] == "AWS::Lambda::Function"
    assert copy["Properties"] == original["Properties"]
    assert copy["Properties"]["Handler"] == handler
    assert copy["Properties"]["Runtime"] == "python3.12"
    assert copy["Metadata"]["aws:asset:property"] == "Code"
    # The asset path still resolves: absolute now, to the same directory.
    asset = Path(copy["Metadata"]["aws:asset:path"])
    assert asset.is_absolute()
    assert asset == (source.parent / original["Metadata"]["aws:asset:path"]).resolve()
    assert (asset / Path(*handler.split(".")[:-1])).with_suffix(".py").is_file()


def test_references_are_removed_transitively() -> None:
    template = {
        "Transform": "AWS::Serverless-2016-10-31",
        "Resources": {
            "App": {"Type": SERVERLESS_APPLICATION, "Properties": {}},
            "Schedule": {
                "Type": "AWS::SecretsManager::RotationSchedule",
                "Properties": {"RotationLambdaARN": {"Fn::GetAtt": ["App", "Outputs.Arn"]}},
            },
            "UsesSchedule": {
                "Type": "AWS::SNS::Topic",
                "Properties": {"DisplayName": {"Fn::Sub": "${Schedule}-x"}},
            },
            "Kept": {
                "Type": "AWS::SNS::Topic",
                "DependsOn": ["App", "Schedule", "Other"],
                "Properties": {},
            },
            "KeptToo": {"Type": "AWS::SNS::Topic", "DependsOn": "App", "Properties": {}},
            "Other": {
                "Type": "AWS::Lambda::Function",
                "Metadata": {"aws:asset:path": "asset.abc", "aws:asset:property": "Code"},
                "Properties": {"Handler": "a.b"},
            },
        },
        "Outputs": {
            "Arn": {"Value": {"Ref": "Schedule"}},
            "Name": {"Value": {"Ref": "Kept"}},
        },
    }
    copy, removed = strip_template(template, asset_base=Path("/base"))
    assert removed == ["App", "Schedule", "UsesSchedule"]
    assert set(copy["Resources"]) == {"Kept", "KeptToo", "Other"}
    assert copy["Resources"]["Kept"]["DependsOn"] == ["Other"]
    assert "DependsOn" not in copy["Resources"]["KeptToo"]
    assert copy["Outputs"] == {"Name": {"Value": {"Ref": "Kept"}}}
    assert copy["Resources"]["Other"]["Metadata"]["aws:asset:path"] == "/base/asset.abc"
    assert copy["Transform"] == template["Transform"]
    assert template["Resources"]["Kept"]["DependsOn"] == ["App", "Schedule", "Other"]  # as was


def test_cli_fails_clearly_without_the_template(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "devtools.sam_template", str(tmp_path / "x.json"), "out.json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "make synth" in result.stderr


def test_sam_local_invoke_reads_the_copy_and_stops_at_the_container_runtime(
    sam_template: Path, tmp_path: Path
) -> None:
    if not SAM.exists():
        pytest.skip("SAM CLI not installed: `make .venv-sam/.installed` builds .venv-sam")
    result = subprocess.run(
        [
            str(SAM), "local", "invoke", "-t", str(sam_template), "UsersApiFunction",
            "-e", str(ROOT / "events" / "http-api" / "health.json"),
            "--env-vars", str(ROOT / "env.json"),
        ],
        cwd=tmp_path,
        env=sam_env(tmp_path / "sam-home"),
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
