"""The users API stack: one per stage, wired in the order the architecture is drawn.

HTTP API (JWT authorizer) -> API function -> RDS Proxy -> PostgreSQL
(+ Cognito user pool unless an external issuer is configured, migrations, monitoring)

The stack is built inside a UsersApiStage (infra/stage.py), the same way for `make deploy`
and the pipeline; its settings already carry this deploy's context overrides
(`infra.config.settings_from_context`), such as `-c insecure_disable_auth="<why>"`.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack, Tags
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.config import StageSettings
from infra.constructs.api_function import ApiFunction
from infra.constructs.auth import Auth, app_scope_environment
from infra.constructs.database import Database
from infra.constructs.http_api import HttpApi
from infra.constructs.migrations import Migrations
from infra.constructs.monitoring import Monitoring, Watched
from infra.constructs.network import Network
from infra.constructs.proxy import Proxy

# AWS::RDS::DBProxyTargetGroup takes no Tags (CloudFormation schema).
UNTAGGABLE = ["AWS::RDS::DBProxyTargetGroup"]


class UsersApiStack(Stack):
    def __init__(self, scope: Construct, *, settings: StageSettings, code: lambda_.Code) -> None:
        super().__init__(
            scope,
            settings.stack_name,
            stack_name=settings.stack_name,
            description=f"users API ({settings.name}): HTTP API, Lambda, RDS Proxy, PostgreSQL",
        )
        self.settings = settings
        Tags.of(self).add("project", "users-api", exclude_resource_types=UNTAGGABLE)
        Tags.of(self).add("stage", settings.name, exclude_resource_types=UNTAGGABLE)

        self.network = Network(self, "Network", settings=settings)
        self.database = Database(self, "Database", settings=settings, network=self.network)
        self.proxy = Proxy(
            self, "Proxy", settings=settings, network=self.network, database=self.database
        )
        # Schema before code: the migrations first; the API function depends on them.
        self.migrations = Migrations(
            self,
            "Migrations",
            settings=settings,
            network=self.network,
            database=self.database,
            proxy=self.proxy,
            code=code,
        )
        self.api_function = ApiFunction(
            self,
            "ApiFunction",
            settings=settings,
            network=self.network,
            proxy=self.proxy,
            migrations=self.migrations,
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
            watched=Watched(
                api=self.http_api.api,
                function=self.api_function.function,
                migration_function=self.migrations.function,
                proxy=self.proxy,
                database=self.database,
            ),
        )
        self._outputs()
        self._auth_outputs()

    def _outputs(self) -> None:
        for output_id, value, description in (
            ("ApiUrl", self.http_api.url, "HTTP API root URL"),
            ("FunctionName", self.api_function.function.function_name, "API Lambda function"),
            (
                "MigrationFunctionName",
                self.migrations.function.function_name,
                "migration Lambda function (run by the deploy trigger)",
            ),
            ("ProxyEndpoint", self.proxy.endpoint, "RDS Proxy endpoint"),
            (
                "AlarmTopicArn",
                self.monitoring.topic.topic_arn,
                "SNS topic every alarm notifies (alarm and OK): subscribe a pager or chat here",
            ),
            ("DashboardUrl", self.monitoring.dashboard_url, "CloudWatch dashboard of the stage"),
        ):
            CfnOutput(self, output_id, value=value, description=description)

    def _auth_outputs(self) -> None:
        if self.auth is None:
            return
        CfnOutput(
            self,
            "AuthIssuer",
            value=self.auth.issuer,
            description="JWT issuer the HTTP API trusts (tokens' iss claim)",
        )
        if self.auth.user_pool is not None:
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
