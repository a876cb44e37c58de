"""Authentication, authorization and abuse limits on the HTTP API: the JWT authorizer and
its scopes on exactly the routes that need them, the Cognito pool (resource server, groups,
scopes trigger), auth on by default and off only loudly, per-route throttles.

Synthesized stacks: dev and prod as `cdk synth` builds them (auth on, Cognito on Essentials /
Plus, reads need the read scope), dev deployed with `-c insecure_disable_auth=...`, and dev
with an external issuer, its own scope names and public reads.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.config import DEV, PROD, STAGES
from tests.infra.conftest import Synth, synthesize
from tests.infra.test_nag import (
    check_acknowledgments,
    check_no_unacknowledged_finding,
    nag_acknowledgments,
)

USERS_PATHS = ("/users", "/users/{id}")
READ_METHODS = {"GET", "HEAD"}
# ANY would include writes: it counts as one.
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE", "ANY"}
PUBLIC_ROUTES = {"$default"}
API_HANDLER = "users_api.handler.handler"
NO_AUTH_REASON = "Throwaway load-test stack, no real data, deleted after the run (ticket 42)"
EXTERNAL = dataclasses.replace(
    DEV,
    auth_jwt_issuer="https://login.example.com/tenant-1/v2.0",
    auth_jwt_audience=("api://users", "users-cli"),
    auth_read_scope="read:users",
    auth_write_scope="write:users",
    auth_public_reads=True,
)


@pytest.fixture(scope="session")
def dev_no_auth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """dev deployed with `-c insecure_disable_auth=<reason>`: the one way to turn auth off."""
    outdir = tmp_path_factory.mktemp("cdk-dev-no-auth")
    return synthesize("dev", outdir, insecure_disable_auth=NO_AUTH_REASON)


@pytest.fixture(scope="session")
def external(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """An external issuer with its own scope names, reads public."""
    return synthesize("dev", tmp_path_factory.mktemp("cdk-external"), settings=EXTERNAL)


VARIANTS = ["dev", "prod", "dev-no-auth", "external"]


@pytest.fixture(scope="session", params=VARIANTS)
def variant(request: pytest.FixtureRequest, synth_stage: Callable[[str], Synth]) -> Synth:
    if request.param in ("dev-no-auth", "external"):
        return request.getfixturevalue(request.param.replace("-", "_"))
    return synth_stage(request.param)


@pytest.fixture(scope="session", params=["dev", "prod"])
def with_pool(request: pytest.FixtureRequest, synth_stage: Callable[[str], Synth]) -> Synth:
    """The stacks that create a Cognito user pool."""
    return synth_stage(request.param)


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


def test_users_routes_need_a_token_with_the_operations_scope(variant: Synth) -> None:
    settings = variant.settings
    authorizers = variant.of_type("AWS::ApiGatewayV2::Authorizer")
    for key, props in routes(variant).items():
        if not on_users_path(key):
            continue
        method = key.split(" ", 1)[0]
        if method in WRITE_METHODS:
            assert authorized(props) == settings.auth_enabled, key
            scopes = [settings.auth_write_scope]
        else:
            assert method in READ_METHODS, key
            assert authorized(props) == (settings.auth_enabled and not settings.auth_public_reads)
            scopes = [settings.auth_read_scope]
        if authorized(props):
            assert props["AuthorizerId"]["Ref"] in authorizers
            # The token must carry the operation's scope (an ID token carries none).
            assert props["AuthorizationScopes"] == scopes, key
        else:
            assert "AuthorizationScopes" not in props, key


def test_health_docs_and_openapi_stay_public(variant: Synth) -> None:
    # They go through `$default`, which never has an authorizer.
    for key in PUBLIC_ROUTES:
        assert not authorized(routes(variant)[key]), key
    assert not any(
        authorized(props) for key, props in routes(variant).items() if not on_users_path(key)
    )


def test_auth_is_on_in_every_stage_and_the_app_rechecks_scopes(
    dev: Synth, prod: Synth, dev_no_auth: Synth, external: Synth
) -> None:
    assert all(stage.auth_enabled for stage in STAGES.values())
    assert (dev.settings.auth_enabled, prod.settings.auth_enabled) == (True, True)
    assert not dev_no_auth.settings.auth_enabled
    for synth in (dev, prod, dev_no_auth, external):
        settings = synth.settings
        _, function = synth.function(API_HANDLER)
        env = function["Properties"]["Environment"]["Variables"]
        assert env["REQUIRE_AUTH"] == ("true" if settings.auth_enabled else "false")
        assert (env["AUTH_READ_SCOPE"], env["AUTH_WRITE_SCOPE"]) == (
            settings.auth_read_scope,
            settings.auth_write_scope,
        )
        assert env["AUTH_PUBLIC_READS"] == ("true" if settings.auth_public_reads else "false")


def test_turning_auth_off_is_loud(dev_no_auth: Synth) -> None:
    """The context flag's value is the reason: it is in every public route's cdk-nag
    acknowledgment, and synthesis warns."""
    assert dev_no_auth.settings.auth_disabled_reason == NO_AUTH_REASON
    warnings = [
        entry["data"]
        for entries in dev_no_auth.metadata.values()
        for entry in entries
        if entry["type"] == "aws:cdk:warning"
    ]
    assert any(
        "AUTHENTICATION IS OFF on stage dev" in str(w) and NO_AUTH_REASON in str(w)
        for w in warnings
    ), warnings
    public = {
        path: reason
        for (path, rule), reason in nag_acknowledgments(dev_no_auth).items()
        if rule == "AwsSolutions-APIG4" and "DefaultRoute" not in path
    }
    assert len(public) == len(USERS_PATHS) * 6
    assert all(NO_AUTH_REASON in reason for reason in public.values())


def test_auth_never_turns_off_quietly(tmp_path_factory: pytest.TempPathFactory) -> None:
    from infra.config import with_overrides

    # The old switch is refused, not ignored; a reason is required, and it must say something.
    with pytest.raises(ValueError, match="insecure_disable_auth"):
        with_overrides(DEV, auth="false")
    for too_short in ("true", "yes", "  ", "x" * 39):
        with pytest.raises(ValueError, match="without a reason"):
            with_overrides(DEV, insecure_disable_auth=too_short)
    with pytest.raises(ValueError, match="without a reason"):
        dataclasses.replace(PROD, auth_enabled=False)
    with pytest.raises(ValueError, match="auth is on"):
        dataclasses.replace(PROD, auth_disabled_reason=NO_AUTH_REASON)
    with pytest.raises(ValueError, match="insecure_disable_auth"):
        synthesize("prod", tmp_path_factory.mktemp("cdk-old-switch"), auth="false")


NAMES = st.one_of(st.text(max_size=12), st.from_regex(r"(users|api)/[a-z.:]{1,5}", fullmatch=True))


@given(read=NAMES, write=NAMES, external=st.booleans())
def test_scope_names_are_checked(read: str, write: str, external: bool) -> None:
    """Any pair of names: accepted only when they are distinct OAuth scope tokens, and with
    Cognito two scopes of one resource server."""
    from infra.config import COGNITO_SCOPE, SCOPE

    base = EXTERNAL if external else DEV
    token = SCOPE if external else COGNITO_SCOPE
    valid = (
        read != write
        and bool(token.fullmatch(read) and token.fullmatch(write))
        and (external or read.split("/")[0] == write.split("/")[0])
    )
    try:
        dataclasses.replace(base, auth_read_scope=read, auth_write_scope=write)
    except ValueError:
        assert not valid
    else:
        assert valid


def test_auth_off_means_no_authorizer_no_pool_and_no_auth_outputs(dev_no_auth: Synth) -> None:
    assert dev_no_auth.of_type("AWS::ApiGatewayV2::Authorizer") == {}
    assert dev_no_auth.of_type("AWS::Cognito::UserPool") == {}
    assert dev_no_auth.of_type("AWS::Cognito::UserPoolClient") == {}
    outputs = dev_no_auth.template_json["Outputs"]
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
    (props,) = [
        p["Properties"]
        for p in synth.of_type("AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] != "cognito-idp.amazonaws.com"  # the scopes trigger
    ]
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


@pytest.mark.parametrize("name", ["dev_no_auth", "external"])
def test_the_variants_pass_cdk_nag_with_their_own_acknowledgments(
    name: str, request: pytest.FixtureRequest
) -> None:
    synth = request.getfixturevalue(name)
    check_no_unacknowledged_finding(synth)
    check_acknowledgments(synth)


def test_an_external_identity_provider_replaces_the_pool(external: Synth) -> None:
    """With auth_jwt_issuer set, the authorizer trusts that issuer and its audiences, the
    routes require the stage's own scope names, and no Cognito pool (nor trigger) is made."""
    assert not external.settings.uses_cognito
    assert external.of_type("AWS::Cognito::UserPool") == {}
    assert external.of_type("AWS::Cognito::UserPoolResourceServer") == {}
    functions = external.of_type("AWS::Lambda::Function")
    assert not any(f["Properties"].get("Handler") == "index.handler" for f in functions.values())
    _, authorizer = external.one("AWS::ApiGatewayV2::Authorizer")
    assert authorizer["Properties"]["JwtConfiguration"] == {
        "Issuer": "https://login.example.com/tenant-1/v2.0",
        "Audience": ["api://users", "users-cli"],
    }
    writes = {k: r for k, r in routes(external).items() if k.split(" ")[0] in WRITE_METHODS}
    assert {tuple(r["AuthorizationScopes"]) for r in writes.values()} == {("write:users",)}
    assert external.template_json["Outputs"]["AuthIssuer"]["Value"] == (
        "https://login.example.com/tenant-1/v2.0"
    )


def test_cognito_declares_the_scopes_and_groups_grant_them(with_pool: Synth) -> None:
    synth = with_pool
    pool_id, pool = synth.one("AWS::Cognito::UserPool")
    _, server = synth.one("AWS::Cognito::UserPoolResourceServer")
    assert server["Properties"]["Identifier"] == "users"
    assert server["Properties"]["UserPoolId"] == {"Ref": pool_id}
    assert {s["ScopeName"] for s in server["Properties"]["Scopes"]} == {"read", "write"}
    groups = {
        g["Properties"]["GroupName"]: g["Properties"]
        for g in synth.of_type("AWS::Cognito::UserPoolGroup").values()
    }
    assert set(groups) == {"users-readers", "users-writers"}
    assert all(g["UserPoolId"] == {"Ref": pool_id} for g in groups.values())
    # The trigger: event version 2.0 (access token customization), this stack's function.
    trigger_id, trigger = next(
        (k, f)
        for k, f in synth.of_type("AWS::Lambda::Function").items()
        if f["Properties"].get("Handler") == "index.handler"
    )
    config = pool["Properties"]["LambdaConfig"]["PreTokenGenerationConfig"]
    assert config == {"LambdaArn": {"Fn::GetAtt": [trigger_id, "Arn"]}, "LambdaVersion": "V2_0"}
    props = trigger["Properties"]
    scopes_by_group = json.loads(props["Environment"]["Variables"]["SCOPES_BY_GROUP"])
    assert scopes_by_group == {
        "users-readers": ["users/read"],
        "users-writers": ["users/read", "users/write"],
    }
    from infra.constructs.auth import TRIGGER_SOURCE

    assert props["Code"]["ZipFile"] == TRIGGER_SOURCE.read_text()
    assert (props["Runtime"], props["Architectures"], props["Timeout"]) == (
        "python3.12",
        ["arm64"],
        5,
    )
    # Its role writes to its own log group and does nothing else.
    role_ref = props["Role"]["Fn::GetAtt"][0]
    role = synth.resources[role_ref]["Properties"]
    assert "ManagedPolicyArns" not in role
    policies = [
        p
        for p in synth.of_type("AWS::IAM::Policy").values()
        if {"Ref": role_ref} in p["Properties"]["Roles"]
    ]
    (statement,) = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    assert statement["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert statement["Resource"] == {
        "Fn::GetAtt": [props["LoggingConfig"]["LogGroup"]["Ref"], "Arn"]
    }
    # Cognito may invoke it, for this pool only.
    permission = next(
        p["Properties"]
        for p in synth.of_type("AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "cognito-idp.amazonaws.com"
    )
    assert permission["FunctionName"] == {"Fn::GetAtt": [trigger_id, "Arn"]}
    assert permission["SourceArn"] == {"Fn::GetAtt": [pool_id, "Arn"]}


@given(
    groups=st.lists(
        st.one_of(st.sampled_from(["users-readers", "users-writers"]), st.text(max_size=10)),
        max_size=5,
    )
)
def test_the_trigger_adds_exactly_the_scopes_of_the_users_groups(groups: list[str]) -> None:
    from token_scopes import handler as token_scopes

    mapping = {"users-readers": ["users/read"], "users-writers": ["users/read", "users/write"]}
    event = {
        "version": "2",
        "triggerSource": "TokenGeneration_Authentication",
        "request": {"groupConfiguration": {"groupsToOverride": groups}},
        "response": {"claimsAndScopeOverrideDetails": None},
    }
    with patch.object(token_scopes, "SCOPES_BY_GROUP", mapping):
        answer = token_scopes.handler(event, None)
    expected = sorted({s for g in groups for s in mapping.get(g, [])})
    details = answer["response"]["claimsAndScopeOverrideDetails"]
    if expected:
        assert details == {"accessTokenGeneration": {"scopesToAdd": expected}}
    else:
        assert details is None  # no group of ours: the token gets no API scope
