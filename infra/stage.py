"""One deployment of the users API: a CDK Stage holding the stage's stack.

`make deploy` (infra/app.py) and the CDK Pipelines stack (infra/pipeline.py) both build this
Stage directly under the app, with the same id ("Dev", "Prod"), so every construct path, and
with it every logical id, is the same on both paths: either one can take over a stack the
other created. (Some logical ids are derived from full construct paths: security-group
rules between groups, the API's Lambda permission, the function version, the generated
master secret.) In the CLI the stack is `Dev/UsersApi-dev` (`cdk deploy Dev/UsersApi-dev`);
its CloudFormation name stays `UsersApi-dev`.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Environment, Stage
from constructs import Construct

from infra.bundling import function_code
from infra.config import StageSettings
from infra.stack import UsersApiStack


def stage_id(settings: StageSettings) -> str:
    return settings.name.capitalize()


class UsersApiStage(Stage):
    def __init__(
        self,
        scope: Construct,
        *,
        settings: StageSettings,
        env: Environment | None = None,
        availability_zones: tuple[str, ...] = (),
    ) -> None:
        super().__init__(scope, stage_id(settings), env=env)
        if availability_zones and env is not None:
            # The answer to the stack's availability-zone lookup, so that none is made (the
            # context key is the one the lookup would ask cdk.context.json for).
            self.node.set_context(
                f"availability-zones:account={env.account}:region={env.region}",
                list(availability_zones),
            )
        self.stack = UsersApiStack(self, settings=settings, code=function_code())
        api_url = self.stack.node.find_child("ApiUrl")
        assert isinstance(api_url, CfnOutput)
        self.api_url = api_url
