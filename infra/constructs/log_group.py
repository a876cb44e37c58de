"""Every log group of the stack: kept as long as the stage keeps logs, and removed with the
stack or retained as the stage's removal policy says."""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import StageSettings


def stage_log_group(
    scope: Construct, construct_id: str, settings: StageSettings, **props: Any
) -> logs.LogGroup:
    return logs.LogGroup(
        scope,
        construct_id,
        retention=settings.log_retention,
        removal_policy=settings.removal_policy,
        **props,
    )
