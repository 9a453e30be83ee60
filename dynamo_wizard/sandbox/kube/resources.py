"""The resource types the fake API server serves: built-ins plus whatever CRDs register."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    # Every version the type is served at (CRDs can serve several); `version` is the preferred one.
    versions: tuple[str, ...] = field(default=())

    @property
    def key(self) -> tuple[str, str]:
        """Storage key: objects are stored once per group and plural, whatever version they are read at."""
        return (self.group, self.plural)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def qualified(self) -> str:
        """The name the API server uses in messages: 'pods', 'deployments.apps', 'nodepools.karpenter.sh'."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def served_versions(self) -> tuple[str, ...]:
        return self.versions or (self.version,)


def _t(group: str, version: str, plural: str, kind: str, namespaced: bool, short: tuple[str, ...] = (),
       sub: tuple[str, ...] = (), categories: tuple[str, ...] = ()) -> ResourceType:
    return ResourceType(group, version, plural, kind, namespaced, short, sub, categories)


ALL = ("all",)
BUILTINS: tuple[ResourceType, ...] = (
    _t("", "v1", "namespaces", "Namespace", False, ("ns",), ("status", "finalize")),
    _t("", "v1", "pods", "Pod", True, ("po",), ("status", "log", "exec", "portforward", "proxy", "eviction",
                                                  "binding", "ephemeralcontainers"), ALL),
    _t("", "v1", "services", "Service", True, ("svc",), ("status", "proxy"), ALL),
    _t("", "v1", "endpoints", "Endpoints", True, ("ep",)),
    _t("", "v1", "configmaps", "ConfigMap", True, ("cm",)),
    _t("", "v1", "secrets", "Secret", True),
    _t("", "v1", "serviceaccounts", "ServiceAccount", True, ("sa",), ("token",)),
    _t("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, ("pvc",), ("status",)),
    _t("", "v1", "persistentvolumes", "PersistentVolume", False, ("pv",), ("status",)),
    _t("", "v1", "nodes", "Node", False, ("no",), ("status", "proxy")),
    _t("", "v1", "events", "Event", True, ("ev",)),
    _t("", "v1", "resourcequotas", "ResourceQuota", True, ("quota",), ("status",)),
    _t("", "v1", "limitranges", "LimitRange", True, ("limits",)),
    _t("apps", "v1", "deployments", "Deployment", True, ("deploy",), ("status", "scale"), ALL),
    _t("apps", "v1", "replicasets", "ReplicaSet", True, ("rs",), ("status", "scale"), ALL),
    _t("apps", "v1", "statefulsets", "StatefulSet", True, ("sts",), ("status", "scale"), ALL),
    _t("apps", "v1", "daemonsets", "DaemonSet", True, ("ds",), ("status",), ALL),
    _t("apps", "v1", "controllerrevisions", "ControllerRevision", True),
    _t("batch", "v1", "jobs", "Job", True, (), ("status",), ALL),
    _t("batch", "v1", "cronjobs", "CronJob", True, ("cj",), ("status",), ALL),
    _t("storage.k8s.io", "v1", "storageclasses", "StorageClass", False, ("sc",)),
    _t("storage.k8s.io", "v1", "csidrivers", "CSIDriver", False),
    _t("storage.k8s.io", "v1", "volumeattachments", "VolumeAttachment", False, (), ("status",)),
    _t("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False,
       ("crd", "crds"), ("status",)),
    _t("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    _t("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    _t("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    _t("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    _t("coordination.k8s.io", "v1", "leases", "Lease", True),
    _t("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ("pdb",), ("status",)),
    _t("networking.k8s.io", "v1", "ingresses", "Ingress", True, ("ing",), ("status",)),
    _t("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True, ("netpol",)),
    _t("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True),
    _t("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations",
       "ValidatingWebhookConfiguration", False),
    _t("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations",
       "MutatingWebhookConfiguration", False),
    _t("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", False, ("pc",)),
    _t("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", True, ("hpa",), ("status",)),
)

# Types whose DELETE answers with the deleted object rather than a Status (as the real API server's
# registries do; the kubernetes client's typed delete_* methods expect exactly this).
RETURNS_DELETED_OBJECT = frozenset({
    ("", "pods"), ("", "persistentvolumeclaims"), ("", "persistentvolumes"), ("", "services"),
    ("", "serviceaccounts"), ("", "podtemplates"), ("", "resourcequotas"), ("storage.k8s.io", "storageclasses"),
    ("storage.k8s.io", "csidrivers"), ("storage.k8s.io", "volumeattachments"),
})


def types_from_crd(crd: dict[str, Any]) -> list[ResourceType]:
    """The resource type a CustomResourceDefinition object declares (one, served at its versions)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    versions = [v for v in spec.get("versions") or [] if v.get("served", True)]
    if not names.get("plural") or not names.get("kind") or not spec.get("group") or not versions:
        return []
    storage = next((v["name"] for v in versions if v.get("storage")), versions[0]["name"])
    subresources: list[str] = []
    for v in versions:
        for sub in (v.get("subresources") or {}):
            if sub not in subresources:
                subresources.append(sub)
    return [ResourceType(
        group=spec["group"], version=storage, plural=names["plural"], kind=names["kind"],
        namespaced=spec.get("scope", "Namespaced") == "Namespaced",
        short_names=tuple(names.get("shortNames") or ()), subresources=tuple(subresources),
        categories=tuple(names.get("categories") or ()),
        versions=tuple(v["name"] for v in versions),
    )]


class Registry:
    """Lookup of resource types by (group, version, plural), by kind, and for discovery."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str], ResourceType] = {}
        self._crd_owned: dict[str, tuple[str, str]] = {}
        for t in BUILTINS:
            self._by_key[t.key] = t

    def add_crd(self, crd: dict[str, Any]) -> list[ResourceType]:
        added = types_from_crd(crd)
        for t in added:
            self._by_key[t.key] = t
            self._crd_owned[crd["metadata"]["name"]] = t.key
        return added

    def remove_crd(self, crd_name: str) -> ResourceType | None:
        key = self._crd_owned.pop(crd_name, None)
        return self._by_key.pop(key, None) if key else None

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        t = self._by_key.get((group, plural))
        if t is None or version not in t.served_versions():
            return None
        return t

    def by_key(self, key: tuple[str, str]) -> ResourceType | None:
        return self._by_key.get(key)

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        for t in self._by_key.values():
            if t.group == group and t.kind == kind and version in t.served_versions():
                return t
        return None

    def all(self) -> list[ResourceType]:
        return list(self._by_key.values())

    def group_versions(self) -> dict[str, list[str]]:
        """Group -> served versions, preferred first (core group '' excluded)."""
        out: dict[str, list[str]] = {}
        for t in self._by_key.values():
            if not t.group:
                continue
            vs = out.setdefault(t.group, [])
            for v in (t.version, *t.served_versions()):
                if v not in vs:
                    vs.append(v)
        return out


def api_resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = [t for t in registry.all() if t.group == group and version in t.served_versions()]
    if not types:
        return None
    resources: list[dict[str, Any]] = []
    for t in sorted(types, key=lambda t: t.plural):
        verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
        entry: dict[str, Any] = {
            "name": t.plural, "singularName": t.singular, "namespaced": t.namespaced, "kind": t.kind,
            "verbs": verbs,
        }
        if t.short_names:
            entry["shortNames"] = list(t.short_names)
        if t.categories:
            entry["categories"] = list(t.categories)
        resources.append(entry)
        for sub in t.subresources:
            sub_kind = {"log": "Pod", "proxy": "PodProxyOptions" if t.plural == "pods" else "ServiceProxyOptions",
                        "scale": "Scale", "eviction": "Eviction", "binding": "Binding",
                        "token": "TokenRequest"}.get(sub, t.kind)
            sub_verbs = {"log": ["get"], "proxy": ["create", "delete", "get", "patch", "update"],
                         "exec": ["create", "get"], "portforward": ["create", "get"], "eviction": ["create"],
                         "binding": ["create"], "token": ["create"], "finalize": ["update"]}.get(
                sub, ["get", "patch", "update"])
            resources.append({"name": f"{t.plural}/{sub}", "singularName": "", "namespaced": t.namespaced,
                              "kind": sub_kind, "verbs": sub_verbs})
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}
