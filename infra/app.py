"""CDK entry point (`cdk.json`: `.venv/bin/python -m infra.app`).

    cdk synth  -c stage=dev                 # default stage: dev
    cdk deploy Prod/UsersApi-prod -c stage=prod [-c account=123456789012 -c region=eu-west-1]
        [-c auth=true|false] [-c alarm_email=oncall@example.com]

Without account/region the stack is environment-agnostic, so synthesis needs no AWS
credentials. Every stack is checked with cdk-nag's AwsSolutions pack at synthesis.

    cdk deploy UsersApiPipeline -c pipeline=true -c connection_arn=... -c repo=owner/name

With `-c pipeline=true` the app holds the CDK Pipelines stack instead (infra/pipeline.py),
which deploys both stages itself, each built exactly as here (infra/stage.py).
"""

from __future__ import annotations

import sys

from aws_cdk import App, Environment, Stack

from infra.config import settings_from_context
from infra.nag import add_nag_checks
from infra.pipeline import PipelineConfigError, build_pipeline, pipeline_requested
from infra.stack import UsersApiStack
from infra.stage import UsersApiStage


def _environment(app: App) -> Environment | None:
    account = app.node.try_get_context("account")
    region = app.node.try_get_context("region")
    if account is None and region is None:
        return None
    return Environment(account=account, region=region)


def build(app: App) -> UsersApiStack:
    """Add the stage chosen with `-c stage=...` to `app` (nag checks on); its stack."""
    stage = UsersApiStage(app, settings=settings_from_context(app.node), env=_environment(app))
    add_nag_checks(app)
    return stage.stack


def build_for_context(app: App) -> Stack:
    """The pipeline stack with `-c pipeline=true`, else the stage's stack (nag checks on)."""
    if pipeline_requested(app):
        return build_pipeline(app)
    return build(app)


def main() -> None:
    app = App()
    try:
        build_for_context(app)
    except (PipelineConfigError, ValueError) as exc:
        sys.exit(f"infra.app: {exc}")
    app.synth()


if __name__ == "__main__":
    main()
