"""cdk-nag's AwsSolutions pack on both stages: no unacknowledged finding, and every
acknowledgment is a deliberate, specific one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.nag import MIN_REASON_LENGTH
from tests.infra.conftest import Synth
from tests.infra.nag_metadata import acknowledgments

# The network-interface actions Lambda needs for the VPC attachment (inline, no managed
# policy): the Describe actions on `*`, the others on this account's EC2 resources.
ENI_DESCRIBE = "AwsSolutions-IAM5[Resource::*]"
ENI_MANAGE = (
    "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:*/*]"
)
ENHANCED_MONITORING = (
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
    "AmazonRDSEnhancedMonitoringRole]"
)
# (construct path below the stack, rule id): a new acknowledgment must be added here, on
# purpose, with its reason in the code next to the resource.
EXPECTED_EVERYWHERE = {
    ("Database/Instance", "AwsSolutions-RDS11"),
    # The deliberately public catch-all: /health, /docs, /openapi.json, unknown paths.
    ("HttpApi/Api/DefaultRoute/Resource", "AwsSolutions-APIG4"),
    ("ApiFunction/Role", ENI_DESCRIBE),
    ("ApiFunction/Role", ENI_MANAGE),
    ("Migrations/Role", ENI_DESCRIBE),
    ("Migrations/Role", ENI_MANAGE),
    ("Monitoring/AlarmTopic", "AwsSolutions-SNS2"),
    ("ApiFunction/Function", "AwsSolutions-L1"),
    ("Migrations/Function", "AwsSolutions-L1"),
}
USERS_PATHS = ("/users", "/users/{id}")
READ_METHODS = ("GET", "HEAD")
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def route_path(method: str, path: str) -> str:
    return f"HttpApi/Api/{method}{path.replace('/', '--')}/Resource"


def expected_acknowledgments(settings: Any) -> set[tuple[str, str]]:
    """What a stack built from `settings` (infra.config.StageSettings) acknowledges."""
    expected = set(EXPECTED_EVERYWHERE)
    if settings.db_monitoring_interval_seconds:
        expected.add(("Database/Instance", ENHANCED_MONITORING))
    if not settings.db_multi_az:
        expected.add(("Database/Instance", "AwsSolutions-RDS3"))
    if not settings.db_deletion_protection:
        expected.add(("Database/Instance", "AwsSolutions-RDS10"))
    if settings.uses_cognito:
        expected.add(("Auth/UserPool", "AwsSolutions-COG2"))
        expected.add(("Auth/ScopesTrigger", "AwsSolutions-L1"))
        if not settings.auth_user_pool_threat_protection:
            expected.add(("Auth/UserPool", "AwsSolutions-COG8"))
    # APIG4 only on the /users routes that are public on purpose: every one with auth off,
    # the reads when the stage makes them public, never a write with auth on.
    if not settings.auth_enabled:
        public_methods: tuple[str, ...] = READ_METHODS + WRITE_METHODS
    elif settings.auth_public_reads:
        public_methods = READ_METHODS
    else:
        public_methods = ()
    for path in USERS_PATHS:
        for method in public_methods:
            expected.add((route_path(method, path), "AwsSolutions-APIG4"))
    return expected


def nag_acknowledgments(synth: Synth) -> dict[tuple[str, str], str]:
    """(construct path below the stack, rule id) -> reason."""
    prefix = f"/{synth.settings.name.capitalize()}/{synth.settings.stack_name}/"
    return acknowledgments(synth.metadata, prefix)


def check_no_unacknowledged_finding(synth: Synth) -> None:
    assert synth.validation_error is None, synth.validation_error
    report = json.loads((synth.outdir / "validation-report.json").read_text())
    assert [r for r in report["pluginReports"] if r["conclusion"] != "success"] == []


def check_acknowledgments(synth: Synth) -> None:
    acknowledged = nag_acknowledgments(synth)
    assert set(acknowledged) == expected_acknowledgments(synth.settings)
    for (path, rule), reason in acknowledged.items():
        assert len(reason) >= MIN_REASON_LENGTH, (path, rule, reason)
    # One reason per rule, not one blanket sentence pasted everywhere.
    by_rule: dict[str, set[str]] = {}
    for (_, rule), reason in acknowledged.items():
        by_rule.setdefault(rule.split("[")[0], set()).add(reason)
    reasons = [r for rs in by_rule.values() for r in rs]
    assert len(reasons) == len(set(reasons))


def test_no_unacknowledged_finding(synth: Synth) -> None:
    check_no_unacknowledged_finding(synth)


def test_acknowledgments_are_the_expected_ones_with_specific_reasons(synth: Synth) -> None:
    check_acknowledgments(synth)


def test_writes_are_never_acknowledged_as_public_when_auth_is_on(prod: Synth) -> None:
    assert prod.settings.auth_enabled
    apig4 = {path for path, rule in nag_acknowledgments(prod) if rule == "AwsSolutions-APIG4"}
    assert apig4 == {"HttpApi/Api/DefaultRoute/Resource"}


def _tiny_app(outdir: Path, *, acknowledge_findings: bool):
    from aws_cdk import App, Stack
    from aws_cdk import aws_sqs as sqs

    from infra.nag import acknowledge, add_nag_checks

    app = App(outdir=str(outdir))
    stack = Stack(app, "NagProbe")
    queue = sqs.Queue(stack, "Queue")
    if acknowledge_findings:
        for rule in ("AwsSolutions-SQS3", "AwsSolutions-SQS4"):
            acknowledge(queue, rule, f"{rule}: a probe queue that is never deployed anywhere.")
    add_nag_checks(app)
    return app


def test_the_checks_really_run_and_acknowledgments_really_suppress(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"AwsSolutions-SQS4"):
        _tiny_app(tmp_path / "plain", acknowledge_findings=False).synth()
    _tiny_app(tmp_path / "acknowledged", acknowledge_findings=True).synth()


def test_acknowledge_refuses_vague_reasons() -> None:
    from aws_cdk import App, Stack

    from infra.nag import acknowledge

    stack = Stack(App(), "Vague")
    with pytest.raises(ValueError, match="specific reason"):
        acknowledge(stack, "AwsSolutions-IAM4", "not needed")
    with pytest.raises(ValueError, match="not an AwsSolutions rule"):
        acknowledge(stack, "IAM4", "x" * MIN_REASON_LENGTH)
