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
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from infra.config import StageSettings
from infra.nag import acknowledge

PASSWORD_MIN_LENGTH = 12


class Auth(Construct):
    """The authorizer (and the Cognito pool when no external issuer is configured)."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: StageSettings) -> None:
        super().__init__(scope, construct_id)
        self.user_pool: cognito.UserPool | None = None
        self.client: cognito.UserPoolClient | None = None

        if settings.auth_jwt_issuer is not None:
            self.issuer = settings.auth_jwt_issuer
            audience = list(settings.auth_jwt_audience)
        else:
            self.user_pool, self.client = self._cognito(settings)
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
