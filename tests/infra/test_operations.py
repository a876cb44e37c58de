"""What a team needs to run the stack, on the synthesized dev and prod templates: deploy
order, the first deploy vs rotation, alarms that page, a dashboard, a visible database,
least-privilege roles without duplicated network rules, the engine-version policy, and the
function's environment matching its Settings."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from infra.config import DEV, PROD
from tests.infra.conftest import Synth, synthesize

API_HANDLER = "users_api.handler.handler"
MIGRATION_HANDLER = "users_api.migrate.handler"
RETENTION_DAYS = {DEV.name: 7, PROD.name: 90}
ALARMS_EVERYWHERE = {
    "Api5xxRate",
    "ApiLatencyP99",
    "FunctionErrors",
    "FunctionThrottles",
    "FunctionDuration",
    "FunctionConcurrency",
    "MigrationErrors",
    "ProxyClientConnections",
    "DatabaseCpu",
    "DatabaseFreeStorage",
    "DatabaseFreeableMemory",
    "DatabaseConnections",
}


def alarms(synth: Synth) -> dict[str, dict[str, Any]]:
    """Alarm name without the stack prefix -> properties."""
    prefix = f"{synth.settings.stack_name}-"
    return {
        a["Properties"]["AlarmName"].removeprefix(prefix): a["Properties"]
        for a in synth.of_type("AWS::CloudWatch::Alarm").values()
    }


# -- deploy order and safety -----------------------------------------------------------------


def test_api_function_is_updated_only_after_the_migrations_ran(synth: Synth) -> None:
    [trigger_id] = synth.of_type("Custom::Trigger")
    api_id, api = synth.function(API_HANDLER)
    assert trigger_id in api["DependsOn"]
    # ... and the trigger runs after the whole database (instance, secret, rotation) and the
    # proxy, so the migration connects to what exists.
    depends_on = set(synth.resources[trigger_id]["DependsOn"])
    for resource_type in (
        "AWS::RDS::DBInstance",
        "AWS::SecretsManager::RotationSchedule",
        "AWS::RDS::DBProxyTargetGroup",
    ):
        logical_id, _ = synth.one(resource_type)
        assert logical_id in depends_on, resource_type
    assert api_id not in depends_on


def test_the_master_secret_is_not_rotated_when_its_schedule_is_created(synth: Synth) -> None:
    """First deploy vs rotation: no password change between the migration's secret read and
    its connect; the first rotation comes after db_secret_rotation_days."""
    _, rotation = synth.one("AWS::SecretsManager::RotationSchedule")
    assert rotation["Properties"]["RotateImmediatelyOnUpdate"] is False


# -- alarms that page --------------------------------------------------------------------------


def test_one_alarm_topic_per_stage_with_its_arn_as_an_output(synth: Synth) -> None:
    topic_id, topic = synth.one("AWS::SNS::Topic")
    assert synth.settings.stack_name in topic["Properties"]["DisplayName"]
    assert synth.template_json["Outputs"]["AlarmTopicArn"]["Value"] == {"Ref": topic_id}
    # TLS only: the topic policy denies unencrypted publishing.
    _, policy = synth.one("AWS::SNS::TopicPolicy")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )
    # No email unless one is given as context.
    assert synth.of_type("AWS::SNS::Subscription") == {}


def test_alarm_email_from_context_subscribes_to_the_topic(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    synth = synthesize(
        "dev", tmp_path_factory.mktemp("cdk-dev-email"), alarm_email="oncall@example.com"
    )
    assert synth.validation_error is None
    topic_id, _ = synth.one("AWS::SNS::Topic")
    _, subscription = synth.one("AWS::SNS::Subscription")
    assert subscription["Properties"] == {
        "Protocol": "email",
        "TopicArn": {"Ref": topic_id},
        "Endpoint": "oncall@example.com",
    }


def test_every_alarm_notifies_the_topic_when_it_fires_and_when_it_clears(synth: Synth) -> None:
    topic_id, _ = synth.one("AWS::SNS::Topic")
    found = alarms(synth)
    expected = set(ALARMS_EVERYWHERE)
    if synth.settings.db_burstable:
        expected.add("DatabaseCpuCredits")
    assert set(found) == expected
    for name, alarm in found.items():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}], name
        assert alarm["OKActions"] == [{"Ref": topic_id}], name
        assert alarm["TreatMissingData"] == "notBreaching", name
        assert len(alarm["AlarmDescription"]) > 20, name


def test_alarm_thresholds_come_from_the_stage_settings(synth: Synth) -> None:
    s = synth.settings
    found = alarms(synth)

    def metric(name: str) -> tuple[str, str]:
        return found[name]["Namespace"], found[name]["MetricName"]

    assert found["ApiLatencyP99"]["Threshold"] == s.alarm_api_p99_latency_ms
    assert found["Api5xxRate"]["Threshold"] == s.alarm_api_5xx_rate_percent
    assert found["FunctionErrors"]["Threshold"] == s.alarm_function_errors
    assert metric("FunctionDuration") == ("AWS/Lambda", "Duration")
    assert found["FunctionDuration"]["Threshold"] == pytest.approx(
        s.function_timeout_seconds * 1000 * s.alarm_function_duration_percent / 100
    )
    assert metric("FunctionConcurrency") == ("AWS/Lambda", "ConcurrentExecutions")
    assert found["FunctionConcurrency"]["Threshold"] < s.function_reserved_concurrency
    assert metric("ProxyClientConnections") == ("AWS/RDS", "ClientConnections")
    assert found["ProxyClientConnections"]["Threshold"] == s.alarm_proxy_client_connections
    assert found["DatabaseCpu"]["Threshold"] == s.alarm_db_cpu_percent
    storage = found["DatabaseFreeStorage"]
    assert storage["ComparisonOperator"] == "LessThanOrEqualToThreshold"
    assert storage["Threshold"] == pytest.approx(
        s.db_allocated_storage_gib * 2**30 * s.alarm_db_free_storage_percent / 100
    )
    assert found["DatabaseFreeableMemory"]["Threshold"] == s.alarm_db_freeable_memory_mib * 2**20
    connections = found["DatabaseConnections"]["Threshold"]
    assert s.proxy_connection_budget <= connections < s.db_max_connections
    if s.db_burstable:
        assert metric("DatabaseCpuCredits") == ("AWS/RDS", "CPUCreditBalance")
    # The migration function's errors, not the API's.
    migration_id, _ = synth.function(MIGRATION_HANDLER)
    dimensions = found["MigrationErrors"]["Dimensions"]
    assert dimensions == [{"Name": "FunctionName", "Value": {"Ref": migration_id}}]
    # The database alarms watch this stack's instance.
    db_id, _ = synth.one("AWS::RDS::DBInstance")
    assert found["DatabaseCpu"]["Dimensions"] == [
        {"Name": "DBInstanceIdentifier", "Value": {"Ref": db_id}}
    ]


def test_prod_alarms_fire_sooner_than_dev() -> None:
    assert PROD.alarm_api_5xx_rate_percent < DEV.alarm_api_5xx_rate_percent
    assert PROD.alarm_api_p99_latency_ms < DEV.alarm_api_p99_latency_ms
    assert PROD.alarm_function_errors < DEV.alarm_function_errors


def test_a_dashboard_per_stage_with_its_url_as_an_output(synth: Synth) -> None:
    _, dashboard = synth.one("AWS::CloudWatch::Dashboard")
    name = synth.settings.stack_name
    assert dashboard["Properties"]["DashboardName"] == name
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric_name in ("Latency", "Duration", "ClientConnections", "CPUUtilization"):
        assert metric_name in body, metric_name
    url = json.dumps(synth.template_json["Outputs"]["DashboardUrl"]["Value"])
    assert f"#dashboards/dashboard/{name}" in url
    assert "AWS::Region" in url


# -- a visible database ------------------------------------------------------------------------


def test_postgresql_logs_go_to_cloudwatch_with_the_stage_retention(synth: Synth) -> None:
    _, db = synth.one("AWS::RDS::DBInstance")
    props = db["Properties"]
    assert sorted(props["EnableCloudwatchLogsExports"]) == ["postgresql", "upgrade"]
    identifier = props["DBInstanceIdentifier"]
    groups = {
        g["Properties"].get("LogGroupName"): (k, g)
        for k, g in synth.of_type("AWS::Logs::LogGroup").items()
    }
    for log in ("postgresql", "upgrade"):
        logical_id, group = groups[f"/aws/rds/instance/{identifier}/{log}"]
        assert group["Properties"]["RetentionInDays"] == RETENTION_DAYS[synth.settings.name]
        # Made before the instance, so RDS exports into it instead of making its own.
        assert logical_id in db["DependsOn"]
    _, params = synth.one("AWS::RDS::DBParameterGroup")
    assert params["Properties"]["Parameters"]["log_min_duration_statement"] == "1000"


def test_performance_insights_on_and_enhanced_monitoring_in_prod(dev: Synth, prod: Synth) -> None:
    for synth in (dev, prod):
        _, db = synth.one("AWS::RDS::DBInstance")
        assert db["Properties"]["EnablePerformanceInsights"] is True
        assert db["Properties"]["PerformanceInsightsRetentionPeriod"] == 7  # the free tier
    _, dev_db = dev.one("AWS::RDS::DBInstance")
    assert "MonitoringInterval" not in dev_db["Properties"]
    _, prod_db = prod.one("AWS::RDS::DBInstance")
    assert prod_db["Properties"]["MonitoringInterval"] == PROD.db_monitoring_interval_seconds > 0
    role_id = prod_db["Properties"]["MonitoringRoleArn"]["Fn::GetAtt"][0]
    trust = prod.resources[role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust[0]["Principal"] == {"Service": "monitoring.rds.amazonaws.com"}


def test_the_instance_uses_the_ca_the_migration_function_trusts(synth: Synth) -> None:
    _, db = synth.one("AWS::RDS::DBInstance")
    assert db["Properties"]["CACertificateIdentifier"] == "rds-ca-rsa2048-g1"
    for handler in (API_HANDLER, MIGRATION_HANDLER):
        _, function = synth.function(handler)
        assert function["Properties"]["Environment"]["Variables"]["DB_SSL"] == "verify-full"


def test_engine_is_the_newest_minor_of_the_chosen_major_that_cdk_knows(synth: Synth) -> None:
    """The engine-version policy (docs/deploy.md): an aws-cdk-lib upgrade that knows a newer
    minor of the major fails this test, so the bump rides along with it."""
    from aws_cdk import aws_rds as rds

    from infra.constructs.database import ENGINE_MAJOR

    prefix = f"VER_{ENGINE_MAJOR}_"
    minors = [
        int(name.removeprefix(prefix))
        for name in dir(rds.PostgresEngineVersion)
        if name.startswith(prefix) and name.removeprefix(prefix).isdigit()
    ]
    _, db = synth.one("AWS::RDS::DBInstance")
    assert db["Properties"]["EngineVersion"] == f"{ENGINE_MAJOR}.{max(minors)}"
    assert db["Properties"]["AutoMinorVersionUpgrade"] is False


# -- least privilege and correctness details ------------------------------------------------


def test_function_roles_have_no_managed_policy_and_log_to_their_own_group(synth: Synth) -> None:
    assert "AWSLambdaVPCAccessExecutionRole" not in json.dumps(synth.template_json)
    for handler in (API_HANDLER, MIGRATION_HANDLER):
        _, function = synth.function(handler)
        role = synth.resources[function["Properties"]["Role"]["Fn::GetAtt"][0]]
        assert "ManagedPolicyArns" not in role["Properties"]
        log_group_id = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        [policy] = role["Properties"]["Policies"]
        by_action = {
            action: statement["Resource"]
            for statement in policy["PolicyDocument"]["Statement"]
            for action in (
                [statement["Action"]]
                if isinstance(statement["Action"], str)
                else statement["Action"]
            )
        }
        for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
            assert by_action[action] == {"Fn::GetAtt": [log_group_id, "Arn"]}, action
        assert "logs:CreateLogGroup" not in by_action
        for action in ("ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"):
            assert by_action[action] == "*"
        for action in ("ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface"):
            assert "AWS::AccountId" in json.dumps(by_action[action]), action


def test_one_rule_per_pair_of_security_groups(synth: Synth) -> None:
    """No rule written twice (CDK's proxy target already opens proxy -> database): deleting
    one copy would revoke the other."""

    def key(rule: dict[str, Any], peer_key: str) -> tuple[str, str, int]:
        props = rule["Properties"]
        return (
            json.dumps(props["GroupId"]),
            json.dumps(props.get(peer_key)),
            json.dumps(props["FromPort"]),
        )

    ingress = Counter(
        key(r, "SourceSecurityGroupId")
        for r in synth.of_type("AWS::EC2::SecurityGroupIngress").values()
    )
    egress = Counter(
        key(r, "DestinationSecurityGroupId")
        for r in synth.of_type("AWS::EC2::SecurityGroupEgress").values()
    )
    assert [k for k, n in ingress.items() if n > 1] == []
    assert [k for k, n in egress.items() if n > 1] == []
    # Each path: API -> proxy, proxy -> database, migrations -> database, rotation ->
    # database, migrations and rotation -> the Secrets Manager endpoint.
    assert sum(ingress.values()) == sum(egress.values()) == 6


def test_every_variable_the_stack_sets_on_a_function_is_a_settings_field(synth: Synth) -> None:
    """pydantic-settings ignores unknown names: a renamed setting would fail silently."""
    from users_api.settings import Settings

    known = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        known.add(alias.upper() if isinstance(alias, str) else name.upper())
    for handler in (API_HANDLER, MIGRATION_HANDLER):
        _, function = synth.function(handler)
        variables = set(function["Properties"]["Environment"]["Variables"])
        assert variables - known == set(), handler
