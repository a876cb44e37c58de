"""Network: a VPC over two AZs with isolated subnets only (no NAT, no internet gateway).

The database, the proxy and both functions sit in the isolated subnets. The only way out is
the Secrets Manager interface endpoint (the migration function and the secret rotation
read the master secret through it); the API function signs its IAM auth tokens locally
and needs no AWS endpoint at all.
"""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from infra.config import StageSettings
from infra.constructs.log_group import stage_log_group


class Network(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, settings: StageSettings) -> None:
        super().__init__(scope, construct_id)

        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24
                )
            ],
        )
        self.isolated_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)

        flow_log_group = stage_log_group(self, "FlowLogGroup", settings)
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_log_group),
            traffic_type=settings.flow_log_traffic,
        )

        # Closed by default: each client is let in explicitly (allow_secrets_manager_from).
        self.secrets_manager_endpoint = self.vpc.add_interface_endpoint(
            "SecretsManagerEndpoint",
            service=ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
            subnets=self.isolated_subnets,
            private_dns_enabled=True,
            open=False,
        )

    def security_group(
        self, scope: Construct, construct_id: str, description: str
    ) -> ec2.SecurityGroup:
        """A security group in this VPC that allows nothing, out or in: each peer is let in
        or out with `connections.allow_to(...)`, which adds both sides' rules."""
        return ec2.SecurityGroup(
            scope, construct_id, vpc=self.vpc, description=description, allow_all_outbound=False
        )

    def allow_secrets_manager_from(self, client: ec2.IConnectable) -> None:
        """Let `client` call the Secrets Manager API (its egress, the endpoint's ingress)."""
        self.secrets_manager_endpoint.connections.allow_default_port_from(
            client, "Secrets Manager API (endpoint)"
        )
