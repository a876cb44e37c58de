"""The Docker-free `sam local invoke` (devtools.invoke, `make invoke`).

The synthesized template carries what sam local reads (asset directory, handler, runtime,
architecture); devtools.invoke reads the same, applies env.json as sam does, and every event
in events/ gets the contract's answer from the function, in one warm process per event kind.
The template is the dev stack synthesized in-process with its real bundle (tests/support/
synth.py), as `make synth` writes it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from devtools.local_function import (
    CONTAINER_HOST_ALIASES,
    FunctionSpec,
    SetupError,
    find_function,
    function_environment,
    map_container_host,
    masked,
    module_file,
    resolve_intrinsic,
)
from tests.conftest import empty_tables
from tests.support.processes import run_module
from tests.support.synth import synthesize_bundled_dev

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
FUNCTIONS = {
    # SamResourceId: handler
    "UsersApiFunction": "users_api.handler.handler",
    "UsersApiMigrationFunction": "users_api.migrate.handler",
}
# One warm run per event kind: create first (the database is emptied before, so the user
# gets id 1, which the events use), then read, update and delete it.
ORDER = [
    "health",
    "openapi",
    "docs",
    "create_user",
    "list_users",
    "get_user",
    "update_user",
    "delete_user",
    "not_found",
    "invalid_body",
]


@pytest.fixture(scope="module")
def template_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize_bundled_dev(tmp_path_factory.getbasetemp() / "cdk-bundled-dev")


@pytest.fixture(scope="module")
def template(template_path: Path) -> dict[str, Any]:
    return json.loads(template_path.read_text())


def _function(template: dict[str, Any], sam_id: str) -> tuple[str, dict[str, Any]]:
    found = [
        (k, r)
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::Lambda::Function"
        and r.get("Metadata", {}).get("SamResourceId") == sam_id
    ]
    assert len(found) == 1, f"one function with SamResourceId {sam_id}: {found}"
    return found[0]


def invoke(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = run_module("devtools.invoke", *args, env=env)
    if check:
        assert result.returncode == 0, result.stderr[-4000:]
    return result


def json_lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


# --- what sam local reads from the template ----------------------------------------------


@pytest.mark.parametrize(("sam_id", "handler"), FUNCTIONS.items())
def test_template_carries_what_sam_local_reads(
    template: dict[str, Any], template_path: Path, sam_id: str, handler: str
) -> None:
    _, resource = _function(template, sam_id)
    metadata, properties = resource["Metadata"], resource["Properties"]
    assert metadata["aws:asset:property"] == "Code"
    asset_path = metadata["aws:asset:path"]
    assert not Path(asset_path).is_absolute()  # relative to the template's folder
    code_dir = template_path.parent / asset_path
    assert code_dir.is_dir(), code_dir
    assert properties["Handler"] == handler
    assert properties["Runtime"] == "python3.12"
    assert properties["Architectures"] == ["arm64"]
    # The handler string resolves to a module inside the function's code directory.
    found = module_file(code_dir, handler)
    assert found is not None, f"{handler} not in {code_dir}"
    assert found.resolve().is_relative_to(code_dir.resolve())
    assert (
        found.relative_to(code_dir).as_posix()
        == handler.rpartition(".")[0].replace(".", "/") + ".py"
    )


def test_function_is_found_by_sam_id_logical_id_or_cdk_path(
    template: dict[str, Any], template_path: Path
) -> None:
    logical_id, resource = _function(template, "UsersApiFunction")
    by_sam_id = find_function(template, template_path, "UsersApiFunction")
    assert by_sam_id.logical_id == logical_id
    assert find_function(template, template_path, logical_id).name == "UsersApiFunction"
    cdk_path = resource["Metadata"]["aws:cdk:path"]
    assert find_function(template, template_path, cdk_path).logical_id == logical_id
    assert by_sam_id.timeout_s == resource["Properties"]["Timeout"]
    # The stack's template sits in its Stage's nested assembly: the asset is `../asset.*`.
    asset_dir = template_path.parent / resource["Metadata"]["aws:asset:path"]
    assert by_sam_id.code_dir.resolve() == asset_dir.resolve()
    with pytest.raises(SetupError, match="UsersApiMigrationFunction"):
        find_function(template, template_path, "NoSuchFunction")


# --- the environment, as sam builds it ---------------------------------------------------


def _spec(**variables: Any) -> FunctionSpec:
    return FunctionSpec(
        logical_id="ApiFunction685AAB5B",
        name="UsersApiFunction",
        handler="users_api.handler.handler",
        variables=variables,
        cdk_path="UsersApi-dev/ApiFunction/Function/Resource",
    )


def test_env_json_overrides_only_declared_variables() -> None:
    spec = _spec(DB_HOST={"Fn::GetAtt": ["Proxy", "Endpoint"]}, DB_NAME="users", LOG_LEVEL="INFO")
    env = function_environment(
        spec,
        {
            "Parameters": {"LOG_LEVEL": "WARNING", "DB_NAME": "global"},
            "UsersApiFunction": {"DB_HOST": "host.docker.internal", "DB_NAME": "test", "X": "1"},
            "OtherFunction": {"DB_NAME": "other"},
        },
        overrides={},
        shell_env={},
    )
    assert env.variables == {
        "DB_HOST": "host.docker.internal",
        "DB_NAME": "test",  # the function's section wins over "Parameters"
        "LOG_LEVEL": "WARNING",
    }
    assert env.sources == dict.fromkeys(env.variables, "env.json")
    assert any("ignored X" in note and "not declared" in note for note in env.notes)


def test_env_json_sections_by_logical_id_and_cdk_path() -> None:
    for key in ("ApiFunction685AAB5B", "UsersApi-dev/ApiFunction/Function"):
        env = function_environment(_spec(DB_NAME="users"), {key: {"DB_NAME": "x"}}, {}, {})
        assert env.variables == {"DB_NAME": "x"}, key


def test_unresolvable_intrinsics_are_dropped_unless_given() -> None:
    spec = _spec(
        DB_HOST={"Fn::GetAtt": ["Proxy", "Endpoint"]},
        DB_SECRET_ARN={"Ref": "Secret"},
        REGION={"Ref": "AWS::Region"},
        URL={"Fn::Join": ["", ["https://x.", {"Ref": "AWS::URLSuffix"}]]},
        FLAG=True,
        PORT=5432,
    )
    env = function_environment(spec, {}, {"DB_SECRET_ARN": "arn:local"}, {})
    assert env.variables == {
        "DB_SECRET_ARN": "arn:local",
        "REGION": "us-east-1",
        "URL": "https://x.amazonaws.com",
        "FLAG": "true",
        "PORT": "5432",
    }
    assert [n for n in env.notes if n.startswith("dropped")] == [
        """dropped DB_HOST: the template's {"Fn::GetAtt": ["Proxy", "Endpoint"]} only resolves """
        "in a deployed stack (give it a value in env.json or with --set DB_HOST=...)"
    ]
    assert resolve_intrinsic({"Fn::GetAtt": ["A", "B"]}) is None


def test_precedence_set_over_env_json_over_shell_over_template() -> None:
    spec = _spec(A="template", B="template", C="template", D="template")
    env = function_environment(
        spec,
        {"UsersApiFunction": {"B": "file", "C": "file"}},
        overrides={"C": "set", "NEW": "set"},
        shell_env={"A": "shell", "B": "shell", "UNDECLARED": "shell"},
    )
    assert env.variables == {"A": "shell", "B": "file", "C": "set", "D": "template", "NEW": "set"}
    assert env.sources["NEW"] == "--set"


@pytest.mark.parametrize("alias", CONTAINER_HOST_ALIASES)
def test_container_host_name_means_loopback_on_the_host(alias: str) -> None:
    spec = _spec(DB_HOST="db.internal", DB_NAME="users")
    from_file = function_environment(spec, {"UsersApiFunction": {"DB_HOST": alias}}, {}, {})
    map_container_host(from_file, resolves=lambda _name: False)
    assert from_file.variables["DB_HOST"] == "127.0.0.1"
    assert from_file.sources["DB_HOST"] == f"env.json, {alias} mapped to 127.0.0.1"
    assert any(alias in note for note in from_file.notes)
    # A name that resolves here (a Docker Desktop host), or one given with --set, stays.
    resolving = function_environment(spec, {"UsersApiFunction": {"DB_HOST": alias}}, {}, {})
    map_container_host(resolving, resolves=lambda _name: True)
    given = function_environment(spec, {}, {"DB_HOST": alias}, {})
    map_container_host(given, resolves=lambda _name: False)
    assert resolving.variables["DB_HOST"] == given.variables["DB_HOST"] == alias


def test_secrets_are_masked() -> None:
    assert masked("DB_PASSWORD", "hunter2") == "***"
    assert masked("DB_SECRET_ARN", "arn:aws:secretsmanager:...") == "***"
    assert masked("AWS_SESSION_TOKEN", "abc") == "***"
    assert masked("DATABASE_URL", "postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
    assert masked("DB_HOST", "127.0.0.1") == "127.0.0.1"


# --- the invocations ---------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize("kind", ["http-api", "rest-api", "function-url"])
def test_every_event_gets_the_contract_answer(template_path: Path, pg_url: str, kind: str) -> None:
    empty_tables(pg_url)
    events = [EVENTS / kind / f"{name}.json" for name in ORDER]
    assert sorted(p.name for p in events) == sorted(p.name for p in (EVENTS / kind).glob("*.json"))
    args = ["--template", str(template_path), "--set", f"DATABASE_URL={pg_url}", "--json"]
    for path in events:
        args += ["-e", str(path.relative_to(ROOT))]
    lines = json_lines(invoke(*args).stdout)

    function, *invocations = lines
    assert function["kind"] == "function"
    assert function["handler"] == "users_api.handler.handler"
    assert (
        Path(function["codeDir"])
        == (template_path.parent / _function_asset(template_path)).resolve()
    )
    assert function["environment"]["DATABASE_URL"] == pg_url
    assert "DB_HOST" in function["environment"]  # from env.json: the template's is a GetAtt

    got = {Path(i["event"]).stem: i for i in invocations}
    assert [Path(i["event"]).stem for i in invocations] == ORDER
    for name, result in got.items():
        assert "error" not in result, (name, result)
        # The request id is API Gateway's, from the event.
        headers = {k.lower(): v for k, v in result["headers"].items()}
        assert headers["x-request-id"] == result["eventRequestId"], name
    # One warm process: only the first invocation is a cold start.
    assert [i["cold"] for i in invocations] == [True] + [False] * (len(ORDER) - 1)
    assert len({i["pid"] for i in invocations}) == 1

    def status(name: str) -> int:
        return got[name]["statusCode"]

    assert status("health") == 200
    assert got["health"]["body"] == {"status": "ok", "database": "ok"}
    assert status("openapi") == 200
    assert got["openapi"]["body"]["openapi"].startswith("3.")
    assert status("docs") == 200
    assert got["docs"]["bodyKind"] == "text"
    assert "<html" in got["docs"]["body"].lower()
    assert status("create_user") == 201
    user = got["create_user"]["body"]
    assert user["id"] == 1
    assert user["email"] == "ada@example.com"
    assert {k.lower(): v for k, v in got["create_user"]["headers"].items()}["location"] == (
        "/users/1"
    )
    assert status("list_users") == 200
    assert got["list_users"]["body"] == [user]
    assert status("get_user") == 200
    assert got["get_user"]["body"] == user
    assert status("update_user") == 200
    assert got["update_user"]["body"]["name"] == "Ada King"
    assert status("delete_user") == 200
    assert got["delete_user"]["body"] == {"message": "User deleted"}
    assert status("not_found") == 404
    assert status("invalid_body") == 422
    assert isinstance(got["invalid_body"]["body"]["detail"], list)


def _function_asset(template_path: Path) -> str:
    template = json.loads(template_path.read_text())
    return _function(template, "UsersApiFunction")[1]["Metadata"]["aws:asset:path"]


@pytest.mark.postgres
def test_readable_output_and_no_secret_printed(template_path: Path, pg_url: str) -> None:
    result = invoke(
        "--template",
        str(template_path),
        "--set",
        f"DATABASE_URL={pg_url}",
        "--set",
        "DB_PASSWORD=hunter2-secret",
        "-e",
        "events/http-api/health.json",
        "events/http-api/not_found.json",
    )
    out = result.stdout
    assert "== events/http-api/health.json" in out
    assert "HTTP 200\n" in out
    assert '"database": "ok"' in out  # pretty-printed JSON
    assert "HTTP 404\n" in out
    assert "Init Duration" in out
    assert "hunter2-secret" not in out + result.stderr
    assert "DB_PASSWORD" in result.stderr  # listed, with its value masked
    assert "DB_PASSWORD = ***" in " ".join(result.stderr.split())


def test_missing_template_says_run_make_synth(tmp_path: Path) -> None:
    result = invoke(
        "--template", str(tmp_path / "none.template.json"), "-e", "events/http-api/health.json",
        check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "make synth" in result.stderr
    assert result.stdout == ""


def test_unknown_function_and_missing_event_fail_before_running(template_path: Path) -> None:
    result = invoke("--template", str(template_path), "-f", "Nope", "-e", "x.json", check=False)
    assert result.returncode == 2
    assert "x.json does not exist" in result.stderr
    result = invoke(
        "--template", str(template_path), "-f", "Nope", "-e", "events/http-api/health.json",
        check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "UsersApiFunction" in result.stderr  # the functions it has are listed
