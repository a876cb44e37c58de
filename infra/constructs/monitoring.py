"""Monitoring: one SNS topic that pages, the alarms that notify it, and a dashboard.

Every alarm notifies the stage's topic when it fires and when it clears (OK), so whoever
is subscribed (an email from `-c alarm_email=...`, or a pager or chat integration wired to
the `AlarmTopicArn` output) hears both. Thresholds come from the stage settings, where
each has its reason. Missing data is not breaching: an idle dev stage is not an incident.

Coverage, one box of the architecture diagram at a time: the HTTP API (5xx rate, p99
latency), the API function (errors, throttles, duration near its timeout, concurrency
near its reserved limit), the migration function (errors), the RDS Proxy (client
connections), the database (CPU, free storage, freeable memory, connections, and CPU
credits on burstable classes).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.config import StageSettings
from infra.constructs.database import Database
from infra.constructs.proxy import Proxy
from infra.nag import acknowledge

PERIOD = Duration.minutes(5)
GIB = 2**30
MIB = 2**20
ABOVE = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
BELOW = cloudwatch.ComparisonOperator.LESS_THAN_OR_EQUAL_TO_THRESHOLD


@dataclass(frozen=True)
class Watched:
    """What the monitoring looks at."""

    api: apigwv2.HttpApi
    function: lambda_.Function
    migration_function: lambda_.Function
    proxy: Proxy
    database: Database


class Monitoring(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: StageSettings, watched: Watched
    ) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        self.topic = self._topic()
        self.alarms: list[cloudwatch.Alarm] = []
        self._api_alarms(watched.api)
        self._function_alarms(watched.function, watched.migration_function)
        self._database_alarms(watched.proxy, watched.database)
        self.dashboard = self._dashboard()

    @property
    def dashboard_url(self) -> str:
        region = Stack.of(self).region
        return (
            f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
            f"#dashboards/dashboard/{self.settings.stack_name}"
        )

    def _topic(self) -> sns.Topic:
        topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name=f"{self.settings.stack_name} alarms",
            enforce_ssl=True,
        )
        if self.settings.alarm_email:
            topic.add_subscription(subscriptions.EmailSubscription(self.settings.alarm_email))
        acknowledge(
            topic,
            "AwsSolutions-SNS2",
            "Alarm notifications carry alarm names, states and metric values, no data of the "
            "API; CloudWatch cannot publish to a topic under the AWS-managed SNS key, and a "
            "customer key only for these messages would add cost without protecting data.",
        )
        return topic

    def _alarm(
        self,
        alarm_id: str,
        metric: cloudwatch.IMetric,
        threshold: float,
        description: str,
        *,
        comparison: cloudwatch.ComparisonOperator = ABOVE,
        periods: int = 1,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            alarm_id,
            alarm_name=f"{self.settings.stack_name}-{alarm_id}",
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            comparison_operator=comparison,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        action = actions.SnsAction(self.topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
        self.alarms.append(alarm)
        return alarm

    def _api_alarms(self, api: apigwv2.HttpApi) -> None:
        s = self.settings
        self._alarm(
            "Api5xxRate",
            cloudwatch.MathExpression(
                expression="IF(requests > 0, 100 * errors / requests, 0)",
                using_metrics={
                    "errors": api.metric_server_error(period=PERIOD, statistic="Sum"),
                    "requests": api.metric_count(period=PERIOD, statistic="Sum"),
                },
                label="5xx responses (% of requests)",
                period=PERIOD,
            ),
            s.alarm_api_5xx_rate_percent,
            "HTTP API 5xx responses, percent of requests, over 5 minutes (2 periods in a row)",
            periods=2,
        )
        self._alarm(
            "ApiLatencyP99",
            api.metric_latency(period=PERIOD, statistic="p99"),
            s.alarm_api_p99_latency_ms,
            "HTTP API p99 latency in milliseconds over 5 minutes (3 periods in a row)",
            periods=3,
        )

    def _function_alarms(self, function: lambda_.Function, migrations: lambda_.Function) -> None:
        s = self.settings
        self._alarm(
            "FunctionErrors",
            function.metric_errors(period=PERIOD, statistic="Sum"),
            s.alarm_function_errors,
            "API function invocations that raised (not HTTP 5xx answers) in 5 minutes",
        )
        self._alarm(
            "FunctionThrottles",
            function.metric_throttles(period=PERIOD, statistic="Sum"),
            1,
            "API function invocations throttled (reserved or account concurrency reached)",
        )
        self._alarm(
            "FunctionDuration",
            function.metric_duration(period=PERIOD, statistic="p99"),
            s.function_timeout_seconds * 1000 * s.alarm_function_duration_percent / 100,
            f"API function p99 duration at {s.alarm_function_duration_percent}% of its "
            f"{s.function_timeout_seconds} s timeout (2 periods in a row)",
            periods=2,
        )
        self._alarm(
            "FunctionConcurrency",
            function.metric("ConcurrentExecutions", period=PERIOD, statistic="Maximum"),
            s.function_reserved_concurrency * s.alarm_function_concurrency_percent / 100,
            f"API function concurrent executions at {s.alarm_function_concurrency_percent}% "
            f"of its reserved {s.function_reserved_concurrency}: throttling is next",
        )
        self._alarm(
            "MigrationErrors",
            migrations.metric_errors(period=PERIOD, statistic="Sum"),
            1,
            "The migration function failed (the deploy that ran it failed too; a manual "
            "re-run failed)",
        )

    def _database_alarms(self, proxy: Proxy, database: Database) -> None:
        s = self.settings
        self._alarm(
            "ProxyClientConnections",
            cloudwatch.Metric(
                namespace="AWS/RDS",
                metric_name="ClientConnections",
                dimensions_map={"ProxyName": proxy.proxy.db_proxy_name},
                period=PERIOD,
                statistic="Maximum",
            ),
            s.alarm_proxy_client_connections,
            "Client connections open on the RDS Proxy (function concurrency running away)",
        )
        instance = database.instance
        self._alarm(
            "DatabaseCpu",
            instance.metric_cpu_utilization(period=PERIOD, statistic="Average"),
            s.alarm_db_cpu_percent,
            f"Database CPU at {s.alarm_db_cpu_percent}% or more for 15 minutes",
            periods=3,
        )
        self._alarm(
            "DatabaseFreeStorage",
            instance.metric_free_storage_space(period=PERIOD, statistic="Minimum"),
            s.db_allocated_storage_gib * GIB * s.alarm_db_free_storage_percent / 100,
            f"Database free storage at {s.alarm_db_free_storage_percent}% of the allocated "
            f"{s.db_allocated_storage_gib} GiB or less",
            comparison=BELOW,
        )
        self._alarm(
            "DatabaseFreeableMemory",
            instance.metric_freeable_memory(period=PERIOD, statistic="Minimum"),
            s.alarm_db_freeable_memory_mib * MIB,
            f"Database freeable memory at {s.alarm_db_freeable_memory_mib} MiB or less",
            comparison=BELOW,
            periods=2,
        )
        self._alarm(
            "DatabaseConnections",
            instance.metric_database_connections(period=PERIOD, statistic="Maximum"),
            s.db_max_connections * s.alarm_db_connections_percent // 100,
            f"Database connections at {s.alarm_db_connections_percent}% of max_connections "
            f"({s.db_max_connections} on {s.db_instance_class})",
        )
        if s.db_burstable:
            self._alarm(
                "DatabaseCpuCredits",
                instance.metric("CPUCreditBalance", period=PERIOD, statistic="Minimum"),
                s.alarm_db_cpu_credit_balance,
                f"Database CPU credit balance at {s.alarm_db_cpu_credit_balance} or less: "
                "the burstable instance is about to be held to its baseline",
                comparison=BELOW,
            )

    def _dashboard(self) -> cloudwatch.Dashboard:
        dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=self.settings.stack_name,
            default_interval=Duration.hours(3),
        )
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(
                title="Alarms", alarms=list(self.alarms), width=24, height=4
            )
        )
        graphs = [
            cloudwatch.GraphWidget(
                title=alarm.node.id,
                left=[alarm.metric],
                left_annotations=[alarm.to_annotation()],
                width=8,
                height=6,
            )
            for alarm in self.alarms
        ]
        for row in range(0, len(graphs), 3):
            dashboard.add_widgets(*graphs[row : row + 3])
        return dashboard
