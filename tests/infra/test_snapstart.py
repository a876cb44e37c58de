"""SnapStart, opt-in per stage: a published version behind the alias `live`, which the HTTP
API invokes; off, the API invokes the function itself."""

from __future__ import annotations

import dataclasses
import json

import pytest

from infra.config import DEV
from tests.infra.conftest import Synth, synthesize


@pytest.fixture(scope="session")
def dev_snapstart(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    settings = dataclasses.replace(DEV, snap_start=True)
    return synthesize("dev", tmp_path_factory.mktemp("cdk-dev-snapstart"), settings=settings)


def api_function(synth: Synth) -> tuple[str, dict]:  # type: ignore[type-arg]
    [(logical_id, function)] = [
        (k, r)
        for k, r in synth.of_type("AWS::Lambda::Function").items()
        if r["Properties"].get("Handler") == "users_api.handler.handler"
    ]
    return logical_id, function


def integration_uris(synth: Synth) -> list[str]:
    return [
        json.dumps(r["Properties"]["IntegrationUri"])
        for r in synth.of_type("AWS::ApiGatewayV2::Integration").values()
    ]


def test_snapstart_publishes_a_version_behind_the_live_alias(dev_snapstart: Synth) -> None:
    assert dev_snapstart.validation_error is None
    function_id, function = api_function(dev_snapstart)
    assert function["Properties"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    [version_id] = [
        k
        for k, r in dev_snapstart.of_type("AWS::Lambda::Version").items()
        if r["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    [alias] = dev_snapstart.of_type("AWS::Lambda::Alias").values()
    assert alias["Properties"]["Name"] == "live"
    assert version_id in json.dumps(alias["Properties"]["FunctionVersion"])
    [alias_id] = dev_snapstart.of_type("AWS::Lambda::Alias")
    uris = integration_uris(dev_snapstart)
    assert uris
    assert all(alias_id in uri for uri in uris), uris


def test_without_snapstart_the_api_invokes_the_function(dev: Synth) -> None:
    function_id, function = api_function(dev)
    assert "SnapStart" not in function["Properties"]
    assert dev.of_type("AWS::Lambda::Alias") == {}
    assert all(function_id in uri for uri in integration_uris(dev))


def test_the_published_version_and_alias_wait_for_the_migrations(dev_snapstart: Synth) -> None:
    """Schema before code: the version SnapStart snapshots, and the alias API Gateway invokes,
    are created only after this deploy's migration trigger ran."""
    [trigger_id] = dev_snapstart.of_type("Custom::Trigger")
    function_id, _ = api_function(dev_snapstart)
    [version_id] = [
        k
        for k, r in dev_snapstart.of_type("AWS::Lambda::Version").items()
        if r["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    [alias_id] = dev_snapstart.of_type("AWS::Lambda::Alias")
    for logical_id in (function_id, version_id, alias_id):
        assert trigger_id in dev_snapstart.resources[logical_id].get("DependsOn", []), logical_id
