"""API function: the FastAPI app (Mangum handler) on Lambda, Python 3.12 on arm64.

It sits in the isolated subnets and may only talk to the proxy (its security group has one
egress rule). It connects as the least-privileged application role with an IAM auth token
it signs locally: its environment holds no secret, and its IAM policy allows
`rds-db:connect` to that proxy as that role alone. With SnapStart on (a stage setting), API
Gateway invokes the alias `live` of the latest published version.

Schema before code: the function (its version and alias too) depends on the migration
trigger, so CloudFormation updates the code only after this deploy's migrations ran.
"""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.config import (
    APP_DB_USER,
    DB_NAME,
    DB_PORT,
    METRICS_NAMESPACE,
    SERVICE_NAME,
    StageSettings,
)
from infra.constructs.migrations import Migrations
from infra.constructs.network import Network
from infra.constructs.proxy import Proxy
from infra.constructs.vpc_function import vpc_function

HANDLER = "users_api.handler.handler"


def environment(settings: StageSettings, proxy: Proxy) -> dict[str, str]:
    """The API function's environment: every name is a field of users_api.settings.Settings
    (a test checks it; pydantic-settings ignores unknown names)."""
    return {
        "DB_HOST": proxy.endpoint,
        "DB_PORT": str(DB_PORT),
        "DB_NAME": DB_NAME,
        "DB_USER": APP_DB_USER,
        "DB_AUTH_MODE": "iam",
        # The proxy's certificate is from Amazon Trust Services (ACM): the runtime's trust
        # store verifies it.
        "DB_SSL": "verify-full",
        "DB_CONNECT_TIMEOUT": str(settings.db_connect_timeout_seconds),
        "DB_STATEMENT_TIMEOUT": str(settings.db_statement_timeout_seconds),
        # The HTTP API's $default stage serves the app at the root URL.
        "API_ROOT_PATH": "",
        "LOG_LEVEL": settings.log_level,
        "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        # Defence in depth behind the HTTP API's JWT authorizer: the app answers 401 to a
        # write whose event carries no authorizer claims.
        "REQUIRE_AUTH": "true" if settings.auth_enabled else "false",
        "MAX_BODY_BYTES": str(settings.max_body_bytes),
    }


class ApiFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StageSettings,
        network: Network,
        proxy: Proxy,
        migrations: Migrations,
        code: lambda_.Code,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = vpc_function(
            self,
            settings=settings,
            network=network,
            security_group_description="users API function: may only reach the RDS Proxy",
            code=code,
            handler=HANDLER,
            description=f"users API ({settings.name})",
            role_description="users API function: its log group, VPC ENIs",
            sam_resource_id="UsersApiFunction",
            timeout_seconds=settings.function_timeout_seconds,
            memory_size=settings.function_memory_mb,
            # Bounded by the proxy's connection budget (see StageSettings).
            reserved_concurrent_executions=settings.function_reserved_concurrency,
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if settings.snap_start else None,
            environment=environment(settings, proxy),
        )
        self.function.connections.allow_to(
            proxy.proxy, ec2.Port.tcp(DB_PORT), "API function to RDS Proxy"
        )
        proxy.grant_connect(self.function, APP_DB_USER)
        # The function resource and its children (the published version): not its security
        # group, which the proxy's ingress rule (a dependency of the trigger) references.
        self.function.node.add_dependency(migrations.trigger)
        # What API Gateway invokes: with SnapStart, a published version (snapshots exist only
        # for versions) behind a stable alias; otherwise $LATEST.
        self.entry: lambda_.IFunction = self.function
        if settings.snap_start:
            self.entry = lambda_.Alias(
                self, "Live", alias_name="live", version=self.function.current_version
            )
            self.entry.node.add_dependency(migrations.trigger)
