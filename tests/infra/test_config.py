"""Stage settings: one frozen object per stage, checked when it is made."""

from __future__ import annotations

import dataclasses

import pytest
from aws_cdk import RemovalPolicy

from infra.config import DEV, PROD, STAGES, get_stage


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
    ],
)
def test_inconsistent_settings_are_refused(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(DEV, **change)
