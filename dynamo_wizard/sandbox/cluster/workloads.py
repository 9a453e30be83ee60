"""Workload controllers: Deployments → ReplicaSets → Pods, StatefulSets (with their volume claims),
DaemonSets, Jobs, Service endpoints, namespaces, service accounts, and the volume provisioners."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
from collections.abc import Callable
from typing import Any

from ..kube.errors import ApiError
from ..kube.store import Obj, default_storage_class, now_iso, random_suffix
from .base import SimBase
from .capacity import parse_mem_mib

_HASH_CHARS = "bcdfghjklmnpqrstvwxz2456789"


def _setter(path: tuple[str, ...], value: Any) -> Callable[[Obj], None]:
    """A mutation that sets one field (for Store.mutate)."""
    def apply(o: Obj) -> None:
        cur = o
        for key in path[:-1]:
            cur = cur.setdefault(key, {})
        cur[path[-1]] = value
    return apply


def template_hash(template: Any) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    return "".join(_HASH_CHARS[b % len(_HASH_CHARS)] for b in digest[:10])


def owner_ref(obj: Obj, controller: bool = True) -> dict[str, Any]:
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"],
            "uid": obj["metadata"]["uid"], "controller": controller, "blockOwnerDeletion": True}


def owned_by(obj: Obj, owner: Obj) -> bool:
    return any(r.get("uid") == owner["metadata"]["uid"] for r in obj["metadata"].get("ownerReferences") or [])


def controller_of(obj: Obj) -> dict[str, Any] | None:
    return next((r for r in obj["metadata"].get("ownerReferences") or [] if r.get("controller")), None)


def pod_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def pod_active(pod: Obj) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and \
        (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def set_condition(conds: list[dict[str, Any]], ctype: str, status: str, reason: str = "", message: str = "",
                  **extra: Any) -> list[dict[str, Any]]:
    out = [dict(c) for c in conds]
    for c in out:
        if c.get("type") == ctype:
            if c.get("status") != status:
                c["lastTransitionTime"] = now_iso()
            c.update({"status": status, "reason": reason, "message": message, **extra})
            if not reason:
                c.pop("reason", None)
            if not message:
                c.pop("message", None)
            return out
    new = {"type": ctype, "status": status, "lastTransitionTime": now_iso(), **extra}
    if reason:
        new["reason"] = reason
    if message:
        new["message"] = message
    out.append(new)
    return out


class WorkloadsMixin(SimBase):
    """Mixed into ClusterSim."""

    # -------------------------------------------------------------------------------------- namespaces

    def on_namespace(self, ns: Obj, kind: str) -> None:
        name = ns["metadata"]["name"]
        if kind == "ADDED":
            sa_t = self.t("", "serviceaccounts")
            if self.store.get(sa_t, name, "default") is None:
                self.store.create(sa_t, name, {"metadata": {"name": "default"}})
            cm_t = self.t("", "configmaps")
            if self.store.get(cm_t, name, "kube-root-ca.crt") is None:
                self.store.create(cm_t, name, {"metadata": {"name": "kube-root-ca.crt"},
                                               "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\nMIIsandbox\n"
                                                                  "-----END CERTIFICATE-----\n"}})
        if ns["metadata"].get("deletionTimestamp") and kind != "DELETED":
            self.spawn(f"ns-terminate/{name}", self.terminate_namespace(name))

    async def terminate_namespace(self, name: str) -> None:
        ns_t = self.t("", "namespaces")
        while not self.stopped:
            remaining: list[str] = []
            for rtype, obj in list(self.store.all_objects()):
                if not rtype.namespaced or obj["metadata"].get("namespace") != name:
                    continue
                if rtype.key == ("", "events"):
                    self.store.remove(rtype, obj)
                    continue
                if not obj["metadata"].get("deletionTimestamp"):
                    try:
                        self.store.delete(rtype, name, obj["metadata"]["name"], grace_seconds=None)
                    except ApiError:
                        continue
                if self.store.get(rtype, name, obj["metadata"]["name"]) is not None:
                    remaining.append(f"{rtype.qualified}/{obj['metadata']['name']}")
            ns = self.store.get(ns_t, None, name)
            if ns is None:
                return
            if not remaining:
                self.store.remove(ns_t, ns)
                return
            finalizers = sorted({f for rtype, obj in self.store.all_objects() if rtype.namespaced
                                 and obj["metadata"].get("namespace") == name
                                 for f in obj["metadata"].get("finalizers") or []})
            conds = [
                {"type": "NamespaceContentRemaining", "status": "True", "reason": "SomeResourcesRemain",
                 "message": f"Some resources are remaining: {', '.join(remaining[:5])}",
                 "lastTransitionTime": now_iso()}]
            if finalizers:
                conds.append({"type": "NamespaceFinalizersRemaining", "status": "True",
                              "reason": "SomeFinalizersRemain",
                              "message": f"Some content in the namespace has finalizers remaining: "
                                         f"{', '.join(finalizers)}", "lastTransitionTime": now_iso()})

            def set_status(o: Obj, c: list[dict[str, Any]] = conds) -> None:
                o["status"] = {"phase": "Terminating", "conditions": c}
            if [c["message"] for c in (ns.get("status") or {}).get("conditions") or []] != \
                    [c["message"] for c in conds]:
                self.store.mutate(ns_t, None, name, set_status)
            await asyncio.sleep(max(0.05, self.clock.scaled(5)))

    # -------------------------------------------------------------------------------------- deployments

    def reconcile_deployment(self, ns: str, name: str) -> None:
        dep_t, rs_t = self.t("apps", "deployments"), self.t("apps", "replicasets")
        dep = self.store.get(dep_t, ns, name)
        if dep is None or dep["metadata"].get("deletionTimestamp"):
            return
        spec = dep.get("spec") or {}
        template = spec.get("template") or {}
        h = template_hash(template)
        rs_name = f"{name}-{h}"
        replicas = int(spec.get("replicas", 1))
        owned = [rs for rs in self.store.list(rs_t, ns) if owned_by(rs, dep)]
        current = next((rs for rs in owned if rs["metadata"]["name"] == rs_name), None)
        if current is None:
            tmpl = copy.deepcopy(template)
            tmpl.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = h
            selector = copy.deepcopy(spec.get("selector") or {"matchLabels": tmpl["metadata"]["labels"]})
            selector.setdefault("matchLabels", {})["pod-template-hash"] = h
            self.store.create(rs_t, ns, {
                "metadata": {"name": rs_name, "labels": dict(tmpl["metadata"]["labels"]),
                             "annotations": {"deployment.kubernetes.io/desired-replicas": str(replicas),
                                             "deployment.kubernetes.io/revision": str(len(owned) + 1)},
                             "ownerReferences": [owner_ref(dep)]},
                "spec": {"replicas": replicas, "selector": selector, "template": tmpl}})
            self.events.emit(dep, "Normal", "ScalingReplicaSet",
                             f"Scaled up replica set {rs_name} from 0 to {replicas}", "deployment-controller")
        elif int(current["spec"].get("replicas", 0)) != replicas:
            old = int(current["spec"].get("replicas", 0))
            self.store.mutate(rs_t, ns, rs_name, lambda o: o["spec"].__setitem__("replicas", replicas))
            self.events.emit(dep, "Normal", "ScalingReplicaSet",
                             f"Scaled {'up' if replicas > old else 'down'} replica set {rs_name} from {old} to "
                             f"{replicas}", "deployment-controller")
        for rs in owned:
            if rs["metadata"]["name"] != rs_name and int(rs["spec"].get("replicas", 0)) != 0:
                self.store.mutate(rs_t, ns, rs["metadata"]["name"], lambda o: o["spec"].__setitem__("replicas", 0))
        self.deployment_status(ns, name)

    def deployment_status(self, ns: str, name: str) -> None:
        dep_t, rs_t = self.t("apps", "deployments"), self.t("apps", "replicasets")
        dep = self.store.get(dep_t, ns, name)
        if dep is None:
            return
        owned = [rs for rs in self.store.list(rs_t, ns) if owned_by(rs, dep)]
        h = template_hash((dep.get("spec") or {}).get("template") or {})
        replicas = sum(int((rs.get("status") or {}).get("replicas", 0)) for rs in owned)
        ready = sum(int((rs.get("status") or {}).get("readyReplicas", 0)) for rs in owned)
        updated = sum(int((rs.get("status") or {}).get("replicas", 0)) for rs in owned
                      if rs["metadata"]["name"].endswith(h))
        want = int((dep.get("spec") or {}).get("replicas", 1))
        status = copy.deepcopy(dep.get("status") or {})
        conds = status.get("conditions") or []
        conds = set_condition(conds, "Available", "True" if ready >= want else "False",
                              "MinimumReplicasAvailable" if ready >= want else "MinimumReplicasUnavailable",
                              "Deployment has minimum availability." if ready >= want else
                              "Deployment does not have minimum availability.", lastUpdateTime=now_iso())
        rs_name = f"{name}-{h}"
        progressing = ("NewReplicaSetAvailable", f'ReplicaSet "{rs_name}" has successfully progressed.') \
            if ready >= want else ("ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.')
        conds = set_condition(conds, "Progressing", "True", progressing[0], progressing[1], lastUpdateTime=now_iso())
        for c in conds:
            prior = next((p for p in status.get("conditions") or [] if p["type"] == c["type"]), None)
            if prior and prior.get("reason") == c.get("reason") and prior.get("status") == c.get("status"):
                c["lastUpdateTime"] = prior.get("lastUpdateTime", c["lastUpdateTime"])
        new = {"observedGeneration": dep["metadata"].get("generation", 1), "replicas": replicas,
               "updatedReplicas": updated, "readyReplicas": ready, "availableReplicas": ready,
               "conditions": conds}
        if replicas - ready > 0:
            new["unavailableReplicas"] = replicas - ready
        for k in ("readyReplicas", "availableReplicas", "updatedReplicas"):
            if not new[k]:
                new.pop(k)
        self.store.update_status(dep_t, dep, new)
        self.after_workload_status(dep)

    def reconcile_replicaset(self, ns: str, name: str) -> None:
        rs_t, pod_t = self.t("apps", "replicasets"), self.t("", "pods")
        rs = self.store.get(rs_t, ns, name)
        if rs is None or rs["metadata"].get("deletionTimestamp"):
            return
        want = int((rs.get("spec") or {}).get("replicas", 1))
        pods = [p for p in self.store.list(pod_t, ns) if owned_by(p, rs) and pod_active(p)]
        for _ in range(want - len(pods)):
            self.create_pod_from_template(rs, f"{name}-{random_suffix()}", "replicaset-controller")
        if len(pods) > want:
            for p in sorted(pods, key=lambda p: p["metadata"]["creationTimestamp"], reverse=True)[:len(pods) - want]:
                self.store.delete(pod_t, ns, p["metadata"]["name"])
                self.events.emit(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {p['metadata']['name']}",
                                 "replicaset-controller")
        pods = [p for p in self.store.list(pod_t, ns) if owned_by(p, rs) and pod_active(p)]
        ready = sum(1 for p in pods if pod_ready(p))
        status = {"replicas": len(pods), "fullyLabeledReplicas": len(pods), "readyReplicas": ready,
                  "availableReplicas": ready, "observedGeneration": rs["metadata"].get("generation", 1)}
        if not ready:
            status.pop("readyReplicas")
            status.pop("availableReplicas")
        self.store.update_status(rs_t, rs, status)
        owner = controller_of(rs)
        if owner and owner.get("kind") == "Deployment":
            self.deployment_status(ns, owner["name"])

    def create_pod_from_template(self, owner: Obj, name: str, component: str,
                                 extra_spec: dict[str, Any] | None = None,
                                 extra_labels: dict[str, str] | None = None) -> Obj | None:
        tmpl = copy.deepcopy((owner.get("spec") or {}).get("template") or {})
        meta = tmpl.get("metadata") or {}
        spec = tmpl.get("spec") or {}
        if extra_spec:
            spec.update(extra_spec)
        labels = dict(meta.get("labels") or {})
        labels.update(extra_labels or {})
        ns = owner["metadata"]["namespace"]
        try:
            pod = self.store.create(self.t("", "pods"), ns, {
                "metadata": {"name": name, "labels": labels, "annotations": dict(meta.get("annotations") or {}),
                             "ownerReferences": [owner_ref(owner)]},
                "spec": spec})
        except ApiError as err:
            self.events.emit(owner, "Warning", "FailedCreate", f"Error creating: {err.message}", component)
            return None
        self.events.emit(owner, "Normal", "SuccessfulCreate", f"Created pod: {name}", component)
        return pod

    # -------------------------------------------------------------------------------------- statefulsets

    def reconcile_statefulset(self, ns: str, name: str) -> None:
        sts_t, pod_t, pvc_t = self.t("apps", "statefulsets"), self.t("", "pods"), self.t("", "persistentvolumeclaims")
        sts = self.store.get(sts_t, ns, name)
        if sts is None or sts["metadata"].get("deletionTimestamp"):
            return
        spec = sts.get("spec") or {}
        want = int(spec.get("replicas", 1))
        for i in range(want):
            pod_name = f"{name}-{i}"
            existing = self.store.get(pod_t, ns, pod_name)
            if existing is not None:
                continue
            volumes = []
            for tmpl in spec.get("volumeClaimTemplates") or []:
                claim = f"{tmpl['metadata']['name']}-{name}-{i}"
                if self.store.get(pvc_t, ns, claim) is None:
                    labels = dict((spec.get("selector") or {}).get("matchLabels") or {})
                    self.store.create(pvc_t, ns, {
                        "metadata": {"name": claim, "labels": labels},
                        "spec": copy.deepcopy(tmpl.get("spec") or {})})
                    self.events.emit(sts, "Normal", "SuccessfulCreate",
                                     f"create Claim {claim} Pod {pod_name} in StatefulSet {name} success",
                                     "statefulset-controller")
                volumes.append({"name": tmpl["metadata"]["name"], "persistentVolumeClaim": {"claimName": claim}})
            tmpl_spec = copy.deepcopy(((spec.get("template") or {}).get("spec")) or {})
            vols = [v for v in tmpl_spec.get("volumes") or [] if v["name"] not in {x["name"] for x in volumes}]
            extra = {"volumes": vols + volumes, "hostname": pod_name, "subdomain": spec.get("serviceName", "")}
            labels = {"statefulset.kubernetes.io/pod-name": pod_name, "apps.kubernetes.io/pod-index": str(i),
                      "controller-revision-hash": f"{name}-{template_hash(spec.get('template'))[:10]}"}
            self.create_pod_from_template(sts, pod_name, "statefulset-controller", extra, labels)
            if spec.get("podManagementPolicy", "OrderedReady") == "OrderedReady":
                break
        pods = [p for p in self.store.list(pod_t, ns) if owned_by(p, sts) and pod_active(p)]
        for p in pods:
            idx = p["metadata"]["name"].rsplit("-", 1)[-1]
            if idx.isdigit() and int(idx) >= want:
                self.store.delete(pod_t, ns, p["metadata"]["name"])
        ready = sum(1 for p in pods if pod_ready(p))
        status = {"replicas": len(pods), "readyReplicas": ready, "currentReplicas": len(pods),
                  "updatedReplicas": len(pods), "availableReplicas": ready,
                  "observedGeneration": sts["metadata"].get("generation", 1),
                  "currentRevision": f"{name}-{template_hash(spec.get('template'))[:10]}",
                  "updateRevision": f"{name}-{template_hash(spec.get('template'))[:10]}",
                  "collisionCount": 0}
        if not ready:
            status.pop("readyReplicas")
            status.pop("availableReplicas")
        self.store.update_status(sts_t, sts, status)
        # OrderedReady: the next ordinal once the previous one is ready
        if len(pods) < want and all(pod_ready(p) for p in pods):
            self.enqueue(("apps", "statefulsets"), ns, name)
        self.after_workload_status(sts)

    # -------------------------------------------------------------------------------------- daemonsets

    def reconcile_daemonset(self, ns: str, name: str) -> None:
        ds_t, pod_t, node_t = self.t("apps", "daemonsets"), self.t("", "pods"), self.t("", "nodes")
        ds = self.store.get(ds_t, ns, name)
        if ds is None or ds["metadata"].get("deletionTimestamp"):
            return
        pods = [p for p in self.store.list(pod_t, ns) if owned_by(p, ds) and pod_active(p)]
        by_node = {p["spec"].get("nodeName"): p for p in pods}
        tolerations = ((ds.get("spec") or {}).get("template") or {}).get("spec", {}).get("tolerations") or []
        eligible = [n for n in self.store.list(node_t) if self.node_usable(n, ignore_ready=True)
                    and self.tolerates(tolerations, n.get("spec", {}).get("taints") or [])]
        for node in eligible:
            node_name = node["metadata"]["name"]
            if node_name in by_node:
                continue
            affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}]}}}
            pod = self.create_pod_from_template(ds, f"{name}-{random_suffix()}", "daemonset-controller",
                                                {"affinity": affinity})
            if pod is not None:
                self.bind_pod(pod, node, announce=True)
        ready = sum(1 for p in pods if pod_ready(p))
        status = {"currentNumberScheduled": len(pods), "desiredNumberScheduled": len(eligible),
                  "numberMisscheduled": 0, "numberReady": ready, "numberAvailable": ready,
                  "updatedNumberScheduled": len(pods), "observedGeneration": ds["metadata"].get("generation", 1)}
        self.store.update_status(ds_t, ds, status)

    # -------------------------------------------------------------------------------------- jobs

    def reconcile_job(self, ns: str, name: str) -> None:
        job_t, pod_t = self.t("batch", "jobs"), self.t("", "pods")
        job = self.store.get(job_t, ns, name)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return
        status = copy.deepcopy(job.get("status") or {})
        conds = status.get("conditions") or []
        if any(c["type"] in ("Complete", "Failed") and c["status"] == "True" for c in conds):
            return
        spec = job.get("spec") or {}
        if spec.get("suspend"):
            return
        pods = [p for p in self.store.list(pod_t, ns) if owned_by(p, job)]
        active = [p for p in pods if pod_active(p)]
        succeeded = [p for p in pods if (p.get("status") or {}).get("phase") == "Succeeded"]
        failed = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
        restarts = sum(int(cs.get("restartCount", 0)) for p in active
                       for cs in (p.get("status") or {}).get("containerStatuses") or [])
        completions = int(spec.get("completions", 1))
        backoff = int(spec.get("backoffLimit", 6))
        status.setdefault("startTime", now_iso())
        if len(succeeded) >= completions:
            conds = set_condition(conds, "SuccessCriteriaMet", "True", "CompletionsReached",
                                  "Reached expected number of succeeded pods", lastProbeTime=now_iso())
            conds = set_condition(conds, "Complete", "True", "CompletionsReached",
                                  "Reached expected number of succeeded pods", lastProbeTime=now_iso())
            status.update({"succeeded": len(succeeded), "conditions": conds, "completionTime": now_iso(),
                           "ready": 0, "terminating": 0, "uncountedTerminatedPods": {}})
            status.pop("active", None)
            if failed:
                status["failed"] = len(failed)
            self.store.update_status(job_t, job, status)
            self.events.emit(job, "Normal", "Completed", "Job completed", "job-controller")
            return
        if len(failed) + restarts > backoff:
            for p in active:
                self.store.delete(pod_t, ns, p["metadata"]["name"])
            conds = set_condition(conds, "FailureTarget", "True", "BackoffLimitExceeded",
                                  "Job has reached the specified backoff limit", lastProbeTime=now_iso())
            conds = set_condition(conds, "Failed", "True", "BackoffLimitExceeded",
                                  "Job has reached the specified backoff limit", lastProbeTime=now_iso())
            status.update({"failed": len(failed) or 1, "conditions": conds, "ready": 0, "terminating": 0,
                           "uncountedTerminatedPods": {}})
            status.pop("active", None)
            self.store.update_status(job_t, job, status)
            self.events.emit(job, "Warning", "BackoffLimitExceeded", "Job has reached the specified backoff limit",
                             "job-controller")
            return
        if not active:
            self.create_pod_from_template(job, f"{name}-{random_suffix()}", "job-controller",
                                          extra_labels={"batch.kubernetes.io/job-name": name, "job-name": name})
            active = [p for p in self.store.list(pod_t, ns) if owned_by(p, job) and pod_active(p)]
        status.update({"active": len(active), "ready": sum(1 for p in active if pod_ready(p)), "terminating": 0,
                       "uncountedTerminatedPods": {}})
        if failed:
            status["failed"] = len(failed)
        self.store.update_status(job_t, job, status)

    # -------------------------------------------------------------------------------------- services

    def reconcile_endpoints(self, ns: str) -> None:
        svc_t, ep_t, pod_t = self.t("", "services"), self.t("", "endpoints"), self.t("", "pods")
        pods = [p for p in self.store.list(pod_t, ns) if (p.get("status") or {}).get("podIP")
                and not p["metadata"].get("deletionTimestamp")]
        from ..kube.selectors import labels_match, selector_from_label_selector

        for svc in self.store.list(svc_t, ns):
            selector = (svc.get("spec") or {}).get("selector")
            if not selector:
                continue
            reqs = selector_from_label_selector({"matchLabels": selector})
            matching = [p for p in pods if labels_match(reqs, p["metadata"].get("labels"))]

            def addr(p: Obj) -> dict[str, Any]:
                return {"ip": p["status"]["podIP"], "nodeName": p["spec"].get("nodeName"),
                        "targetRef": {"kind": "Pod", "namespace": ns, "name": p["metadata"]["name"],
                                      "uid": p["metadata"]["uid"]}}
            ready = [addr(p) for p in matching if pod_ready(p)]
            not_ready = [addr(p) for p in matching if not pod_ready(p)]
            ports = [{"name": p.get("name", ""), "port": p.get("targetPort") if isinstance(p.get("targetPort"), int)
                      else p.get("port"), "protocol": p.get("protocol", "TCP")}
                     for p in (svc.get("spec") or {}).get("ports") or []]
            subsets = []
            if ready or not_ready:
                subset: dict[str, Any] = {"ports": ports}
                if ready:
                    subset["addresses"] = ready
                if not_ready:
                    subset["notReadyAddresses"] = not_ready
                subsets.append(subset)
            name = svc["metadata"]["name"]
            cur = self.store.get(ep_t, ns, name)
            if cur is None:
                self.store.create(ep_t, ns, {"metadata": {"name": name, "labels": dict(svc["metadata"].get("labels")
                                                                                       or {})},
                                             "subsets": subsets})
            elif cur.get("subsets") != subsets:
                self.store.mutate(ep_t, ns, name, _setter(("subsets",), subsets))

    # -------------------------------------------------------------------------------------- volumes

    async def pvc_binder(self) -> None:
        while not self.stopped:
            await self.wait_kick("pvc", max(0.2, self.clock.scaled(10)))
            try:
                await self.bind_pvcs()
            except Exception:  # keep the loop alive; the next kick retries
                self.log.exception("pvc binder")

    async def bind_pvcs(self) -> None:
        pvc_t, sc_t = self.t("", "persistentvolumeclaims"), self.t("storage.k8s.io", "storageclasses")
        for pvc in self.store.list(pvc_t):
            if (pvc.get("status") or {}).get("phase") != "Pending" or pvc["metadata"].get("deletionTimestamp"):
                continue
            ns, name = pvc["metadata"]["namespace"], pvc["metadata"]["name"]
            sc_name = (pvc.get("spec") or {}).get("storageClassName")
            if sc_name is None:
                default_sc = default_storage_class(self.store)
                if default_sc:
                    # Retroactive default StorageClass assignment (Kubernetes ≥ 1.28)
                    self.store.mutate(pvc_t, ns, name, _setter(("spec", "storageClassName"), default_sc))
                    continue
                self.throttled_event(pvc, "Normal", "FailedBinding",
                                     "no persistent volumes available for this claim and no storage class is set",
                                     "persistentvolume-controller")
                continue
            if sc_name == "":
                continue  # static binding only
            sc = self.store.get(sc_t, None, sc_name)
            if sc is None:
                self.throttled_event(pvc, "Warning", "ProvisioningFailed",
                                     f'storageclass.storage.k8s.io "{sc_name}" not found',
                                     "persistentvolume-controller")
                continue
            key = f"provision/{pvc['metadata']['uid']}"
            if key in self.tasks:
                continue
            if sc.get("volumeBindingMode") == "WaitForFirstConsumer":
                node = self.consumer_node(pvc)
                if node is None:
                    self.throttled_event(pvc, "Normal", "WaitForFirstConsumer",
                                         "waiting for first consumer to be created before binding",
                                         "persistentvolume-controller")
                    continue
                zone = node["metadata"]["labels"].get("topology.kubernetes.io/zone")
            else:
                zone = None
            self.spawn(key, self.provision(pvc, sc, zone))

    def consumer_node(self, pvc: Obj) -> Obj | None:
        ns, name = pvc["metadata"]["namespace"], pvc["metadata"]["name"]
        for pod in self.store.list(self.t("", "pods"), ns):
            claims = [v.get("persistentVolumeClaim", {}).get("claimName") for v in
                      (pod.get("spec") or {}).get("volumes") or []]
            node_name = (pod.get("spec") or {}).get("nodeName")
            if name in claims and node_name:
                return self.store.get(self.t("", "nodes"), None, node_name)
        return None

    async def provision(self, pvc: Obj, sc: Obj, zone: str | None) -> None:
        pvc_t, pv_t = self.t("", "persistentvolumeclaims"), self.t("", "persistentvolumes")
        ns, name = pvc["metadata"]["namespace"], pvc["metadata"]["name"]
        provisioner = sc.get("provisioner", "")
        params = sc.get("parameters") or {}
        size = ((pvc.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage", "1Gi")
        volume_handle = ""
        node_affinity: dict[str, Any] | None = None
        if provisioner == "efs.csi.aws.com":
            if not self.efs_controller_ready():
                self.throttled_event(pvc, "Normal", "ExternalProvisioning",
                                     "Waiting for a volume to be created either by the external provisioner "
                                     "'efs.csi.aws.com' or manually by the system administrator. If volume creation "
                                     "is delayed, please verify that the provisioner is running and correctly "
                                     "registered.", "persistentvolume-controller")
                return
            self.events.emit(pvc, "Normal", "Provisioning",
                             f'External provisioner is provisioning volume for claim "{ns}/{name}"',
                             "efs.csi.aws.com_efs-csi-controller")
            await self.clock.sleep_for("pvc_bind_efs")
            fs_id = str(params.get("fileSystemId", ""))
            ap = await self.bridge.create_access_point(fs_id, name, ns) if fs_id else None
            if ap is None:
                self.events.emit(pvc, "Warning", "ProvisioningFailed",
                                 f"failed to provision volume with StorageClass \"{sc['metadata']['name']}\": rpc "
                                 f"error: code = Internal desc = Failed to fetch Access Points or Describe File "
                                 f"System: Describe File System failed: FileSystemNotFound: File system "
                                 f"'{fs_id}' does not exist.", "efs.csi.aws.com_efs-csi-controller")
                return
            volume_handle = f"{fs_id}::{ap}"
        elif provisioner.startswith("ebs.csi"):
            self.events.emit(pvc, "Normal", "Provisioning",
                             f'External provisioner is provisioning volume for claim "{ns}/{name}"',
                             f"{provisioner}_ebs-csi-controller")
            await self.clock.sleep_for("pvc_bind_ebs")
            zone = zone or (self.info.zones[0] if self.info.zones else f"{self.info.region}a")
            gib = max(1, parse_mem_mib(size) // 1024)
            vol = await self.bridge.create_volume(zone, gib, {
                "ebs.csi.aws.com/cluster": "true", "kubernetes.io/created-for/pvc/name": name,
                "kubernetes.io/created-for/pvc/namespace": ns, f"kubernetes.io/cluster/{self.info.name}": "owned",
                "eks:eks-cluster-name": self.info.name})
            volume_handle = vol or f"vol-{random_suffix(17)}"
            node_affinity = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "topology.kubernetes.io/zone", "operator": "In", "values": [zone]}]}]}}
        else:
            await self.clock.sleep_for("pvc_bind_ebs")
            volume_handle = f"{provisioner}-{random_suffix(10)}"
        cur = self.store.get(pvc_t, ns, name)
        if cur is None or cur["metadata"]["uid"] != pvc["metadata"]["uid"]:
            return
        pv_name = f"pvc-{pvc['metadata']['uid']}"
        modes = (pvc.get("spec") or {}).get("accessModes") or ["ReadWriteOnce"]
        pv_spec: dict[str, Any] = {
            "capacity": {"storage": size}, "accessModes": modes,
            "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy", "Delete"),
            "storageClassName": sc["metadata"]["name"], "volumeMode": "Filesystem",
            "claimRef": {"kind": "PersistentVolumeClaim", "namespace": ns, "name": name,
                         "uid": pvc["metadata"]["uid"], "apiVersion": "v1"},
            "csi": {"driver": provisioner, "volumeHandle": volume_handle, "fsType": "ext4"
                    if provisioner.startswith("ebs") else ""},
        }
        if node_affinity:
            pv_spec["nodeAffinity"] = node_affinity
        if self.store.get(pv_t, None, pv_name) is None:
            self.store.create(pv_t, None, {"metadata": {"name": pv_name, "annotations": {
                "pv.kubernetes.io/provisioned-by": provisioner}, "finalizers": ["kubernetes.io/pv-protection"]},
                "spec": pv_spec})
        self.store.mutate(pv_t, None, pv_name, lambda o: o.__setitem__("status", {"phase": "Bound"}))

        def bind(o: Obj) -> None:
            o["spec"]["volumeName"] = pv_name
            o["metadata"].setdefault("annotations", {}).update({"pv.kubernetes.io/bind-completed": "yes",
                                                                "pv.kubernetes.io/bound-by-controller": "yes"})
            o["metadata"]["finalizers"] = ["kubernetes.io/pvc-protection"]
            o["status"] = {"phase": "Bound", "accessModes": modes, "capacity": {"storage": size}}
        self.store.mutate(pvc_t, ns, name, bind)
        self.events.emit(pvc, "Normal", "ProvisioningSucceeded", f"Successfully provisioned volume {pv_name}",
                         provisioner)
        self.kick("sched")

    def efs_controller_ready(self) -> bool:
        dep = self.store.get(self.t("apps", "deployments"), "kube-system", "efs-csi-controller")
        return bool(dep and int((dep.get("status") or {}).get("readyReplicas", 0)) > 0)

    def on_pvc(self, pvc: Obj, kind: str) -> None:
        meta = pvc["metadata"]
        if kind != "DELETED" and meta.get("deletionTimestamp"):
            # pvc-protection: released once no pod uses the claim
            if not self.claim_in_use(meta["namespace"], meta["name"]):
                self.store.mutate(self.t("", "persistentvolumeclaims"), meta["namespace"], meta["name"],
                                  lambda o: o["metadata"].__setitem__("finalizers", []))
            return
        if kind == "DELETED":
            pv_name = (pvc.get("spec") or {}).get("volumeName")
            if pv_name:
                self.spawn(f"release/{pv_name}", self.release_volume(pv_name))
        self.kick("pvc")

    def claim_in_use(self, ns: str, name: str) -> bool:
        for pod in self.store.list(self.t("", "pods"), ns):
            if pod_active(pod) or (pod.get("spec") or {}).get("nodeName"):
                for v in (pod.get("spec") or {}).get("volumes") or []:
                    if (v.get("persistentVolumeClaim") or {}).get("claimName") == name:
                        return True
        return False

    async def release_volume(self, pv_name: str) -> None:
        pv_t = self.t("", "persistentvolumes")
        pv = self.store.get(pv_t, None, pv_name)
        if pv is None:
            return
        if (pv.get("spec") or {}).get("persistentVolumeReclaimPolicy", "Delete") != "Delete":
            self.store.mutate(pv_t, None, pv_name, lambda o: o.__setitem__("status", {"phase": "Released"}))
            return
        handle = ((pv.get("spec") or {}).get("csi") or {}).get("volumeHandle", "")
        await self.clock.sleep(10)
        if "::fsap-" in handle:
            await self.bridge.delete_access_point(handle.split("::", 1)[1])
        elif handle.startswith("vol-"):
            await self.bridge.delete_volume(handle)
        pv = self.store.get(pv_t, None, pv_name)
        if pv is not None:
            self.store.remove(pv_t, pv)
