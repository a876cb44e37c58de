"""HTTP API (API Gateway v2): a Lambda proxy integration on the `$default` stage, so the app
answers at the root URL (`/users`, `/docs`, `/openapi.json`).

Routes (all to the same function):

- every method the app could act on at a /users path has its own route: GET and HEAD (reads)
  and POST, PUT, PATCH, DELETE (writes) on `/users` and `/users/{id}`. With auth on, the
  writes always carry the JWT authorizer and the reads carry it unless the stage makes
  reads public. No `ANY` route there: an `ANY` route with an authorizer would also catch
  the browsers' unauthenticated CORS preflight (OPTIONS), which API Gateway answers itself
  when no route claims it.
- `$default`, without authorizer, for the rest: `/health`, `/docs`, `/openapi.json`, unknown
  paths (404), and OPTIONS or unusual methods (the app answers 405 to a method it lacks).
  No write reaches a handler through it: the app's write routes are exactly the ones above,
  and with REQUIRE_AUTH it answers 401 to a write without authorizer claims in any case.

The routes exist whether or not auth is on, so the per-route throttles (writes tighter than
reads) apply on every stage; the stage's default throttle covers `$default`. CORS comes
from the stage settings; access logs go to CloudWatch Logs as one JSON object per request.
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

USERS_PATHS = ("/users", "/users/{id}")
READ_METHODS = (apigwv2.HttpMethod.GET, apigwv2.HttpMethod.HEAD)
WRITE_METHODS = (
    apigwv2.HttpMethod.POST,
    apigwv2.HttpMethod.PUT,
    apigwv2.HttpMethod.PATCH,
    apigwv2.HttpMethod.DELETE,
)

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
        authorizer: apigwv2.IHttpRouteAuthorizer | None,
    ) -> None:
        """`authorizer`: the JWT authorizer when auth is on, None when it is off."""
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

        # One invoke permission for the whole API (any route of its stage), not one per route.
        integration = integrations.HttpLambdaIntegration(
            "Lambda", handler, scope_permission_to_route=False
        )
        self.api = apigwv2.HttpApi(
            self,
            "Api",
            description=f"users API ({settings.name})",
            default_integration=integration,
            cors_preflight=cors,
            create_default_stage=False,
        )

        # Route key -> route and -> its throttle; and each route left without authorizer,
        # with the reason it is public (for cdk-nag).
        self.routes: dict[str, apigwv2.HttpRoute] = {}
        route_settings: dict[str, dict[str, int]] = {}
        public_routes: list[tuple[apigwv2.HttpRoute, str]] = []
        read_throttle = {
            "ThrottlingRateLimit": settings.throttle_read_rate_limit,
            "ThrottlingBurstLimit": settings.throttle_read_burst_limit,
        }
        write_throttle = {
            "ThrottlingRateLimit": settings.throttle_write_rate_limit,
            "ThrottlingBurstLimit": settings.throttle_write_burst_limit,
        }
        reads_public = authorizer is None or settings.auth_public_reads
        for path in USERS_PATHS:
            for method in (*READ_METHODS, *WRITE_METHODS):
                is_read = method in READ_METHODS
                route_authorizer = None if is_read and reads_public else authorizer
                (route,) = self.api.add_routes(
                    path=path,
                    methods=[method],
                    integration=integration,
                    authorizer=route_authorizer,
                )
                key = f"{method.value} {path}"
                self.routes[key] = route
                route_settings[key] = read_throttle if is_read else write_throttle
                if route_authorizer is not None:
                    continue
                if authorizer is None:
                    public_routes.append(
                        (
                            route,
                            f"Authentication is off on stage {settings.name} (auth_enabled, "
                            "or -c auth=false): the routes stay so their throttles apply.",
                        )
                    )
                else:
                    public_routes.append(
                        (
                            route,
                            f"Reads are public on stage {settings.name} (auth_public_reads); "
                            "the writes on this path carry the JWT authorizer.",
                        )
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
        # Per-route throttles (the L2 stage only sets the default route's): a route key in
        # RouteSettings must name an existing route, so the stage waits for the routes.
        cfn_stage = self.stage.node.default_child
        assert isinstance(cfn_stage, apigwv2.CfnStage)
        cfn_stage.add_property_override("RouteSettings", route_settings)
        for route in self.routes.values():
            self.stage.node.add_dependency(route)

        # cdk-nag: each route without authorizer is public on purpose, for its own reason.
        default_route = self.api.node.find_child("DefaultRoute")
        acknowledge(
            default_route.node.default_child,
            "AwsSolutions-APIG4",
            "Deliberately public catch-all: /health, /docs, /openapi.json and unknown paths; "
            "every method on /users paths but OPTIONS has its own route.",
        )
        for route, reason in public_routes:
            acknowledge(route.node.default_child, "AwsSolutions-APIG4", reason)

    @property
    def url(self) -> str:
        return self.api.api_endpoint
