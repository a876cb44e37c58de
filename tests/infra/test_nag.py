"""cdk-nag's AwsSolutions pack on both stages: no unacknowledged finding, and every
acknowledgment is a deliberate, specific one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.nag import MIN_REASON_LENGTH
from tests.infra.conftest import Synth

ACK_KEY = "aws:cdk:acknowledged-rules"
VPC_ACCESS = (
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
    "AWSLambdaVPCAccessExecutionRole]"
)
# (construct path below the stack, rule id): a new acknowledgment must be added here, on
# purpose, with its reason in the code next to the resource.
EXPECTED_EVERYWHERE = {
    ("Database/Instance", "AwsSolutions-RDS11"),
    ("HttpApi/Api/DefaultRoute/Resource", "AwsSolutions-APIG4"),
    ("ApiFunction/Role", VPC_ACCESS),
    ("Migrations/Role", VPC_ACCESS),
    ("ApiFunction/Function", "AwsSolutions-L1"),
    ("Migrations/Function", "AwsSolutions-L1"),
}
EXPECTED = {
    "dev": EXPECTED_EVERYWHERE
    | {("Database/Instance", "AwsSolutions-RDS3"), ("Database/Instance", "AwsSolutions-RDS10")},
    "prod": EXPECTED_EVERYWHERE,
}


def nag_acknowledgments(synth: Synth) -> dict[tuple[str, str], str]:
    """(construct path below the stack, rule id) -> reason."""
    found = {}
    prefix = f"/{synth.settings.stack_name}/"
    for path, entries in synth.metadata.items():
        for entry in entries:
            if entry["type"] != ACK_KEY:
                continue
            for rule_id, reason in entry["data"].items():
                rule = rule_id.split("::", 1)[-1]
                if rule.startswith("AwsSolutions-"):
                    found[(path.removeprefix(prefix), rule)] = reason
    return found


def test_no_unacknowledged_finding(synth: Synth) -> None:
    assert synth.validation_error is None, synth.validation_error
    report = json.loads((synth.outdir / "validation-report.json").read_text())
    assert [r for r in report["pluginReports"] if r["conclusion"] != "success"] == []


def test_acknowledgments_are_the_expected_ones_with_specific_reasons(synth: Synth) -> None:
    acknowledged = nag_acknowledgments(synth)
    assert set(acknowledged) == EXPECTED[synth.settings.name]
    for (path, rule), reason in acknowledged.items():
        assert len(reason) >= MIN_REASON_LENGTH, (path, rule, reason)
    # One reason per rule, not one blanket sentence pasted everywhere.
    by_rule: dict[str, set[str]] = {}
    for (_, rule), reason in acknowledged.items():
        by_rule.setdefault(rule.split("[")[0], set()).add(reason)
    reasons = [r for rs in by_rule.values() for r in rs]
    assert len(reasons) == len(set(reasons))


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
