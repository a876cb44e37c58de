"""Authentication: who may call the users API's protected routes.

A JWT authorizer on the HTTP API trusts one issuer and its audiences: an external identity
provider's (`auth_jwt_issuer`, `auth_jwt_audience` in the stage settings), or, when none is
given, a Cognito user pool and app client created here. API Gateway checks the bearer
token's signature (the issuer's JWKS), `iss`, `exp`/`nbf`, and `aud` (ID tokens) or
`client_id` (Cognito access tokens) before the function runs, and hands the claims to the
app in the event (`requestContext.authorizer.jwt.claims`).

The pool: administrators create users (no self sign-up), sign-in by email, strong
passwords, optional TOTP MFA, token revocation, and no OAuth/hosted UI; the client has no
secret and allows SRP sign-in (apps) and admin password sign-in (operators with IAM
credentials, e.g. the AWS CLI), not plain USER_PASSWORD_AUTH.

Scopes (what a caller may do): reads need `auth_read_scope`, writes `auth_write_scope`; the
HTTP API's routes require them (`AuthorizationScopes`), so an ID token (no `scope` claim) or
a token without the route's scope is refused. With Cognito, a resource server declares both
scopes and the pool's groups grant them: `users-readers` the read scope, `users-writers`
both. Cognito puts custom scopes into tokens from its sign-in APIs only through a pre token
generation trigger (event version 2.0, Essentials or Plus plan):
functions/token_scopes/handler.py, deployed inline. An external issuer puts its own scopes
into its tokens (the `scope` or `scp` claim); the stage names them.
"""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.bundling import ARCHITECTURE, RUNTIME
from infra.config import StageSettings
from infra.constructs.log_group import stage_log_group
from infra.nag import acknowledge

PASSWORD_MIN_LENGTH = 12
READERS_GROUP = "users-readers"
WRITERS_GROUP = "users-writers"
TRIGGER_SOURCE = Path(__file__).resolve().parents[2] / "functions" / "token_scopes" / "handler.py"
# CloudFormation's limit for inline (ZipFile) code.
INLINE_CODE_LIMIT = 4096


def app_scope_environment(settings: StageSettings) -> dict[str, str]:
    """What the API function needs to re-check each route's scope (REQUIRE_AUTH is set with
    the function itself)."""
    return {
        "AUTH_READ_SCOPE": settings.auth_read_scope,
        "AUTH_WRITE_SCOPE": settings.auth_write_scope,
        "AUTH_PUBLIC_READS": "true" if settings.auth_public_reads else "false",
    }


class Auth(Construct):
    """The authorizer (and the Cognito pool when no external issuer is configured)."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: StageSettings) -> None:
        super().__init__(scope, construct_id)
        self.user_pool: cognito.UserPool | None = None
        self.client: cognito.UserPoolClient | None = None
        self.read_scope = settings.auth_read_scope
        self.write_scope = settings.auth_write_scope

        if settings.auth_jwt_issuer is not None:
            self.issuer = settings.auth_jwt_issuer
            audience = list(settings.auth_jwt_audience)
        else:
            self.user_pool, self.client = self._cognito(settings)
            self._scopes(self.user_pool, settings)
            # Cognito's issuer (the `iss` of its tokens; its JWKS is below it).
            self.issuer = (
                f"https://cognito-idp.{Aws.REGION}.amazonaws.com/{self.user_pool.user_pool_id}"
            )
            audience = [self.client.user_pool_client_id]

        self.authorizer = authorizers.HttpJwtAuthorizer(
            "JwtAuthorizer",
            self.issuer,
            jwt_audience=audience,
            authorizer_name=f"{settings.stack_name}-jwt",
            identity_source=["$request.header.Authorization"],
        )

    def _cognito(self, settings: StageSettings) -> tuple[cognito.UserPool, cognito.UserPoolClient]:
        threat_protection = settings.auth_user_pool_threat_protection
        user_pool = cognito.UserPool(
            self,
            "UserPool",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True),
            sign_in_case_sensitive=False,
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            keep_original=cognito.KeepOriginalAttrs(email=True),
            standard_attributes=cognito.StandardAttributes(
                email=cognito.StandardAttribute(required=True, mutable=True)
            ),
            password_policy=cognito.PasswordPolicy(
                min_length=PASSWORD_MIN_LENGTH,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            mfa=cognito.Mfa.OPTIONAL,
            mfa_second_factor=cognito.MfaSecondFactor(sms=False, otp=True),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            feature_plan=(
                cognito.FeaturePlan.PLUS if threat_protection else cognito.FeaturePlan.ESSENTIALS
            ),
            standard_threat_protection_mode=(
                cognito.StandardThreatProtectionMode.FULL_FUNCTION if threat_protection else None
            ),
            deletion_protection=settings.removal_policy == RemovalPolicy.RETAIN,
            removal_policy=settings.removal_policy,
        )
        client = user_pool.add_client(
            "ApiClient",
            auth_flows=cognito.AuthFlow(user_srp=True, admin_user_password=True),
            generate_secret=False,
            disable_o_auth=True,
            prevent_user_existence_errors=True,
            enable_token_revocation=True,
            access_token_validity=Duration.hours(1),
            id_token_validity=Duration.hours(1),
            refresh_token_validity=Duration.days(30),
        )
        acknowledge(
            user_pool,
            "AwsSolutions-COG2",
            "MFA is optional (TOTP, no SMS): users are created by administrators and the API "
            "is called by programs with short-lived tokens; users enrol TOTP themselves.",
        )
        if not threat_protection:
            acknowledge(
                user_pool,
                "AwsSolutions-COG8",
                f"Stage {settings.name} uses the Essentials plan (cost, test users only); "
                "auth_user_pool_threat_protection puts prod on Plus with threat protection.",
            )
        return user_pool, client

    def _scopes(self, user_pool: cognito.UserPool, settings: StageSettings) -> None:
        """The resource server declaring the scopes, the groups granting them, and the
        trigger that writes them into the access tokens."""
        server, read_name = self.read_scope.split("/", 1)
        write_name = self.write_scope.split("/", 1)[1]
        self.resource_server = user_pool.add_resource_server(
            "ResourceServer",
            identifier=server,
            user_pool_resource_server_name=f"{settings.stack_name} users API",
            scopes=[
                cognito.ResourceServerScope(scope_name=read_name, scope_description="Read users"),
                cognito.ResourceServerScope(
                    scope_name=write_name, scope_description="Create, change, delete users"
                ),
            ],
        )
        scopes_by_group = {
            READERS_GROUP: [self.read_scope],
            WRITERS_GROUP: [self.read_scope, self.write_scope],
        }
        for construct_id, group, what in (
            ("Readers", READERS_GROUP, "read users"),
            ("Writers", WRITERS_GROUP, "read, create, change and delete users"),
        ):
            user_pool.add_group(
                construct_id, group_name=group, description=f"May {what} ({settings.name})"
            )
        self.trigger = self._trigger(settings, scopes_by_group)
        user_pool.add_trigger(
            cognito.UserPoolOperation.PRE_TOKEN_GENERATION_CONFIG,
            self.trigger,
            cognito.LambdaVersion.V2_0,
        )

    def _trigger(
        self, settings: StageSettings, scopes_by_group: dict[str, list[str]]
    ) -> lambda_.Function:
        source = TRIGGER_SOURCE.read_text()
        if len(source.encode()) > INLINE_CODE_LIMIT:
            raise ValueError(f"{TRIGGER_SOURCE.name} exceeds {INLINE_CODE_LIMIT} bytes inline")
        log_group = stage_log_group(self, "ScopesTriggerLogs", settings)
        # Its own log group and nothing else: no managed policy (logs:* on every group).
        role = iam.Role(
            self,
            "ScopesTriggerRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Cognito scopes trigger: its log group",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            )
        )
        function = lambda_.Function(
            self,
            "ScopesTrigger",
            description=f"users API ({settings.name}): scopes from groups into access tokens",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler="index.handler",
            code=lambda_.Code.from_inline(source),
            # Cognito waits 5 s for a trigger and then fails the sign-in.
            timeout=Duration.seconds(5),
            memory_size=128,
            log_group=log_group,
            role=role,
            environment={"SCOPES_BY_GROUP": json.dumps(scopes_by_group, separators=(",", ":"))},
        )
        acknowledge(
            function,
            "AwsSolutions-L1",
            "The scopes trigger runs on the same Python 3.12 as the stack's other functions; "
            "standard library only, it moves to a newer runtime together with them.",
        )
        return function
