"""The AWS calls provisioning makes, over boto3 (adaptive retries), as `core.protocols.AwsOps`.

Lookups (the cluster, its VPC and subnets, a security group by name, a file system by creation token,
mount targets) and the creates the EFS step needs, every resource tagged by the caller. Answers leave
as the small dataclasses of `core.protocols`; errors as `BackendError` (with the AWS error code) or
`Conflict` when the thing exists already, each with a message and what to do.
`AWS_ENDPOINT_URL` is left to boto3: that is how tests (moto) and the sandbox redirect every call.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError, ParamValidationError
from botocore.parsers import ResponseParserError

from ..core.manifests import EKS_UNSUPPORTED_ZONE_IDS
from ..core.protocols import (
    BackendError,
    ClusterInfo,
    Conflict,
    FileSystemInfo,
    MountTargetInfo,
    NotAuthorized,
    SecurityGroupInfo,
    SubnetInfo,
    Unreachable,
)
from ..core.redact import redact

# botocore's transport and parsing failures: a body that is not the service's XML/JSON (a proxy's HTML page,
# a server's bare 500) raises ResponseParserError, which is not a BotoCoreError.
BOTO_FAILURES = (BotoCoreError, ResponseParserError)

NFS_PORT = 2049
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedAccess"}
_CONFLICTS = {"InvalidGroup.Duplicate", "FileSystemAlreadyExists", "MountTargetConflict", "ResourceInUseException",
              "InvalidPermission.Duplicate"}


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", "Unknown"))


def _message(err: ClientError) -> str:
    return redact(str(err.response.get("Error", {}).get("Message", "")))[:300]


def translate(err: BaseException, call: str) -> BackendError:
    """A boto3 failure as a BackendError saying which call, why, and what to do."""
    if isinstance(err, ClientError):
        code, msg = _code(err), _message(err)
        if code in _DENIED:
            service, _, op = call.partition(".")
            return NotAuthorized(f"{call} was denied ({code}): {msg}",
                                 f"grant {service}:{op} to this AWS identity, then run the same command again",
                                 code=code)
        if code in _CONFLICTS:
            return Conflict(f"{call}: {code}: {msg}", code=code)
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return BackendError(f"{call} failed ({code}): {msg}",
                            "check the message above; run the same command again to resume", code=code,
                            status=int(status) if isinstance(status, int) else None)
    if isinstance(err, NoCredentialsError):
        return NotAuthorized("no AWS credentials were found",
                             "configure credentials (aws configure, aws sso login, AWS_PROFILE) or use --sandbox")
    if isinstance(err, NoRegionError):
        return BackendError("no AWS region is set", "set region in the plan or AWS_REGION")
    if isinstance(err, ParamValidationError):
        return BackendError(f"{call} was called with bad parameters: {redact(str(err))[:300]}",
                            "this is a bug in dynamo-wizard; the step's log has the call")
    if isinstance(err, BOTO_FAILURES):
        return Unreachable(f"{call} could not reach AWS: {redact(str(err))[:200]}",
                           "check the network and the endpoint, then run the same command again")
    return BackendError(f"{call} failed: {redact(str(err))[:300]}")


def _tags(items: Sequence[Mapping[str, Any]] | None) -> dict[str, str]:
    return {str(t.get("Key")): str(t.get("Value", "")) for t in items or () if t.get("Key") is not None}


def _tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


class AwsOps:
    """core.protocols.AwsOps over boto3 for one region."""

    def __init__(self, region: str, session: boto3.Session | None = None) -> None:
        self.region = region
        self.session = session or boto3.Session()
        self._config = Config(retries={"mode": "adaptive", "max_attempts": 8}, connect_timeout=10, read_timeout=60)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str) -> Any:
        # boto3 sessions are not thread-safe, clients are: make each once, under a lock.
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self.session.client(service, region_name=self.region, config=self._config)
            return self._clients[service]

    def _call(self, service: str, op: str, **kwargs: Any) -> Any:
        method = getattr(self.client(service), _snake(op))
        try:
            return method(**kwargs)
        except (ClientError, *BOTO_FAILURES) as err:
            raise translate(err, f"{service}.{op}") from None

    # -- EKS -----------------------------------------------------------------------------------------

    def describe_cluster(self, name: str) -> ClusterInfo | None:
        try:
            raw = self.client("eks").describe_cluster(name=name)["cluster"]
        except ClientError as err:
            if _code(err) == "ResourceNotFoundException":
                return None
            raise translate(err, "eks.DescribeCluster") from None
        except BOTO_FAILURES as err:
            raise translate(err, "eks.DescribeCluster") from None
        return cluster_from_api(raw, self.region)

    def describe_cluster_raw(self, name: str) -> dict[str, Any] | None:
        try:
            return dict(self.client("eks").describe_cluster(name=name)["cluster"])
        except ClientError as err:
            if _code(err) == "ResourceNotFoundException":
                return None
            raise translate(err, "eks.DescribeCluster") from None

    def stack_status(self, stack_name: str) -> str | None:
        try:
            stacks = self.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
        except ClientError as err:
            if _code(err) == "ValidationError" and "does not exist" in _message(err):
                return None
            raise translate(err, "cloudformation.DescribeStacks") from None
        except BOTO_FAILURES as err:
            raise translate(err, "cloudformation.DescribeStacks") from None
        return str(stacks[0].get("StackStatus")) if stacks else None

    # -- zones and VPC -------------------------------------------------------------------------------

    def control_plane_zones(self) -> list[str]:
        """Zone names of the region where EKS can place a control plane (no opt-in zones, no use1-az3...)."""
        zones = self._call("ec2", "DescribeAvailabilityZones", Filters=[
            {"Name": "opt-in-status", "Values": ["opt-in-not-required"]},
        ]).get("AvailabilityZones") or []
        return sorted(z["ZoneName"] for z in zones
                      if z.get("ZoneId") not in EKS_UNSUPPORTED_ZONE_IDS and z.get("ZoneType", "availability-zone")
                      == "availability-zone" and z.get("State", "available") == "available")


    def vpc_cidr(self, vpc_id: str) -> str:
        vpcs = self._call("ec2", "DescribeVpcs", VpcIds=[vpc_id]).get("Vpcs") or []
        if not vpcs:
            raise BackendError(f"VPC {vpc_id} was not found", "the cluster's VPC is gone; clean up and apply again")
        return str(vpcs[0]["CidrBlock"])

    def describe_subnets(self, subnet_ids: Sequence[str]) -> list[SubnetInfo]:
        if not subnet_ids:
            return []
        raw = self._call("ec2", "DescribeSubnets", SubnetIds=list(subnet_ids)).get("Subnets") or []
        out = []
        for s in raw:
            tags = _tags(s.get("Tags"))
            if "kubernetes.io/role/internal-elb" in tags:
                public = False
            elif "kubernetes.io/role/elb" in tags:
                public = True
            else:
                public = bool(s.get("MapPublicIpOnLaunch"))
            out.append(SubnetInfo(id=s["SubnetId"], zone=s.get("AvailabilityZone", ""), vpc_id=s.get("VpcId", ""),
                                  cidr=s.get("CidrBlock", ""), public=public, zone_id=s.get("AvailabilityZoneId", "")))
        return out

    def find_security_group(self, vpc_id: str, name: str) -> SecurityGroupInfo | None:
        groups = self._call("ec2", "DescribeSecurityGroups", Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": [name]},
        ]).get("SecurityGroups") or []
        for g in groups:
            if g.get("GroupName") == name and g.get("VpcId") == vpc_id:
                return SecurityGroupInfo(g["GroupId"], g["GroupName"], g["VpcId"], _tags(g.get("Tags")))
        return None

    def create_security_group(self, vpc_id: str, name: str, description: str,
                              tags: Mapping[str, str]) -> SecurityGroupInfo:
        out = self._call("ec2", "CreateSecurityGroup", GroupName=name, Description=description, VpcId=vpc_id,
                         TagSpecifications=[{"ResourceType": "security-group", "Tags": _tag_list(tags)}])
        return SecurityGroupInfo(out["GroupId"], name, vpc_id, dict(tags))

    def allow_nfs_from(self, group_id: str, cidr: str) -> bool:
        groups = self._call("ec2", "DescribeSecurityGroups", GroupIds=[group_id]).get("SecurityGroups") or []
        for perm in (groups[0].get("IpPermissions") or []) if groups else []:
            if perm.get("IpProtocol") == "tcp" and perm.get("FromPort") == NFS_PORT and perm.get("ToPort") == NFS_PORT \
                    and any(r.get("CidrIp") == cidr for r in perm.get("IpRanges") or []):
                return False
        try:
            self._call("ec2", "AuthorizeSecurityGroupIngress", GroupId=group_id, IpPermissions=[{
                "IpProtocol": "tcp", "FromPort": NFS_PORT, "ToPort": NFS_PORT,
                "IpRanges": [{"CidrIp": cidr, "Description": "NFS from the cluster VPC (dynamo-wizard)"}],
            }])
        except Conflict:
            return False
        return True

    # -- EFS -----------------------------------------------------------------------------------------

    def find_file_system(self, creation_token: str) -> FileSystemInfo | None:
        systems = self._call("efs", "DescribeFileSystems", CreationToken=creation_token).get("FileSystems") or []
        live = [fs for fs in systems if fs.get("LifeCycleState") not in ("deleting", "deleted")]
        return _fs(live[0]) if live else None

    def create_file_system(self, creation_token: str, tags: Mapping[str, str]) -> FileSystemInfo:
        out = self._call("efs", "CreateFileSystem", CreationToken=creation_token, PerformanceMode="generalPurpose",
                         ThroughputMode="elastic", Encrypted=True, Tags=_tag_list(tags))
        return _fs(out)

    def describe_file_system(self, file_system_id: str) -> FileSystemInfo | None:
        try:
            systems = self.client("efs").describe_file_systems(FileSystemId=file_system_id).get("FileSystems") or []
        except ClientError as err:
            if _code(err) == "FileSystemNotFound":
                return None
            raise translate(err, "efs.DescribeFileSystems") from None
        except BOTO_FAILURES as err:
            raise translate(err, "efs.DescribeFileSystems") from None
        return _fs(systems[0]) if systems else None

    def mount_targets(self, file_system_id: str) -> list[MountTargetInfo]:
        raw = self._call("efs", "DescribeMountTargets", FileSystemId=file_system_id).get("MountTargets") or []
        return [_mt(m) for m in raw]

    def create_mount_target(self, file_system_id: str, subnet_id: str,
                            security_group_ids: Sequence[str]) -> MountTargetInfo:
        out = self._call("efs", "CreateMountTarget", FileSystemId=file_system_id, SubnetId=subnet_id,
                         SecurityGroups=list(security_group_ids))
        return _mt(out)


def _snake(op: str) -> str:
    out = []
    for i, ch in enumerate(op):
        if ch.isupper() and i:
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def _fs(raw: Mapping[str, Any]) -> FileSystemInfo:
    tags = _tags(raw.get("Tags"))
    return FileSystemInfo(id=str(raw["FileSystemId"]), creation_token=str(raw.get("CreationToken", "")),
                          state=str(raw.get("LifeCycleState", "")), tags=tags, name=raw.get("Name") or tags.get("Name"))


def _mt(raw: Mapping[str, Any]) -> MountTargetInfo:
    return MountTargetInfo(id=str(raw["MountTargetId"]), file_system_id=str(raw.get("FileSystemId", "")),
                           subnet_id=str(raw.get("SubnetId", "")), zone=str(raw.get("AvailabilityZoneName", "")),
                           state=str(raw.get("LifeCycleState", "")))


def cluster_from_api(raw: Mapping[str, Any], region: str) -> ClusterInfo:
    vpc = raw.get("resourcesVpcConfig") or {}
    return ClusterInfo(
        name=str(raw.get("name")),
        arn=str(raw.get("arn", "")),
        status=str(raw.get("status", "")),
        endpoint=raw.get("endpoint"),
        ca_data=(raw.get("certificateAuthority") or {}).get("data"),
        vpc_id=vpc.get("vpcId"),
        subnet_ids=tuple(vpc.get("subnetIds") or ()),
        security_group_ids=tuple(vpc.get("securityGroupIds") or ()),
        cluster_security_group_id=vpc.get("clusterSecurityGroupId"),
        tags=dict(raw.get("tags") or {}),
        version=raw.get("version"),
        region=region,
    )
