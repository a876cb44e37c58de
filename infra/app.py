"""CDK entry point (`cdk.json`: `.venv/bin/python -m infra.app`).

    cdk synth  -c stage=dev                 # default stage: dev
    cdk deploy -c stage=prod [-c account=123456789012 -c region=eu-west-1]

Without account/region the stack is environment-agnostic, so synthesis needs no AWS
credentials. Every stack is checked with cdk-nag's AwsSolutions pack at synthesis.
"""

from __future__ import annotations

from aws_cdk import App, Environment

from infra.bundling import function_code
from infra.config import get_stage
from infra.nag import add_nag_checks
from infra.stack import UsersApiStack


def _environment(app: App) -> Environment | None:
    account = app.node.try_get_context("account")
    region = app.node.try_get_context("region")
    if account is None and region is None:
        return None
    return Environment(account=account, region=region)


def build(app: App) -> UsersApiStack:
    """Add the stack of the stage chosen with `-c stage=...` to `app`, with the nag checks."""
    settings = get_stage(app.node.try_get_context("stage"))
    stack = UsersApiStack(app, settings=settings, code=function_code(), env=_environment(app))
    add_nag_checks(app)
    return stack


def main() -> None:
    app = App()
    build(app)
    app.synth()


if __name__ == "__main__":
    main()
