"""HTTP API (API Gateway v2): a Lambda proxy integration on the `$default` route and stage,
so the app answers at the root URL (`/users`, `/docs`, `/openapi.json`).

Default-route throttling and CORS come from the stage settings; access logs go to
CloudWatch Logs as one JSON object per request.
"""

from __future__ import annotations

import json

import jsii
from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import StageSettings
from infra.nag import acknowledge

# HTTP API $context variables:
# https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-logging-variables.html
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "requestTime": "$context.requestTime",
    "ip": "$context.identity.sourceIp",
    "userAgent": "$context.identity.userAgent",
    "httpMethod": "$context.httpMethod",
    "path": "$context.path",
    "routeKey": "$context.routeKey",
    "protocol": "$context.protocol",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationStatus": "$context.integrationStatus",
    "integrationError": "$context.integrationErrorMessage",
    "errorMessage": "$context.error.message",
}


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogSettings:
    def __init__(self, log_group: logs.ILogGroup) -> None:
        self._destination = apigwv2.LogGroupLogDestination(log_group)

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        return apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FIELDS, separators=(",", ":")))


class HttpApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StageSettings,
        handler: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)

        cors = None
        if settings.cors_allow_origins:
            cors = apigwv2.CorsPreflightOptions(
                allow_origins=list(settings.cors_allow_origins),
                allow_methods=[
                    apigwv2.CorsHttpMethod.GET,
                    apigwv2.CorsHttpMethod.POST,
                    apigwv2.CorsHttpMethod.PATCH,
                    apigwv2.CorsHttpMethod.DELETE,
                    apigwv2.CorsHttpMethod.OPTIONS,
                ],
                allow_headers=["content-type", "authorization", "x-request-id"],
                expose_headers=["location", "link", "x-request-id"],
                max_age=Duration.hours(1),
            )

        self.api = apigwv2.HttpApi(
            self,
            "Api",
            description=f"users API ({settings.name})",
            default_integration=integrations.HttpLambdaIntegration("Lambda", handler),
            cors_preflight=cors,
            create_default_stage=False,
        )

        self.access_log_group = logs.LogGroup(
            self,
            "AccessLogs",
            retention=settings.log_retention,
            removal_policy=settings.removal_policy,
        )
        self.stage = apigwv2.HttpStage(
            self,
            "DefaultStage",
            http_api=self.api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                rate_limit=settings.throttle_rate_limit,
                burst_limit=settings.throttle_burst_limit,
            ),
            access_log_settings=_AccessLogSettings(self.access_log_group),
        )

        # cdk-nag: the $default route has no authorizer yet (the contract's API is open and
        # REQUIRE_AUTH is "false"); adding one is a later issue.
        for route in self.api.node.find_all():
            if isinstance(route, apigwv2.CfnRoute):
                acknowledge(
                    route,
                    "AwsSolutions-APIG4",
                    "The users API contract (v1) is unauthenticated and REQUIRE_AUTH is false; "
                    "an authorizer comes with the authentication issue, throttling limits abuse.",
                )

    @property
    def url(self) -> str:
        return self.api.api_endpoint
