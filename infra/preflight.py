"""Preflights of `make deploy` / `make diff`: two read-only AWS calls, before anything is
synthesized or bundled, so that a deploy that cannot succeed stops in seconds.

1. Credentials (`sts:GetCallerIdentity`): none, expired or refused gives one clear message.
2. Lambda concurrency: the stage reserves `function_reserved_concurrency` executions for
   the API function, and Lambda keeps at least min(100, the account's limit) unreserved:
   "You can reserve up to the Unreserved account concurrency value that is shown, minus
   100 for functions that don't have reserved concurrency" (Lambda developer guide,
   "Configuring reserved concurrency"); an account whose limit is lower is refused any
   reservation. A fresh account's limit (often 10) is too low for either stage: without
   this check the deploy fails after the database and the proxy were created (15+ minutes).

    python -m infra.preflight --stage dev|prod
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

# Lambda keeps this many executions unreserved (or the whole limit, when it is lower).
MIN_UNRESERVED = 100
QUOTA_CODE = "L-B99A9384"  # Service Quotas: AWS Lambda, "Concurrent executions"
# Seconds, not minutes: short timeouts and one retry.
CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=10, retries={"total_max_attempts": 2})


class PreflightError(RuntimeError):
    """The deploy cannot succeed: the message says why and what to do."""


@dataclass(frozen=True)
class Concurrency:
    limit: int
    unreserved: int

    @property
    def reservable(self) -> int:
        """Executions a new reservation may take now."""
        return self.unreserved - min(MIN_UNRESERVED, self.limit)

    @property
    def reservable_at_most(self) -> int:
        """Executions all reservations together may ever take under this limit."""
        return self.limit - min(MIN_UNRESERVED, self.limit)


def caller_identity(sts: Any) -> str:
    try:
        return str(sts.get_caller_identity()["Arn"])
    except NoCredentialsError:
        raise PreflightError(
            "no AWS credentials: set AWS_PROFILE (and `aws sso login`), or the "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN variables; in CI, "
            "the OIDC role (docs/deploy.md)"
        ) from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise PreflightError(
            f"AWS refused the credentials ({error.get('Code')}: {error.get('Message')}): "
            "renew them (`aws sso login`, a fresh session token) and try again"
        ) from None


def account_concurrency(lambda_client: Any) -> Concurrency:
    limits = lambda_client.get_account_settings()["AccountLimit"]
    return Concurrency(
        limit=int(limits["ConcurrentExecutions"]),
        unreserved=int(limits["UnreservedConcurrentExecutions"]),
    )


def check_concurrency(concurrency: Concurrency, stage: str, reserved: int) -> str | None:
    """Raise when the stage's reservation can never fit; a warning when it does not fit
    now (the stack's own reservation, if it exists, is already counted as reserved)."""
    if reserved > concurrency.reservable_at_most:
        raise PreflightError(
            f"stage {stage} reserves {reserved} concurrent executions for the API function, "
            f"but this account's Lambda limit is {concurrency.limit} and Lambda keeps "
            f"{min(MIN_UNRESERVED, concurrency.limit)} unreserved: request a 'Concurrent "
            f"executions' quota of at least {reserved + MIN_UNRESERVED} (Service Quotas, "
            f"AWS Lambda, {QUOTA_CODE}) in this region, or lower function_reserved_concurrency "
            "in infra/config.py"
        )
    if reserved > concurrency.reservable:
        return (
            f"warning: only {concurrency.reservable} executions can be reserved now "
            f"(other functions reserve {concurrency.limit - concurrency.unreserved}); stage "
            f"{stage} needs {reserved}. Fine when its stack already holds that reservation; "
            "otherwise the deploy will fail on the function's concurrency."
        )
    return None


def run(stage: str, sts: Any, lambda_client: Any) -> list[str]:
    """The preflight's report lines; PreflightError when the deploy cannot succeed."""
    lines = [f"AWS identity: {caller_identity(sts)}"]  # first: nothing else without them
    from infra.config import get_stage  # starts jsii (Node): after the credentials check

    settings = get_stage(stage)
    try:
        concurrency = account_concurrency(lambda_client)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "AccessDeniedException":
            raise PreflightError(f"lambda:GetAccountSettings failed: {exc}") from None
        # A deploy role limited to the CDK bootstrap roles: the quota goes unchecked.
        lines.append(
            "warning: the Lambda concurrency quota was not checked (allow "
            "lambda:GetAccountSettings to these credentials, docs/deploy.md)"
        )
        return lines
    except BotoCoreError as exc:
        raise PreflightError(f"lambda:GetAccountSettings failed: {exc}") from None
    lines.append(
        f"Lambda concurrency: limit {concurrency.limit}, unreserved {concurrency.unreserved}; "
        f"stage {stage} reserves {settings.function_reserved_concurrency}"
    )
    warning = check_concurrency(concurrency, stage, settings.function_reserved_concurrency)
    if warning:
        lines.append(warning)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.preflight", description=__doc__)
    parser.add_argument("--stage", required=True)
    args = parser.parse_args(argv)
    import boto3

    session = boto3.Session()
    try:
        lines = run(
            args.stage,
            session.client("sts", config=CLIENT_CONFIG),
            session.client("lambda", config=CLIENT_CONFIG),
        )
    except (PreflightError, ValueError, BotoCoreError) as exc:
        print(f"make deploy: preflight failed: {exc}", file=sys.stderr)
        return 1
    for line in lines:
        print(f"preflight: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
