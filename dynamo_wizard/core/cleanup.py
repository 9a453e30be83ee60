"""Cleanup, as pure data and pure decisions: what exists for a deployment, and in which order it goes.

The inventory of a deployment is the ledger united with what discovery finds by our tag and labels
(`cloud.owned` does the finding). Each item is `exists` (found now), `gone` (the ledger has it, discovery
looked and it is not there — it is marked deleted in the ledger when a cleanup runs) or `ledger-only`
(the ledger has it but nothing could look: the cluster's API could not be reached, say).

The deletion graph follows the design's order and fixes the guide's omissions (facts §12): the graphs
first while the operator still runs so their finalizers clear, the platform release, the NATS volume the
uninstall leaves, the download Job and the cache claims, the EFS StorageClass, the access points and
mount targets (waiting until they are gone), the file system, its security group, the reserved NodePool
and NodeClass, the GPU NodePool, and last the cluster with eksctl, then a check that its stacks are gone.
Objects that vanish with the cluster (namespace, default StorageClass, secret) are deleted one by one only
when the cluster is kept.

Every deletion: asks the backend to delete, retries with backoff while AWS says a dependency is still in
use, waits until the resource is gone, then writes `deleted` to the ledger. What could not be deleted is
reported with why and the manual command to do it by hand.

Nothing here imports boto3, kubernetes or textual; `CleanupBackend` is the protocol cloud/owned.py
implements.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from .errors import StepError
from .ledger import Ledger, LedgerResource
from .protocols import Cancellation
from .runner import Runner, Step, StepAction, StepContext, StepResult, done

# Our marks (design section 2).
TAG_KEY = "dynamo-wizard/deployment"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_MANAGED_BY_VALUE = "dynamo-wizard"
LABEL_DEPLOYMENT = "dynamo-wizard/deployment"
# eksctl's own stack/cluster tag: trusted only for a cluster that carries our tag.
EKSCTL_CLUSTER_TAG = "alpha.eksctl.io/cluster-name"

# ---------------------------------------------------------------------------------------------------
# Kinds

CLUSTER = "cluster"
STACK = "cfn-stack"
SECURITY_GROUP = "security-group"
FILE_SYSTEM = "efs-file-system"
MOUNT_TARGET = "efs-mount-target"
ACCESS_POINT = "efs-access-point"
DGD = "dgd"
HELM_RELEASE = "helm-release"
JOB = "job"
PVC = "pvc"
STORAGE_CLASS = "storage-class"
NODEPOOL = "nodepool"
NODECLASS = "nodeclass"
NAMESPACE = "namespace"
SECRET = "secret"
DEPLOYMENT = "deployment"  # the GPU warm-up Deployment provisioning runs while the model downloads
INSTANCE = "ec2-instance"  # an Auto Mode node left running after its cluster was deleted (it bills by the hour)
# The tag EKS Auto Mode puts on the instances of a cluster.
EKS_CLUSTER_NAME_TAG = "eks:eks-cluster-name"

AWS_KINDS = frozenset({CLUSTER, STACK, SECURITY_GROUP, FILE_SYSTEM, MOUNT_TARGET, ACCESS_POINT, INSTANCE})
KUBE_KINDS = frozenset({DGD, HELM_RELEASE, JOB, PVC, STORAGE_CLASS, NODEPOOL, NODECLASS, NAMESPACE, SECRET,
                        DEPLOYMENT})
NAMESPACED_KINDS = frozenset({DGD, HELM_RELEASE, JOB, PVC, SECRET, DEPLOYMENT})

KIND_TITLES: dict[str, str] = {
    CLUSTER: "EKS cluster",
    STACK: "CloudFormation stack",
    SECURITY_GROUP: "Security group",
    FILE_SYSTEM: "EFS file system",
    MOUNT_TARGET: "EFS mount target",
    ACCESS_POINT: "EFS access point",
    DGD: "DynamoGraphDeployment",
    HELM_RELEASE: "Helm release",
    JOB: "Job",
    PVC: "PersistentVolumeClaim",
    STORAGE_CLASS: "StorageClass",
    NODEPOOL: "NodePool",
    NODECLASS: "NodeClass",
    NAMESPACE: "Namespace",
    SECRET: "Secret",
    DEPLOYMENT: "Deployment",
    INSTANCE: "EC2 instance",
}

# How other parts may spell a kind in the ledger -> our kind. Keys are squashed (lowercase, letters and
# digits only), so "EFS file system", "efs_filesystem" and "efs-file-system" all land on FILE_SYSTEM.
_KIND_ALIASES: dict[str, str] = {
    "cluster": CLUSTER, "ekscluster": CLUSTER, "eks": CLUSTER,
    "cfnstack": STACK, "stack": STACK, "cloudformationstack": STACK,
    "securitygroup": SECURITY_GROUP, "sg": SECURITY_GROUP, "efssecuritygroup": SECURITY_GROUP,
    "efssg": SECURITY_GROUP, "ec2securitygroup": SECURITY_GROUP,
    "efsfilesystem": FILE_SYSTEM, "filesystem": FILE_SYSTEM, "efs": FILE_SYSTEM, "efsfs": FILE_SYSTEM,
    "efsmounttarget": MOUNT_TARGET, "mounttarget": MOUNT_TARGET, "efsmt": MOUNT_TARGET,
    "efsaccesspoint": ACCESS_POINT, "accesspoint": ACCESS_POINT,
    "dgd": DGD, "dynamographdeployment": DGD, "graph": DGD, "graphdeployment": DGD,
    "helmrelease": HELM_RELEASE, "helm": HELM_RELEASE, "release": HELM_RELEASE, "platform": HELM_RELEASE,
    "dynamoplatform": HELM_RELEASE,
    "job": JOB, "modeldownloadjob": JOB, "downloadjob": JOB,
    "pvc": PVC, "persistentvolumeclaim": PVC,
    "storageclass": STORAGE_CLASS, "sc": STORAGE_CLASS,
    "nodepool": NODEPOOL, "gpunodepool": NODEPOOL,
    "nodeclass": NODECLASS,
    "namespace": NAMESPACE, "ns": NAMESPACE,
    "secret": SECRET, "hftokensecret": SECRET,
    "deployment": DEPLOYMENT, "gpuwarmup": DEPLOYMENT, "warmup": DEPLOYMENT,
    "ec2instance": INSTANCE, "instance": INSTANCE, "node": INSTANCE,
}


def canonical_kind(kind: str) -> str:
    """Our kind for however a ledger line spells it (unknown kinds pass through, squashed)."""
    squashed = re.sub(r"[^a-z0-9]", "", kind.lower())
    return _KIND_ALIASES.get(squashed, squashed or kind)


def kind_title(kind: str) -> str:
    return KIND_TITLES.get(kind, kind)


# ---------------------------------------------------------------------------------------------------
# References and what discovery finds


@dataclass(frozen=True)
class Ref:
    """One resource, as precisely as we know it."""

    kind: str
    name: str
    namespace: str | None = None
    resource_id: str | None = None  # sg-…, fs-…, fsmt-…, fsap-…, stack ARN, cluster ARN
    parent: str | None = None  # the file system of a mount target or an access point

    @property
    def key(self) -> tuple[str, str, str]:
        """Identity inside one deployment: the id when there is one, else namespace/name."""
        if self.resource_id and self.kind in AWS_KINDS and self.kind not in (CLUSTER, STACK):
            return (self.kind, "", self.resource_id)
        return (self.kind, self.namespace or "", self.name)

    @property
    def display_name(self) -> str:
        base = f"{self.namespace}/{self.name}" if self.namespace else self.name
        if self.resource_id and self.resource_id != self.name and self.kind not in (CLUSTER, STACK):
            return f"{base} ({self.resource_id})"
        return base


@dataclass(frozen=True)
class FoundResource:
    """A resource discovery found, marked ours by tag, label, ownership (an access point of our file
    system) or the ledger."""

    ref: Ref
    cost_per_hour: float | None = None
    detail: str = ""  # e.g. "2 × g6e.2xlarge", "CREATE_COMPLETE", "available"
    aliases: tuple[str, ...] = ()  # other names a ledger line may use (subnet id, zone of a mount target)
    how: str = "tag"  # tag | label | owner | ledger | name-in-owned-namespace


@dataclass
class Discovery:
    """What a backend found for one deployment."""

    deployment: str
    region: str | None = None
    cluster_name: str | None = None
    found: list[FoundResource] = field(default_factory=list)
    checked: set[str] = field(default_factory=set)  # kinds searched authoritatively (absence = gone)
    cluster_state: Literal["exists", "gone", "unreachable", "unknown"] = "unknown"
    notes: list[str] = field(default_factory=list)  # what could not be looked at, and why


ItemState = Literal["exists", "gone", "ledger-only"]


@dataclass(frozen=True)
class InventoryItem:
    ref: Ref
    state: ItemState
    ledger_kind: str | None = None  # the (kind, name) the ledger uses, for writing `deleted`
    ledger_name: str | None = None
    ledger_state: str | None = None  # intent | created | adopted | deleted
    cost_per_hour: float | None = None
    detail: str = ""
    how: str = ""  # how we know it is ours

    @property
    def kind(self) -> str:
        return self.ref.kind

    @property
    def name(self) -> str:
        return self.ref.name

    @property
    def in_ledger(self) -> bool:
        return self.ledger_kind is not None

    @property
    def key(self) -> tuple[str, str, str]:
        return self.ref.key

    @property
    def needs_deletion(self) -> bool:
        return self.state != "gone"


@dataclass
class Inventory:
    deployment: str
    items: list[InventoryItem]
    region: str | None = None
    cluster_name: str | None = None
    cluster_state: str = "unknown"
    notes: list[str] = field(default_factory=list)

    def live(self) -> list[InventoryItem]:
        return [i for i in self.items if i.needs_deletion]

    def gone(self) -> list[InventoryItem]:
        return [i for i in self.items if i.state == "gone"]

    def cost_per_hour(self) -> float:
        return sum(i.cost_per_hour or 0.0 for i in self.items if i.state == "exists")

    def by_key(self) -> dict[tuple[str, str, str], InventoryItem]:
        return {i.key: i for i in self.items}

    def to_dict(self) -> dict[str, object]:
        return {
            "deployment": self.deployment,
            "region": self.region,
            "cluster": self.cluster_name,
            "clusterState": self.cluster_state,
            "costPerHour": round(self.cost_per_hour(), 4),
            "resources": [
                {
                    "kind": i.kind,
                    "name": i.name,
                    "namespace": i.ref.namespace,
                    "id": i.ref.resource_id,
                    "state": i.state,
                    "inLedger": i.in_ledger,
                    "costPerHour": i.cost_per_hour,
                    "detail": i.detail,
                }
                for i in sorted(self.items, key=deletion_sort_key)
            ],
            "notes": list(self.notes),
        }


def ledger_ref(res: LedgerResource) -> Ref:
    """Our reference for a ledger line: the kind normalised, `ns/name` split, ids kept."""
    kind = canonical_kind(res.kind)
    extra = res.extra or {}
    name = res.name
    namespace = extra.get("namespace") if isinstance(extra.get("namespace"), str) else None
    if kind in NAMESPACED_KINDS and namespace is None and "/" in name:
        namespace, name = name.split("/", 1)
    parent = None
    for key in ("fileSystemId", "file_system_id", "filesystem", "parent"):
        if isinstance(extra.get(key), str):
            parent = extra[key]
            break
    resource_id = res.resource_id
    if kind == CLUSTER and resource_id and resource_id.startswith("arn:"):
        resource_id = resource_id  # keep the ARN; identity is the name
    return Ref(kind=kind, name=name, namespace=namespace if kind in NAMESPACED_KINDS else None,
               resource_id=resource_id, parent=parent)


def _matches(lref: Ref, found: FoundResource) -> bool:
    f = found.ref
    if lref.kind != f.kind:
        return False
    if lref.resource_id and f.resource_id:
        return lref.resource_id == f.resource_id
    if lref.kind in NAMESPACED_KINDS and lref.namespace and f.namespace and lref.namespace != f.namespace:
        return False
    return lref.name == f.name or lref.name in found.aliases or (
        lref.resource_id is not None and lref.resource_id in found.aliases)


def build_inventory(deployment: str, ledger: Iterable[LedgerResource], discovery: Discovery) -> Inventory:
    """Unite the ledger and discovery into one list: each resource once, with its state.

    A ledger line that is already `deleted` shows up only if discovery still finds the resource (then it
    exists again, e.g. re-created by hand or by a later apply).
    """
    items: list[InventoryItem] = []
    unmatched = list(discovery.found)
    for res in ledger:
        lref = ledger_ref(res)
        match = next((f for f in unmatched if _matches(lref, f)), None)
        if match is not None:
            unmatched.remove(match)
            ref = match.ref
            if ref.resource_id is None and lref.resource_id and ref.kind in AWS_KINDS:
                ref = replace(ref, resource_id=lref.resource_id)
            items.append(InventoryItem(ref=ref, state="exists", ledger_kind=res.kind, ledger_name=res.name,
                                       ledger_state=res.state, cost_per_hour=match.cost_per_hour,
                                       detail=match.detail, how="ledger+" + match.how))
            continue
        if res.state == "deleted":
            continue
        checked = lref.kind in discovery.checked
        if lref.kind in KUBE_KINDS and discovery.cluster_state == "gone":
            checked = True  # everything inside a deleted cluster is gone with it
        items.append(InventoryItem(ref=lref, state="gone" if checked else "ledger-only", ledger_kind=res.kind,
                                   ledger_name=res.name, ledger_state=res.state, how="ledger",
                                   detail="" if checked else "could not be checked"))
    for f in unmatched:
        items.append(InventoryItem(ref=f.ref, state="exists", cost_per_hour=f.cost_per_hour, detail=f.detail,
                                   how=f.how))
    items.sort(key=deletion_sort_key)
    return Inventory(deployment=deployment, items=items, region=discovery.region,
                     cluster_name=discovery.cluster_name, cluster_state=discovery.cluster_state,
                     notes=list(discovery.notes))


# ---------------------------------------------------------------------------------------------------
# The deletion graph


@dataclass(frozen=True)
class DeletionStepSpec:
    """One step of the cleanup graph: which resources it deletes and what must be gone first."""

    step_id: str
    title: str
    depends_on: tuple[str, ...]
    refs: tuple[Ref, ...] = ()
    items: tuple[InventoryItem, ...] = ()
    # Items marked deleted in the ledger when this step ends, without a delete call of their own
    # (what lives inside a cluster that this step deletes).
    vanish_with: tuple[InventoryItem, ...] = ()
    timeout: float = 600.0


NATS_PVC_PREFIX = "dynamo-platform-nats-"

# Step ids, in the order of design section 2 / issue 6 §2.
S_RECONCILE = "cleanup-ledger"
S_DGD = "delete-graphs"
S_WARMUP = "delete-gpu-warmup"
S_HELM = "uninstall-platform"
S_NATS_PVC = "delete-nats-volume"
S_JOB = "delete-download-job"
S_PVCS = "delete-cache-claims"
S_EFS_SC = "delete-efs-storageclass"
S_ACCESS_POINTS = "delete-efs-access-points"
S_MOUNT_TARGETS = "delete-efs-mount-targets"
S_FILE_SYSTEM = "delete-efs-file-system"
S_SECURITY_GROUP = "delete-efs-security-group"
S_RESERVED_NODEPOOL = "delete-reserved-nodepool"
S_RESERVED_NODECLASS = "delete-reserved-nodeclass"
S_GPU_NODEPOOL = "delete-gpu-nodepool"
S_CLUSTER_OBJECTS = "delete-cluster-objects"
S_CLUSTER = "delete-cluster"

STEP_ORDER: tuple[str, ...] = (
    S_RECONCILE, S_DGD, S_WARMUP, S_HELM, S_NATS_PVC, S_JOB, S_PVCS, S_EFS_SC, S_ACCESS_POINTS, S_MOUNT_TARGETS,
    S_FILE_SYSTEM, S_SECURITY_GROUP, S_RESERVED_NODEPOOL, S_RESERVED_NODECLASS, S_GPU_NODEPOOL,
    S_CLUSTER_OBJECTS, S_CLUSTER,
)

STEP_TITLES: dict[str, str] = {
    S_RECONCILE: "Mark what is already gone in the ledger",
    S_DGD: "Delete the DynamoGraphDeployments (while the operator runs)",
    S_WARMUP: "Delete the GPU warm-up Deployment",
    S_HELM: "Uninstall the Dynamo platform (helm)",
    S_NATS_PVC: "Delete the NATS volume the uninstall leaves",
    S_JOB: "Delete the model-download Job",
    S_PVCS: "Delete the cache volume claims",
    S_EFS_SC: "Delete the EFS StorageClass",
    S_ACCESS_POINTS: "Delete the EFS access points",
    S_MOUNT_TARGETS: "Delete the EFS mount targets (wait until gone)",
    S_FILE_SYSTEM: "Delete the EFS file system",
    S_SECURITY_GROUP: "Delete the EFS security group",
    S_RESERVED_NODEPOOL: "Delete the reserved NodePool",
    S_RESERVED_NODECLASS: "Delete the reserved NodeClass",
    S_GPU_NODEPOOL: "Delete the GPU NodePool",
    S_CLUSTER_OBJECTS: "Delete the namespace, StorageClass and secret",
    S_CLUSTER: "Delete the EKS cluster (eksctl) and check its stacks are gone",
}

# Dependencies: a step starts once these are finished (or had nothing to do).
STEP_DEPENDS: dict[str, tuple[str, ...]] = {
    S_RECONCILE: (),
    S_DGD: (S_RECONCILE,),
    S_WARMUP: (S_RECONCILE,),
    S_HELM: (S_DGD,),  # the operator must outlive the graphs so their finalizers clear
    S_NATS_PVC: (S_HELM,),  # the StatefulSet must be gone or it re-creates its claim
    S_JOB: (S_RECONCILE,),
    S_PVCS: (S_DGD, S_JOB),  # no pod may still mount the caches
    S_EFS_SC: (S_PVCS,),
    S_ACCESS_POINTS: (S_PVCS,),  # the CSI driver removes its own; we remove what it left
    S_MOUNT_TARGETS: (S_PVCS, S_DGD, S_JOB),
    S_FILE_SYSTEM: (S_MOUNT_TARGETS, S_ACCESS_POINTS),
    S_SECURITY_GROUP: (S_MOUNT_TARGETS,),  # the mount targets' network interfaces hold it
    S_RESERVED_NODEPOOL: (S_DGD, S_JOB, S_WARMUP),
    S_RESERVED_NODECLASS: (S_RESERVED_NODEPOOL,),
    S_GPU_NODEPOOL: (S_DGD, S_JOB, S_WARMUP),
    S_CLUSTER_OBJECTS: (S_HELM, S_NATS_PVC, S_PVCS, S_EFS_SC, S_RESERVED_NODECLASS, S_GPU_NODEPOOL, S_WARMUP),
    S_CLUSTER: (S_HELM, S_NATS_PVC, S_PVCS, S_EFS_SC, S_FILE_SYSTEM, S_SECURITY_GROUP, S_RESERVED_NODECLASS,
                S_GPU_NODEPOOL, S_CLUSTER_OBJECTS, S_WARMUP),  # the security group must go before the VPC can
}

# Real-world upper bounds (tool-output-and-timings.md §3); a sandbox scales them down.
STEP_TIMEOUTS: dict[str, float] = {
    S_RECONCILE: 60, S_DGD: 600, S_WARMUP: 300, S_HELM: 600, S_NATS_PVC: 300, S_JOB: 300, S_PVCS: 600, S_EFS_SC: 120,
    S_ACCESS_POINTS: 300, S_MOUNT_TARGETS: 1200, S_FILE_SYSTEM: 600, S_SECURITY_GROUP: 900,
    S_RESERVED_NODEPOOL: 900, S_RESERVED_NODECLASS: 600, S_GPU_NODEPOOL: 900, S_CLUSTER_OBJECTS: 600,
    S_CLUSTER: 2700,
}


def is_nats_pvc(ref: Ref) -> bool:
    return ref.kind == PVC and ref.name.startswith(NATS_PVC_PREFIX)


def is_reserved(ref: Ref) -> bool:
    return ref.kind in (NODEPOOL, NODECLASS) and "reserved" in ref.name


def is_efs_storage_class(item: InventoryItem) -> bool:
    """The EFS StorageClass (efs.csi.aws.com); the default EBS one only goes when the cluster is kept."""
    return item.kind == STORAGE_CLASS and ("efs" in item.name or "efs.csi.aws.com" in item.detail)


def step_for(item: InventoryItem) -> str:
    """Which cleanup step deletes this item."""
    k = item.kind
    if k == DGD:
        return S_DGD
    if k == DEPLOYMENT:
        return S_WARMUP
    if k == HELM_RELEASE:
        return S_HELM
    if k == PVC:
        return S_NATS_PVC if is_nats_pvc(item.ref) else S_PVCS
    if k == JOB:
        return S_JOB
    if k == STORAGE_CLASS:
        return S_EFS_SC if is_efs_storage_class(item) else S_CLUSTER_OBJECTS
    if k == ACCESS_POINT:
        return S_ACCESS_POINTS
    if k == MOUNT_TARGET:
        return S_MOUNT_TARGETS
    if k == FILE_SYSTEM:
        return S_FILE_SYSTEM
    if k == SECURITY_GROUP:
        return S_SECURITY_GROUP
    if k == NODEPOOL:
        return S_RESERVED_NODEPOOL if is_reserved(item.ref) else S_GPU_NODEPOOL
    if k == NODECLASS:
        return S_RESERVED_NODECLASS
    if k in (NAMESPACE, SECRET):
        return S_CLUSTER_OBJECTS
    if k in (CLUSTER, STACK, INSTANCE):
        return S_CLUSTER
    # Anything else labelled ours inside the cluster.
    return S_CLUSTER_OBJECTS


def deletion_sort_key(item: InventoryItem) -> tuple[int, int, str]:
    order = STEP_ORDER.index(step_for(item))
    within = {INSTANCE: 1, STACK: 2}.get(item.kind, 0)  # the cluster, then its orphaned nodes, then its stacks
    return (order, within, item.ref.display_name)


def plan_deletion(inventory: Inventory, selected: Iterable[tuple[str, str, str]] | None = None
                  ) -> list[DeletionStepSpec]:
    """The cleanup graph for the selected items (all live ones when `selected` is None).

    Kubernetes objects are deleted one by one only while their cluster stays; when the cluster is
    deleted too, the objects that only cost nothing inside it (namespace, secret, default StorageClass)
    vanish with it, but the graphs, the platform, the volumes and the NodePools are still deleted first:
    they hold EBS volumes, EFS access points and GPU instances the cluster deletion does not wait for.
    Steps with nothing to do are left out, and dependencies on left-out steps are dropped.
    """
    chosen_keys = None if selected is None else set(selected)
    live = [i for i in inventory.live() if chosen_keys is None or i.key in chosen_keys]
    cluster_goes = any(i.kind == CLUSTER for i in live)
    if any(i.kind == CLUSTER for i in inventory.live()) and not cluster_goes:
        # A kept cluster keeps its stacks (they hold its VPC and, on AWS, the cluster itself) and its nodes.
        live = [i for i in live if i.kind not in (STACK, INSTANCE)]
    by_step: dict[str, list[InventoryItem]] = {}
    vanish: list[InventoryItem] = []
    for item in live:
        step = step_for(item)
        if step == S_CLUSTER_OBJECTS and cluster_goes:
            vanish.append(item)
            continue
        by_step.setdefault(step, []).append(item)
    if inventory.gone():
        by_step.setdefault(S_RECONCILE, [])
    specs: list[DeletionStepSpec] = []
    present = {s for s in STEP_ORDER if s in by_step or (s == S_CLUSTER and vanish and cluster_goes)}
    for step_id in STEP_ORDER:
        if step_id not in present:
            continue
        items = tuple(sorted(by_step.get(step_id, []), key=deletion_sort_key))
        deps = tuple(d for d in STEP_DEPENDS[step_id] if d in present)
        specs.append(DeletionStepSpec(
            step_id=step_id,
            title=STEP_TITLES[step_id],
            depends_on=deps,
            refs=tuple(i.ref for i in items),
            items=items,
            vanish_with=tuple(vanish) if step_id == S_CLUSTER else (),
            timeout=STEP_TIMEOUTS[step_id],
        ))
    return specs


def selection_warnings(inventory: Inventory, selected: Iterable[tuple[str, str, str]]) -> list[str]:
    """What a partial selection cannot achieve: a deletion whose dependency is left in place fails."""
    chosen = set(selected)
    live = inventory.live()
    kept = [i for i in live if i.key not in chosen]
    picked = [i for i in live if i.key in chosen]

    def kept_of(kind: str) -> list[InventoryItem]:
        return [i for i in kept if i.kind == kind]

    warnings: list[str] = []
    kinds = {i.kind for i in picked}
    if FILE_SYSTEM in kinds and kept_of(MOUNT_TARGET):
        warnings.append("the EFS file system cannot be deleted while the mount targets you kept exist")
    if SECURITY_GROUP in kinds and kept_of(MOUNT_TARGET):
        warnings.append("the security group cannot be deleted while the mount targets you kept use it")
    if CLUSTER in kinds:
        held = [kind_title(i.kind) for i in kept if i.kind in (SECURITY_GROUP, MOUNT_TARGET, FILE_SYSTEM)]
        if held:
            warnings.append(f"eksctl cannot delete the cluster's VPC while the kept {', '.join(sorted(set(held)))} "
                            "hold it")
        inside = [i for i in kept if i.kind in (PVC, NODEPOOL, DGD, DEPLOYMENT)]
        if inside:
            warnings.append("the kept " + ", ".join(sorted({kind_title(i.kind) for i in inside}))
                            + " go with the cluster anyway (volumes and nodes may outlive it)")
    if kinds & {STACK, INSTANCE} and any(i.kind == CLUSTER for i in kept):
        warnings.append("the cluster's stacks and nodes stay with the cluster you kept")
    if NODECLASS in kinds and any(i.kind == NODEPOOL and is_reserved(i.ref) for i in kept):
        warnings.append("the reserved NodeClass waits for the reserved NodePool you kept")
    if HELM_RELEASE in kinds and kept_of(DGD):
        warnings.append("uninstalling the platform with graphs left leaves their finalizers unhandled")
    return warnings


def topological(specs: list[DeletionStepSpec]) -> list[str]:
    """Step ids in an order that respects every dependency (raises on a cycle)."""
    remaining = {s.step_id: set(s.depends_on) for s in specs}
    order: list[str] = []
    while remaining:
        ready = sorted((sid for sid, deps in remaining.items() if not deps), key=STEP_ORDER.index)
        if not ready:
            raise ValueError(f"cleanup graph has a cycle among {sorted(remaining)}")
        for sid in ready:
            order.append(sid)
            del remaining[sid]
        for deps in remaining.values():
            deps.difference_update(ready)
    return order


# ---------------------------------------------------------------------------------------------------
# Manual commands (what to type when we could not)


def manual_command(ref: Ref, region: str | None, cluster: str | None) -> str:
    r = f" --region {region}" if region else ""
    ns = f" -n {ref.namespace}" if ref.namespace else ""
    k = ref.kind
    if k == CLUSTER:
        return f"eksctl delete cluster --name {ref.name}{r} --wait"
    if k == STACK:
        return f"aws cloudformation delete-stack --stack-name {ref.name}{r}"
    if k == SECURITY_GROUP:
        return f"aws ec2 delete-security-group --group-id {ref.resource_id or ref.name}{r}"
    if k == FILE_SYSTEM:
        return f"aws efs delete-file-system --file-system-id {ref.resource_id or ref.name}{r}"
    if k == MOUNT_TARGET:
        return f"aws efs delete-mount-target --mount-target-id {ref.resource_id or ref.name}{r}"
    if k == ACCESS_POINT:
        return f"aws efs delete-access-point --access-point-id {ref.resource_id or ref.name}{r}"
    if k == INSTANCE:
        return f"aws ec2 terminate-instances --instance-ids {ref.resource_id or ref.name}{r}"
    if k == HELM_RELEASE:
        return f"helm uninstall {ref.name}{ns}"
    kube_ctx = f"aws eks update-kubeconfig --name {cluster}{r} && " if cluster else ""
    resource = {
        DGD: "dynamographdeployment", DEPLOYMENT: "deployment", JOB: "job", PVC: "pvc", STORAGE_CLASS: "storageclass",
        NODEPOOL: "nodepool", NODECLASS: "nodeclass", NAMESPACE: "namespace", SECRET: "secret",
    }.get(k, k)
    return f"{kube_ctx}kubectl{ns} delete {resource} {ref.name}"


# ---------------------------------------------------------------------------------------------------
# The backend protocol and the deletion loop


class StillInUse(Exception):
    """AWS or Kubernetes says something still depends on the resource (DependencyViolation,
    FileSystemInUse, …): retry after the dependency goes."""


class DeleteRefused(Exception):
    """The deletion was refused for a reason retrying will not fix (AccessDenied, …)."""


class ClusterUnreachable(Exception):
    """The Kubernetes API of the cluster cannot be reached (but the cluster exists)."""


class CleanupBackend(Protocol):
    """What cleanup needs from the cloud (implemented by cloud.owned.OwnedResources)."""

    def discover(self, deployment: str, ledger: list[LedgerResource]) -> Discovery: ...

    def delete(self, ref: Ref, log: Callable[[str], None], cancel: Cancellation | None = None) -> None:
        """Start deleting; a resource already gone is not an error. Raises StillInUse or DeleteRefused.
        `cancel`: a forced cancel stops a running tool (eksctl, helm)."""
        ...

    def exists(self, ref: Ref) -> bool | None:
        """True while the resource exists, False once gone, None when it cannot be told."""
        ...


@dataclass(frozen=True)
class Pacing:
    """How often to poll and how long to back off (scaled down in the sandbox)."""

    poll: float = 5.0
    backoff_start: float = 5.0
    backoff_max: float = 60.0
    timeout_scale: float = 1.0
    # Floor under scaled timeouts: a tool (helm, eksctl) is a process to start and a machine may be busy;
    # a scaled clock must not turn that into a failure.
    min_timeout: float = 0.0

    @classmethod
    def scaled(cls, speed: float) -> Pacing:
        speed = max(speed, 1e-3)
        return cls(poll=max(0.02, 5.0 / speed), backoff_start=max(0.02, 5.0 / speed),
                   backoff_max=max(0.1, 60.0 / speed), timeout_scale=1.0 / speed, min_timeout=60.0)

    def timeout(self, real_seconds: float) -> float:
        return max(real_seconds * self.timeout_scale, self.min_timeout)


@dataclass
class DeletionOutcome:
    deleted: list[Ref] = field(default_factory=list)
    failed: list[tuple[Ref, str, str]] = field(default_factory=list)  # ref, why, manual command
    deferred: list[Ref] = field(default_factory=list)  # left for the cluster's deletion to take

    @property
    def ok(self) -> bool:
        return not self.failed


class DeletionFailed(Exception):
    def __init__(self, outcome: DeletionOutcome) -> None:
        self.outcome = outcome
        lines = [f"{kind_title(r.kind)} {r.display_name}: {why}" for r, why, _ in outcome.failed]
        super().__init__("; ".join(lines))

    @property
    def fix(self) -> str:
        cmds = [cmd for _, _, cmd in self.outcome.failed]
        return "delete by hand, then run cleanup again: " + " ; ".join(cmds)


def delete_all(
    items: Iterable[InventoryItem],
    backend: CleanupBackend,
    ledger: Ledger,
    log: Callable[[str], None],
    *,
    step_id: str,
    region: str | None,
    cluster: str | None,
    timeout: float,
    pacing: Pacing,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    record: Callable[[InventoryItem], None] | None = None,
    unreachable_ok: bool = False,
    cancel: Cancellation | None = None,
) -> DeletionOutcome:
    """Delete every item, retrying 'still in use' with backoff, wait until each is gone, then write the
    ledger's `deleted` (through `record` when given). All deletions are started first and then waited on
    together, so three claims take as long as one. `sleep` is where cancellation lands (the runner's
    cancellable sleep). With `unreachable_ok` (the cluster is deleted next), an object whose cluster API
    cannot be reached is deferred to the cluster's deletion instead of failing the step."""
    outcome = DeletionOutcome()

    def mark(item: InventoryItem) -> None:
        if record is not None:
            record(item)
        else:
            _mark_deleted(ledger, item, step_id)

    deadline = clock() + pacing.timeout(timeout)
    pending: list[InventoryItem] = []
    for item in items:
        ref = item.ref
        log(f"deleting {kind_title(ref.kind)} {ref.display_name}")
        backoff = pacing.backoff_start
        while True:
            try:
                backend.delete(ref, log, cancel)
                pending.append(item)
                break
            except StillInUse as err:
                if clock() + backoff > deadline:
                    outcome.failed.append((ref, f"still in use: {err}", manual_command(ref, region, cluster)))
                    log(f"gave up on {ref.display_name}: still in use ({err})")
                    break
                log(f"{ref.display_name} is still in use ({err}); retrying in {backoff:.1f}s")
                sleep(backoff)
                backoff = min(backoff * 2, pacing.backoff_max)
            except DeleteRefused as err:
                outcome.failed.append((ref, str(err), manual_command(ref, region, cluster)))
                log(f"could not delete {ref.display_name}: {err}")
                break
            except ClusterUnreachable as err:
                if unreachable_ok:
                    outcome.deferred.append(ref)
                    log(f"could not reach the cluster ({err}); {ref.display_name} goes with the cluster")
                else:
                    outcome.failed.append((ref, f"cluster API unreachable: {err}",
                                           manual_command(ref, region, cluster)))
                    log(f"could not reach the cluster to delete {ref.display_name}: {err}")
                break
    # Wait until gone. A deletion that failed on the way (a stack in DELETE_FAILED because a dependency
    # was still there) is started again after a backoff, until the deadline.
    retry_at: dict[tuple[str, str, str], tuple[float, float]] = {}  # key -> (when, next backoff)
    while pending:
        still: list[InventoryItem] = []
        for item in pending:
            try:
                present = backend.exists(item.ref)
            except ClusterUnreachable:
                present = None
            except StillInUse as err:
                when, wait = retry_at.get(item.key, (clock(), pacing.backoff_start))
                if clock() >= when:
                    log(f"{item.ref.display_name}: {err}; deleting it again")
                    try:
                        backend.delete(item.ref, log, cancel)
                    except StillInUse as again:
                        log(f"{item.ref.display_name} is still in use ({again})")
                    except DeleteRefused as refused:
                        outcome.failed.append((item.ref, str(refused), manual_command(item.ref, region, cluster)))
                        continue
                    retry_at[item.key] = (clock() + wait, min(wait * 2, pacing.backoff_max))
                present = True
            except DeleteRefused as err:  # waiting will not help
                outcome.failed.append((item.ref, str(err), manual_command(item.ref, region, cluster)))
                log(f"could not delete {item.ref.display_name}: {err}")
                continue
            if present is False:
                mark(item)
                outcome.deleted.append(item.ref)
                log(f"gone: {kind_title(item.kind)} {item.ref.display_name}")
            else:
                still.append(item)
        pending = still
        if not pending:
            break
        if clock() + pacing.poll > deadline:
            for item in pending:
                outcome.failed.append((item.ref, "still there after the step's timeout",
                                       manual_command(item.ref, region, cluster)))
                log(f"timed out waiting for {item.ref.display_name} to go")
            break
        sleep(pacing.poll)
    return outcome


def ledger_key(item: InventoryItem) -> tuple[str, str]:
    """The (kind, name) this item has, or will have, in the ledger."""
    kind = item.ledger_kind or item.kind
    name = item.ledger_name or (f"{item.ref.namespace}/{item.name}" if item.ref.namespace else item.name)
    return kind, name


def _mark_deleted(ledger: Ledger, item: InventoryItem, step_id: str) -> None:
    kind, name = ledger_key(item)
    ledger.deleted(kind, name, item.ref.resource_id, step=step_id)


def mark_gone(ledger: Ledger, items: Iterable[InventoryItem], step_id: str = S_RECONCILE) -> int:
    """Write `deleted` for ledger items that are gone (or vanished with their cluster)."""
    n = 0
    for item in items:
        if item.in_ledger and item.ledger_state != "deleted":
            _mark_deleted(ledger, item, step_id)
            n += 1
    return n


# ---------------------------------------------------------------------------------------------------
# The graph as runner steps (the same runner as provisioning)


def _delete_cluster_and_stacks(ctx: StepContext, spec: DeletionStepSpec, inventory: Inventory,
                               backend: CleanupBackend, pacing: Pacing, record: Callable[[InventoryItem], None]
                               ) -> DeletionOutcome:
    """The cluster with eksctl, then what it may leave: nodes that outlived it (their network interfaces
    hold the VPC, and a GPU bills by the hour), then its stacks, retried while CloudFormation reports a
    dependency, then a last look for anything of ours eksctl did not know about."""
    ledger = ctx.ledger or Ledger(inventory.deployment)

    def run(items: list[InventoryItem]) -> DeletionOutcome:
        return delete_all(items, backend, ledger, ctx.log, step_id=spec.step_id, region=inventory.region,
                          cluster=inventory.cluster_name, timeout=spec.timeout, pacing=pacing, sleep=ctx.sleep,
                          clock=ctx.clock, record=record, cancel=ctx.cancel)

    total = DeletionOutcome()
    clusters = [i for i in spec.items if i.kind == CLUSTER]
    first = run(clusters)
    total.deleted += first.deleted
    for ref, why, command in first.failed:
        if backend.exists(ref) is False:
            # eksctl failed on a stack after the cluster itself went: the stacks are finished below.
            ctx.log(f"eksctl did not finish ({why}); the cluster is gone, finishing its stacks")
            record(next(i for i in clusters if i.ref == ref))
            total.deleted.append(ref)
        else:
            total.failed.append((ref, why, command))
    if total.failed:
        return total
    # Look again: nodes and stacks as they are now (the cluster is gone; late arrivals included).
    hint = [LedgerResource(kind=CLUSTER, name=i.name, state="deleted") for i in clusters]
    if inventory.cluster_name and not hint:
        hint.append(LedgerResource(kind=CLUSTER, name=inventory.cluster_name, state="deleted"))
    found = backend.discover(inventory.deployment, ledger.resources() + hint).found
    if not clusters and any(f.ref.kind == CLUSTER for f in found):
        return total  # a cluster of ours that is kept: its stacks and nodes are its own
    known = {i.key for i in spec.items}
    rest = [i for i in spec.items if i.kind != CLUSTER]
    rest += [InventoryItem(ref=f.ref, state="exists", detail=f.detail, cost_per_hour=f.cost_per_hour)
             for f in found if f.ref.kind in (INSTANCE, STACK, CLUSTER) and f.ref.key not in known]
    for kinds in ((CLUSTER,), (INSTANCE,), (STACK,)):
        group = [i for i in rest if i.kind in kinds]
        if not group:
            continue
        if kinds != (STACK,) or any(i.key not in known for i in group):
            ctx.log("still there after eksctl: " + ", ".join(i.ref.display_name for i in group))
        outcome = run(sorted(group, key=deletion_sort_key))
        total.deleted += outcome.deleted
        total.failed += outcome.failed
        if outcome.failed:
            break
    return total


def _step_action(spec: DeletionStepSpec, inventory: Inventory, backend: CleanupBackend, pacing: Pacing,
                 cluster_goes: bool) -> StepAction:
    def action(ctx: StepContext) -> StepResult:
        def record(item: InventoryItem) -> None:
            kind, name = ledger_key(item)
            ctx.deleted(kind, name, item.ref.resource_id)

        if spec.step_id == S_RECONCILE:
            gone = [i for i in inventory.gone() if i.in_ledger and i.ledger_state != "deleted"]
            for item in gone:
                record(item)
                ctx.log(f"already gone: {kind_title(item.kind)} {item.ref.display_name}")
            return done(f"marked {len(gone)} resource(s) the ledger still had as gone")
        if spec.step_id == S_CLUSTER:
            outcome = _delete_cluster_and_stacks(ctx, spec, inventory, backend, pacing, record)
        else:
            outcome = delete_all(
                spec.items, backend, ctx.ledger or Ledger(inventory.deployment), ctx.log, step_id=spec.step_id,
                region=inventory.region, cluster=inventory.cluster_name, timeout=spec.timeout, pacing=pacing,
                sleep=ctx.sleep, clock=ctx.clock, record=record, cancel=ctx.cancel, unreachable_ok=cluster_goes,
            )
        if outcome.deferred:
            ctx.log("the cluster's API could not be reached: volumes behind the claims above may outlive the "
                    "cluster; once it is gone check `aws ec2 describe-volumes --filters "
                    "Name=tag-key,Values=kubernetes.io/created-for/pvc/name`")
        if not outcome.ok:
            err = DeletionFailed(outcome)
            raise StepError(str(err), err.fix)
        if spec.step_id == S_CLUSTER and ctx.ledger is not None:
            # Everything of ours inside the cluster went with it: close the ledger lines still open.
            for res in ctx.ledger.live_resources():
                if canonical_kind(res.kind) in KUBE_KINDS:
                    ctx.deleted(res.kind, res.name, res.resource_id)
                    ctx.log(f"went with the cluster: {kind_title(canonical_kind(res.kind))} {res.name}")
        names = ", ".join(r.display_name for r in outcome.deleted)
        return done(f"deleted {names}" if names else "nothing left to delete")

    return action


def cleanup_steps(inventory: Inventory, backend: CleanupBackend, *,
                  selected: Iterable[tuple[str, str, str]] | None = None, pacing: Pacing | None = None
                  ) -> list[Step]:
    """The cleanup graph as `core.runner.Step`s. Each step's own deadline (where it reports what it could
    not delete, with the manual command) comes before the runner's timeout, which is the backstop."""
    pacing = pacing or Pacing()
    specs = plan_deletion(inventory, selected)
    cluster_goes = any(r.kind == CLUSTER for s in specs for r in s.refs)
    return [
        Step(
            id=spec.step_id,
            title=spec.title,
            action=_step_action(spec, inventory, backend, pacing, cluster_goes),
            deps=spec.depends_on,
            timeout=pacing.timeout(spec.timeout) * 1.5 + 30.0,
            timeout_fix="run the cleanup again: it resumes from what is left",
            description=", ".join(r.display_name for r in spec.refs),
        )
        for spec in specs
    ]


def make_cleanup_runner(inventory: Inventory, backend: CleanupBackend, ledger: Ledger, *,
                        selected: Iterable[tuple[str, str, str]] | None = None, pacing: Pacing | None = None,
                        max_workers: int = 4, **runner_kwargs: Any) -> Runner:
    return Runner(cleanup_steps(inventory, backend, selected=selected, pacing=pacing),
                  deployment=inventory.deployment, ledger=ledger, max_workers=max_workers, **runner_kwargs)
