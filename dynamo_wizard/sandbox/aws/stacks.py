"""Deleting a CloudFormation stack the way CloudFormation does it — its resources in reverse dependency
order, a dependency that blocks the VPC leaving the stack DELETE_FAILED — since moto's DeleteStack cannot
(it fails on a VPC with dependents, and pops the stack even when it fails)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Client = Callable[[str], Any]


def _attempt(fn: Callable[..., Any], **kw: Any) -> str | None:
    try:
        fn(**kw)
    except Exception as err:  # botocore ClientError; the code decides
        text = str(err)
        if "NotFound" in text or "does not exist" in text or "NoSuchEntity" in text:
            return None
        return text
    return None


def delete_role(iam: Any, role: str) -> None:
    try:
        for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=role, PolicyArn=p["PolicyArn"])
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
            iam.delete_role_policy(RoleName=role, PolicyName=name)
        iam.delete_role(RoleName=role)
    except Exception:
        pass


def teardown(client: Client, stack_name: str) -> str | None:
    """Delete what the stack holds; returns the first failure (CloudFormation's wording), None when done."""
    cfn, ec2, iam = client("cloudformation"), client("ec2"), client("iam")
    try:
        resources = cfn.describe_stack_resources(StackName=stack_name)["StackResources"]
    except Exception:
        return None
    phys = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}
    kinds = {r["LogicalResourceId"]: r["ResourceType"] for r in resources}
    of = lambda kind: [lid for lid, k in kinds.items() if k == kind]  # noqa: E731
    vpc = next((phys[lid] for lid in of("AWS::EC2::VPC")), None)
    failure: str | None = None
    for lid in of("AWS::EC2::NatGateway"):
        _attempt(ec2.delete_nat_gateway, NatGatewayId=phys[lid])
    for lid in of("AWS::EC2::EIP"):
        try:
            for a in ec2.describe_addresses()["Addresses"]:
                if phys[lid] in (a.get("PublicIp"), a.get("AllocationId")):
                    _attempt(ec2.release_address, AllocationId=a["AllocationId"])
        except Exception:
            pass
    if vpc:
        try:
            tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"]
        except Exception:
            tables = []
        for rt in tables:
            if any(a.get("Main") for a in rt.get("Associations") or []):
                continue
            for a in rt.get("Associations") or []:
                _attempt(ec2.disassociate_route_table, AssociationId=a["RouteTableAssociationId"])
            _attempt(ec2.delete_route_table, RouteTableId=rt["RouteTableId"])
        for lid in of("AWS::EC2::InternetGateway"):
            _attempt(ec2.detach_internet_gateway, InternetGatewayId=phys[lid], VpcId=vpc)
            _attempt(ec2.delete_internet_gateway, InternetGatewayId=phys[lid])
    for lid in of("AWS::EC2::Subnet"):
        err = _attempt(ec2.delete_subnet, SubnetId=phys[lid])
        if err and failure is None:
            failure = f'AWS::EC2::Subnet/{lid}: DELETE_FAILED – "{err}"'
    for lid in of("AWS::EC2::SecurityGroup"):
        err = _attempt(ec2.delete_security_group, GroupId=phys[lid])
        if err and failure is None:
            failure = f'AWS::EC2::SecurityGroup/{lid}: DELETE_FAILED – "{err}"'
    if vpc and failure is None:
        err = _attempt(ec2.delete_vpc, VpcId=vpc)
        if err:
            failure = f'AWS::EC2::VPC/VPC: DELETE_FAILED – "{err}"'
    if failure is None:
        for lid in of("AWS::IAM::Role"):
            delete_role(iam, phys[lid])
    return failure
