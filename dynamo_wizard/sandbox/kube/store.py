"""The object store behind one sandbox cluster's API server.

Single-threaded by design: every mutation runs on the service's event loop (HTTP handlers, the controller
simulation and the fake helm all call it there), so no locks are needed. Each change bumps a global
resourceVersion, is kept in a bounded history (for watches that resume from a resourceVersion) and is fanned
out to subscribers (watch streams and the controller).
"""

from __future__ import annotations

import base64
import collections
import copy
import random
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from .errors import ApiError, already_exists, conflict, invalid, not_found
from .patches import json_patch, merge_patch, strategic_merge
from .resources import RETURNS_DELETED_OBJECT, Registry, ResourceType
from .selectors import fields_match, labels_match, parse_field_selector, parse_label_selector

Obj = dict[str, Any]
Listener = Callable[[str, ResourceType, Obj], None]
HISTORY = 4000
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # what the API server uses for generateName suffixes


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def random_suffix(n: int = 5) -> str:
    return "".join(random.choice(_NAME_CHARS) for _ in range(n))


class Store:
    def __init__(self, cluster: str) -> None:
        self.cluster = cluster
        self.registry = Registry()
        self.objects: dict[tuple[str, str], dict[tuple[str, str], Obj]] = collections.defaultdict(dict)
        self.rv = 1000
        self.history: collections.deque[tuple[int, str, tuple[str, str], Obj]] = collections.deque(maxlen=HISTORY)
        self.listeners: list[Listener] = []
        self.dirty = False

    # ------------------------------------------------------------------------------------------ events

    def subscribe(self, fn: Listener) -> None:
        self.listeners.append(fn)

    def unsubscribe(self, fn: Listener) -> None:
        if fn in self.listeners:
            self.listeners.remove(fn)

    def _emit(self, kind: str, rtype: ResourceType, obj: Obj) -> None:
        self.dirty = True
        snap = copy.deepcopy(obj)
        self.history.append((int(obj["metadata"]["resourceVersion"]), kind, rtype.key, snap))
        for fn in list(self.listeners):
            fn(kind, rtype, snap)

    def _next_rv(self) -> str:
        self.rv += 1
        return str(self.rv)

    # ------------------------------------------------------------------------------------------ reads

    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> Obj | None:
        return self.objects[rtype.key].get((namespace or "", name))

    def require(self, rtype: ResourceType, namespace: str | None, name: str) -> Obj:
        obj = self.get(rtype, namespace, name)
        if obj is None:
            raise not_found(rtype.qualified, name, rtype.plural, rtype.group)
        return obj

    def list(self, rtype: ResourceType, namespace: str | None = None, label_selector: str | None = None,
             field_selector: str | None = None) -> list[Obj]:
        lreqs = parse_label_selector(label_selector)
        freqs = parse_field_selector(field_selector)
        out = []
        for (ns, _name), obj in sorted(self.objects[rtype.key].items()):
            if namespace and ns != namespace:
                continue
            if lreqs and not labels_match(lreqs, obj["metadata"].get("labels")):
                continue
            if freqs and not fields_match(freqs, obj):
                continue
            out.append(obj)
        return out

    def kind_type(self, api_version: str, kind: str) -> ResourceType:
        t = self.registry.by_kind(api_version, kind)
        if t is None:
            raise ApiError(404, "NotFound", f'the server could not find the requested resource (no kind "{kind}" '
                           f'is registered for version "{api_version}")')
        return t

    def type_named(self, group: str, plural: str) -> ResourceType:
        t = self.registry.by_key((group, plural))
        if t is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return t

    # ------------------------------------------------------------------------------------------ writes

    def _check_namespace(self, rtype: ResourceType, namespace: str) -> None:
        if not rtype.namespaced:
            return
        ns_type = self.type_named("", "namespaces")
        ns = self.get(ns_type, None, namespace)
        if ns is None:
            raise not_found("namespaces", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise ApiError(403, "Forbidden", f"{rtype.plural} \"...\" is forbidden: unable to create new content in "
                           f"namespace {namespace} because it is being terminated",
                           {"kind": rtype.plural, "causes": [{"reason": "NamespaceTerminating",
                                                               "message": f"namespace {namespace} is being "
                                                                          "terminated",
                                                               "field": "metadata.namespace"}]})

    def create(self, rtype: ResourceType, namespace: str | None, body: Obj, dry_run: bool = False) -> Obj:
        obj = copy.deepcopy(body)
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "the body of the request was in an unknown format")
        meta = obj.setdefault("metadata", {})
        if meta is None:
            meta = obj["metadata"] = {}
        ns = (namespace or meta.get("namespace") or "default") if rtype.namespaced else ""
        if rtype.namespaced and meta.get("namespace") and namespace and meta["namespace"] != namespace:
            raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace "
                           "sent on the request")
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = meta["generateName"] + random_suffix()
            else:
                raise invalid(rtype.kind, "", "metadata.name: Required value: name or generateName is required")
        name = meta["name"]
        self._check_namespace(rtype, ns)
        if (ns, name) in self.objects[rtype.key]:
            raise already_exists(rtype.qualified, name, rtype.group)
        obj["apiVersion"] = rtype.api_version
        obj["kind"] = rtype.kind
        if rtype.namespaced:
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_iso()
        meta["generation"] = 1
        meta.pop("deletionTimestamp", None)
        meta.pop("resourceVersion", None)
        _default(self, rtype, obj)
        if dry_run:
            meta["resourceVersion"] = str(self.rv)
            return obj
        meta["resourceVersion"] = self._next_rv()
        self.objects[rtype.key][(ns, name)] = obj
        if rtype.key == ("apiextensions.k8s.io", "customresourcedefinitions"):
            self.registry.add_crd(obj)
            obj.setdefault("status", {})["conditions"] = [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                 "message": "no conflicts found", "lastTransitionTime": now_iso()},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                 "message": "the initial names have been accepted", "lastTransitionTime": now_iso()}]
        self._emit("ADDED", rtype, obj)
        return obj

    def replace(self, rtype: ResourceType, namespace: str | None, name: str, body: Obj,
                subresource: str | None = None, dry_run: bool = False) -> Obj:
        cur = self.require(rtype, namespace, name)
        new = copy.deepcopy(body)
        if not isinstance(new, dict):
            raise ApiError(400, "BadRequest", "the body of the request was in an unknown format")
        meta = new.setdefault("metadata", {}) or {}
        new["metadata"] = meta
        if meta.get("name") and meta["name"] != name:
            raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
        want_rv = meta.get("resourceVersion")
        if want_rv and want_rv != cur["metadata"]["resourceVersion"]:
            raise conflict(rtype.qualified, name)
        return self._commit(rtype, cur, new, subresource, dry_run)

    def patch(self, rtype: ResourceType, namespace: str | None, name: str, patch: Any, patch_type: str,
              subresource: str | None = None, dry_run: bool = False, force: bool = False) -> Obj:
        cur = self.get(rtype, namespace, name)
        if patch_type == "apply":
            if not isinstance(patch, dict):
                raise ApiError(400, "BadRequest", "apply patches must be objects")
            if cur is None:
                if subresource:
                    raise not_found(rtype.qualified, name, rtype.plural, rtype.group)
                body = copy.deepcopy(patch)
                body.setdefault("metadata", {})["name"] = name
                return self.create(rtype, namespace, body, dry_run=dry_run)
            new = strategic_merge(cur, {k: v for k, v in patch.items() if k not in ("apiVersion", "kind")})
            return self._commit(rtype, cur, new, subresource, dry_run)
        if cur is None:
            raise not_found(rtype.qualified, name, rtype.plural, rtype.group)
        if patch_type == "json":
            if not isinstance(patch, list):
                raise ApiError(400, "BadRequest", "json patches must be lists of operations")
            new = json_patch(cur, patch)
        elif patch_type == "merge":
            new = merge_patch(cur, patch)
        else:
            new = strategic_merge(cur, patch)
        want_rv = (new.get("metadata") or {}).get("resourceVersion")
        if isinstance(patch, dict) and (patch.get("metadata") or {}).get("resourceVersion") and \
                want_rv != cur["metadata"]["resourceVersion"]:
            raise conflict(rtype.qualified, name)
        return self._commit(rtype, cur, new, subresource, dry_run)

    def _commit(self, rtype: ResourceType, cur: Obj, new: Obj, subresource: str | None, dry_run: bool) -> Obj:
        """Store `new` as the next version of `cur`, keeping what clients may not change."""
        meta = new.setdefault("metadata", {})
        cmeta = cur["metadata"]
        for keep in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp", "generateName"):
            if keep in cmeta:
                meta[keep] = cmeta[keep]
            else:
                meta.pop(keep, None)
        new["apiVersion"] = rtype.api_version
        new["kind"] = rtype.kind
        has_status = "status" in rtype.subresources
        if subresource == "status":
            # Status writes change only the status; metadata and spec stay as they are.
            merged = copy.deepcopy(cur)
            merged["status"] = new.get("status")
            new = merged
        elif subresource == "all":
            pass  # controller writes: spec, metadata and status as given
        elif has_status:
            if "status" in cur:
                new["status"] = copy.deepcopy(cur["status"])
            else:
                new.pop("status", None)
        spec_changed = {k: v for k, v in new.items() if k not in ("metadata", "status")} != \
            {k: v for k, v in cur.items() if k not in ("metadata", "status")}
        meta = new["metadata"]
        meta["generation"] = int(cmeta.get("generation", 1)) + (1 if spec_changed else 0)
        if _comparable(new) == _comparable(cur):
            return cur  # no-op: the API server does not bump resourceVersion either
        if dry_run:
            meta["resourceVersion"] = cmeta["resourceVersion"]
            return new
        meta["resourceVersion"] = self._next_rv()
        key = (cmeta.get("namespace", ""), cmeta["name"])
        left = meta.get("finalizers")
        if rtype.key == ("", "namespaces"):
            left = left or (new.get("spec") or {}).get("finalizers")  # namespaces finalize through spec
        if cmeta.get("deletionTimestamp") and not left:
            # The last finalizer is gone: the object goes away now.
            self.objects[rtype.key].pop(key, None)
            self._emit("DELETED", rtype, new)
            self._after_delete(rtype, new)
            return new
        self.objects[rtype.key][key] = new
        self._emit("MODIFIED", rtype, new)
        return new

    def update_status(self, rtype: ResourceType, obj: Obj, status: Obj) -> Obj:
        """Controller helper: set the status of the current version of `obj` (no-op when unchanged)."""
        cur = self.get(rtype, obj["metadata"].get("namespace"), obj["metadata"]["name"])
        if cur is None or cur.get("status") == status:
            return cur or obj
        return self._commit(rtype, cur, {**copy.deepcopy(cur), "status": copy.deepcopy(status)}, "status", False)

    def mutate(self, rtype: ResourceType, namespace: str | None, name: str, fn: Callable[[Obj], None]) -> Obj | None:
        """Controller helper: apply `fn` to a copy of the object (spec, metadata and status) and store it."""
        cur = self.get(rtype, namespace, name)
        if cur is None:
            return None
        new = copy.deepcopy(cur)
        fn(new)
        if new == cur:
            return cur
        return self._commit(rtype, cur, new, "all", False)

    def delete(self, rtype: ResourceType, namespace: str | None, name: str, propagation: str | None = None,
               grace_seconds: int | None = None, dry_run: bool = False,
               precondition_uid: str | None = None) -> tuple[Obj, bool]:
        """Delete an object. Returns (object, gone): gone is False when finalizers or graceful termination keep
        it for now (deletionTimestamp set)."""
        cur = self.require(rtype, namespace, name)
        if precondition_uid and cur["metadata"]["uid"] != precondition_uid:
            raise conflict(rtype.qualified, name)
        if dry_run:
            return cur, True
        meta = cur["metadata"]
        if propagation == "Orphan":
            self._orphan_dependents(meta["uid"])
        graceful = rtype.key == ("", "pods") and cur.get("spec", {}).get("nodeName") and grace_seconds != 0 \
            and cur.get("status", {}).get("phase") not in ("Succeeded", "Failed")
        finalizers = list(meta.get("finalizers") or [])
        if rtype.key == ("", "namespaces"):
            finalizers = finalizers or ["kubernetes"]
            graceful = True
        if propagation == "Foreground":
            finalizers = list(dict.fromkeys([*finalizers, "foregroundDeletion"]))
        if finalizers or graceful:
            if meta.get("deletionTimestamp"):
                return cur, False
            new = copy.deepcopy(cur)
            new["metadata"]["deletionTimestamp"] = now_iso()
            if finalizers:
                new["metadata"]["finalizers"] = finalizers
            if graceful and rtype.key == ("", "pods"):
                new["metadata"]["deletionGracePeriodSeconds"] = int(
                    grace_seconds if grace_seconds is not None else
                    cur.get("spec", {}).get("terminationGracePeriodSeconds", 30))
            if rtype.key == ("", "namespaces"):
                new.setdefault("spec", {})["finalizers"] = ["kubernetes"]
                new["metadata"].pop("finalizers", None)
                new["status"] = {"phase": "Terminating"}
            new["metadata"]["resourceVersion"] = self._next_rv()
            self.objects[rtype.key][(meta.get("namespace", ""), meta["name"])] = new
            self._emit("MODIFIED", rtype, new)
            return new, False
        return self.remove(rtype, cur), True

    def remove(self, rtype: ResourceType, obj: Obj) -> Obj:
        """Remove an object now (finalizers done, grace period over) and collect its dependents."""
        meta = obj["metadata"]
        cur = self.objects[rtype.key].pop((meta.get("namespace", ""), meta["name"]), None)
        if cur is None:
            return obj
        gone = copy.deepcopy(cur)
        gone["metadata"]["resourceVersion"] = self._next_rv()
        self._emit("DELETED", rtype, gone)
        self._after_delete(rtype, gone)
        return gone

    def _after_delete(self, rtype: ResourceType, gone: Obj) -> None:
        if rtype.key == ("apiextensions.k8s.io", "customresourcedefinitions"):
            removed = self.registry.remove_crd(gone["metadata"]["name"])
            if removed is not None:
                for obj in list(self.objects[removed.key].values()):
                    self.remove(removed, obj)
                self.objects.pop(removed.key, None)
        self.collect_garbage(gone["metadata"]["uid"])

    def collect_garbage(self, owner_uid: str) -> None:
        """Background cascading deletion: whatever an owner reference ties to a deleted owner goes too."""
        for rtype in self.registry.all():
            for obj in list(self.objects.get(rtype.key, {}).values()):
                refs = obj["metadata"].get("ownerReferences") or []
                if any(r.get("uid") == owner_uid for r in refs):
                    remaining = [r for r in refs if r.get("uid") != owner_uid]
                    if remaining:
                        self.mutate(rtype, obj["metadata"].get("namespace"), obj["metadata"]["name"],
                                    _set_owner_refs(remaining))
                    elif not obj["metadata"].get("deletionTimestamp"):
                        self.delete(rtype, obj["metadata"].get("namespace"), obj["metadata"]["name"])

    def _orphan_dependents(self, owner_uid: str) -> None:
        for rtype in self.registry.all():
            for obj in list(self.objects.get(rtype.key, {}).values()):
                refs = obj["metadata"].get("ownerReferences") or []
                if any(r.get("uid") == owner_uid for r in refs):
                    remaining = [r for r in refs if r.get("uid") != owner_uid]
                    self.mutate(rtype, obj["metadata"].get("namespace"), obj["metadata"]["name"],
                                _set_owner_refs(remaining))

    def returns_deleted_object(self, rtype: ResourceType) -> bool:
        builtin = any(t.key == rtype.key for t in _builtin_types())
        return rtype.key in RETURNS_DELETED_OBJECT or not builtin

    # ------------------------------------------------------------------------------------------ persistence

    def snapshot(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "resourceVersion": self.rv,
            "objects": [obj for rtype_objs in self.objects.values() for obj in rtype_objs.values()],
        }

    def load(self, data: dict[str, Any]) -> None:
        self.rv = int(data.get("resourceVersion", self.rv))
        objs: list[Obj] = list(data.get("objects") or [])
        # CRDs first, so the custom resources they declare can be placed.
        for obj in objs:
            if obj.get("kind") == "CustomResourceDefinition":
                self.registry.add_crd(obj)
        for obj in objs:
            rtype = self.registry.by_kind(obj.get("apiVersion", ""), obj.get("kind", ""))
            if rtype is None:
                continue
            meta = obj["metadata"]
            self.objects[rtype.key][(meta.get("namespace", ""), meta["name"])] = obj
        self.dirty = False

    def all_objects(self) -> Iterable[tuple[ResourceType, Obj]]:
        for key, objs in list(self.objects.items()):
            rtype = self.registry.by_key(key)
            if rtype is None:
                continue
            for obj in list(objs.values()):
                yield rtype, obj


def _set_owner_refs(refs: list[dict[str, Any]]) -> Callable[[Obj], None]:
    def apply(o: Obj) -> None:
        o["metadata"]["ownerReferences"] = refs
    return apply


def _comparable(obj: Obj) -> Obj:
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in ("resourceVersion", "generation")}
    return {**obj, "metadata": meta}


def _builtin_types() -> tuple[ResourceType, ...]:
    from .resources import BUILTINS

    return BUILTINS


# ---------------------------------------------------------------------------------------------- defaulting

_CLUSTER_IP_BASE = [172, 20, 0, 0]


def _default(store: Store, rtype: ResourceType, obj: Obj) -> None:
    """What admission and defaulting add on create (the parts clients read back)."""
    key = rtype.key
    spec = obj.get("spec")
    if key == ("", "namespaces"):
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        obj["status"] = {"phase": "Active"}
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
    elif key == ("", "pods"):
        spec = obj.setdefault("spec", {})
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("schedulerName", "default-scheduler")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("serviceAccountName", "default")
        tolerations = spec.setdefault("tolerations", [])
        for taint_key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
            if not any(t.get("key") == taint_key for t in tolerations):
                tolerations.append({"key": taint_key, "operator": "Exists", "effect": "NoExecute",
                                    "tolerationSeconds": 300})
        for c in spec.get("containers") or []:
            c.setdefault("imagePullPolicy", "IfNotPresent")
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
        obj["status"] = {"phase": "Pending", "qosClass": _qos(spec)}
    elif key == ("", "services"):
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec.get("clusterIP") != "None":
            n = store.rv % 65000 + 10
            spec["clusterIP"] = f"172.20.{n // 250 % 250}.{n % 250 + 1}"
            spec["clusterIPs"] = [spec["clusterIP"]]
        for p in spec.get("ports") or []:
            p.setdefault("protocol", "TCP")
            p.setdefault("targetPort", p.get("port"))
        obj["status"] = {"loadBalancer": {}}
    elif key == ("", "persistentvolumeclaims"):
        spec = obj.setdefault("spec", {})
        spec.setdefault("volumeMode", "Filesystem")
        if spec.get("storageClassName") is None:
            default_sc = _default_storage_class(store)
            if default_sc:
                spec["storageClassName"] = default_sc
        obj["status"] = {"phase": "Pending"}
    elif key == ("", "secrets"):
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None)
        if string_data:
            data = obj.setdefault("data", {})
            for k, v in string_data.items():
                data[k] = base64.b64encode(str(v).encode()).decode()
    elif key == ("", "serviceaccounts"):
        pass
    elif key == ("apps", "deployments"):
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        spec.setdefault("strategy", {"type": "RollingUpdate",
                                     "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
        obj["status"] = {}
    elif key in (("apps", "statefulsets"), ("apps", "replicasets")):
        obj.setdefault("spec", {}).setdefault("replicas", 1)
        obj["status"] = {"replicas": 0}
    elif key == ("apps", "daemonsets"):
        obj["status"] = {"currentNumberScheduled": 0, "desiredNumberScheduled": 0, "numberMisscheduled": 0,
                         "numberReady": 0}
    elif key == ("batch", "jobs"):
        spec = obj.setdefault("spec", {})
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completions", 1)
        spec.setdefault("parallelism", 1)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
        spec.setdefault("manualSelector", False)
        labels = {"batch.kubernetes.io/controller-uid": obj["metadata"]["uid"],
                  "batch.kubernetes.io/job-name": obj["metadata"]["name"],
                  "controller-uid": obj["metadata"]["uid"], "job-name": obj["metadata"]["name"]}
        spec.setdefault("selector", {"matchLabels": {"batch.kubernetes.io/controller-uid": obj["metadata"]["uid"]}})
        tmpl = spec.setdefault("template", {})
        tmpl.setdefault("metadata", {}).setdefault("labels", {}).update(labels)
        obj["status"] = {}
    elif key == ("storage.k8s.io", "storageclasses"):
        obj.setdefault("reclaimPolicy", "Delete")
        obj.setdefault("volumeBindingMode", "Immediate")
    elif spec is not None and "status" in rtype.subresources and "status" not in obj:
        pass


def _qos(spec: Obj) -> str:
    reqs = [c.get("resources") or {} for c in spec.get("containers") or []]
    if not any(r.get("requests") or r.get("limits") for r in reqs):
        return "BestEffort"
    if all(r.get("limits") and r.get("requests", r.get("limits")) == r.get("limits") for r in reqs):
        return "Guaranteed"
    return "Burstable"


def _default_storage_class(store: Store) -> str | None:
    sc_type = store.type_named("storage.k8s.io", "storageclasses")
    for sc in store.list(sc_type):
        ann = sc["metadata"].get("annotations") or {}
        if ann.get("storageclass.kubernetes.io/is-default-class") == "true":
            return str(sc["metadata"]["name"])
    return None


def default_storage_class(store: Store) -> str | None:
    return _default_storage_class(store)


