"""Monitoring: alarms on the API function, the HTTP API and the proxy.

Each alarm treats missing data as not breaching (an idle dev stage is not an incident).
They have no actions yet: subscribe them to an SNS topic or a chat integration per account.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.config import StageSettings
from infra.constructs.proxy import Proxy

PERIOD = Duration.minutes(5)


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StageSettings,
        function: lambda_.Function,
        api: apigwv2.HttpApi,
        proxy: Proxy,
    ) -> None:
        super().__init__(scope, construct_id)
        prefix = settings.stack_name

        def alarm(
            alarm_id: str,
            metric: cloudwatch.IMetric,
            threshold: float,
            description: str,
            evaluation_periods: int = 1,
        ) -> cloudwatch.Alarm:
            return cloudwatch.Alarm(
                self,
                alarm_id,
                alarm_name=f"{prefix}-{alarm_id}",
                alarm_description=description,
                metric=metric,
                threshold=threshold,
                evaluation_periods=evaluation_periods,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )

        self.function_errors = alarm(
            "FunctionErrors",
            function.metric_errors(period=PERIOD, statistic="Sum"),
            settings.alarm_function_errors,
            "API function invocations that raised (not HTTP 5xx answers) in 5 minutes",
        )
        self.function_throttles = alarm(
            "FunctionThrottles",
            function.metric_throttles(period=PERIOD, statistic="Sum"),
            1,
            "API function invocations throttled (reserved or account concurrency reached)",
        )
        self.api_5xx_rate = alarm(
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
            settings.alarm_api_5xx_rate_percent,
            "HTTP API 5xx responses, percent of requests, over 5 minutes (2 periods in a row)",
            evaluation_periods=2,
        )
        self.api_latency_p99 = alarm(
            "ApiLatencyP99",
            api.metric_latency(period=PERIOD, statistic="p99"),
            settings.alarm_api_p99_latency_ms,
            "HTTP API p99 latency in milliseconds over 5 minutes (3 periods in a row)",
            evaluation_periods=3,
        )
        self.proxy_client_connections = alarm(
            "ProxyClientConnections",
            cloudwatch.Metric(
                namespace="AWS/RDS",
                metric_name="ClientConnections",
                dimensions_map={"ProxyName": proxy.proxy.db_proxy_name},
                period=PERIOD,
                statistic="Maximum",
            ),
            settings.alarm_proxy_client_connections,
            "Client connections open on the RDS Proxy (function concurrency running away)",
        )
