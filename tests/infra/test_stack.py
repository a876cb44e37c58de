"""Assertions on the synthesized template of each stage (dev and prod)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from aws_cdk.assertions import Match

from infra.config import APP_DB_USER, DB_NAME, DB_PORT, DEV, PROD
from tests.infra.conftest import Synth

API_HANDLER = "users_api.handler.handler"
MIGRATION_HANDLER = "users_api.migrate.handler"
RETENTION_DAYS = {DEV.name: 7, PROD.name: 90}


def ref(logical_id: str) -> dict[str, str]:
    return {"Ref": logical_id}


def statements(synth: Synth, role_logical_id: str) -> list[dict[str, Any]]:
    """Every policy statement attached to a role (inline policies and AWS::IAM::Policy)."""
    found = []
    role = synth.resources[role_logical_id]
    for policy in role["Properties"].get("Policies", []):
        found += policy["PolicyDocument"]["Statement"]
    for policy in synth.of_type("AWS::IAM::Policy").values():
        if ref(role_logical_id) in policy["Properties"]["Roles"]:
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def actions_of(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else action


def role_of(function: dict[str, Any]) -> str:
    return function["Properties"]["Role"]["Fn::GetAtt"][0]


def test_stack_is_environment_agnostic_and_named_per_stage(synth: Synth) -> None:
    assert synth.settings.stack_name == f"UsersApi-{synth.settings.name}"
    text = json.dumps(synth.template_json)
    assert "AWS::AccountId" in text
    assert "unknown-account" not in text


@pytest.mark.parametrize("handler", [API_HANDLER, MIGRATION_HANDLER])
def test_functions_are_python312_arm64_and_share_one_asset(synth: Synth, handler: str) -> None:
    _, function = synth.function(handler)
    props = function["Properties"]
    assert props["Runtime"] == "python3.12"
    assert props["Architectures"] == ["arm64"]
    _, api = synth.function(API_HANDLER)
    assert props["Code"] == api["Properties"]["Code"]


def test_database_proxy_and_functions_sit_in_the_two_isolated_subnets(synth: Synth) -> None:
    subnets = synth.of_type("AWS::EC2::Subnet")
    assert len(subnets) == 2
    for subnet in subnets.values():
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is False
        assert {"Key": "aws-cdk:subnet-type", "Value": "Isolated"} in subnet["Properties"]["Tags"]
    isolated = sorted(subnets)
    # Nothing leads out of the VPC but the Secrets Manager endpoint.
    for resource_type in (
        "AWS::EC2::NatGateway",
        "AWS::EC2::InternetGateway",
        "AWS::EC2::EIP",
        "AWS::EC2::Route",
    ):
        assert synth.of_type(resource_type) == {}, resource_type

    for handler in (API_HANDLER, MIGRATION_HANDLER):
        _, function = synth.function(handler)
        subnet_ids = function["Properties"]["VpcConfig"]["SubnetIds"]
        assert sorted(s["Ref"] for s in subnet_ids) == isolated
    _, proxy = synth.one("AWS::RDS::DBProxy")
    assert sorted(s["Ref"] for s in proxy["Properties"]["VpcSubnetIds"]) == isolated
    _, subnet_group = synth.one("AWS::RDS::DBSubnetGroup")
    assert sorted(s["Ref"] for s in subnet_group["Properties"]["SubnetIds"]) == isolated


def test_only_the_secrets_manager_endpoint_and_flow_logs(synth: Synth) -> None:
    _, endpoint = synth.one("AWS::EC2::VPCEndpoint")
    assert endpoint["Properties"]["VpcEndpointType"] == "Interface"
    assert endpoint["Properties"]["PrivateDnsEnabled"] is True
    assert "secretsmanager" in json.dumps(endpoint["Properties"]["ServiceName"])
    _, flow_log = synth.one("AWS::EC2::FlowLog")
    expected_traffic = {DEV.name: "REJECT", PROD.name: "ALL"}[synth.settings.name]
    assert flow_log["Properties"]["TrafficType"] == expected_traffic


def test_api_function_environment_has_the_settings_and_no_secret(synth: Synth) -> None:
    _, function = synth.function(API_HANDLER)
    proxy_id, _ = synth.one("AWS::RDS::DBProxy")
    env = function["Properties"]["Environment"]["Variables"]
    assert env == {
        "DB_HOST": {"Fn::GetAtt": [proxy_id, "Endpoint"]},
        "DB_PORT": str(DB_PORT),
        "DB_NAME": DB_NAME,
        "DB_USER": APP_DB_USER,
        "DB_AUTH_MODE": "iam",
        "DB_SSL": "verify-full",
        "DB_CONNECT_TIMEOUT": str(synth.settings.db_connect_timeout_seconds),
        "DB_STATEMENT_TIMEOUT": str(synth.settings.db_statement_timeout_seconds),
        "API_ROOT_PATH": "",
        "LOG_LEVEL": synth.settings.log_level,
        "POWERTOOLS_SERVICE_NAME": "users-api",
        "POWERTOOLS_METRICS_NAMESPACE": "UsersApi",
        "REQUIRE_AUTH": "true" if synth.settings.auth_enabled else "false",
        "MAX_BODY_BYTES": str(synth.settings.max_body_bytes),
        "AUTH_READ_SCOPE": synth.settings.auth_read_scope,
        "AUTH_WRITE_SCOPE": synth.settings.auth_write_scope,
        "AUTH_PUBLIC_READS": "true" if synth.settings.auth_public_reads else "false",
    }
    assert env["REQUIRE_AUTH"] == "true"  # every stage
    assert env["MAX_BODY_BYTES"] == str(1024 * 1024)
    secret_ids = set(synth.of_type("AWS::SecretsManager::Secret")) | set(
        synth.of_type("AWS::SecretsManager::SecretTargetAttachment")
    )
    text = json.dumps(env)
    assert "resolve:secretsmanager" not in text
    assert not any(secret_id in text for secret_id in secret_ids)
    assert not any("PASSWORD" in key or "SECRET" in key for key in env)


def test_migration_function_reads_the_master_secret_and_nothing_else(synth: Synth) -> None:
    _, function = synth.function(MIGRATION_HANDLER)
    db_id, _ = synth.one("AWS::RDS::DBInstance")
    attachment_id, _ = synth.one("AWS::SecretsManager::SecretTargetAttachment")
    env = function["Properties"]["Environment"]["Variables"]
    assert env["DB_HOST"] == {"Fn::GetAtt": [db_id, "Endpoint.Address"]}
    assert env["DB_AUTH_MODE"] == "secret"
    assert env["DB_SECRET_ARN"] == ref(attachment_id)  # the secret's ARN, not its value
    # The instance's certificate is verified against the RDS CAs shipped in the bundle.
    assert env["DB_SSL"] == "verify-full"
    assert env["DB_SSL_ROOT_CERT"] == "/var/task/rds-ca-bundle.pem"
    assert env["APP_DB_USER"] == APP_DB_USER
    assert "resolve:secretsmanager" not in json.dumps(env)
    assert not any("PASSWORD" in key for key in env)

    migration_statements = statements(synth, role_of(function))
    secret_statements = [
        s
        for s in migration_statements
        if any(a.startswith("secretsmanager:") for a in actions_of(s))
    ]
    assert secret_statements == [
        {
            "Action": "secretsmanager:GetSecretValue",
            "Effect": "Allow",
            "Resource": ref(attachment_id),
        }
    ]
    _, api = synth.function(API_HANDLER)
    assert not any(
        a.startswith("secretsmanager:")
        for s in statements(synth, role_of(api))
        for a in actions_of(s)
    )


def test_function_timeout_memory_and_concurrency_follow_the_stage(synth: Synth) -> None:
    settings = synth.settings
    _, function = synth.function(API_HANDLER)
    props = function["Properties"]
    assert props["Timeout"] == settings.function_timeout_seconds
    assert props["Timeout"] > settings.db_connect_timeout_seconds
    assert props["MemorySize"] == settings.function_memory_mb
    assert props["ReservedConcurrentExecutions"] == settings.function_reserved_concurrency


def test_reserved_concurrency_fits_the_proxy_connection_budget(dev: Synth, prod: Synth) -> None:
    # NullPool: one proxy connection per in-flight invocation, so the reserved concurrency
    # bounds the connections a flood can open; the proxy may open MaxConnectionsPercent of
    # the instance's max_connections (LEAST(memory / 9531392, 5000)).
    for synth, concurrency, max_connections in ((dev, 20, 112), (prod, 100, 450)):
        props = synth.function(API_HANDLER)[1]["Properties"]
        assert props["ReservedConcurrentExecutions"] == concurrency
        _, target_group = synth.one("AWS::RDS::DBProxyTargetGroup")
        percent = target_group["Properties"]["ConnectionPoolConfigurationInfo"][
            "MaxConnectionsPercent"
        ]
        assert synth.settings.db_max_connections == max_connections
        assert concurrency <= max_connections * percent // 100
        # The client-connections alarm can fire below that ceiling.
        alarm_threshold = synth.settings.alarm_proxy_client_connections
        assert alarm_threshold <= concurrency


def test_proxy_requires_tls_and_end_to_end_iam_auth(synth: Synth) -> None:
    settings = synth.settings
    synth.template.has_resource_properties(
        "AWS::RDS::DBProxy",
        {
            "EngineFamily": "POSTGRESQL",
            "RequireTLS": True,
            "DefaultAuthScheme": "IAM_AUTH",
            "IdleClientTimeout": settings.proxy_idle_client_timeout_seconds,
            "Auth": Match.absent(),
        },
    )
    db_id, _ = synth.one("AWS::RDS::DBInstance")
    synth.template.has_resource_properties(
        "AWS::RDS::DBProxyTargetGroup",
        {
            "DBInstanceIdentifiers": [ref(db_id)],
            "ConnectionPoolConfigurationInfo": {
                "MaxConnectionsPercent": settings.proxy_max_connections_percent,
                "MaxIdleConnectionsPercent": settings.proxy_max_idle_connections_percent,
                # the database down: 503 within the API's connect timeout, not in 120 s
                "ConnectionBorrowTimeout": settings.db_connect_timeout_seconds,
            },
        },
    )


def connect_as_app_role(resource_id: object) -> dict[str, Any]:
    """The one IAM statement that lets a principal connect to `resource_id` as the app role."""
    arn = [
        "arn:",
        ref("AWS::Partition"),
        ":rds-db:",
        ref("AWS::Region"),
        ":",
        ref("AWS::AccountId"),
        ":dbuser:",
        resource_id,
        f"/{APP_DB_USER}",
    ]
    return {"Action": "rds-db:connect", "Effect": "Allow", "Resource": {"Fn::Join": ["", arn]}}


def test_api_function_may_connect_to_that_proxy_as_the_app_role_only(synth: Synth) -> None:
    proxy_id, _ = synth.one("AWS::RDS::DBProxy")
    _, function = synth.function(API_HANDLER)
    connect = [s for s in statements(synth, role_of(function)) if "rds-db:connect" in actions_of(s)]
    proxy_resource_id = {
        "Fn::Select": [6, {"Fn::Split": [":", {"Fn::GetAtt": [proxy_id, "DBProxyArn"]}]}]
    }
    assert connect == [connect_as_app_role(proxy_resource_id)]


def test_proxy_reaches_the_database_with_iam_as_the_app_role_only(synth: Synth) -> None:
    db_id, _ = synth.one("AWS::RDS::DBInstance")
    _, proxy = synth.one("AWS::RDS::DBProxy")
    proxy_role = proxy["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    assert statements(synth, proxy_role) == [
        connect_as_app_role({"Fn::GetAtt": [db_id, "DbiResourceId"]}),
    ]
    # Nobody else may open IAM database connections.
    granted = [
        role_id
        for role_id in synth.of_type("AWS::IAM::Role")
        if any("rds-db:connect" in actions_of(s) for s in statements(synth, role_id))
    ]
    _, api = synth.function(API_HANDLER)
    assert sorted(granted) == sorted([proxy_role, role_of(api)])


def test_database_is_private_encrypted_backed_up_and_pinned(synth: Synth) -> None:
    settings = synth.settings
    _, db = synth.one("AWS::RDS::DBInstance")
    props = db["Properties"]
    assert props["Engine"] == "postgres"
    major, minor = props["EngineVersion"].split(".")
    assert (major, minor.isdigit()) == ("16", True)
    assert props["PubliclyAccessible"] is False
    assert props["StorageEncrypted"] is True
    assert props["EnableIAMDatabaseAuthentication"] is True
    assert props["BackupRetentionPeriod"] == settings.db_backup_retention_days >= 1
    assert props["MultiAZ"] is settings.db_multi_az
    assert props["DBInstanceClass"] == f"db.{settings.db_instance_class}"
    assert "MasterUserPassword" in props
    assert "resolve:secretsmanager" in json.dumps(props["MasterUserPassword"])
    _, params = synth.one("AWS::RDS::DBParameterGroup")
    assert params["Properties"]["Parameters"]["rds.force_ssl"] == "1"


def test_master_secret_rotates_on_a_schedule_with_the_hosted_function(synth: Synth) -> None:
    settings = synth.settings
    attachment_id, _ = synth.one("AWS::SecretsManager::SecretTargetAttachment")
    _, secret = synth.one("AWS::SecretsManager::Secret")
    _, rotation = synth.one("AWS::SecretsManager::RotationSchedule")
    props = rotation["Properties"]
    assert props["SecretId"] == ref(attachment_id)
    assert props["RotationRules"]["ScheduleExpression"] == (
        f"rate({settings.db_secret_rotation_days} days)"
    )
    # Secrets Manager's hosted rotation (a transform), not a Serverless Application
    # Repository app: nothing to fetch from AWS to read the template (`sam local`).
    assert synth.template_json["Transform"] == "AWS::SecretsManager-2024-09-16"
    assert synth.of_type("AWS::Serverless::Application") == {}
    hosted = props["HostedRotationLambda"]
    assert hosted["RotationType"] == "PostgreSQLSingleUser"
    assert "MasterSecretArn" not in hosted  # single user: the secret rotates itself
    # New passwords avoid the characters the generated one avoids.
    generate = secret["Properties"]["GenerateSecretString"]
    assert hosted["ExcludeCharacters"] == generate["ExcludeCharacters"]
    # In the isolated subnets, with its own security group.
    subnet_refs = [p for p in hosted["VpcSubnetIds"]["Fn::Join"][1] if p != ","]
    assert sorted(r["Ref"] for r in subnet_refs) == sorted(synth.of_type("AWS::EC2::Subnet"))
    rotation_sg = hosted["VpcSecurityGroupIds"]["Fn::GetAtt"][0]
    assert synth.resources[rotation_sg]["Type"] == "AWS::EC2::SecurityGroup"


def test_rotation_function_reaches_postgresql_and_secrets_manager_only(synth: Synth) -> None:
    _, rotation = synth.one("AWS::SecretsManager::RotationSchedule")
    rotation_sg = rotation["Properties"]["HostedRotationLambda"]["VpcSecurityGroupIds"][
        "Fn::GetAtt"
    ][0]
    _, db = synth.one("AWS::RDS::DBInstance")
    db_sg = db["Properties"]["VPCSecurityGroups"][0]["Fn::GetAtt"][0]
    _, endpoint = synth.one("AWS::EC2::VPCEndpoint")
    endpoint_sg = endpoint["Properties"]["SecurityGroupIds"][0]["Fn::GetAtt"][0]

    def group(logical_id: str) -> dict[str, Any]:
        return {"Fn::GetAtt": [logical_id, "GroupId"]}

    egress = sorted(
        (
            e["Properties"]["DestinationSecurityGroupId"]["Fn::GetAtt"][0],
            e["Properties"]["FromPort"],
        )
        for e in synth.of_type("AWS::EC2::SecurityGroupEgress").values()
        if e["Properties"]["GroupId"] == group(rotation_sg)
    )
    assert egress == sorted([(db_sg, DB_PORT), (endpoint_sg, 443)])
    assert "SecurityGroupEgress" not in synth.resources[rotation_sg]["Properties"] or all(
        rule.get("CidrIp") != "0.0.0.0/0"
        for rule in synth.resources[rotation_sg]["Properties"]["SecurityGroupEgress"]
    )
    ingress = {
        (i["Properties"]["GroupId"]["Fn::GetAtt"][0], i["Properties"]["FromPort"])
        for i in synth.of_type("AWS::EC2::SecurityGroupIngress").values()
        if i["Properties"].get("SourceSecurityGroupId") == group(rotation_sg)
    }
    assert ingress == {(db_sg, DB_PORT), (endpoint_sg, 443)}
    # The endpoint serves the isolated subnets with private DNS: the default Secrets Manager
    # hostname resolves to it, so the rotation function needs no NAT.
    assert endpoint["Properties"]["PrivateDnsEnabled"] is True
    assert sorted(s["Ref"] for s in endpoint["Properties"]["SubnetIds"]) == sorted(
        synth.of_type("AWS::EC2::Subnet")
    )


def test_api_function_never_sees_a_secret(synth: Synth) -> None:
    """The application role authenticates with IAM tokens: no secret is attached to the API
    function (environment, role), and its role may not read any secret."""
    api_id, function = synth.function(API_HANDLER)
    text = json.dumps(function["Properties"])
    for secret_id in [
        *synth.of_type("AWS::SecretsManager::Secret"),
        *synth.of_type("AWS::SecretsManager::SecretTargetAttachment"),
    ]:
        assert secret_id not in text
    api_statements = statements(synth, role_of(function))
    assert not any(
        a.startswith("secretsmanager:") or a == "*" for s in api_statements for a in actions_of(s)
    )
    # No secret resource policy grants it anything either.
    for policy in synth.of_type("AWS::SecretsManager::ResourcePolicy").values():
        for statement in policy["Properties"]["ResourcePolicy"]["Statement"]:
            assert statement["Effect"] == "Deny", statement
    assert api_id not in json.dumps(synth.of_type("AWS::SecretsManager::ResourcePolicy"))


@pytest.mark.parametrize(
    ("stage", "protected", "policy"), [("dev", False, "Delete"), ("prod", True, "Retain")]
)
def test_dev_is_destroyed_with_the_stack_and_prod_is_protected_and_retained(
    synth_stage: Callable[[str], Synth], stage: str, protected: bool, policy: str
) -> None:
    synth = synth_stage(stage)
    _, db = synth.one("AWS::RDS::DBInstance")
    assert db["Properties"]["DeletionProtection"] is protected
    for resource_type in (
        "AWS::RDS::DBInstance",
        "AWS::SecretsManager::Secret",
        "AWS::Logs::LogGroup",
    ):
        for logical_id, resource in synth.of_type(resource_type).items():
            assert resource.get("DeletionPolicy") == policy, logical_id
            assert resource.get("UpdateReplacePolicy") == policy, logical_id


def test_every_log_group_has_the_stage_retention(synth: Synth) -> None:
    log_groups = synth.of_type("AWS::Logs::LogGroup")
    # API function, migrations, HTTP API access logs, VPC flow logs, Cognito scopes trigger,
    # PostgreSQL's server and upgrade logs.
    assert len(log_groups) == 7
    for logical_id, log_group in log_groups.items():
        expected = RETENTION_DAYS[synth.settings.name]
        assert log_group["Properties"]["RetentionInDays"] == expected, logical_id
    for handler in (API_HANDLER, MIGRATION_HANDLER):
        _, function = synth.function(handler)
        assert function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] in log_groups


def test_http_api_default_stage_throttling_and_json_access_logs(synth: Synth) -> None:
    settings = synth.settings
    _, stage = synth.one("AWS::ApiGatewayV2::Stage")
    props = stage["Properties"]
    assert props["StageName"] == "$default"
    assert props["AutoDeploy"] is True
    assert props["DefaultRouteSettings"] == {
        "ThrottlingRateLimit": settings.throttle_rate_limit,
        "ThrottlingBurstLimit": settings.throttle_burst_limit,
    }
    access_log_format = json.loads(props["AccessLogSettings"]["Format"])
    assert access_log_format["requestId"] == "$context.requestId"
    assert access_log_format["status"] == "$context.status"
    log_group_id = props["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][0]
    assert synth.resources[log_group_id]["Type"] == "AWS::Logs::LogGroup"

    # Every route (tests/infra/test_auth.py) goes to the one Lambda integration.
    _, integration = synth.one("AWS::ApiGatewayV2::Integration")
    assert integration["Properties"]["IntegrationType"] == "AWS_PROXY"
    assert integration["Properties"]["PayloadFormatVersion"] == "2.0"
    api_id, _ = synth.function(API_HANDLER)
    assert integration["Properties"]["IntegrationUri"] == {"Fn::GetAtt": [api_id, "Arn"]}


def test_cors_comes_from_the_stage_settings(dev: Synth, prod: Synth) -> None:
    _, dev_api = dev.one("AWS::ApiGatewayV2::Api")
    cors = dev_api["Properties"]["CorsConfiguration"]
    assert cors["AllowOrigins"] == list(DEV.cors_allow_origins)
    assert "PATCH" in cors["AllowMethods"]
    _, prod_api = prod.one("AWS::ApiGatewayV2::Api")
    assert "CorsConfiguration" not in prod_api["Properties"]


def test_migration_trigger_runs_after_the_database_and_proxy(synth: Synth) -> None:
    _, trigger = synth.one("Custom::Trigger")
    depends_on = set(trigger["DependsOn"])
    for resource_type in (
        "AWS::RDS::DBInstance",
        "AWS::RDS::DBProxy",
        "AWS::RDS::DBProxyTargetGroup",
        "AWS::RDS::DBParameterGroup",
    ):
        logical_id, _ = synth.one(resource_type)
        assert logical_id in depends_on, resource_type
    props = trigger["Properties"]
    assert props["ExecuteOnHandlerChange"] is True
    assert props["InvocationType"] == "RequestResponse"
    migration_id, _ = synth.function(MIGRATION_HANDLER)
    version_id = props["HandlerArn"]["Ref"]
    version = synth.resources[version_id]
    assert version["Type"] == "AWS::Lambda::Version"
    assert version["Properties"]["FunctionName"] == ref(migration_id)
    # The trigger waits for the whole migration run.
    assert int(props["Timeout"]) > synth.settings.migration_timeout_seconds * 1000


def test_security_groups_allow_only_the_expected_paths(synth: Synth) -> None:
    text = json.dumps(synth.of_type("AWS::EC2::SecurityGroupIngress"))
    assert "0.0.0.0/0" not in text
    for group in synth.of_type("AWS::EC2::SecurityGroup").values():
        for rule in group["Properties"].get("SecurityGroupIngress", []):
            assert rule.get("CidrIp") != "0.0.0.0/0", rule

    _, api = synth.function(API_HANDLER)
    api_sg = api["Properties"]["VpcConfig"]["SecurityGroupIds"][0]["Fn::GetAtt"][0]
    _, proxy = synth.one("AWS::RDS::DBProxy")
    proxy_sg = proxy["Properties"]["VpcSecurityGroupIds"][0]["Fn::GetAtt"][0]
    api_egress = [
        e["Properties"]
        for e in synth.of_type("AWS::EC2::SecurityGroupEgress").values()
        if e["Properties"]["GroupId"] == {"Fn::GetAtt": [api_sg, "GroupId"]}
    ]
    assert api_egress == [
        {
            "GroupId": {"Fn::GetAtt": [api_sg, "GroupId"]},
            "IpProtocol": "tcp",
            "Description": "API function to RDS Proxy",
            "DestinationSecurityGroupId": {"Fn::GetAtt": [proxy_sg, "GroupId"]},
            "FromPort": DB_PORT,
            "ToPort": DB_PORT,
        }
    ]
    # No default allow-all egress rule on the function's group.
    assert "SecurityGroupEgress" not in synth.resources[api_sg]["Properties"] or all(
        rule.get("CidrIp") != "0.0.0.0/0"
        for rule in synth.resources[api_sg]["Properties"]["SecurityGroupEgress"]
    )


def test_outputs_name_the_api_url_function_and_proxy(synth: Synth) -> None:
    outputs = synth.template_json["Outputs"]
    api_id, _ = synth.one("AWS::ApiGatewayV2::Api")
    function_id, _ = synth.function(API_HANDLER)
    proxy_id, _ = synth.one("AWS::RDS::DBProxy")
    assert "ApiUrl" in outputs
    assert api_id in json.dumps(outputs["ApiUrl"]["Value"])
    assert outputs["FunctionName"]["Value"] == ref(function_id)
    assert outputs["ProxyEndpoint"]["Value"] == {"Fn::GetAtt": [proxy_id, "Endpoint"]}
