"""HTTP API (API Gateway v2): a Lambda proxy integration on the `$default` stage, so the app
answers at the root URL (`/users`, `/docs`, `/openapi.json`).

Routes (all to the same function):

- every method the app could act on at a /users path has its own route: GET and HEAD (reads)
  and POST, PUT, PATCH, DELETE (writes) on `/users` and `/users/{id}`. With auth on, the
  writes always carry the JWT authorizer and require the write scope; the reads carry it
  and require the read scope unless the stage makes reads public (`AuthorizationScopes`:
  a valid token without the route's scope gets 403 from API Gateway). No `ANY` route
  there: an `ANY` route with an authorizer would also catch the browsers' unauthenticated
  CORS preflight (OPTIONS), which API Gateway answers itself when no route claims it.
- `$default`, without authorizer, for the rest: `/health`, `/docs`, `/openapi.json`, unknown
  paths (404), and OPTIONS or unusual methods (the app answers 405 to a method it lacks).
  No /users operation reaches a handler through it: the app's /users routes are exactly
  the ones above, and with REQUIRE_AUTH the app answers 401 to one without authorizer claims
  and 403 to one without the scope in any case.

With auth off (only with a reason: `-c insecure_disable_auth="<why>"`), synthesis warns and
each /users route is acknowledged as public with that reason.

The routes exist whether or not auth is on, so the per-route throttles (writes tighter than
reads) apply on every stage; the stage's default throttle covers `$default`. CORS comes
from the stage settings; access logs go to CloudWatch Logs as one JSON object per request.
"""

from __future__ import annotations

import json

import jsii
from aws_cdk import Annotations, Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import StageSettings
from infra.constructs.log_group import stage_log_group
from infra.nag import acknowledge

USERS_PATHS = ("/users", "/users/{id}")
READ_METHODS = (apigwv2.HttpMethod.GET, apigwv2.HttpMethod.HEAD)
READ_KEYS = {m.value for m in READ_METHODS}
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
        # One invoke permission for the whole API (any route of its stage), not one per route.
        self.integration = integrations.HttpLambdaIntegration(
            "Lambda", handler, scope_permission_to_route=False
        )
        self.api = apigwv2.HttpApi(
            self,
            "Api",
            description=f"users API ({settings.name})",
            default_integration=self.integration,
            cors_preflight=_cors(settings),
            create_default_stage=False,
        )
        self.routes: dict[str, apigwv2.HttpRoute] = {}
        self._add_users_routes(settings, authorizer)
        self.access_log_group = stage_log_group(self, "AccessLogs", settings)
        self.stage = self._default_stage(settings)
        acknowledge(
            self.api.node.find_child("DefaultRoute").node.default_child,
            "AwsSolutions-APIG4",
            "Deliberately public catch-all: /health, /docs, /openapi.json and unknown paths; "
            "every method on /users paths but OPTIONS has its own route.",
        )
        if authorizer is None:
            Annotations.of(self).add_warning_v2(
                "users-api:auth-disabled",
                f"AUTHENTICATION IS OFF on stage {settings.name}: anyone who finds the URL "
                f"can read, create, change and delete users. Reason given: "
                f"{settings.auth_disabled_reason}",
            )

    def _add_users_routes(
        self, settings: StageSettings, authorizer: apigwv2.IHttpRouteAuthorizer | None
    ) -> None:
        """One route per method and /users path, each with its authorizer and scope (or an
        acknowledgment of why it is public)."""
        reads_public = authorizer is None or settings.auth_public_reads
        for path in USERS_PATHS:
            for method in (*READ_METHODS, *WRITE_METHODS):
                is_read = method in READ_METHODS
                public = reads_public if is_read else authorizer is None
                scope = settings.auth_read_scope if is_read else settings.auth_write_scope
                (route,) = self.api.add_routes(
                    path=path,
                    methods=[method],
                    integration=self.integration,
                    authorizer=None if public else authorizer,
                    authorization_scopes=None if public else [scope],
                )
                self.routes[f"{method.value} {path}"] = route
                if public:
                    acknowledge(
                        route.node.default_child, "AwsSolutions-APIG4", _public_reason(settings)
                    )

    def _default_stage(self, settings: StageSettings) -> apigwv2.HttpStage:
        stage = apigwv2.HttpStage(
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
        read = _route_throttle(
            settings.throttle_read_rate_limit, settings.throttle_read_burst_limit
        )
        write = _route_throttle(
            settings.throttle_write_rate_limit, settings.throttle_write_burst_limit
        )
        cfn_stage = stage.node.default_child
        assert isinstance(cfn_stage, apigwv2.CfnStage)
        cfn_stage.add_property_override(
            "RouteSettings",
            {key: read if key.split(" ")[0] in READ_KEYS else write for key in self.routes},
        )
        for route in self.routes.values():
            stage.node.add_dependency(route)
        return stage

    @property
    def url(self) -> str:
        return self.api.api_endpoint


def _route_throttle(rate_limit: int, burst_limit: int) -> dict[str, int]:
    """One route's throttle in a stage's RouteSettings."""
    return {"ThrottlingRateLimit": rate_limit, "ThrottlingBurstLimit": burst_limit}


def _cors(settings: StageSettings) -> apigwv2.CorsPreflightOptions | None:
    if not settings.cors_allow_origins:
        return None
    return apigwv2.CorsPreflightOptions(
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


def _public_reason(settings: StageSettings) -> str:
    """Why a /users route has no authorizer (cdk-nag APIG4), in the stage's own words."""
    if not settings.auth_enabled:
        return (
            f"Authentication is off on stage {settings.name} by explicit choice "
            f"(auth_disabled_reason): {settings.auth_disabled_reason}"
        )
    return (
        f"Reads are public on stage {settings.name} (auth_public_reads); "
        "the writes on this path carry the JWT authorizer and the write scope."
    )
