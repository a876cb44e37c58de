"""A Python function in the VPC's isolated subnets, with a log group and a role of its own.

CDK's default role attaches AWSLambdaBasicExecutionRole, and a VPC function
AWSLambdaVPCAccessExecutionRole: both allow log writes on every log group of the account.
This role has one inline policy instead: log writes to the function's own log group, and the
network-interface actions Lambda performs with the execution role to attach the function
to its subnets (the managed policy's EC2 actions, per the Lambda developer guide,
"configuration-vpc": ec2:DescribeNetworkInterfaces works only on `*`, so the Describe
actions stay unscoped; the others are limited to this account and region). The policy is
part of the role resource, so it exists before CloudFormation creates the function (Lambda
checks the ENI permissions at CreateFunction). Both of the stack's functions (API and
migrations) are built here from the shared bundle.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.bundling import ARCHITECTURE, RUNTIME
from infra.config import StageSettings
from infra.constructs.log_group import stage_log_group
from infra.constructs.network import Network
from infra.nag import acknowledge, arn_in_finding

# The EC2 actions of AWSLambdaVPCAccessExecutionRole (its logs:* actions are replaced by the
# log-group-scoped statement below).
ENI_DESCRIBE_ACTIONS = ("ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets")
ENI_MANAGE_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)


def function_role(
    scope: Construct, construct_id: str, *, log_group: logs.ILogGroup, description: str
) -> iam.Role:
    stack = Stack.of(scope)
    # ENIs, subnets and security groups of this account and region.
    ec2_resources = stack.format_arn(service="ec2", resource="*", resource_name="*")
    policy = iam.PolicyDocument(
        statements=[
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            ),
            iam.PolicyStatement(actions=list(ENI_DESCRIBE_ACTIONS), resources=["*"]),
            iam.PolicyStatement(actions=list(ENI_MANAGE_ACTIONS), resources=[ec2_resources]),
        ]
    )
    role = iam.Role(
        scope,
        construct_id,
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=description,
        inline_policies={"LogsAndNetworkInterfaces": policy},
    )
    acknowledge(
        role,
        "AwsSolutions-IAM5[Resource::*]",
        "ec2:DescribeNetworkInterfaces and ec2:DescribeSubnets, which Lambda calls with the "
        "execution role to attach the function to the VPC, support no resource-level "
        "permissions: they are read-only and the only actions on `*`.",
    )
    acknowledge(
        role,
        f"AwsSolutions-IAM5[Resource::{arn_in_finding(stack, 'ec2', '*/*')}]",
        "Lambda creates and deletes the function's network interfaces with the execution "
        "role; their ids are not known in advance, so the actions are limited to EC2 "
        "resources of this account and region.",
    )
    return role


def vpc_function(
    scope: Construct,
    *,
    settings: StageSettings,
    network: Network,
    security_group_description: str,
    code: lambda_.Code,
    handler: str,
    description: str,
    role_description: str,
    sam_resource_id: str,
    timeout_seconds: int,
    environment: dict[str, str],
    **function_options: Any,
) -> lambda_.Function:
    """`scope`/SecurityGroup, `scope`/LogGroup, `scope`/Role and `scope`/Function (stable
    logical ids). The security group allows nothing: open what the function may reach with
    `function.connections.allow_to(...)`, which adds the egress and the peer's ingress."""
    security_group = network.security_group(scope, "SecurityGroup", security_group_description)
    log_group = stage_log_group(scope, "LogGroup", settings)
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
