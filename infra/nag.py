"""cdk-nag (AwsSolutions) acknowledgments: one call per finding, each with its own reason.

cdk-nag 3 runs as a CDK policy-validation plugin: an unacknowledged finding fails
`cdk synth`. Acknowledgments use CDK's native `Validations.of(scope).acknowledge(...)`
and are recorded in the construct tree's metadata, where the tests read them back.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stack, Stage, Token, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

MIN_REASON_LENGTH = 40


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Acknowledge the finding `rule_id` (e.g. `AwsSolutions-IAM4[Policy::...]`) on `scope`."""
    if not rule_id.startswith("AwsSolutions-"):
        raise ValueError(f"not an AwsSolutions rule id: {rule_id!r}")
    if len(reason.strip()) < MIN_REASON_LENGTH:
        raise ValueError(f"{rule_id}: give a specific reason, not {reason!r}")
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def arn_in_finding(stack: Stack, service: str, resource: str) -> str:
    """`arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE` as cdk-nag spells it in a finding id:
    literal values where the stack's environment has them, `<AWS::...>` where not."""

    def part(value: str, pseudo: str) -> str:
        return f"<AWS::{pseudo}>" if Token.is_unresolved(value) else value

    return (
        f"arn:{part(stack.partition, 'Partition')}:{service}:{part(stack.region, 'Region')}:"
        f"{part(stack.account, 'AccountId')}:{resource}"
    )


def add_nag_checks(stage: Stage) -> None:
    """Run the AwsSolutions rule pack on every stack of `stage` (an app: all of its stacks,
    nested stages' included) at synthesis."""
    Validations.of(stage).add_plugins(AwsSolutionsChecks(stage))
