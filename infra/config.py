"""Stage settings: the one typed place where dev and prod differ.

Everything a stage changes (sizes, throttles, retention, removal policy, CORS, alarm
thresholds) is a field of `StageSettings`; constructs read these fields and never test the
stage name.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs

DEFAULT_STAGE = "dev"


@dataclass(frozen=True, slots=True, kw_only=True)
class StageSettings:
    name: str

    # database (RDS for PostgreSQL)
    db_instance_class: str  # an RDS class without the `db.` prefix, e.g. t4g.micro
    db_allocated_storage_gib: int
    db_max_allocated_storage_gib: int
    db_multi_az: bool
    db_backup_retention_days: int
    db_deletion_protection: bool
    # DESTROY in dev; RETAIN in prod (the database, its secret, the log groups).
    removal_policy: RemovalPolicy
    # Days between automatic rotations of the master secret (the migration user's).
    db_secret_rotation_days: int

    # RDS Proxy
    proxy_idle_client_timeout_seconds: int
    proxy_max_connections_percent: int
    proxy_max_idle_connections_percent: int

    # API function
    function_memory_mb: int
    function_timeout_seconds: int
    function_reserved_concurrency: int | None
    db_connect_timeout_seconds: int
    db_statement_timeout_seconds: int
    log_level: str

    # migration function (runs once per deploy whose code changed)
    migration_timeout_seconds: int

    # HTTP API
    throttle_rate_limit: int  # steady-state requests per second, default route
    throttle_burst_limit: int
    cors_allow_origins: tuple[str, ...]  # empty: no CORS configuration

    # logs
    log_retention: logs.RetentionDays
    flow_log_traffic: ec2.FlowLogTrafficType

    # alarms
    alarm_api_5xx_rate_percent: float
    alarm_api_p99_latency_ms: int
    alarm_function_errors: int  # errors per 5 minutes
    alarm_proxy_client_connections: int

    @property
    def stack_name(self) -> str:
        return f"UsersApi-{self.name}"

    def __post_init__(self) -> None:
        # The function must outlive a failed connection attempt, and API Gateway HTTP APIs
        # give an integration at most 30 s.
        if not self.db_connect_timeout_seconds < self.function_timeout_seconds <= 30:
            raise ValueError("need db_connect_timeout < function_timeout <= 30 s")
        if not 1 <= self.proxy_max_idle_connections_percent <= self.proxy_max_connections_percent:
            raise ValueError("need 1 <= proxy max idle % <= proxy max connections %")
        if not 1 <= self.proxy_max_connections_percent <= 100:
            raise ValueError("proxy_max_connections_percent must be 1..100")
        if (
            self.function_reserved_concurrency is not None
            and self.function_reserved_concurrency < 1
        ):
            raise ValueError("function_reserved_concurrency must be None or >= 1")


DEV = StageSettings(
    name="dev",
    db_instance_class="t4g.micro",
    db_allocated_storage_gib=20,
    db_max_allocated_storage_gib=50,
    db_multi_az=False,
    db_backup_retention_days=1,
    db_deletion_protection=False,
    removal_policy=RemovalPolicy.DESTROY,
    db_secret_rotation_days=30,
    proxy_idle_client_timeout_seconds=900,
    proxy_max_connections_percent=90,
    proxy_max_idle_connections_percent=50,
    function_memory_mb=512,
    function_timeout_seconds=15,
    function_reserved_concurrency=None,
    db_connect_timeout_seconds=5,
    db_statement_timeout_seconds=10,
    log_level="DEBUG",
    migration_timeout_seconds=300,
    throttle_rate_limit=20,
    throttle_burst_limit=40,
    cors_allow_origins=("http://localhost:3000", "http://127.0.0.1:3000"),
    log_retention=logs.RetentionDays.ONE_WEEK,
    flow_log_traffic=ec2.FlowLogTrafficType.REJECT,
    alarm_api_5xx_rate_percent=5.0,
    alarm_api_p99_latency_ms=3000,
    alarm_function_errors=5,
    alarm_proxy_client_connections=80,
)

PROD = StageSettings(
    name="prod",
    db_instance_class="t4g.medium",
    db_allocated_storage_gib=50,
    db_max_allocated_storage_gib=200,
    db_multi_az=True,
    db_backup_retention_days=14,
    db_deletion_protection=True,
    removal_policy=RemovalPolicy.RETAIN,
    db_secret_rotation_days=30,
    proxy_idle_client_timeout_seconds=1800,
    proxy_max_connections_percent=80,
    proxy_max_idle_connections_percent=40,
    function_memory_mb=1024,
    function_timeout_seconds=15,
    function_reserved_concurrency=50,
    db_connect_timeout_seconds=5,
    db_statement_timeout_seconds=10,
    log_level="INFO",
    migration_timeout_seconds=600,
    throttle_rate_limit=200,
    throttle_burst_limit=400,
    # No browser front end is deployed yet: add its origin here when there is one.
    cors_allow_origins=(),
    log_retention=logs.RetentionDays.THREE_MONTHS,
    flow_log_traffic=ec2.FlowLogTrafficType.ALL,
    alarm_api_5xx_rate_percent=1.0,
    alarm_api_p99_latency_ms=1500,
    alarm_function_errors=1,
    alarm_proxy_client_connections=400,
)

STAGES: dict[str, StageSettings] = {s.name: s for s in (DEV, PROD)}


def get_stage(name: str | None) -> StageSettings:
    """The settings of stage `name` (default dev); a clear error for an unknown one."""
    key = name or DEFAULT_STAGE
    try:
        return STAGES[key]
    except KeyError:
        raise ValueError(f"unknown stage {key!r}: expected one of {sorted(STAGES)}") from None


# Names shared by the constructs (the same in every stage).
DB_NAME = "users"
DB_PORT = 5432
# The master user: only the migration function (and the secret rotation) log in as it.
DB_MASTER_USER = "users_admin"
# The least-privileged application role (DML on the users API's tables, `rds_iam`): the
# API function connects as it through the proxy, with IAM auth tokens and no password.
APP_DB_USER = "users_app"
SERVICE_NAME = "users-api"
METRICS_NAMESPACE = "UsersApi"
