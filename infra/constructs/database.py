"""Database: RDS for PostgreSQL in the isolated subnets.

Encrypted storage, never publicly accessible, TLS forced (server certificates from the RDS
CA `rds-ca-rsa2048-g1`), IAM database authentication on (the proxy reaches the database as
the application role with IAM tokens), master credentials generated into Secrets Manager
and rotated on a schedule by Secrets Manager's hosted single-user rotation function (the
`AWS::SecretsManager-2024-09-16` transform creates it at deploy time: no Serverless
Application Repository fetch, so `sam local` reads the template offline). Only the
migration function and the rotation function use the master secret; the application role
has no password at all (IAM auth).

What can be seen of it: the PostgreSQL log (slow statements, connections, errors) in a
CloudWatch log group with the stage's retention, Performance Insights (Database Insights,
standard mode: 7 days of load history at no charge), and Enhanced Monitoring (OS metrics)
where the stage turns it on.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.config import DB_MASTER_USER, DB_NAME, DB_PORT, StageSettings
from infra.constructs.log_group import stage_log_group
from infra.constructs.network import Network
from infra.nag import acknowledge

# Engine-version policy (docs/deploy.md): the newest minor of PostgreSQL 16 that the pinned
# aws-cdk-lib names, pinned here (cfn-lint W3691) with automatic minor upgrades off, so the
# template always says what runs and an upgrade is a reviewed one-line change. A test fails
# when an aws-cdk-lib upgrade knows a newer 16.x minor, so the bump rides along with it;
# a major upgrade (17) is a deliberate change with its own test run against that version.
ENGINE_MAJOR = "16"
ENGINE_VERSION = rds.PostgresEngineVersion.VER_16_13
# The CA that signs the instance's server certificate; the migration function verifies it
# against the RDS CA bundle shipped in its package (infra/bundling.py).
CA_CERTIFICATE = rds.CaCertificate.RDS_CA_RSA2048_G1
# Logs exported to CloudWatch: the server log, and the log of major-version upgrades.
LOG_EXPORTS = ("postgresql", "upgrade")
PARAMETERS = {
    "rds.force_ssl": "1",
    # Statements slower than 1 s are logged (with their duration) in the exported log.
    "log_min_duration_statement": "1000",
}


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
        self.settings = settings
        self.security_group = network.security_group(
            self,
            "SecurityGroup",
            "PostgreSQL instance: reachable from the proxy, migrations, rotation",
        )
        self.instance = self._instance(network)
        self.log_groups = self._log_groups()
        self.secret = self._master_secret()
        self.rotation = self._rotation(network)
        self._acknowledge_findings()

    def _instance(self, network: Network) -> rds.DatabaseInstance:
        settings = self.settings
        engine = rds.DatabaseInstanceEngine.postgres(version=ENGINE_VERSION)
        parameters = rds.ParameterGroup(
            self,
            "Parameters",
            engine=engine,
            description="users API PostgreSQL parameters",
            parameters=PARAMETERS,
        )
        monitoring = settings.db_monitoring_interval_seconds
        return rds.DatabaseInstance(
            self,
            "Instance",
            engine=engine,
            # A fixed name: the exported log group's name derives from it, so that group is
            # created (with its retention) before the instance; and a change that would
            # replace the instance fails instead of silently creating an empty database.
            instance_identifier=self.identifier,
            instance_type=ec2.InstanceType(settings.db_instance_class),
            vpc=network.vpc,
            vpc_subnets=network.isolated_subnets,
            security_groups=[self.security_group],
            port=DB_PORT,
            database_name=DB_NAME,
            credentials=rds.Credentials.from_generated_secret(DB_MASTER_USER),
            parameter_group=parameters,
            ca_certificate=CA_CERTIFICATE,
            iam_authentication=True,
            storage_encrypted=True,
            storage_type=rds.StorageType.GP3,
            allocated_storage=settings.db_allocated_storage_gib,
            max_allocated_storage=settings.db_max_allocated_storage_gib,
            multi_az=settings.db_multi_az,
            publicly_accessible=False,
            auto_minor_version_upgrade=False,
            cloudwatch_logs_exports=list(LOG_EXPORTS),
            enable_performance_insights=True,
            performance_insight_retention=rds.PerformanceInsightRetention.DEFAULT,
            monitoring_interval=Duration.seconds(monitoring) if monitoring else None,
            backup_retention=Duration.days(settings.db_backup_retention_days),
            copy_tags_to_snapshot=True,
            deletion_protection=settings.db_deletion_protection,
            removal_policy=settings.removal_policy,
        )

    @property
    def identifier(self) -> str:
        return f"users-api-{self.settings.name}"

    def _log_groups(self) -> list[logs.LogGroup]:
        """The groups RDS exports to, made first with the stage's retention and removal policy
        (RDS would otherwise create them itself, kept forever)."""
        groups = []
        for log in LOG_EXPORTS:
            group = stage_log_group(
                self,
                f"{log.capitalize()}Log",
                self.settings,
                log_group_name=f"/aws/rds/instance/{self.identifier}/{log}",
            )
            self.instance.node.add_dependency(group)
            groups.append(group)
        return groups

    def _master_secret(self) -> secretsmanager.ISecret:
        assert self.instance.secret is not None
        # The generated secret itself follows the stage's removal policy, like the instance:
        # a retained prod database keeps the credentials that open it.
        generated = self.instance.node.find_child("Secret")
        assert isinstance(generated, rds.DatabaseSecret)
        generated.apply_removal_policy(self.settings.removal_policy)
        self._exclude_characters = generated.exclude_characters
        # The secret attached to the instance (its ARN is the secret's ARN).
        return self.instance.secret

    def _rotation(self, network: Network) -> secretsmanager.RotationSchedule:
        """Single-user rotation of the master secret (hosted by Secrets Manager).

        The rotation function runs in the isolated subnets and reaches Secrets Manager
        through the interface endpoint; new passwords avoid the same characters as the
        generated one. No rotation when the schedule is created: Secrets Manager would
        otherwise rotate at once, while the first deploy's migration trigger reads the
        secret and connects (docs/deploy.md, "First deploy and rotation"); it then runs
        only the rotation function's testSecret step, which changes no password.
        """
        security_group = network.security_group(
            self,
            "RotationSecurityGroup",
            "master secret rotation function: PostgreSQL and Secrets Manager",
        )
        hosted = secretsmanager.HostedRotation.postgre_sql_single_user(
            vpc=network.vpc,
            vpc_subnets=network.isolated_subnets,
            security_groups=[security_group],
            exclude_characters=self._exclude_characters,
        )
        rotation = self.secret.add_rotation_schedule(
            "RotationSchedule",
            automatically_after=Duration.days(self.settings.db_secret_rotation_days),
            rotate_immediately_on_update=False,
            hosted_rotation=hosted,
        )
        self.instance.connections.allow_from(
            hosted, ec2.Port.tcp(DB_PORT), "rotation to PostgreSQL"
        )
        network.allow_secrets_manager_from(hosted)
        return rotation

    def _acknowledge_findings(self) -> None:
        settings = self.settings
        acknowledge(
            self.instance,
            "AwsSolutions-RDS11",
            "Port obscurity adds no protection here: the instance is in isolated subnets and "
            "its security group admits only the proxy, migration and rotation functions.",
        )
        if settings.db_monitoring_interval_seconds:
            acknowledge(
                self.instance,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AmazonRDSEnhancedMonitoringRole]",
                "The role RDS assumes to publish Enhanced Monitoring: AWS's policy for it only "
                "writes to the RDSOSMetrics log group, and AWS keeps it current.",
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
