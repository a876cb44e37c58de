"""RDS Proxy in front of the database, with end-to-end IAM authentication.

Clients must use TLS and an IAM auth token (`DefaultAuthScheme: IAM_AUTH`); the proxy then
reaches the database with IAM too, as the same database user. So the application role has
no password and no secret anywhere: the proxy's role may `rds-db:connect` to the instance
as that role alone, and each client may `rds-db:connect` to the proxy as that role alone.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Fn, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_rds as rds
from constructs import Construct

from infra.config import APP_DB_USER, StageSettings
from infra.constructs.database import Database
from infra.constructs.network import Network


class Proxy(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StageSettings,
        network: Network,
        database: Database,
    ) -> None:
        super().__init__(scope, construct_id)

        self.security_group = network.security_group(
            self,
            "SecurityGroup",
            "RDS Proxy: reachable from the API function; reaches the database",
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("rds.amazonaws.com"),
            description="RDS Proxy: connects to the database as the application role (IAM)",
        )
        self.proxy = rds.DatabaseProxy(
            self,
            "Proxy",
            proxy_target=rds.ProxyTarget.from_instance(database.instance),
            vpc=network.vpc,
            vpc_subnets=network.isolated_subnets,
            security_groups=[self.security_group],
            role=self.role,
            # End-to-end IAM: clients and the proxy itself authenticate with IAM tokens, so
            # no secret is attached (the L2 emits no `Auth` list without secrets).
            default_auth_scheme=rds.DefaultAuthScheme.IAM_AUTH,
            require_tls=True,
            idle_client_timeout=Duration.seconds(settings.proxy_idle_client_timeout_seconds),
            max_connections_percent=settings.proxy_max_connections_percent,
            max_idle_connections_percent=settings.proxy_max_idle_connections_percent,
            # A client waits at most this long for a database connection (120 s by default):
            # with the database down the API answers 503 within its connect timeout instead
            # of holding the invocation until Lambda's own timeout.
            borrow_timeout=Duration.seconds(settings.db_connect_timeout_seconds),
            debug_logging=False,
        )
        # The proxy -> database leg: IAM auth as the application role, nothing else. The
        # network path (the proxy's egress and the database's ingress on 5432) is opened by
        # the proxy target itself (`allowDefaultPortFrom(proxy)` in CDK's DatabaseProxy).
        database.instance.grant_connect(self.role, APP_DB_USER)

    @property
    def endpoint(self) -> str:
        return self.proxy.endpoint

    @property
    def resource_id(self) -> str:
        """The proxy's resource id (`prx-...`): the last field of its ARN."""
        return Fn.select(6, Fn.split(":", self.proxy.db_proxy_arn))

    def grant_connect(self, grantee: iam.IGrantable, db_user: str = APP_DB_USER) -> None:
        """Allow `grantee` to open IAM-authenticated connections to the proxy as `db_user`."""
        stack = Stack.of(self)
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["rds-db:connect"],
            resource_arns=[
                stack.format_arn(
                    service="rds-db",
                    resource="dbuser",
                    resource_name=f"{self.resource_id}/{db_user}",
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                )
            ],
        )
