"""The users API stack: one per stage, wired in the order the architecture is drawn.

HTTP API (JWT authorizer) -> API function -> RDS Proxy -> PostgreSQL
(+ Cognito user pool unless an external issuer is configured, migrations, monitoring)

Per-deploy override of the stage settings: `-c insecure_disable_auth="<why>"` deploys the
stage without authentication (a synthesis warning; the reason goes into the cdk-nag
acknowledgments of the routes it leaves public).
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Environment, Stack, Tags
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.config import DISABLE_AUTH_CONTEXT, StageSettings, with_overrides
from infra.constructs.api_function import ApiFunction
from infra.constructs.auth import Auth, app_scope_environment
from infra.constructs.database import Database
from infra.constructs.http_api import HttpApi
from infra.constructs.migrations import Migrations
from infra.constructs.monitoring import Monitoring
from infra.constructs.network import Network
from infra.constructs.proxy import Proxy


class UsersApiStack(Stack):
    def __init__(
        self,
        scope: Construct,
        *,
        settings: StageSettings,
        code: lambda_.Code,
        env: Environment | None = None,
    ) -> None:
        super().__init__(
            scope,
            settings.stack_name,
            stack_name=settings.stack_name,
            env=env,
            description=f"users API ({settings.name}): HTTP API, Lambda, RDS Proxy, PostgreSQL",
        )
        # AWS::RDS::DBProxyTargetGroup takes no Tags (CloudFormation schema).
        untaggable = ["AWS::RDS::DBProxyTargetGroup"]
        settings = with_overrides(
            settings,
            insecure_disable_auth=self.node.try_get_context(DISABLE_AUTH_CONTEXT),
            auth=self.node.try_get_context("auth"),
        )
        self.settings = settings
        Tags.of(self).add("project", "users-api", exclude_resource_types=untaggable)
        Tags.of(self).add("stage", settings.name, exclude_resource_types=untaggable)

        self.network = Network(self, "Network", settings=settings)
        self.database = Database(self, "Database", settings=settings, network=self.network)
        self.proxy = Proxy(
            self, "Proxy", settings=settings, network=self.network, database=self.database
        )
        self.api_function = ApiFunction(
            self,
            "ApiFunction",
            settings=settings,
            network=self.network,
            proxy=self.proxy,
            code=code,
        )
        self.migrations = Migrations(
            self,
            "Migrations",
            settings=settings,
            network=self.network,
            database=self.database,
            proxy=self.proxy,
            code=code,
        )
        self.auth = Auth(self, "Auth", settings=settings) if settings.auth_enabled else None
        for name, value in app_scope_environment(settings).items():
            self.api_function.function.add_environment(name, value)
        self.http_api = HttpApi(
            self,
            "HttpApi",
            settings=settings,
            handler=self.api_function.entry,
            authorizer=self.auth.authorizer if self.auth else None,
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            settings=settings,
            function=self.api_function.function,
            api=self.http_api.api,
            proxy=self.proxy,
        )

        CfnOutput(self, "ApiUrl", value=self.http_api.url, description="HTTP API root URL")
        CfnOutput(
            self,
            "FunctionName",
            value=self.api_function.function.function_name,
            description="API Lambda function",
        )
        CfnOutput(
            self,
            "MigrationFunctionName",
            value=self.migrations.function.function_name,
            description="migration Lambda function (run by the deploy trigger)",
        )
        CfnOutput(
            self, "ProxyEndpoint", value=self.proxy.endpoint, description="RDS Proxy endpoint"
        )
        if self.auth is not None:
            CfnOutput(
                self,
                "AuthIssuer",
                value=self.auth.issuer,
                description="JWT issuer the HTTP API trusts (tokens' iss claim)",
            )
        if self.auth is not None and self.auth.user_pool is not None:
            assert self.auth.client is not None
            CfnOutput(
                self,
                "UserPoolId",
                value=self.auth.user_pool.user_pool_id,
                description="Cognito user pool of the API's users",
            )
            CfnOutput(
                self,
                "UserPoolClientId",
                value=self.auth.client.user_pool_client_id,
                description="Cognito app client (the tokens' audience)",
            )
