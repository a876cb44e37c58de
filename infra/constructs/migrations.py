"""Migrations on deploy: a function (same bundle) that a CDK trigger runs after the database
and the proxy are ready, on every deploy whose function code or configuration changed.

It connects directly to the instance as the master user (secret read through the Secrets
Manager endpoint), applies the Alembic migrations, and creates or updates the application
role (`GRANT rds_iam`, DML on its tables) idempotently. A failed migration fails the deploy.
"""

from __future__ import annotations

from aws_cdk import Duration, triggers
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.config import APP_DB_USER, DB_NAME, DB_PORT, SERVICE_NAME, StageSettings
from infra.constructs.database import Database
from infra.constructs.network import Network
from infra.constructs.proxy import Proxy
from infra.constructs.vpc_function import vpc_function

HANDLER = "users_api.migrate.handler"


class Migrations(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StageSettings,
        network: Network,
        database: Database,
        proxy: Proxy,
        code: lambda_.Code,
    ) -> None:
        super().__init__(scope, construct_id)

        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=network.vpc,
            description="migration function: reaches PostgreSQL and Secrets Manager only",
            allow_all_outbound=False,
        )
        self.security_group.add_egress_rule(
            database.security_group, ec2.Port.tcp(DB_PORT), "migrations to PostgreSQL"
        )
        database.allow_from(self.security_group, "migrations to PostgreSQL")
        network.allow_secrets_manager_from(self.security_group)

        self.function = vpc_function(
            self,
            settings=settings,
            network=network,
            security_group=self.security_group,
            code=code,
            handler=HANDLER,
            description=f"users API migrations ({settings.name})",
            role_description="users API migrations: its log group, VPC ENIs, the master secret",
            sam_resource_id="UsersApiMigrationFunction",
            timeout_seconds=settings.migration_timeout_seconds,
            memory_size=512,
            environment={
                "DB_HOST": database.instance.db_instance_endpoint_address,
                "DB_PORT": str(DB_PORT),
                "DB_NAME": DB_NAME,
                "DB_AUTH_MODE": "secret",
                "DB_SECRET_ARN": database.secret.secret_arn,
                # RDS instance certificates do not chain to the system trust store.
                "DB_SSL": "require",
                "DB_CONNECT_TIMEOUT": str(settings.db_connect_timeout_seconds),
                "APP_DB_USER": APP_DB_USER,
                "LOG_LEVEL": settings.log_level,
                "POWERTOOLS_SERVICE_NAME": f"{SERVICE_NAME}-migrations",
            },
        )
        # The master secret, read only (no DescribeSecret, no other secret).
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue"],
                resources=[database.secret.secret_arn],
            )
        )

        self.trigger = triggers.Trigger(
            self,
            "Trigger",
            handler=self.function,
            execute_on_handler_change=True,
            execute_after=[database, proxy],
            timeout=Duration.seconds(settings.migration_timeout_seconds + 60),
        )
