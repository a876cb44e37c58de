"""Stage settings: the one typed place where dev and prod differ.

Everything a stage changes (sizes, throttles, concurrency, authentication, retention,
removal policy, CORS, alarm thresholds) is a field of `StageSettings`; constructs read these
fields and never test the stage name. `__post_init__` refuses inconsistent settings, e.g. a
reserved concurrency the proxy's connection budget cannot serve.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Node

from infra.nag import MIN_REASON_LENGTH

DEFAULT_STAGE = "dev"
# The one way to deploy a stage without authentication; its value is the reason.
DISABLE_AUTH_CONTEXT = "insecure_disable_auth"
# An OAuth scope token (RFC 6749 3.3); a Cognito custom scope is `<resource server>/<name>`.
SCOPE = re.compile(r"[!#-\[\]-~]+")
COGNITO_SCOPE = re.compile(r"[!#-.0-\[\]-~]+/[!#-.0-\[\]-~]+")

# RDS for PostgreSQL's default `max_connections` is
# LEAST({DBInstanceClassMemory / 9531392}, 5000). The memory of each class we may use, in GiB
# (add a class here before using it):
DB_INSTANCE_MEMORY_GIB: dict[str, int] = {
    "t4g.micro": 1,
    "t4g.small": 2,
    "t4g.medium": 4,
    "t4g.large": 8,
    "t4g.xlarge": 16,
    "m7g.large": 8,
    "m7g.xlarge": 16,
    "r7g.large": 16,
    "r7g.xlarge": 32,
}
BYTES_PER_CONNECTION = 9_531_392
MAX_CONNECTIONS_CAP = 5000
# The largest body the app may accept: a synchronous Lambda invocation carries at most 6 MB
# (the whole event: headers, and a binary body base64-encoded, 4/3 of its size), well below
# API Gateway's own 10 MB payload limit.
MAX_BODY_BYTES_LIMIT = 4 * 1024 * 1024
# The intervals RDS Enhanced Monitoring accepts (0: off).
MONITORING_INTERVALS = (0, 1, 5, 10, 15, 30, 60)
EMAIL = re.compile(r"[^@\s,]+@[^@\s,]+\.[^@\s,]+")


def db_max_connections(instance_class: str) -> int:
    """The default `max_connections` of an RDS for PostgreSQL instance of this class.

    An upper bound: DBInstanceClassMemory is the class's memory less what the OS and the RDS
    processes take, so the instance reports somewhat fewer; the reserved concurrencies below
    leave a wide margin for that.
    """
    try:
        memory_gib = DB_INSTANCE_MEMORY_GIB[instance_class]
    except KeyError:
        raise ValueError(
            f"unknown db_instance_class {instance_class!r}: add its memory to "
            "DB_INSTANCE_MEMORY_GIB in infra/config.py"
        ) from None
    return min(memory_gib * 2**30 // BYTES_PER_CONNECTION, MAX_CONNECTIONS_CAP)


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
    # Enhanced Monitoring (OS metrics: processes, memory, I/O) every N seconds; 0 turns it
    # off. It costs CloudWatch Logs ingestion, so it is on where someone is paged.
    db_monitoring_interval_seconds: int

    # RDS Proxy
    proxy_idle_client_timeout_seconds: int
    proxy_max_connections_percent: int
    proxy_max_idle_connections_percent: int

    # API function
    function_memory_mb: int
    function_timeout_seconds: int
    # The API function's ceiling on simultaneous invocations. Each in-flight invocation holds
    # at most one proxy connection (NullPool: one connection per invocation, closed at its
    # end), and in the worst case (a session pinned by its state) the proxy gives each its
    # own database connection, so a flood must not run more invocations than the proxy may
    # open database connections: reserved concurrency <= proxy_connection_budget (checked
    # below). Invocations beyond it are throttled by Lambda (an API error, and the
    # FunctionThrottles alarm) instead of exhausting the database's connections.
    function_reserved_concurrency: int
    # Lambda SnapStart (opt-in): the API is served by a published version behind the alias
    # `live`; imports, the engine object and a warm-up request happen before the snapshot.
    snap_start: bool
    db_connect_timeout_seconds: int
    db_statement_timeout_seconds: int
    log_level: str
    # Larger request bodies get 413 from the app (MAX_BODY_BYTES).
    max_body_bytes: int

    # migration function (runs once per deploy whose code changed)
    migration_timeout_seconds: int

    # HTTP API
    throttle_rate_limit: int  # steady-state requests per second, default route
    throttle_burst_limit: int
    # Per-route throttles: reads (GET, HEAD on /users and /users/{id}) and writes (POST, PUT,
    # PATCH, DELETE there); writes are the tighter ones.
    throttle_read_rate_limit: int
    throttle_read_burst_limit: int
    throttle_write_rate_limit: int
    throttle_write_burst_limit: int
    cors_allow_origins: tuple[str, ...]  # empty: no CORS configuration

    # Authentication (JWT authorizer on the HTTP API): on in every stage. Off only with a
    # recorded reason, e.g. for one deploy `-c insecure_disable_auth="<why>"` (with_overrides).
    auth_enabled: bool
    auth_disabled_reason: str | None = None
    # The scopes reads and writes need (the route's `AuthorizationScopes`, the app's check).
    # With Cognito: `<resource server>/<scope>`, one resource server for both.
    auth_read_scope: str = "users/read"
    auth_write_scope: str = "users/write"
    # GET and HEAD on /users paths without a token (writes always need one when auth is on).
    auth_public_reads: bool
    # An external identity provider's issuer URL and accepted audiences (`aud`/`client_id`);
    # None: the stack creates a Cognito user pool and app client and trusts those.
    auth_jwt_issuer: str | None
    auth_jwt_audience: tuple[str, ...]
    # The created user pool on the Plus feature plan with full threat protection (adaptive
    # authentication, compromised-credentials checks); costs extra per monthly active user.
    auth_user_pool_threat_protection: bool

    # logs (the functions', the HTTP API's, the VPC flow logs and PostgreSQL's)
    log_retention: logs.RetentionDays
    flow_log_traffic: ec2.FlowLogTrafficType

    # Alarms: every one notifies the stage's SNS topic when it fires and when it clears.
    # An email address subscribed to that topic (`-c alarm_email=...`); None: none, wire
    # the topic (its ARN is an output) to a pager or chat integration instead.
    alarm_email: str | None = None
    # A user-visible failure rate: 5xx answers as a percent of requests over 5 minutes, two
    # periods in a row (a single bad minute of a cold dev stack is noise).
    alarm_api_5xx_rate_percent: float
    # p99 latency of the HTTP API, three 5-minute periods in a row: the contract's budget
    # for a request, well under the 30 s integration timeout.
    alarm_api_p99_latency_ms: int
    alarm_function_errors: int  # invocations that raised (not 5xx answers) per 5 minutes
    # p99 duration as a percent of the function's timeout: requests about to be cut off.
    alarm_function_duration_percent: int
    # Concurrent executions as a percent of the reserved concurrency: throttling is next.
    alarm_function_concurrency_percent: int
    # Client connections on the proxy (one per in-flight invocation, NullPool): at most
    # the reserved concurrency; the alarm fires before that ceiling.
    alarm_proxy_client_connections: int
    # Sustained CPU: queries queue up and the statement timeout starts failing requests.
    alarm_db_cpu_percent: int
    # Free storage as a percent of the allocated storage: storage autoscaling grows the
    # volume at 10% free, so a lower value means it cannot (max_allocated reached).
    alarm_db_free_storage_percent: int
    # Freeable memory below this (MiB): the instance is about to swap.
    alarm_db_freeable_memory_mib: int
    # Database connections as a percent of max_connections, above the proxy's own share
    # (proxy_max_connections_percent, checked): the proxy alone cannot reach it, so firing
    # means other sessions (migrations, rotation, a person) crowd the last free slots.
    alarm_db_connections_percent: int
    # Burstable classes only (db.t*): below this many CPU credits the instance is about
    # to be throttled to its baseline.
    alarm_db_cpu_credit_balance: int

    @property
    def stack_name(self) -> str:
        return f"UsersApi-{self.name}"

    @property
    def db_max_connections(self) -> int:
        return db_max_connections(self.db_instance_class)

    @property
    def db_burstable(self) -> bool:
        """A burstable class (t4g, ...): CPU credits can run out."""
        return self.db_instance_class.startswith("t")

    @property
    def proxy_connection_budget(self) -> int:
        """Database connections the proxy may open: its percent of `max_connections`."""
        return self.db_max_connections * self.proxy_max_connections_percent // 100

    @property
    def uses_cognito(self) -> bool:
        """The stack creates a Cognito user pool (auth on, no external issuer)."""
        return self.auth_enabled and self.auth_jwt_issuer is None

    def __post_init__(self) -> None:
        self._check_function()
        self._check_throttles()
        self._check_auth()
        self._check_alarms()

    def _check_function(self) -> None:
        # The function must outlive a failed connection attempt, and API Gateway HTTP APIs
        # give an integration at most 30 s.
        if not self.db_connect_timeout_seconds < self.function_timeout_seconds <= 30:
            raise ValueError("need db_connect_timeout < function_timeout <= 30 s")
        if not 1 <= self.proxy_max_idle_connections_percent <= self.proxy_max_connections_percent:
            raise ValueError("need 1 <= proxy max idle % <= proxy max connections %")
        if not 1 <= self.proxy_max_connections_percent <= 100:
            raise ValueError("proxy_max_connections_percent must be 1..100")
        if self.function_reserved_concurrency < 1:
            raise ValueError("function_reserved_concurrency must be >= 1")
        if self.function_reserved_concurrency > self.proxy_connection_budget:
            raise ValueError(
                f"function_reserved_concurrency {self.function_reserved_concurrency} exceeds "
                f"the proxy's connection budget {self.proxy_connection_budget} "
                f"({self.proxy_max_connections_percent}% of max_connections "
                f"{self.db_max_connections} on {self.db_instance_class})"
            )
        if not 1 <= self.max_body_bytes <= MAX_BODY_BYTES_LIMIT:
            raise ValueError(f"max_body_bytes must be 1..{MAX_BODY_BYTES_LIMIT}")
        if self.db_monitoring_interval_seconds not in MONITORING_INTERVALS:
            raise ValueError(
                f"db_monitoring_interval_seconds must be one of {MONITORING_INTERVALS}"
            )

    def _check_throttles(self) -> None:
        for kind in ("read", "write"):
            rate = getattr(self, f"throttle_{kind}_rate_limit")
            burst = getattr(self, f"throttle_{kind}_burst_limit")
            if not 1 <= rate <= burst:
                raise ValueError(f"need 1 <= throttle_{kind}_rate_limit <= burst limit")
        if (
            self.throttle_write_rate_limit > self.throttle_read_rate_limit
            or self.throttle_write_burst_limit > self.throttle_read_burst_limit
        ):
            raise ValueError("write throttles must not be looser than read throttles")

    def _check_auth(self) -> None:
        if self.auth_jwt_issuer is not None:
            if not self.auth_jwt_issuer.startswith("https://"):
                raise ValueError("auth_jwt_issuer must be an https:// URL")
            if not self.auth_jwt_audience:
                raise ValueError("auth_jwt_issuer needs at least one auth_jwt_audience")
        elif self.auth_jwt_audience:
            raise ValueError("auth_jwt_audience without auth_jwt_issuer (Cognito sets its own)")
        self._check_auth_choice()

    def _check_auth_choice(self) -> None:
        reason = (self.auth_disabled_reason or "").strip()
        if not self.auth_enabled and len(reason) < MIN_REASON_LENGTH:
            raise ValueError(
                f"auth is off on stage {self.name} without a reason: say why in "
                f"auth_disabled_reason (-c {DISABLE_AUTH_CONTEXT}=...), at least "
                f"{MIN_REASON_LENGTH} characters"
            )
        if self.auth_enabled and reason:
            raise ValueError("auth_disabled_reason is set but auth is on")
        scopes = (self.auth_read_scope, self.auth_write_scope)
        if self.auth_read_scope == self.auth_write_scope:
            raise ValueError("auth_read_scope and auth_write_scope must differ")
        pattern = SCOPE if self.auth_jwt_issuer is not None else COGNITO_SCOPE
        if not all(pattern.fullmatch(scope) for scope in scopes):
            raise ValueError(f"bad scope name in {scopes}: expected {pattern.pattern}")
        if self.auth_jwt_issuer is None and len({s.split("/")[0] for s in scopes}) != 1:
            raise ValueError("with Cognito both scopes belong to one resource server")

    def _check_alarms(self) -> None:
        if not 1 <= self.alarm_proxy_client_connections <= self.function_reserved_concurrency:
            raise ValueError(
                "alarm_proxy_client_connections must be 1..function_reserved_concurrency "
                "(the most client connections the function can open)"
            )
        for field in (
            "alarm_function_duration_percent",
            "alarm_function_concurrency_percent",
            "alarm_db_cpu_percent",
            "alarm_db_free_storage_percent",
            "alarm_db_connections_percent",
        ):
            if not 1 <= getattr(self, field) <= 100:
                raise ValueError(f"{field} must be 1..100")
        if self.alarm_db_connections_percent <= self.proxy_max_connections_percent:
            raise ValueError(
                "alarm_db_connections_percent must exceed proxy_max_connections_percent"
            )
        if self.alarm_email is not None and not EMAIL.fullmatch(self.alarm_email):
            raise ValueError("alarm_email must be one email address")


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
    db_monitoring_interval_seconds=0,
    proxy_idle_client_timeout_seconds=900,
    proxy_max_connections_percent=90,
    proxy_max_idle_connections_percent=50,
    function_memory_mb=512,
    function_timeout_seconds=15,
    # max_connections ~ 1 GiB / 9531392 = 112 on t4g.micro; the proxy may use 90%: 100.
    # 20 concurrent invocations (20 connections at most) leave 80 spare, so even an
    # instance reporting a quarter fewer connections than the formula keeps a wide margin.
    function_reserved_concurrency=20,
    snap_start=False,
    db_connect_timeout_seconds=5,
    db_statement_timeout_seconds=10,
    log_level="DEBUG",
    max_body_bytes=1024 * 1024,
    migration_timeout_seconds=300,
    throttle_rate_limit=20,
    throttle_burst_limit=40,
    throttle_read_rate_limit=20,
    throttle_read_burst_limit=40,
    throttle_write_rate_limit=5,
    throttle_write_burst_limit=10,
    cors_allow_origins=("http://localhost:3000", "http://127.0.0.1:3000"),
    auth_enabled=True,
    auth_public_reads=False,
    auth_jwt_issuer=None,
    auth_jwt_audience=(),
    auth_user_pool_threat_protection=False,
    log_retention=logs.RetentionDays.ONE_WEEK,
    flow_log_traffic=ec2.FlowLogTrafficType.REJECT,
    alarm_api_5xx_rate_percent=5.0,
    alarm_api_p99_latency_ms=3000,
    alarm_function_errors=5,
    alarm_function_duration_percent=80,
    alarm_function_concurrency_percent=80,
    alarm_proxy_client_connections=16,  # 80% of the reserved concurrency
    alarm_db_cpu_percent=90,
    alarm_db_free_storage_percent=10,
    # t4g.micro has 1 GiB, of which PostgreSQL's shared buffers take a quarter.
    alarm_db_freeable_memory_mib=64,
    alarm_db_connections_percent=95,
    # A t4g.micro earns 12 credits an hour: 12 is an hour of baseline left.
    alarm_db_cpu_credit_balance=12,
)

# Prod is dev, except: a larger Multi-AZ instance kept on deletion, more concurrency and
# throttle room, authentication, longer logs, and alarms that fire sooner.
PROD = replace(
    DEV,
    name="prod",
    db_instance_class="t4g.medium",
    db_allocated_storage_gib=50,
    db_max_allocated_storage_gib=200,
    db_multi_az=True,
    db_backup_retention_days=14,
    db_deletion_protection=True,
    removal_policy=RemovalPolicy.RETAIN,
    db_monitoring_interval_seconds=60,
    proxy_idle_client_timeout_seconds=1800,
    proxy_max_connections_percent=80,
    proxy_max_idle_connections_percent=40,
    function_memory_mb=1024,
    # max_connections ~ 4 GiB / 9531392 = 450 on t4g.medium; the proxy may use 80%: 360.
    # 100 concurrent invocations (100 connections at most) use under a third of it; at
    # ~100 ms a request that is ~1000 requests/s, five times the default-route throttle.
    function_reserved_concurrency=100,
    log_level="INFO",
    migration_timeout_seconds=600,
    throttle_rate_limit=200,
    throttle_burst_limit=400,
    throttle_read_rate_limit=200,
    throttle_read_burst_limit=400,
    throttle_write_rate_limit=50,
    throttle_write_burst_limit=100,
    # No browser front end is deployed yet: add its origin here when there is one.
    cors_allow_origins=(),
    auth_enabled=True,
    auth_user_pool_threat_protection=True,
    log_retention=logs.RetentionDays.THREE_MONTHS,
    flow_log_traffic=ec2.FlowLogTrafficType.ALL,
    alarm_api_5xx_rate_percent=1.0,
    alarm_api_p99_latency_ms=1500,
    alarm_function_errors=1,
    alarm_proxy_client_connections=80,  # 80% of the reserved concurrency
    alarm_db_cpu_percent=80,
    alarm_db_freeable_memory_mib=256,  # of 4 GiB
    alarm_db_connections_percent=90,
    # A t4g.medium earns 24 credits an hour.
    alarm_db_cpu_credit_balance=24,
)

STAGES: dict[str, StageSettings] = {s.name: s for s in (DEV, PROD)}


def parse_bool_context(key: str, value: object) -> bool:
    """A boolean CDK context value: `-c key=true|false` arrives as a string."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"context {key}={value!r}: expected true or false")


def with_overrides(
    settings: StageSettings,
    *,
    insecure_disable_auth: object | None = None,
    auth: object | None = None,
    alarm_email: object | None = None,
) -> StageSettings:
    """`settings` with the per-deploy overrides given as CDK context:
    `-c insecure_disable_auth="<why>"` deploys the stage without authentication (its value
    is the reason, recorded in the cdk-nag acknowledgments; synthesis warns);
    `-c alarm_email=...` subscribes an address to the stage's alarm topic. The old
    `-c auth=...` is refused rather than ignored, so no pipeline keeps passing it unseen."""
    if auth is not None:
        raise ValueError(
            f"context auth={auth!r} is no longer read: authentication is on in every stage; "
            f"to deploy one without it pass -c {DISABLE_AUTH_CONTEXT}='<why>'"
        )
    changes: dict[str, object] = {}
    if insecure_disable_auth is not None:
        changes["auth_enabled"] = False
        changes["auth_disabled_reason"] = str(insecure_disable_auth).strip()
    if alarm_email is not None and str(alarm_email).strip():
        changes["alarm_email"] = str(alarm_email).strip()
    return replace(settings, **changes) if changes else settings


def settings_from_context(node: Node, name: str | None = None) -> StageSettings:
    """The settings of stage `name` (default: `-c stage=...`) with this deploy's overrides:
    the one reader of the stage's context values, for `make deploy` and the pipeline alike."""
    return with_overrides(
        get_stage(name or node.try_get_context("stage")),
        insecure_disable_auth=node.try_get_context(DISABLE_AUTH_CONTEXT),
        auth=node.try_get_context("auth"),
        alarm_email=node.try_get_context("alarm_email"),
    )


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
