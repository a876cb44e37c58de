"""A Python function in the VPC's isolated subnets, with a log group and a role of its own.

CDK's default role attaches AWSLambdaBasicExecutionRole (logs:* on every log group of the
account); this one writes to one log group. ENI management for the VPC attachment keeps
the AWS-managed AWSLambdaVPCAccessExecutionRole: its Describe* actions cannot be scoped.
Both of the stack's functions (API and migrations) are built here from the shared bundle.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.bundling import ARCHITECTURE, RUNTIME
from infra.config import StageSettings
from infra.constructs.network import Network
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


def vpc_function(
    scope: Construct,
    *,
    settings: StageSettings,
    network: Network,
    security_group: ec2.ISecurityGroup,
    code: lambda_.Code,
    handler: str,
    description: str,
    role_description: str,
    sam_resource_id: str,
    timeout_seconds: int,
    environment: dict[str, str],
    **function_options: Any,
) -> lambda_.Function:
    """`scope`/LogGroup, `scope`/Role and `scope`/Function (stable logical ids)."""
    log_group = logs.LogGroup(
        scope,
        "LogGroup",
        retention=settings.log_retention,
        removal_policy=settings.removal_policy,
    )
    function = lambda_.Function(
        scope,
        "Function",
        description=description,
        runtime=RUNTIME,
        architecture=ARCHITECTURE,
        handler=handler,
        code=code,
        timeout=Duration.seconds(timeout_seconds),
        vpc=network.vpc,
        vpc_subnets=network.isolated_subnets,
        security_groups=[security_group],
        log_group=log_group,
        role=function_role(scope, "Role", log_group=log_group, description=role_description),
        environment=environment,
        **function_options,
    )
    # A stable name for `sam local invoke <id>` on the synthesized template.
    cfn_function = function.node.default_child
    assert isinstance(cfn_function, lambda_.CfnFunction)
    cfn_function.add_metadata("SamResourceId", sam_resource_id)
    acknowledge(
        function,
        "AwsSolutions-L1",
        "Python 3.12 on purpose: the bundle holds cp312 arm64 wheels and .pyc files built "
        "for 3.12; the runtime moves together with requirements and the bundler.",
    )
    return function
