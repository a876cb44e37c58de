"""Database: RDS for PostgreSQL 16 in the isolated subnets.

Encrypted storage, never publicly accessible, TLS forced, IAM database authentication on
(the proxy reaches the database as the application role with IAM tokens), master
credentials generated into Secrets Manager and rotated on a schedule by Secrets Manager's
hosted single-user rotation function (the `AWS::SecretsManager-2024-09-16` transform creates
it at deploy time: no Serverless Application Repository fetch, so `sam local` reads the
template offline). Only the migration function and the rotation function use the master
secret; the application role has no password at all (IAM auth).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.config import DB_MASTER_USER, DB_NAME, DB_PORT, StageSettings
from infra.constructs.network import Network
from infra.nag import acknowledge

# A pinned minor version (cfn-lint W3691): upgrades are a reviewed one-line change here,
# so automatic minor upgrades are off and the template always says what runs.
ENGINE_VERSION = rds.PostgresEngineVersion.VER_16_13


class Database(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StageSettings,
        network: Network,
    ) -> None:
        super().__init__(scope, construct_id)
        engine = rds.DatabaseInstanceEngine.postgres(version=ENGINE_VERSION)

        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=network.vpc,
            description="PostgreSQL instance: reachable from the proxy, migrations, rotation",
            allow_all_outbound=False,
        )
        parameters = rds.ParameterGroup(
            self,
            "Parameters",
            engine=engine,
            description="users API PostgreSQL parameters",
            parameters={
                "rds.force_ssl": "1",
                "log_min_duration_statement": "1000",
            },
        )

        self.instance = rds.DatabaseInstance(
            self,
            "Instance",
            engine=engine,
            instance_type=ec2.InstanceType(settings.db_instance_class),
            vpc=network.vpc,
            vpc_subnets=network.isolated_subnets,
            security_groups=[self.security_group],
            port=DB_PORT,
            database_name=DB_NAME,
            credentials=rds.Credentials.from_generated_secret(DB_MASTER_USER),
            parameter_group=parameters,
            iam_authentication=True,
            storage_encrypted=True,
            storage_type=rds.StorageType.GP3,
            allocated_storage=settings.db_allocated_storage_gib,
            max_allocated_storage=settings.db_max_allocated_storage_gib,
            multi_az=settings.db_multi_az,
            publicly_accessible=False,
            auto_minor_version_upgrade=False,
            backup_retention=Duration.days(settings.db_backup_retention_days),
            copy_tags_to_snapshot=True,
            deletion_protection=settings.db_deletion_protection,
            removal_policy=settings.removal_policy,
        )
        assert self.instance.secret is not None
        # The secret attached to the instance (its ARN is the secret's ARN).
        self.secret = self.instance.secret
        # The generated secret itself follows the stage's removal policy, like the instance:
        # a retained prod database keeps the credentials that open it.
        generated = self.instance.node.find_child("Secret")
        assert isinstance(generated, rds.DatabaseSecret)
        generated.apply_removal_policy(settings.removal_policy)

        # Single-user rotation of the master secret (hosted by Secrets Manager). The rotation
        # function runs in the isolated subnets and reaches Secrets Manager through the
        # interface endpoint; new passwords avoid the same characters as the generated one.
        self.rotation_security_group = ec2.SecurityGroup(
            self,
            "RotationSecurityGroup",
            vpc=network.vpc,
            description="master secret rotation function: PostgreSQL and Secrets Manager",
            allow_all_outbound=False,
        )
        self.rotation = self.secret.add_rotation_schedule(
            "RotationSchedule",
            automatically_after=Duration.days(settings.db_secret_rotation_days),
            hosted_rotation=secretsmanager.HostedRotation.postgre_sql_single_user(
                vpc=network.vpc,
                vpc_subnets=network.isolated_subnets,
                security_groups=[self.rotation_security_group],
                exclude_characters=generated.exclude_characters,
            ),
        )
        self.rotation_security_group.add_egress_rule(
            self.security_group, ec2.Port.tcp(DB_PORT), "rotation to PostgreSQL"
        )
        self.allow_from(self.rotation_security_group, "rotation to PostgreSQL")
        network.allow_secrets_manager_from(self.rotation_security_group)

        acknowledge(
            self.instance,
            "AwsSolutions-RDS11",
            "Port obscurity adds no protection here: the instance is in isolated subnets and "
            "its security group admits only the proxy, migration and rotation functions.",
        )
        if not settings.db_multi_az:
            acknowledge(
                self.instance,
                "AwsSolutions-RDS3",
                f"Stage {settings.name} is a single-AZ development database (cost); "
                "the prod stage settings enable Multi-AZ.",
            )
        if not settings.db_deletion_protection:
            acknowledge(
                self.instance,
                "AwsSolutions-RDS10",
                f"Stage {settings.name} is torn down with `cdk destroy` (removal policy "
                "DESTROY); the prod stage settings enable deletion protection and RETAIN.",
            )

    def allow_from(self, peer: ec2.IConnectable, description: str) -> None:
        self.instance.connections.allow_from(peer, ec2.Port.tcp(DB_PORT), description)
