"""Stage settings: one frozen object per stage, checked when it is made."""

from __future__ import annotations

import dataclasses

import pytest
from aws_cdk import RemovalPolicy

from infra.config import (
    DEV,
    PROD,
    STAGES,
    db_max_connections,
    get_stage,
    with_overrides,
)


def test_default_stage_is_dev_and_unknown_stages_are_refused() -> None:
    assert get_stage(None) is DEV
    assert get_stage("prod") is PROD
    with pytest.raises(ValueError, match="unknown stage 'qa'"):
        get_stage("qa")
    assert sorted(STAGES) == ["dev", "prod"]


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEV.function_memory_mb = 128  # type: ignore[misc]


def test_prod_is_the_protected_stage() -> None:
    assert (PROD.db_deletion_protection, PROD.removal_policy) == (True, RemovalPolicy.RETAIN)
    assert (DEV.db_deletion_protection, DEV.removal_policy) == (False, RemovalPolicy.DESTROY)
    assert PROD.db_multi_az
    assert not DEV.db_multi_az


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"function_timeout_seconds": 5}, "db_connect_timeout < function_timeout"),
        ({"function_timeout_seconds": 31}, "function_timeout <= 30"),
        ({"proxy_max_idle_connections_percent": 95}, "proxy max idle"),
        ({"function_reserved_concurrency": 0}, "reserved_concurrency"),
        ({"function_reserved_concurrency": 101}, "exceeds the proxy's connection budget 100"),
        (
            {"proxy_max_connections_percent": 15, "proxy_max_idle_connections_percent": 10},
            "exceeds the proxy's connection budget 16",
        ),
        ({"db_instance_class": "t2.nano"}, "unknown db_instance_class 't2.nano'"),
        ({"alarm_proxy_client_connections": 21}, "alarm_proxy_client_connections"),
        ({"max_body_bytes": 0}, "max_body_bytes"),
        ({"max_body_bytes": 8 * 1024 * 1024}, "max_body_bytes"),
        ({"throttle_write_rate_limit": 30, "throttle_write_burst_limit": 60}, "write throttles"),
        ({"throttle_read_burst_limit": 10}, "throttle_read_rate_limit <= burst"),
        ({"auth_jwt_issuer": "http://idp.example.com"}, "https"),
        ({"auth_jwt_issuer": "https://idp.example.com"}, "at least one auth_jwt_audience"),
        ({"db_monitoring_interval_seconds": 7}, "db_monitoring_interval_seconds"),
        ({"alarm_db_connections_percent": 90}, "must exceed proxy_max_connections_percent"),
        ({"alarm_function_duration_percent": 0}, "alarm_function_duration_percent"),
        ({"alarm_email": "two@example.com,three@example.com"}, "one email address"),
        ({"auth_jwt_audience": ("users",)}, "auth_jwt_audience without auth_jwt_issuer"),
    ],
)
def test_inconsistent_settings_are_refused(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(DEV, **change)


def test_reserved_concurrency_arithmetic() -> None:
    # RDS PostgreSQL: max_connections = LEAST(DBInstanceClassMemory / 9531392, 5000).
    assert db_max_connections("t4g.micro") == 112  # 1 GiB
    assert db_max_connections("t4g.medium") == 450  # 4 GiB
    assert db_max_connections("r7g.xlarge") == 3604  # 32 GiB
    # The proxy may open its percent of them; one connection per in-flight invocation.
    assert (DEV.proxy_connection_budget, DEV.function_reserved_concurrency) == (100, 20)
    assert (PROD.proxy_connection_budget, PROD.function_reserved_concurrency) == (360, 100)


def test_auth_defaults_and_the_context_override() -> None:
    # On in every stage; off only with a reason (tests/infra/test_auth.py for the rest).
    assert (DEV.auth_enabled, PROD.auth_enabled) == (True, True)
    assert DEV.uses_cognito
    assert PROD.uses_cognito
    assert with_overrides(DEV) is DEV
    reason = "Throwaway stack for a load test; holds no real data at all"
    off = with_overrides(PROD, insecure_disable_auth=reason)
    assert (off.auth_enabled, off.auth_disabled_reason, off.uses_cognito) == (False, reason, False)


def test_writes_are_throttled_tighter_than_reads() -> None:
    for settings in (DEV, PROD):
        assert settings.throttle_write_rate_limit < settings.throttle_read_rate_limit
        assert settings.throttle_write_burst_limit < settings.throttle_read_burst_limit
        assert settings.max_body_bytes == 1024 * 1024


def test_alarm_email_is_a_per_deploy_override() -> None:
    assert DEV.alarm_email is None
    assert with_overrides(DEV, alarm_email="oncall@example.com").alarm_email == (
        "oncall@example.com"
    )
    assert with_overrides(DEV, alarm_email="  ") is DEV
