"""Migrations on deploy: a function (same bundle) that a CDK trigger runs after the database
and the proxy are ready, on every deploy whose function code or configuration changed. The
stack makes the API function depend on the trigger: new code goes live only after its
schema (migrations must be expand/contract, docs/deploy.md).

It connects directly to the instance as the master user (secret read through the Secrets
Manager endpoint) with TLS verified against the RDS certificate authorities (`verify-full`,
the CA bundle shipped in the package), applies the Alembic migrations, and creates or
updates the application role (`GRANT rds_iam`, DML on its tables) idempotently. A failed
migration fails the deploy.
"""

from __future__ import annotations

from aws_cdk import Duration, triggers
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.bundling import RDS_CA_BUNDLE_PATH
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
        self.function = vpc_function(
            self,
            settings=settings,
            network=network,
            security_group_description=(
                "migration function: reaches PostgreSQL and Secrets Manager only"
            ),
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
                # RDS instance certificates chain to the RDS CAs, not to the system trust
                # store: verified against the bundle shipped at this path.
                "DB_SSL": "verify-full",
                "DB_SSL_ROOT_CERT": RDS_CA_BUNDLE_PATH,
                "DB_CONNECT_TIMEOUT": str(settings.db_connect_timeout_seconds),
                "APP_DB_USER": APP_DB_USER,
                "LOG_LEVEL": settings.log_level,
                "POWERTOOLS_SERVICE_NAME": f"{SERVICE_NAME}-migrations",
            },
        )
        self.function.connections.allow_to(
            database.instance, ec2.Port.tcp(DB_PORT), "migrations to PostgreSQL"
        )
        network.allow_secrets_manager_from(self.function)
        # The master secret, read only (no DescribeSecret, no other secret).
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue"],
                resources=[database.secret.secret_arn],
            )
        )
        # After everything in the database (instance, secret, rotation schedule) and the
        # proxy: the migration connects once they all exist.
        self.trigger = triggers.Trigger(
            self,
            "Trigger",
            handler=self.function,
            execute_on_handler_change=True,
            execute_after=[database, proxy],
            timeout=Duration.seconds(settings.migration_timeout_seconds + 60),
        )
