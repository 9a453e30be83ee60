"""What a fresh EKS Auto Mode cluster holds: namespaces, the Auto Mode CRDs, the built-in NodeClass
`default` and NodePools `general-purpose` and `system`, the EBS CSI driver — and no nodes, no StorageClass."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..kube.store import Obj, Store


@dataclass
class Subnet:
    id: str
    zone: str
    zone_id: str
    cidr: str
    public: bool


@dataclass
class ClusterInfo:
    name: str
    region: str
    account: str = "123456789012"
    version: str = "1.34"
    vpc_id: str = ""
    subnets: list[Subnet] = field(default_factory=list)
    cluster_security_group: str = ""
    node_role: str = ""
    node_pools: list[str] = field(default_factory=lambda: ["general-purpose", "system"])
    auto_mode: bool = True

    @property
    def private_subnets(self) -> list[Subnet]:
        private = [s for s in self.subnets if not s.public]
        return private or list(self.subnets)

    @property
    def zones(self) -> list[str]:
        return sorted({s.zone for s in self.private_subnets})

    def subnet_in(self, zone: str) -> Subnet | None:
        return next((s for s in self.private_subnets if s.zone == zone), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClusterInfo:
        d = dict(data)
        d["subnets"] = [Subnet(**s) for s in d.get("subnets") or []]
        return cls(**d)


def _crd(group: str, plural: str, kind: str, scope: str, short: list[str], version: str = "v1",
         categories: list[str] | None = None) -> Obj:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group, "scope": scope,
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind, "listKind": f"{kind}List",
                      "shortNames": short, "categories": categories or []},
            "versions": [{"name": version, "served": True, "storage": True, "subresources": {"status": {}},
                          "schema": {"openAPIV3Schema": {"type": "object",
                                                         "x-kubernetes-preserve-unknown-fields": True}}}],
        },
    }


AUTO_MODE_CRDS = [
    _crd("karpenter.sh", "nodepools", "NodePool", "Cluster", [], categories=["karpenter"]),
    _crd("karpenter.sh", "nodeclaims", "NodeClaim", "Cluster", [], categories=["karpenter"]),
    _crd("eks.amazonaws.com", "nodeclasses", "NodeClass", "Cluster", [], categories=["eks"]),
    _crd("eks.amazonaws.com", "nodediagnostics", "NodeDiagnostic", "Cluster", [], categories=["eks"]),
]

_DISRUPTION = {"budgets": [{"nodes": "10%"}], "consolidateAfter": "30s",
               "consolidationPolicy": "WhenEmptyOrUnderutilized"}


def builtin_nodepool(name: str) -> Obj:
    reqs: list[dict[str, Any]] = [
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
        {"key": "eks.amazonaws.com/instance-category", "operator": "In", "values": ["c", "m", "r"]},
        {"key": "eks.amazonaws.com/instance-generation", "operator": "Gt", "values": ["4"]},
        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"] if name == "general-purpose"
         else ["amd64", "arm64"]},
        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
    ]
    spec: dict[str, Any] = {
        "disruption": dict(_DISRUPTION),
        "template": {
            "metadata": {},
            "spec": {"expireAfter": "336h", "terminationGracePeriod": "24h0m0s",
                     "nodeClassRef": {"group": "eks.amazonaws.com", "kind": "NodeClass", "name": "default"},
                     "requirements": reqs},
        },
    }
    if name == "system":
        spec["template"]["spec"]["taints"] = [{"key": "CriticalAddonsOnly", "effect": "NoSchedule"}]
    return {"apiVersion": "karpenter.sh/v1", "kind": "NodePool",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "eks"}}, "spec": spec}


def default_nodeclass(info: ClusterInfo) -> Obj:
    return {
        "apiVersion": "eks.amazonaws.com/v1", "kind": "NodeClass",
        "metadata": {"name": "default", "labels": {"app.kubernetes.io/managed-by": "eks"}},
        "spec": {
            "ephemeralStorage": {"iops": 3000, "size": "80Gi", "throughput": 125},
            "networkPolicy": "DefaultAllow", "networkPolicyEventLogs": "Disabled", "snatPolicy": "Random",
            "role": info.node_role,
            "securityGroupSelectorTerms": [{"id": info.cluster_security_group}],
            "subnetSelectorTerms": [{"id": s.id} for s in info.private_subnets],
        },
    }


def bootstrap(store: Store, info: ClusterInfo) -> None:
    ns_t = store.type_named("", "namespaces")
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        store.create(ns_t, None, {"metadata": {"name": ns}})
    crd_t = store.type_named("apiextensions.k8s.io", "customresourcedefinitions")
    for crd in AUTO_MODE_CRDS:
        store.create(crd_t, None, crd)
    store.create(store.type_named("", "services"), "default", {
        "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"type": "ClusterIP", "clusterIP": "172.20.0.1",
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 443}]}})
    store.create(store.type_named("storage.k8s.io", "csidrivers"), None, {
        "metadata": {"name": "ebs.csi.eks.amazonaws.com"},
        "spec": {"attachRequired": True, "podInfoOnMount": False, "fsGroupPolicy": "ReadWriteOnceWithFSType",
                 "volumeLifecycleModes": ["Persistent"]}})
    if info.auto_mode:
        nc_t = store.type_named("eks.amazonaws.com", "nodeclasses")
        store.create(nc_t, None, default_nodeclass(info))
        np_t = store.type_named("karpenter.sh", "nodepools")
        for pool in info.node_pools:
            if pool in ("general-purpose", "system"):
                store.create(np_t, None, builtin_nodepool(pool))


def efs_csi_objects() -> list[Obj]:
    """What the aws-efs-csi-driver add-on installs into kube-system."""
    labels = {"app.kubernetes.io/name": "aws-efs-csi-driver", "app.kubernetes.io/managed-by": "EKS"}
    image = "602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/aws-efs-csi-driver:v2.1.13"
    ctrl_labels = {"app": "efs-csi-controller", **labels}
    node_labels = {"app": "efs-csi-node", **labels}
    return [
        {"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver",
         "metadata": {"name": "efs.csi.aws.com", "labels": labels},
         "spec": {"attachRequired": False, "fsGroupPolicy": "ReadWriteOnceWithFSType"}},
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": "efs-csi-controller-sa", "namespace": "kube-system", "labels": labels}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "efs-csi-controller", "namespace": "kube-system", "labels": labels},
         "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "efs-csi-controller"}},
                  "template": {"metadata": {"labels": ctrl_labels},
                               "spec": {"serviceAccountName": "efs-csi-controller-sa",
                                        "priorityClassName": "system-cluster-critical",
                                        "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}],
                                        "containers": [{"name": "efs-plugin", "image": image,
                                                        "resources": {"requests": {"cpu": "10m",
                                                                                   "memory": "40Mi"}}}]}}}},
        {"apiVersion": "apps/v1", "kind": "DaemonSet",
         "metadata": {"name": "efs-csi-node", "namespace": "kube-system", "labels": labels},
         "spec": {"selector": {"matchLabels": {"app": "efs-csi-node"}},
                  "template": {"metadata": {"labels": node_labels},
                               "spec": {"tolerations": [{"operator": "Exists"}],
                                        "containers": [{"name": "efs-plugin", "image": image,
                                                        "resources": {"requests": {"cpu": "10m",
                                                                                   "memory": "40Mi"}}}]}}}},
    ]


__all__ = ["ClusterInfo", "Subnet", "bootstrap", "efs_csi_objects", "builtin_nodepool", "default_nodeclass"]
