"""An execution role for a function in the VPC that writes to its own log group only.

CDK's default role attaches AWSLambdaBasicExecutionRole (logs:* on every log group of the
account); this one writes to one log group. ENI management for the VPC attachment keeps
the AWS-managed AWSLambdaVPCAccessExecutionRole: its Describe* actions cannot be scoped.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.nag import acknowledge

VPC_ACCESS_POLICY = "service-role/AWSLambdaVPCAccessExecutionRole"


def function_role(
    scope: Construct, construct_id: str, *, log_group: logs.ILogGroup, description: str
) -> iam.Role:
    role = iam.Role(
        scope,
        construct_id,
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=description,
        managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(VPC_ACCESS_POLICY)],
    )
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[log_group.log_group_arn],
        )
    )
    acknowledge(
        role,
        f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{VPC_ACCESS_POLICY}]",
        "Lambda needs ec2:CreateNetworkInterface/Describe*/Delete* to attach to the VPC; "
        "these cannot be scoped to resources, and AWS maintains this minimal policy.",
    )
    return role
