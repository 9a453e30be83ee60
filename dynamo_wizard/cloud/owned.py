"""Find what a deployment created, and delete it: the cloud side of cleanup.

Ownership is proven, never guessed from a name:
- AWS: our tag `dynamo-wizard/deployment=<name>` on the EKS cluster, the EFS file system and the security
  group. Mount targets and access points belong to a file system of ours. eksctl's stacks are ours when
  they carry our tag (eksctl copies `metadata.tags` onto its stacks) or eksctl's cluster tag
  `alpha.eksctl.io/cluster-name` names a cluster that carries ours.
- Kubernetes: the labels `app.kubernetes.io/managed-by: dynamo-wizard` and `dynamo-wizard/deployment`
  (filtered on the client as well: kmock, and some proxies, ignore label selectors). The helm release
  and the NATS claim carry only helm's labels, so they are looked for by name and helm labels, and only
  inside a namespace our ledger or our labels say we own.

A same-named resource without our mark (another team's `dynamo-efs-sg`, `efs-sc-dynamic`, …) is never
listed, so never deleted.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.catalog import load_catalog
from ..core.cleanup import (
    ACCESS_POINT,
    AWS_KINDS,
    CLUSTER,
    DEPLOYMENT,
    DGD,
    EKS_CLUSTER_NAME_TAG,
    EKSCTL_CLUSTER_TAG,
    FILE_SYSTEM,
    HELM_RELEASE,
    INSTANCE,
    JOB,
    LABEL_DEPLOYMENT,
    LABEL_MANAGED_BY,
    LABEL_MANAGED_BY_VALUE,
    MOUNT_TARGET,
    NAMESPACE,
    NAMESPACED_KINDS,
    NATS_PVC_PREFIX,
    NODECLASS,
    NODEPOOL,
    PVC,
    SECRET,
    SECURITY_GROUP,
    STACK,
    STORAGE_CLASS,
    TAG_KEY,
    ClusterUnreachable,
    DeleteRefused,
    Discovery,
    FoundResource,
    Ref,
    StillInUse,
    canonical_kind,
    ledger_ref,
)
from ..core.ledger import LedgerResource
from ..core.protocols import Cancellation
from ..core.redact import redact
from .tools import find_tool

Log = Callable[[str], None]

# Kubernetes API coordinates of the custom resources we delete.
DGD_API = ("nvidia.com", "v1alpha1", "dynamographdeployments")
NODEPOOL_API = ("karpenter.sh", "v1", "nodepools")
NODECLASS_API = ("eks.amazonaws.com", "v1", "nodeclasses")
HELM_RELEASE_NAME = "dynamo-platform"
CFN_STACK_TAG = "aws:cloudformation:stack-name"  # a resource of a stack goes with its stack
EKS_CONTROL_PLANE_PER_HOUR = 0.10  # USD, standard support
EFS_STANDARD_GB_MONTH = 0.30  # USD, us-east-1 Standard storage
HOURS_PER_MONTH = 730.0

# AWS error codes that mean "a dependency still holds it: try again after it goes".
IN_USE_CODES = frozenset({"DependencyViolation", "FileSystemInUse", "ResourceInUseException",
                          "ResourceInUse", "InvalidNetworkInterface.InUse"})
GONE_CODES = frozenset({"InvalidGroup.NotFound", "InvalidGroupId.NotFound", "InvalidInstanceID.NotFound",
                        "FileSystemNotFound",
                        "MountTargetNotFound", "AccessPointNotFound", "ResourceNotFoundException",
                        "NotFoundException"})


def ours(labels: dict[str, str] | None, deployment: str) -> bool:
    """Both of our labels, with this deployment's name."""
    labels = labels or {}
    return labels.get(LABEL_MANAGED_BY) == LABEL_MANAGED_BY_VALUE and labels.get(LABEL_DEPLOYMENT) == deployment


def _tags(items: list[dict[str, str]] | dict[str, str] | None) -> dict[str, str]:
    if not items:
        return {}
    if isinstance(items, dict):
        return dict(items)
    return {t.get("Key", ""): t.get("Value", "") for t in items}


def _error_code(err: Exception) -> str:
    response = getattr(err, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _error_message(err: Exception) -> str:
    response = getattr(err, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Message", "")) or str(err)
    return str(err)


# ---------------------------------------------------------------------------------------------------
# Subprocesses (eksctl, helm): streamed line by line into the step's log


def tool_path(name: str) -> str:
    """eksctl/helm from DYNAMO_WIZARD_EKSCTL / DYNAMO_WIZARD_HELM (the sandbox's fakes), else PATH."""
    found = find_tool(name)
    if not found:
        raise DeleteRefused(f"{name} was not found on PATH; install {name} or set DYNAMO_WIZARD_{name.upper()}")
    return found


@dataclass
class ProcResult:
    returncode: int
    lines: list[str] = field(default_factory=list)

    def tail(self, n: int = 5) -> str:
        return " | ".join(line for line in self.lines[-n:] if line.strip())


def run_streamed(argv: list[str], log: Log, env: dict[str, str] | None = None,
                 cancel: Cancellation | None = None) -> ProcResult:
    """Run a tool, forwarding every output line (redacted) to `log`; stdout and stderr are merged.

    A soft cancel lets the tool finish (an eksctl delete half-done is worse than a finished one); a
    forced cancel (the second Ctrl-C, or the step's deadline) stops it."""
    merged_env = dict(os.environ)
    if env:
        merged_env.update(env)
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=merged_env, bufsize=1, stdin=subprocess.DEVNULL)
    except OSError as err:
        raise DeleteRefused(f"could not run {argv[0]}: {err}") from None
    lines: list[str] = []
    finished = threading.Event()

    def stop_when_forced() -> None:
        assert cancel is not None
        while not finished.is_set():
            if cancel.wait(0.2) and cancel.forced:
                proc.kill()
                return

    if cancel is not None:
        threading.Thread(target=stop_when_forced, name="dw-tool-cancel", daemon=True).start()
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = redact(raw.rstrip("\n"))
            lines.append(line)
            log(line)
        rc = proc.wait()
    finally:
        finished.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return ProcResult(rc, lines[-200:])


# ---------------------------------------------------------------------------------------------------
# AWS


class OwnedAws:
    """Our AWS resources in one region, over boto3."""

    def __init__(self, region: str, session: Any | None = None, endpoint_url: str | None = None) -> None:
        import boto3
        from botocore.config import Config

        self.region = region
        self.session = session or boto3.session.Session(region_name=region)
        cfg = Config(retries={"mode": "adaptive", "max_attempts": 8}, connect_timeout=10, read_timeout=60)
        kw: dict[str, Any] = {"region_name": region, "config": cfg}
        if endpoint_url:
            kw["endpoint_url"] = endpoint_url
        self.ec2 = self.session.client("ec2", **kw)
        self.efs = self.session.client("efs", **kw)
        self.eks = self.session.client("eks", **kw)
        self.cfn = self.session.client("cloudformation", **kw)

    # Discovery -------------------------------------------------------------------------------------

    def clusters(self, deployment: str, names: set[str] | None = None) -> list[tuple[dict[str, Any], bool]]:
        """(cluster, ours) for clusters tagged ours; `names` (from the ledger) are described even if the
        list call misses them. A cluster named in the ledger but not tagged is reported as not ours."""
        names = names or set()
        found: dict[str, tuple[dict[str, Any], bool]] = {}
        candidates: set[str] = set(names)
        for page in self.eks.get_paginator("list_clusters").paginate():
            candidates.update(page.get("clusters", []))
        for name in sorted(candidates):
            try:
                cluster = self.eks.describe_cluster(name=name)["cluster"]
            except Exception as err:  # noqa: BLE001 - a race with a delete, or not there
                if _error_code(err) in GONE_CODES:
                    continue
                raise
            tags = _tags(cluster.get("tags"))
            mine = tags.get(TAG_KEY) == deployment
            if mine or name in names:
                found[name] = (cluster, mine)
        return list(found.values())

    def deployments_by_tag(self) -> dict[str, dict[str, list[str]]]:
        """deployment name -> {kind: [names]} for everything carrying our tag key in this region."""
        out: dict[str, dict[str, list[str]]] = {}

        def add(dep: str, kind: str, name: str) -> None:
            out.setdefault(dep, {}).setdefault(kind, []).append(name)

        for page in self.eks.get_paginator("list_clusters").paginate():
            for name in page.get("clusters", []):
                try:
                    tags = _tags(self.eks.describe_cluster(name=name)["cluster"].get("tags"))
                except Exception:  # noqa: BLE001
                    continue
                if TAG_KEY in tags:
                    add(tags[TAG_KEY], CLUSTER, name)
        for page in self.efs.get_paginator("describe_file_systems").paginate():
            for fs in page.get("FileSystems", []):
                tags = _tags(fs.get("Tags"))
                if TAG_KEY in tags and fs.get("LifeCycleState") not in ("deleted",):
                    add(tags[TAG_KEY], FILE_SYSTEM, fs["FileSystemId"])
        for page in self.ec2.get_paginator("describe_security_groups").paginate(
                Filters=[{"Name": "tag-key", "Values": [TAG_KEY]}]):
            for sg in page.get("SecurityGroups", []):
                tags = _tags(sg.get("Tags"))
                if TAG_KEY in tags:
                    add(tags[TAG_KEY], SECURITY_GROUP, sg["GroupId"])
        return out

    def file_systems(self, deployment: str, ids: set[str]) -> list[dict[str, Any]]:
        result: dict[str, dict[str, Any]] = {}
        for page in self.efs.get_paginator("describe_file_systems").paginate():
            for fs in page.get("FileSystems", []):
                if fs.get("LifeCycleState") == "deleted":
                    continue
                if _tags(fs.get("Tags")).get(TAG_KEY) == deployment:
                    result[fs["FileSystemId"]] = fs
        # Ledger ids the listing did not show as ours: only if they carry our tag (never trust an id alone).
        for fs_id in ids - set(result):
            try:
                for fs in self.efs.describe_file_systems(FileSystemId=fs_id).get("FileSystems", []):
                    if fs.get("LifeCycleState") != "deleted" and _tags(fs.get("Tags")).get(TAG_KEY) == deployment:
                        result[fs_id] = fs
            except Exception as err:  # noqa: BLE001
                if _error_code(err) not in GONE_CODES:
                    raise
        return list(result.values())

    def mount_targets(self, fs_id: str) -> list[dict[str, Any]]:
        try:
            targets = self.efs.describe_mount_targets(FileSystemId=fs_id).get("MountTargets", [])
        except Exception as err:  # noqa: BLE001
            if _error_code(err) in GONE_CODES:
                return []
            raise
        return [t for t in targets if t.get("LifeCycleState") != "deleted"]

    def access_points(self, fs_id: str) -> list[dict[str, Any]]:
        try:
            points = self.efs.describe_access_points(FileSystemId=fs_id).get("AccessPoints", [])
        except Exception as err:  # noqa: BLE001
            if _error_code(err) in GONE_CODES:
                return []
            raise
        return [p for p in points if p.get("LifeCycleState") != "deleted"]

    def cluster_instances(self, cluster: str) -> list[dict[str, Any]]:
        """Instances EKS launched for `cluster` (Auto Mode tags them with the cluster's name), not terminated."""
        out: list[dict[str, Any]] = []
        for page in self.ec2.get_paginator("describe_instances").paginate(Filters=[
                {"Name": f"tag:{EKS_CLUSTER_NAME_TAG}", "Values": [cluster]},
                {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}]):
            for reservation in page.get("Reservations", []):
                for inst in reservation.get("Instances", []):
                    if _tags(inst.get("Tags")).get(EKS_CLUSTER_NAME_TAG) == cluster:
                        out.append(inst)
        return out

    def security_groups(self, deployment: str) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = []
        for page in self.ec2.get_paginator("describe_security_groups").paginate(
                Filters=[{"Name": f"tag:{TAG_KEY}", "Values": [deployment]}]):
            for sg in page.get("SecurityGroups", []):
                if _tags(sg.get("Tags")).get(TAG_KEY) == deployment:  # never trust the filter alone
                    groups.append(sg)
        return groups

    def stacks(self, deployment: str, our_clusters: set[str]) -> list[dict[str, Any]]:
        """Live stacks tagged ours, or eksctl stacks of a cluster that carries our tag."""
        result: list[dict[str, Any]] = []
        for page in self.cfn.get_paginator("describe_stacks").paginate():
            for stack in page.get("Stacks", []):
                if stack.get("StackStatus") == "DELETE_COMPLETE":
                    continue
                tags = _tags(stack.get("Tags"))
                if tags.get(TAG_KEY) == deployment or (
                        tags.get(EKSCTL_CLUSTER_TAG) in our_clusters and tags.get(EKSCTL_CLUSTER_TAG)):
                    result.append(stack)
        return result

    def discover(self, deployment: str, ledger: list[Ref], disc: Discovery) -> set[str]:
        """Add what exists to `disc`; returns the names of our clusters that exist."""
        ledger_clusters = {r.name for r in ledger if r.kind == CLUSTER}
        our_clusters: set[str] = set()
        existing: set[str] = set()
        for cluster, mine in self.clusters(deployment, ledger_clusters):
            name = cluster["name"]
            existing.add(name)
            if not mine:
                disc.notes.append(f"cluster {name} is in the ledger but does not carry the tag "
                                  f"{TAG_KEY}={deployment}; it is left alone")
                continue
            our_clusters.add(name)
            disc.found.append(FoundResource(
                Ref(CLUSTER, name, resource_id=cluster.get("arn")), cost_per_hour=EKS_CONTROL_PLANE_PER_HOUR,
                detail=str(cluster.get("status", "")).lower(), how="tag"))
        disc.checked.add(CLUSTER)
        # Nodes of a cluster of ours that is gone: EKS normally terminates them with the cluster; one that
        # outlived it (launched as the cluster went) holds the VPC and bills by the hour.
        for name in sorted(ledger_clusters - existing):
            for inst in self.cluster_instances(name):
                itype = inst.get("InstanceType", "?")
                known = load_catalog().instance_type(itype)
                disc.found.append(FoundResource(
                    Ref(INSTANCE, inst["InstanceId"], resource_id=inst["InstanceId"]),
                    cost_per_hour=known.on_demand_price if known else None,
                    detail=f"{itype} {inst.get('State', {}).get('Name', '')} (node of cluster {name})",
                    aliases=(inst["InstanceId"],), how="owner"))
        disc.checked.add(INSTANCE)
        live_stacks: set[str] = set()
        # eksctl's stacks of our clusters, and of clusters our ledger made that are gone (a half-deleted
        # or half-created cluster leaves stacks whose cluster can no longer show our tag).
        for stack in self.stacks(deployment, our_clusters | (ledger_clusters - existing)):
            live_stacks.add(stack["StackName"])
            disc.found.append(FoundResource(
                Ref(STACK, stack["StackName"], resource_id=stack.get("StackId")),
                detail=stack.get("StackStatus", ""), how="tag"))
        disc.checked.add(STACK)
        ledger_fs = {r.resource_id for r in ledger if r.kind == FILE_SYSTEM and r.resource_id}
        for fs in self.file_systems(deployment, ledger_fs):
            fs_id = fs["FileSystemId"]
            size = float((fs.get("SizeInBytes") or {}).get("Value", 0) or 0)
            cost = size / 1e9 * EFS_STANDARD_GB_MONTH / HOURS_PER_MONTH
            name = _tags(fs.get("Tags")).get("Name") or fs.get("Name") or fs_id
            disc.found.append(FoundResource(Ref(FILE_SYSTEM, name, resource_id=fs_id), cost_per_hour=cost,
                                            detail=fs.get("LifeCycleState", ""), aliases=(fs_id,), how="tag"))
            for mt in self.mount_targets(fs_id):
                disc.found.append(FoundResource(
                    Ref(MOUNT_TARGET, mt.get("AvailabilityZoneName") or mt["SubnetId"],
                        resource_id=mt["MountTargetId"], parent=fs_id),
                    detail=mt.get("LifeCycleState", ""),
                    aliases=tuple(x for x in (mt.get("SubnetId"), mt.get("AvailabilityZoneName"),
                                              mt.get("AvailabilityZoneId"), mt["MountTargetId"]) if x),
                    how="owner"))
            for ap in self.access_points(fs_id):
                disc.found.append(FoundResource(
                    Ref(ACCESS_POINT, ap.get("Name") or ap["AccessPointId"], resource_id=ap["AccessPointId"],
                        parent=fs_id),
                    detail=ap.get("LifeCycleState", ""), aliases=(ap["AccessPointId"],), how="owner"))
        disc.checked.update({FILE_SYSTEM, MOUNT_TARGET, ACCESS_POINT})
        for sg in self.security_groups(deployment):
            owner_stack = _tags(sg.get("Tags")).get(CFN_STACK_TAG)
            if owner_stack and self._stack_live(owner_stack, live_stacks):
                continue  # part of a live stack (eksctl's control-plane group): it goes with the stack
            disc.found.append(FoundResource(Ref(SECURITY_GROUP, sg.get("GroupName", sg["GroupId"]),
                                                resource_id=sg["GroupId"]),
                                            detail=sg.get("VpcId", ""), aliases=(sg["GroupId"],), how="tag"))
        disc.checked.add(SECURITY_GROUP)
        return our_clusters

    def tagged_leftovers(self, deployment: str) -> list[str]:
        """Everything in this region that still carries our tag for the deployment (for checks and status):
        EC2 (any resource type), EFS file systems and access points, EKS clusters, live stacks."""
        left: list[str] = []
        for page in self.ec2.get_paginator("describe_tags").paginate(
                Filters=[{"Name": "key", "Values": [TAG_KEY]}, {"Name": "value", "Values": [deployment]}]):
            for tag in page.get("Tags", []):
                rtype, rid = str(tag.get("ResourceType")), str(tag.get("ResourceId"))
                if self._ec2_exists(rtype, rid):
                    left.append(f"{rtype}:{rid}")
        for page in self.efs.get_paginator("describe_file_systems").paginate():
            for fs in page.get("FileSystems", []):
                if _tags(fs.get("Tags")).get(TAG_KEY) == deployment and fs.get("LifeCycleState") != "deleted":
                    left.append(f"efs:{fs['FileSystemId']}")
        for page in self.efs.get_paginator("describe_access_points").paginate():
            for ap in page.get("AccessPoints", []):
                if _tags(ap.get("Tags")).get(TAG_KEY) == deployment:
                    left.append(f"efs-access-point:{ap['AccessPointId']}")
        for page in self.eks.get_paginator("list_clusters").paginate():
            for name in page.get("clusters", []):
                try:
                    tags = _tags(self.eks.describe_cluster(name=name)["cluster"].get("tags"))
                except Exception:  # noqa: BLE001
                    continue
                if tags.get(TAG_KEY) == deployment:
                    left.append(f"eks-cluster:{name}")
        for page in self.cfn.get_paginator("describe_stacks").paginate():
            for stack in page.get("Stacks", []):
                if stack.get("StackStatus") != "DELETE_COMPLETE" and _tags(stack.get("Tags")).get(TAG_KEY) == deployment:
                    left.append(f"cfn-stack:{stack['StackName']}")
        return sorted(left)

    def _stack_live(self, name: str, known_live: set[str]) -> bool:
        if name in known_live:
            return True
        try:
            stacks = self.cfn.describe_stacks(StackName=name).get("Stacks", [])
        except Exception as err:  # noqa: BLE001
            if _error_code(err) == "ValidationError":
                return False
            raise
        return any(s.get("StackStatus") != "DELETE_COMPLETE" for s in stacks)

    # The tag index can lag behind a delete (moto keeps the tags of a deleted group; AWS may for a
    # while): confirm the resource itself is still there for the types we know how to look up.
    _EC2_LOOKUPS: dict[str, tuple[str, str, str]] = {
        "security-group": ("describe_security_groups", "GroupIds", "SecurityGroups"),
        "vpc": ("describe_vpcs", "VpcIds", "Vpcs"),
        "subnet": ("describe_subnets", "SubnetIds", "Subnets"),
        "internet-gateway": ("describe_internet_gateways", "InternetGatewayIds", "InternetGateways"),
        "natgateway": ("describe_nat_gateways", "NatGatewayIds", "NatGateways"),
        "nat-gateway": ("describe_nat_gateways", "NatGatewayIds", "NatGateways"),
        "route-table": ("describe_route_tables", "RouteTableIds", "RouteTables"),
        "network-interface": ("describe_network_interfaces", "NetworkInterfaceIds", "NetworkInterfaces"),
        "elastic-ip": ("describe_addresses", "AllocationIds", "Addresses"),
        "instance": ("describe_instances", "InstanceIds", "Reservations"),
    }

    def _ec2_exists(self, resource_type: str, resource_id: str) -> bool:
        lookup = self._EC2_LOOKUPS.get(resource_type)
        if lookup is None and re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", resource_id):
            lookup = ("describe_addresses", "PublicIps", "Addresses")  # an Elastic IP tagged by its address
        if lookup is None:
            return True
        method, param, key = lookup
        try:
            found = getattr(self.ec2, method)(**{param: [resource_id]}).get(key, [])
        except Exception as err:  # noqa: BLE001
            if ".NotFound" in _error_code(err) or "NotFound" in _error_code(err):
                return False
            raise
        if resource_type in ("natgateway", "nat-gateway"):
            return any(g.get("State") not in ("deleted", "deleting", "failed") for g in found)
        if resource_type == "instance":
            return any(i.get("State", {}).get("Name") != "terminated" for r in found for i in r.get("Instances", []))
        return bool(found)

    # Deletion --------------------------------------------------------------------------------------

    def delete(self, ref: Ref, log: Log, cancel: Cancellation | None = None) -> None:
        try:
            self._delete(ref, log, cancel)
        except (StillInUse, DeleteRefused):
            raise
        except Exception as err:  # noqa: BLE001 - botocore ClientError and friends
            code = _error_code(err)
            if code in GONE_CODES:
                return
            if code in IN_USE_CODES:
                raise StillInUse(f"{code}: {_error_message(err)}") from None
            if code:
                raise DeleteRefused(f"{code}: {_error_message(err)}") from None
            raise DeleteRefused(str(err)) from None

    def _delete(self, ref: Ref, log: Log, cancel: Cancellation | None = None) -> None:
        rid = ref.resource_id
        if ref.kind == SECURITY_GROUP:
            self.ec2.delete_security_group(GroupId=self._need_id(ref))
        elif ref.kind == FILE_SYSTEM:
            self.efs.delete_file_system(FileSystemId=self._need_id(ref))
        elif ref.kind == MOUNT_TARGET:
            self.efs.delete_mount_target(MountTargetId=self._need_id(ref))
        elif ref.kind == ACCESS_POINT:
            self.efs.delete_access_point(AccessPointId=self._need_id(ref))
        elif ref.kind == INSTANCE:
            self.ec2.terminate_instances(InstanceIds=[self._need_id(ref)])
        elif ref.kind == STACK:
            stack = self._stack(ref)
            if stack is None:
                return
            if stack.get("StackStatus") == "DELETE_IN_PROGRESS":
                return
            self.cfn.delete_stack(StackName=rid or ref.name)
            log(f"deleting stack {ref.name}")
        elif ref.kind == CLUSTER:
            self._delete_cluster(ref, log, cancel)
        else:
            raise DeleteRefused(f"cannot delete a {ref.kind} through AWS")

    @staticmethod
    def _need_id(ref: Ref) -> str:
        if not ref.resource_id:
            raise DeleteRefused("its id was never recorded and it was not found by tag")
        return ref.resource_id

    def _delete_cluster(self, ref: Ref, log: Log, cancel: Cancellation | None = None) -> None:
        try:
            status = str(self.eks.describe_cluster(name=ref.name)["cluster"].get("status", ""))
        except Exception as err:  # noqa: BLE001
            if _error_code(err) in GONE_CODES:
                log(f"cluster {ref.name} is already gone")
                return
            raise
        if status in ("CREATING", "UPDATING", "PENDING"):
            # An interrupted apply left it being made: EKS refuses to delete it until that ends.
            raise StillInUse(f"cluster {ref.name} is {status}")
        if status == "DELETING":
            log(f"cluster {ref.name} is already being deleted")
            return
        argv = [tool_path("eksctl"), "delete", "cluster", "--name", ref.name, "--region", self.region, "--wait"]
        log("$ " + " ".join(["eksctl", *argv[1:]]))
        result = run_streamed(argv, log, cancel=cancel)
        if result.returncode == 0:
            return
        if cancel is not None and cancel.forced:
            raise DeleteRefused("eksctl was stopped before it finished")
        text = "\n".join(result.lines)
        if "No cluster found" in text or "ResourceNotFoundException" in text:
            return
        if "DependencyViolation" in text or "has a dependent object" in text:
            raise StillInUse(result.tail(2))
        raise DeleteRefused(f"eksctl exited with {result.returncode}: {result.tail(3)}")

    def _stack(self, ref: Ref) -> dict[str, Any] | None:
        try:
            stacks = self.cfn.describe_stacks(StackName=ref.resource_id or ref.name).get("Stacks", [])
        except Exception as err:  # noqa: BLE001
            if _error_code(err) == "ValidationError" and "does not exist" in _error_message(err):
                return None
            raise
        return stacks[0] if stacks else None

    def exists(self, ref: Ref) -> bool:
        try:
            if ref.kind == SECURITY_GROUP:
                return bool(self.ec2.describe_security_groups(GroupIds=[self._need_id(ref)])["SecurityGroups"])
            if ref.kind == FILE_SYSTEM:
                fss = self.efs.describe_file_systems(FileSystemId=self._need_id(ref)).get("FileSystems", [])
                return any(f.get("LifeCycleState") != "deleted" for f in fss)
            if ref.kind == MOUNT_TARGET:
                mts = self.efs.describe_mount_targets(MountTargetId=self._need_id(ref)).get("MountTargets", [])
                return any(m.get("LifeCycleState") != "deleted" for m in mts)
            if ref.kind == ACCESS_POINT:
                aps = self.efs.describe_access_points(AccessPointId=self._need_id(ref)).get("AccessPoints", [])
                return any(a.get("LifeCycleState") != "deleted" for a in aps)
            if ref.kind == INSTANCE:
                reservations = self.ec2.describe_instances(InstanceIds=[self._need_id(ref)]).get("Reservations", [])
                return any(i.get("State", {}).get("Name") not in ("terminated",)
                           for r in reservations for i in r.get("Instances", []))
            if ref.kind == CLUSTER:
                self.eks.describe_cluster(name=ref.name)
                return True
            if ref.kind == STACK:
                stack = self._stack(ref)
                if stack is None or stack.get("StackStatus") == "DELETE_COMPLETE":
                    return False
                if stack.get("StackStatus") == "DELETE_FAILED":
                    # Mostly a dependency that was still there (a network interface in the VPC): retried.
                    reason = stack.get("StackStatusReason") or "DELETE_FAILED"
                    raise StillInUse(f"stack deletion failed: {reason}")
                return True
        except (DeleteRefused, StillInUse):
            raise
        except Exception as err:  # noqa: BLE001
            if _error_code(err) in GONE_CODES or _error_code(err) == "InvalidInstanceID.NotFound":
                return False
            raise
        raise DeleteRefused(f"cannot look up a {ref.kind} through AWS")


# ---------------------------------------------------------------------------------------------------
# Kubernetes


class OwnedKube:
    """Our objects in one cluster, over the kubernetes client (JSON in, dicts out)."""

    def __init__(self, api_client: Any, release_name: str = HELM_RELEASE_NAME) -> None:
        from kubernetes import client

        self.api_client = api_client
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.batch = client.BatchV1Api(api_client)
        self.storage = client.StorageV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.release_name = release_name

    # Raw helpers -----------------------------------------------------------------------------------

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        """Call the API with `_preload_content=False`; None on 404; ClusterUnreachable on network errors."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            resp = fn(*args, _preload_content=False, **kwargs)
        except ApiException as err:
            if err.status == 404:
                return None
            if err.status in (401, 403):
                raise DeleteRefused(f"the cluster refused the request ({err.status} {err.reason})") from None
            if err.status == 409:
                raise StillInUse(f"conflict: {err.reason}") from None
            if err.status and err.status >= 500:
                raise ClusterUnreachable(f"API server error {err.status}") from None
            raise DeleteRefused(f"API error {err.status}: {err.reason}") from None
        except (HTTPError, OSError) as err:
            raise ClusterUnreachable(str(err).split("\n")[0][:200]) from None
        data = resp.data
        if not data:
            return {}
        try:
            parsed = json.loads(data)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}

    def _items(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        body = self._call(fn, *args, **kwargs)
        if body is None:
            return []  # the resource type is not served (e.g. no CRDs yet): nothing of ours there
        return [i for i in body.get("items", []) if isinstance(i, dict)]

    def _list_custom(self, api: tuple[str, str, str], **kwargs: Any) -> list[dict[str, Any]]:
        return self._items(self.custom.list_cluster_custom_object, *api, **kwargs)

    @staticmethod
    def _meta(obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.get("metadata")
        return meta if isinstance(meta, dict) else {}

    def reachable(self) -> bool:
        try:
            self._call(self.core.list_namespace)
            return True
        except ClusterUnreachable:
            return False

    # Discovery -------------------------------------------------------------------------------------

    def discover(self, deployment: str, ledger: list[Ref], disc: Discovery) -> None:
        owned_ns: set[str] = set()
        # The selector narrows what a real API server sends; `ours()` decides (kmock ignores selectors).
        sel = {"label_selector": f"{LABEL_DEPLOYMENT}={deployment}"}
        for ns_obj in self._items(self.core.list_namespace, **sel):
            meta = self._meta(ns_obj)
            if ours(meta.get("labels"), deployment):
                owned_ns.add(meta["name"])
                disc.found.append(FoundResource(Ref(NAMESPACE, meta["name"]), how="label"))
        ledger_ns = {r.namespace for r in ledger if r.namespace} | {r.name for r in ledger if r.kind == NAMESPACE}
        owned_ns |= ledger_ns

        def labelled(kind: str, objs: list[dict[str, Any]], namespaced: bool) -> None:
            for obj in objs:
                meta = self._meta(obj)
                ns = meta.get("namespace") if namespaced else None
                if ours(meta.get("labels"), deployment):
                    disc.found.append(FoundResource(Ref(kind, meta["name"], namespace=ns), detail=_detail(kind, obj),
                                                    how="label"))

        labelled(DGD, self._list_custom(DGD_API, **sel), True)
        labelled(JOB, self._items(self.batch.list_job_for_all_namespaces, **sel), True)
        labelled(DEPLOYMENT, self._items(self.apps.list_deployment_for_all_namespaces, **sel), True)
        pvcs = self._items(self.core.list_persistent_volume_claim_for_all_namespaces)
        labelled(PVC, pvcs, True)
        labelled(STORAGE_CLASS, self._items(self.storage.list_storage_class, **sel), False)
        labelled(SECRET, [s for s in self._items(self.core.list_secret_for_all_namespaces, **sel)
                          if self._meta(s).get("labels", {}).get("owner") != "helm"], True)
        nodes = self._items(self.core.list_node)
        for pool in self._list_custom(NODEPOOL_API, **sel):
            meta = self._meta(pool)
            if ours(meta.get("labels"), deployment):
                cost, detail = _pool_cost(meta.get("name", ""), nodes)
                disc.found.append(FoundResource(Ref(NODEPOOL, meta["name"]), cost_per_hour=cost, detail=detail,
                                                how="label"))
        labelled(NODECLASS, self._list_custom(NODECLASS_API, **sel), False)
        # The NATS claim and the helm release carry only helm's labels: only inside namespaces we own.
        have = {(f.ref.kind, f.ref.namespace or "", f.ref.name) for f in disc.found}
        for pvc in pvcs:
            meta = self._meta(pvc)
            labels = meta.get("labels") or {}
            ns = meta.get("namespace")
            nats = meta.get("name", "").startswith(NATS_PVC_PREFIX) or (
                labels.get("app.kubernetes.io/name") == "nats"
                and labels.get("app.kubernetes.io/instance") == self.release_name)
            if ns in owned_ns and nats and (PVC, ns, meta["name"]) not in have:
                disc.found.append(FoundResource(Ref(PVC, meta["name"], namespace=ns), detail=_detail(PVC, pvc),
                                                how="name-in-owned-namespace"))
        for namespace in sorted(owned_ns):
            if self.release_exists(namespace):
                disc.found.append(FoundResource(Ref(HELM_RELEASE, self.release_name, namespace=namespace),
                                                detail="deployed", how="name-in-owned-namespace"))
        disc.checked.update({DGD, JOB, PVC, STORAGE_CLASS, SECRET, NODEPOOL, NODECLASS, NAMESPACE, HELM_RELEASE,
                             DEPLOYMENT})

    def release_secrets(self, namespace: str) -> list[dict[str, Any]]:
        secrets = self._items(self.core.list_namespaced_secret, namespace)
        return [s for s in secrets
                if (self._meta(s).get("labels") or {}).get("owner") == "helm"
                and (self._meta(s).get("labels") or {}).get("name") == self.release_name]

    def release_exists(self, namespace: str) -> bool:
        return bool(self.release_secrets(namespace))

    def operator_running(self, namespace: str) -> bool:
        for dep in self._items(self.apps.list_namespaced_deployment, namespace):
            name = self._meta(dep).get("name", "")
            if "dynamo-operator" in name:
                return True
        return False

    # Deletion --------------------------------------------------------------------------------------

    def delete(self, ref: Ref, log: Log, cancel: Cancellation | None = None) -> None:
        k, name, ns = ref.kind, ref.name, ref.namespace
        if k in NAMESPACED_KINDS and not ns:
            raise DeleteRefused("its namespace is not known")
        assert ns is not None or k not in NAMESPACED_KINDS
        if k == DGD:
            obj = self._call(self.custom.get_namespaced_custom_object, *DGD_API[:2], ns, DGD_API[2], name)
            if obj is None:
                return
            self._call(self.custom.delete_namespaced_custom_object, *DGD_API[:2], ns, DGD_API[2], name)
            if self._meta(obj).get("finalizers") and not self.operator_running(str(ns)):
                # Nobody is left to clear the finalizer (the platform was never installed or is gone):
                # clear it ourselves, or the graph would hang in Terminating for ever.
                log(f"the Dynamo operator is not running in {ns}; removing the finalizers of {name}")
                self._call(self.custom.patch_namespaced_custom_object, *DGD_API[:2], ns, DGD_API[2], name,
                           {"metadata": {"finalizers": []}})
        elif k == HELM_RELEASE:
            self._helm_uninstall(str(ns), name, log, cancel)
        elif k == JOB:
            self._call(self.batch.delete_namespaced_job, name, ns, propagation_policy="Background")
        elif k == DEPLOYMENT:
            self._call(self.apps.delete_namespaced_deployment, name, ns, propagation_policy="Background")
        elif k == PVC:
            self._call(self.core.delete_namespaced_persistent_volume_claim, name, ns)
        elif k == SECRET:
            self._call(self.core.delete_namespaced_secret, name, ns)
        elif k == STORAGE_CLASS:
            self._call(self.storage.delete_storage_class, name)
        elif k == NODEPOOL:
            self._call(self.custom.delete_cluster_custom_object, *NODEPOOL_API, name)
        elif k == NODECLASS:
            self._call(self.custom.delete_cluster_custom_object, *NODECLASS_API, name)
        elif k == NAMESPACE:
            self._call(self.core.delete_namespace, name)
        else:
            raise DeleteRefused(f"cannot delete a {k} through Kubernetes")

    def exists(self, ref: Ref) -> bool:
        k, name, ns = ref.kind, ref.name, ref.namespace
        if k == DGD:
            return self._call(self.custom.get_namespaced_custom_object, *DGD_API[:2], ns, DGD_API[2], name) is not None
        if k == HELM_RELEASE:
            return self.release_exists(str(ns))
        if k == JOB:
            return self._call(self.batch.read_namespaced_job, name, ns) is not None
        if k == DEPLOYMENT:
            return self._call(self.apps.read_namespaced_deployment, name, ns) is not None
        if k == PVC:
            return self._call(self.core.read_namespaced_persistent_volume_claim, name, ns) is not None
        if k == SECRET:
            return self._call(self.core.read_namespaced_secret, name, ns) is not None
        if k == STORAGE_CLASS:
            return self._call(self.storage.read_storage_class, name) is not None
        if k == NODEPOOL:
            return self._call(self.custom.get_cluster_custom_object, *NODEPOOL_API, name) is not None
        if k == NODECLASS:
            return self._call(self.custom.get_cluster_custom_object, *NODECLASS_API, name) is not None
        if k == NAMESPACE:
            return self._call(self.core.read_namespace, name) is not None
        raise DeleteRefused(f"cannot look up a {k} through Kubernetes")

    def _helm_uninstall(self, namespace: str, release: str, log: Log, cancel: Cancellation | None = None) -> None:
        if not self.release_exists(namespace):
            log(f"helm release {release} is not installed in {namespace}")
            return
        with temp_kubeconfig(self.api_client) as kubeconfig:
            argv = [tool_path("helm"), "uninstall", release, "-n", namespace, "--kubeconfig", str(kubeconfig)]
            log("$ " + " ".join(["helm", *argv[1:]]))
            result = run_streamed(argv, log, env={"KUBECONFIG": str(kubeconfig)}, cancel=cancel)
        if result.returncode != 0:
            text = "\n".join(result.lines)
            if "not found" in text:
                return
            if "another operation" in text:
                raise StillInUse(result.tail(1))
            raise DeleteRefused(f"helm exited with {result.returncode}: {result.tail(3)}")


def _detail(kind: str, obj: dict[str, Any]) -> str:
    raw_status = obj.get("status")
    status: dict[str, Any] = raw_status if isinstance(raw_status, dict) else {}
    if kind == PVC:
        phase = status.get("phase", "")
        size = ((obj.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage", "")
        return " ".join(x for x in (phase, size) if x)
    if kind == STORAGE_CLASS:
        return str(obj.get("provisioner", ""))
    if kind == DGD:
        return str(status.get("state", ""))
    if kind == JOB:
        if status.get("succeeded"):
            return "complete"
        return "active" if status.get("active") else ""
    return ""


def _pool_cost(pool: str, nodes: list[dict[str, Any]]) -> tuple[float | None, str]:
    catalog = load_catalog()
    total = 0.0
    counts: dict[str, int] = {}
    for node in nodes:
        labels = (node.get("metadata") or {}).get("labels") or {}
        if labels.get("karpenter.sh/nodepool") != pool:
            continue
        itype = labels.get("node.kubernetes.io/instance-type") or labels.get("beta.kubernetes.io/instance-type") or "?"
        counts[itype] = counts.get(itype, 0) + 1
        known = catalog.instance_type(itype)
        if known and known.on_demand_price:
            total += known.on_demand_price
    if not counts:
        return None, "no nodes"
    return total, ", ".join(f"{n} × {t}" for t, n in sorted(counts.items()))


@contextlib.contextmanager
def temp_kubeconfig(api_client: Any) -> Iterator[Path]:
    """A 0600 kubeconfig for helm with the client's server, CA and bearer token; removed afterwards."""
    import yaml

    cfg = api_client.configuration
    if callable(getattr(cfg, "refresh_api_key_hook", None)):
        cfg.refresh_api_key_hook(cfg)  # a fresh EKS token: helm may run long after the client was made
    token = ""
    auth = (cfg.api_key or {}).get("authorization") or (cfg.api_key or {}).get("BearerToken") or ""
    if auth:
        prefix = (cfg.api_key_prefix or {}).get("authorization", "")
        token = auth.split(" ", 1)[1] if auth.lower().startswith("bearer ") else auth
        if prefix and prefix.lower() != "bearer":
            token = auth
    cluster: dict[str, Any] = {"server": cfg.host}
    if cfg.ssl_ca_cert:
        cluster["certificate-authority"] = cfg.ssl_ca_cert
    elif cfg.host.startswith("https://") and not cfg.verify_ssl:
        cluster["insecure-skip-tls-verify"] = True
    doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": "dynamo-wizard",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": {"token": token} if token else {}}],
        "contexts": [{"name": "dynamo-wizard", "context": {"cluster": "c", "user": "u"}}],
    }
    fd, path = tempfile.mkstemp(prefix="dw-kubeconfig-", suffix=".yaml")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yaml.safe_dump(doc, f)
        yield Path(path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


# ---------------------------------------------------------------------------------------------------
# Both together: the CleanupBackend


KubeFactory = Callable[[dict[str, Any], str], Any]  # (describe_cluster's cluster, region) -> ApiClient


class OwnedResources:
    """Implements core.cleanup.CleanupBackend over AWS and the deployment's cluster."""

    def __init__(self, region: str, *, aws: OwnedAws | None = None, kube_factory: KubeFactory | None = None,
                 kube: OwnedKube | None = None) -> None:
        self.region = region
        self.aws = aws or OwnedAws(region)
        self._kube_factory = kube_factory or default_kube_factory
        self._kube: OwnedKube | None = kube
        self._kube_cluster: str | None = None
        self.cluster_name: str | None = None

    def kube(self) -> OwnedKube | None:
        """The cluster's API, or None when the cluster is gone (Kubernetes deletions are then skipped)."""
        if self._kube is not None:
            return self._kube
        if not self.cluster_name:
            return None
        try:
            cluster = self.aws.eks.describe_cluster(name=self.cluster_name)["cluster"]
        except Exception as err:  # noqa: BLE001
            if _error_code(err) in GONE_CODES:
                return None
            raise ClusterUnreachable(_error_message(err)) from None
        try:
            self._kube = OwnedKube(self._kube_factory(cluster, self.region))
        except Exception as err:  # noqa: BLE001
            raise ClusterUnreachable(f"cannot build a client for {self.cluster_name}: {err}") from None
        return self._kube

    def discover(self, deployment: str, ledger: list[LedgerResource]) -> Discovery:
        refs = [ledger_ref(r) for r in ledger]
        disc = Discovery(deployment=deployment, region=self.region)
        try:
            our_clusters = self.aws.discover(deployment, refs, disc)
        except Exception as err:  # noqa: BLE001 - partial result with a visible note, never a crash
            disc.notes.append(f"AWS in {self.region} could not be searched: {_error_message(err)}")
            our_clusters = set()
        ledger_clusters = [r.name for r in refs if r.kind == CLUSTER]
        self.cluster_name = next(iter(sorted(our_clusters)), None) or (ledger_clusters[0] if ledger_clusters else None)
        disc.cluster_name = self.cluster_name
        if our_clusters:
            disc.cluster_state = "exists"
        elif CLUSTER in disc.checked:
            disc.cluster_state = "gone"
        if disc.cluster_state == "exists":
            try:
                kube = self.kube()
                if kube is None:
                    disc.cluster_state = "gone"
                else:
                    kube.discover(deployment, refs, disc)
            except ClusterUnreachable as err:
                disc.cluster_state = "unreachable"
                disc.notes.append(f"the Kubernetes API of {self.cluster_name} could not be reached ({err}); "
                                  "its objects are deleted with the cluster")
            except DeleteRefused as err:
                disc.cluster_state = "unreachable"
                disc.notes.append(f"the Kubernetes API of {self.cluster_name} refused us ({err})")
        return disc

    def delete(self, ref: Ref, log: Log, cancel: Cancellation | None = None) -> None:
        if canonical_kind(ref.kind) in AWS_KINDS:
            self.aws.delete(ref, log, cancel)
            return
        kube = self.kube()
        if kube is None:
            log(f"the cluster is gone; {ref.display_name} went with it")
            return
        kube.delete(ref, log, cancel)

    def exists(self, ref: Ref) -> bool | None:
        if canonical_kind(ref.kind) in AWS_KINDS:
            return self.aws.exists(ref)
        kube = self.kube()
        if kube is None:
            return False
        return kube.exists(ref)


def default_kube_factory(cluster: dict[str, Any], region: str) -> Any:
    """A kubernetes ApiClient for an EKS cluster: its endpoint, its CA, a token from a presigned STS call.

    Uses the provisioning side's client builder (cloud.kube) when it is there."""
    try:
        from . import kube as kube_module  # issue 5's adapter

        for fn_name in ("api_client_for_cluster", "api_client_for", "client_for_cluster"):
            fn = getattr(kube_module, fn_name, None)
            if callable(fn):
                return fn(cluster, region)
    except ImportError:
        pass
    raise ClusterUnreachable("no Kubernetes client builder is available (cloud.kube)")
