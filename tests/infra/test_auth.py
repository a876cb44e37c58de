"""Authentication and abuse limits on the HTTP API: the JWT authorizer on exactly the routes
that need it, the Cognito pool, per-route throttles.

Three synthesized stacks: dev (auth off), prod (auth on, Cognito on the Plus plan, reads
need a token) and a variant, dev deployed with `-c auth=true` and public reads (Cognito on
the Essentials plan). An external identity provider is checked on a small probe stack.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from infra.config import DEV, PROD
from tests.infra.conftest import Synth, synthesize
from tests.infra.test_nag import (
    check_acknowledgments,
    check_no_unacknowledged_finding,
)

USERS_PATHS = ("/users", "/users/{id}")
READ_METHODS = {"GET", "HEAD"}
# ANY would include writes: it counts as one.
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE", "ANY"}
PUBLIC_ROUTES = {"$default"}
API_HANDLER = "users_api.handler.handler"


@pytest.fixture(scope="session")
def dev_auth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """dev with `-c auth=true`, reads public: the context override and the Essentials pool."""
    settings = dataclasses.replace(DEV, auth_public_reads=True)
    outdir = tmp_path_factory.mktemp("cdk-dev-auth")
    return synthesize("dev", outdir, settings=settings, auth="true")


@pytest.fixture(scope="session", params=["dev", "prod", "dev-auth"])
def variant(request: pytest.FixtureRequest, synth_stage: Callable[[str], Synth]) -> Synth:
    if request.param == "dev-auth":
        return request.getfixturevalue("dev_auth")
    return synth_stage(request.param)


@pytest.fixture(scope="session", params=["prod", "dev-auth"])
def with_pool(request: pytest.FixtureRequest) -> Synth:
    """The stacks that create a Cognito user pool."""
    return request.getfixturevalue("dev_auth" if request.param == "dev-auth" else "prod")


def routes(synth: Synth) -> dict[str, dict[str, Any]]:
    """Route key -> properties."""
    found = {}
    for route in synth.of_type("AWS::ApiGatewayV2::Route").values():
        props = route["Properties"]
        assert props["RouteKey"] not in found, props["RouteKey"]
        found[props["RouteKey"]] = props
    return found


def on_users_path(route_key: str) -> bool:
    if route_key == "$default":
        return False
    _, path = route_key.split(" ", 1)
    return path == "/users" or path.startswith("/users/")


def authorized(props: dict[str, Any]) -> bool:
    has_id = "AuthorizerId" in props
    assert has_id == (props.get("AuthorizationType", "NONE") == "JWT"), props
    return has_id


def test_every_users_method_but_options_has_its_own_route(variant: Synth) -> None:
    expected = {f"{m} {p}" for m in READ_METHODS | WRITE_METHODS - {"ANY"} for p in USERS_PATHS}
    assert set(routes(variant)) == expected | PUBLIC_ROUTES
    # No OPTIONS or ANY route on /users paths: an authorized one would also catch the
    # browsers' CORS preflight, which API Gateway answers itself when no route claims it.
    assert not any(k.startswith(("OPTIONS ", "ANY ")) for k in routes(variant))


def test_every_route_of_the_app_on_users_paths_is_an_api_route(prod: Synth) -> None:
    """A route the app adds under /users without a matching API route would be served
    through the unauthenticated `$default` route: the app's table must stay covered."""
    from users_api.app import app

    api_routes = set(routes(prod))
    for path, operations in app.openapi()["paths"].items():
        api_path = re.sub(r"\{[^}]+\}", "{id}", path)
        if not on_users_path(f"GET {api_path}"):
            continue
        for method in operations:
            assert f"{method.upper()} {api_path}" in api_routes, (method, path)


def test_writes_on_users_paths_always_need_a_token_when_auth_is_on(variant: Synth) -> None:
    settings = variant.settings
    authorizers = variant.of_type("AWS::ApiGatewayV2::Authorizer")
    for key, props in routes(variant).items():
        if not on_users_path(key):
            continue
        method = key.split(" ", 1)[0]
        if method in WRITE_METHODS:
            assert authorized(props) == settings.auth_enabled, key
        else:
            assert method in READ_METHODS, key
            assert authorized(props) == (settings.auth_enabled and not settings.auth_public_reads)
        if authorized(props):
            assert props["AuthorizerId"]["Ref"] in authorizers


def test_health_docs_and_openapi_stay_public(variant: Synth) -> None:
    # They go through `$default`, which never has an authorizer.
    for key in PUBLIC_ROUTES:
        assert not authorized(routes(variant)[key]), key
    assert not any(
        authorized(props) for key, props in routes(variant).items() if not on_users_path(key)
    )


def test_the_stages_auth_defaults(dev: Synth, prod: Synth, dev_auth: Synth) -> None:
    assert (DEV.auth_enabled, PROD.auth_enabled) == (False, True)
    assert (dev.settings.auth_enabled, prod.settings.auth_enabled) == (False, True)
    # `-c auth=true` turns it on for one deploy.
    assert dev_auth.settings.auth_enabled
    for synth in (dev, prod, dev_auth):
        _, function = synth.function(API_HANDLER)
        env = function["Properties"]["Environment"]["Variables"]
        assert env["REQUIRE_AUTH"] == ("true" if synth.settings.auth_enabled else "false")


def test_auth_off_means_no_authorizer_no_pool_and_no_auth_outputs(dev: Synth) -> None:
    assert dev.of_type("AWS::ApiGatewayV2::Authorizer") == {}
    assert dev.of_type("AWS::Cognito::UserPool") == {}
    assert dev.of_type("AWS::Cognito::UserPoolClient") == {}
    outputs = dev.template_json["Outputs"]
    assert not {"AuthIssuer", "UserPoolId", "UserPoolClientId"} & set(outputs)


def test_authorizer_trusts_the_stacks_pool_and_client(with_pool: Synth) -> None:
    synth = with_pool
    pool_id, _ = synth.one("AWS::Cognito::UserPool")
    client_id, _ = synth.one("AWS::Cognito::UserPoolClient")
    _, authorizer = synth.one("AWS::ApiGatewayV2::Authorizer")
    props = authorizer["Properties"]
    assert props["AuthorizerType"] == "JWT"
    assert props["IdentitySource"] == ["$request.header.Authorization"]
    issuer = {
        "Fn::Join": [
            "",
            [
                "https://cognito-idp.",
                {"Ref": "AWS::Region"},
                ".amazonaws.com/",
                {"Ref": pool_id},
            ],
        ]
    }
    assert props["JwtConfiguration"] == {"Audience": [{"Ref": client_id}], "Issuer": issuer}
    outputs = synth.template_json["Outputs"]
    assert outputs["AuthIssuer"]["Value"] == issuer
    assert outputs["UserPoolId"]["Value"] == {"Ref": pool_id}
    assert outputs["UserPoolClientId"]["Value"] == {"Ref": client_id}


def test_user_pool_is_admin_only_with_strong_passwords(with_pool: Synth) -> None:
    variant = with_pool
    settings = variant.settings
    assert settings.uses_cognito
    _, pool = variant.one("AWS::Cognito::UserPool")
    props = pool["Properties"]
    assert props["AdminCreateUserConfig"] == {"AllowAdminCreateUserOnly": True}
    assert props["Policies"]["PasswordPolicy"] == {
        "MinimumLength": 12,
        "RequireLowercase": True,
        "RequireNumbers": True,
        "RequireSymbols": True,
        "RequireUppercase": True,
        "TemporaryPasswordValidityDays": 3,
    }
    assert props["MfaConfiguration"] == "OPTIONAL"
    assert props["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]  # TOTP; no SMS (no SNS role)
    assert "cognito-idp.amazonaws.com" not in json.dumps(variant.of_type("AWS::IAM::Role"))
    assert props["UsernameAttributes"] == ["email"]
    assert props["UsernameConfiguration"] == {"CaseSensitive": False}
    retained = settings.removal_policy.name == "RETAIN"
    assert pool["DeletionPolicy"] == ("Retain" if retained else "Delete")
    assert props["DeletionProtection"] == ("ACTIVE" if retained else "INACTIVE")
    if settings.auth_user_pool_threat_protection:
        assert props["UserPoolTier"] == "PLUS"
        assert props["UserPoolAddOns"] == {"AdvancedSecurityMode": "ENFORCED"}
    else:
        assert props["UserPoolTier"] == "ESSENTIALS"
        assert "UserPoolAddOns" not in props


def test_app_client_has_no_secret_no_oauth_and_no_plain_password_flow(prod: Synth) -> None:
    _, client = prod.one("AWS::Cognito::UserPoolClient")
    props = client["Properties"]
    assert props.get("GenerateSecret", False) is False
    assert sorted(props["ExplicitAuthFlows"]) == [
        "ALLOW_ADMIN_USER_PASSWORD_AUTH",
        "ALLOW_REFRESH_TOKEN_AUTH",
        "ALLOW_USER_SRP_AUTH",
    ]
    assert "AllowedOAuthFlows" not in props
    assert props.get("AllowedOAuthFlowsUserPoolClient", False) is False
    assert "CallbackURLs" not in props
    assert props["PreventUserExistenceErrors"] == "ENABLED"
    assert props["EnableTokenRevocation"] is True
    assert (props["AccessTokenValidity"], props["IdTokenValidity"]) == (60, 60)
    assert props["TokenValidityUnits"]["AccessToken"] == "minutes"


def test_per_route_throttles_writes_tighter_than_reads(variant: Synth) -> None:
    settings = variant.settings
    stage_id, stage = variant.one("AWS::ApiGatewayV2::Stage")
    props = stage["Properties"]
    # The default route keeps the stage's default throttle.
    assert props["DefaultRouteSettings"] == {
        "ThrottlingRateLimit": settings.throttle_rate_limit,
        "ThrottlingBurstLimit": settings.throttle_burst_limit,
    }
    read = {
        "ThrottlingRateLimit": settings.throttle_read_rate_limit,
        "ThrottlingBurstLimit": settings.throttle_read_burst_limit,
    }
    write = {
        "ThrottlingRateLimit": settings.throttle_write_rate_limit,
        "ThrottlingBurstLimit": settings.throttle_write_burst_limit,
    }
    assert write["ThrottlingRateLimit"] < read["ThrottlingRateLimit"]
    assert write["ThrottlingBurstLimit"] < read["ThrottlingBurstLimit"]
    route_settings = props["RouteSettings"]
    users_routes = {k for k in routes(variant) if on_users_path(k)}
    assert set(route_settings) == users_routes
    for key, throttle in route_settings.items():
        method = key.split(" ", 1)[0]
        assert throttle == (read if method in READ_METHODS else write), key
    # RouteSettings may only name existing routes: the stage is created after them.
    route_ids = {
        logical_id
        for logical_id, route in variant.of_type("AWS::ApiGatewayV2::Route").items()
        if on_users_path(route["Properties"]["RouteKey"])
    }
    assert route_ids <= set(stage.get("DependsOn", [])), stage_id


def test_one_invoke_permission_for_the_whole_api(synth: Synth) -> None:
    _, permission = synth.one("AWS::Lambda::Permission")
    props = permission["Properties"]
    api_id, _ = synth.one("AWS::ApiGatewayV2::Api")
    assert props["Principal"] == "apigateway.amazonaws.com"
    # Any stage, method and path of this API (API Gateway still routes by route key).
    assert props["SourceArn"] == {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":execute-api:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                ":",
                {"Ref": api_id},
                "/*/*/*",
            ],
        ]
    }


def test_the_variant_passes_cdk_nag_with_its_own_acknowledgments(dev_auth: Synth) -> None:
    check_no_unacknowledged_finding(dev_auth)
    check_acknowledgments(dev_auth)


def test_an_external_identity_provider_replaces_the_pool() -> None:
    """With auth_jwt_issuer set, the authorizer trusts that issuer and its audiences and no
    Cognito pool is made (a small probe stack: no full synthesis needed)."""
    from aws_cdk import App, Stack
    from aws_cdk import aws_apigatewayv2 as apigwv2
    from aws_cdk import aws_apigatewayv2_integrations as integrations
    from aws_cdk.assertions import Template

    from infra.constructs.auth import Auth

    settings = dataclasses.replace(
        PROD,
        auth_jwt_issuer="https://login.example.com/tenant-1/v2.0",
        auth_jwt_audience=("api://users", "users-cli"),
    )
    assert not settings.uses_cognito
    stack = Stack(App(), "AuthProbe")
    auth = Auth(stack, "Auth", settings=settings)
    assert auth.user_pool is None
    api = apigwv2.HttpApi(stack, "Api")
    api.add_routes(
        path="/users",
        methods=[apigwv2.HttpMethod.POST],
        integration=integrations.HttpUrlIntegration("Url", "https://backend.example.com"),
        authorizer=auth.authorizer,
    )
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::Cognito::UserPool", 0)
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Authorizer",
        {
            "AuthorizerType": "JWT",
            "JwtConfiguration": {
                "Issuer": "https://login.example.com/tenant-1/v2.0",
                "Audience": ["api://users", "users-cli"],
            },
        },
    )
