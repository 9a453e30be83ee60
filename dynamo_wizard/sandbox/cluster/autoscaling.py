"""The scheduler and EKS Auto Mode's compute (Karpenter): pending pods get a NodeClaim from a NodePool that
fits, the NodeClaim launches an EC2 instance (in the sandbox's moto), registers a Node named after the
instance, and the pod is bound to it. Empty nodes are consolidated; deleted NodeClaims drain and terminate."""

from __future__ import annotations

import asyncio
import json
import random
import string
import time
from dataclasses import dataclass, field
from typing import Any

from ..kube.selectors import Requirement, labels_match, selector_from_label_selector
from ..kube.store import Obj, now_iso
from .base import SimBase
from .bridge import LaunchError
from .capacity import Res, Shape, node_allocatable, pod_requests, quantity_mem, shapes
from .workloads import owner_ref, pod_active, set_condition

AUTO = "eks-auto-mode/compute"
ZONE = "topology.kubernetes.io/zone"
HOST = "kubernetes.io/hostname"
CAP = "karpenter.sh/capacity-type"
ITYPE = "node.kubernetes.io/instance-type"
FAMILY = "eks.amazonaws.com/instance-family"
CATEGORY = "eks.amazonaws.com/instance-category"
GENERATION = "eks.amazonaws.com/instance-generation"


@dataclass
class Claim:
    """A NodeClaim the sandbox is launching, with the pods nominated to it."""

    name: str
    pool: str
    shape: Shape
    zone: str
    capacity_type: str
    reservation_id: str | None
    pods: list[str] = field(default_factory=list)  # pod uids
    used: Res = field(default_factory=Res)
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict[str, Any]] = field(default_factory=list)


def _claim_suffix() -> str:
    return "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(5))


def _req_matches(req: dict[str, Any], value: str | None) -> bool:
    op = req.get("operator", "In")
    values = [str(v) for v in req.get("values") or []]
    if op == "In":
        return value is not None and value in values
    if op == "NotIn":
        return value is None or value not in values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt"):
        try:
            v, bound = int(value or ""), int(values[0])
        except (ValueError, IndexError):
            return False
        return v > bound if op == "Gt" else v < bound
    return False


class AutoscalingMixin(SimBase):
    # -------------------------------------------------------------------------------------- predicates

    @staticmethod
    def tolerates(tolerations: list[dict[str, Any]], taints: list[dict[str, Any]]) -> bool:
        for taint in taints:
            if taint.get("effect") not in ("NoSchedule", "NoExecute"):
                continue
            ok = False
            for t in tolerations:
                if t.get("effect") and t.get("effect") != taint.get("effect"):
                    continue
                if t.get("operator") == "Exists" and (not t.get("key") or t.get("key") == taint.get("key")):
                    ok = True
                    break
                if t.get("key") == taint.get("key") and str(t.get("value", "")) == str(taint.get("value", "")):
                    ok = True
                    break
            if not ok:
                return False
        return True

    @staticmethod
    def node_selector_terms(pod: Obj) -> list[list[dict[str, Any]]]:
        """The pod's node constraints as a list of alternative requirement lists (nodeSelector ANDed in)."""
        spec = pod.get("spec") or {}
        base = [{"key": k, "operator": "In", "values": [str(v)]} for k, v in (spec.get("nodeSelector") or {}).items()]
        na = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution") or {}
        terms = [list(t.get("matchExpressions") or []) for t in na.get("nodeSelectorTerms") or []]
        if not terms:
            return [base]
        return [base + t for t in terms]

    def node_usable(self, node: Obj, ignore_ready: bool = False) -> bool:
        if node["metadata"].get("deletionTimestamp") or (node.get("spec") or {}).get("unschedulable"):
            return False
        if ignore_ready:
            return True
        return any(c.get("type") == "Ready" and c.get("status") == "True"
                   for c in (node.get("status") or {}).get("conditions") or [])

    def pods_on(self, node_name: str) -> list[Obj]:
        return [p for p in self.store.list(self.t("", "pods"))
                if (p.get("spec") or {}).get("nodeName") == node_name and pod_active(p)]

    def _affinity_terms(self, pod: Obj, kind: str) -> list[dict[str, Any]]:
        aff = ((pod.get("spec") or {}).get("affinity") or {}).get(kind) or {}
        return list(aff.get("requiredDuringSchedulingIgnoredDuringExecution") or [])

    def _placed_pods(self) -> list[tuple[Obj, dict[str, str]]]:
        """Every pod with a place (a node, or a nominated NodeClaim) and that place's topology labels."""
        out: list[tuple[Obj, dict[str, str]]] = []
        nodes = {n["metadata"]["name"]: n for n in self.store.list(self.t("", "nodes"))}
        by_uid = {c_uid: claim for claim in self.claims.values() for c_uid in claim.pods}
        for p in self.store.list(self.t("", "pods")):
            if not pod_active(p):
                continue
            node = nodes.get((p.get("spec") or {}).get("nodeName") or "")
            if node is not None:
                out.append((p, node["metadata"].get("labels") or {}))
            elif p["metadata"]["uid"] in by_uid:
                claim = by_uid[p["metadata"]["uid"]]
                out.append((p, {ZONE: claim.zone, HOST: f"nodeclaim/{claim.name}"}))
        return out

    def affinity_ok(self, pod: Obj, topo: dict[str, str],
                    placed: list[tuple[Obj, dict[str, str]]]) -> tuple[bool, str]:
        ns = pod["metadata"]["namespace"]
        for term in self._affinity_terms(pod, "podAffinity"):
            reqs = selector_from_label_selector(term.get("labelSelector"))
            key = term.get("topologyKey", HOST)
            namespaces = term.get("namespaces") or [ns]
            peers = [t for p, t in placed if p["metadata"]["namespace"] in namespaces
                     and p["metadata"]["uid"] != pod["metadata"]["uid"]
                     and labels_match(reqs, p["metadata"].get("labels"))]
            if not peers:
                if labels_match(reqs, pod["metadata"].get("labels")):
                    continue  # the first pod of a group may start it
                return False, "didn't match pod affinity rules"
            if topo.get(key) not in {t.get(key) for t in peers}:
                return False, "didn't match pod affinity rules"
        for term in self._affinity_terms(pod, "podAntiAffinity"):
            reqs = selector_from_label_selector(term.get("labelSelector"))
            key = term.get("topologyKey", HOST)
            namespaces = term.get("namespaces") or [ns]
            for p, t in placed:
                if p["metadata"]["uid"] == pod["metadata"]["uid"] or p["metadata"]["namespace"] not in namespaces:
                    continue
                if labels_match(reqs, p["metadata"].get("labels")) and t.get(key) == topo.get(key):
                    return False, "didn't match pod anti-affinity rules"
        return True, ""

    def fits_node(self, pod: Obj, node: Obj, placed: list[tuple[Obj, dict[str, str]]]) -> str | None:
        """None when the pod can run on the node, else the scheduler's reason."""
        labels = node["metadata"].get("labels") or {}
        spec = pod.get("spec") or {}
        if not self.tolerates(spec.get("tolerations") or [], (node.get("spec") or {}).get("taints") or []):
            taints = (node.get("spec") or {}).get("taints") or []
            return "had untolerated taint {" + ", ".join(
                f"{t['key']}: {t.get('value', '')}" for t in taints) + "}"
        terms = self.node_selector_terms(pod)
        if not any(all(self._expr_ok(e, labels, node) for e in term) for term in terms):
            return "didn't match Pod's node affinity/selector"
        ok, why = self.affinity_ok(pod, labels, placed)
        if not ok:
            return why
        used = Res()
        for p in self.pods_on(node["metadata"]["name"]):
            used = used + pod_requests(p)
        need = pod_requests(pod)
        alloc = node_allocatable(node)
        total = used + need
        if not total.fits_in(alloc):
            missing = [name for name, a, b in (("cpu", total.cpu, alloc.cpu), ("memory", total.mem, alloc.mem),
                                               ("nvidia.com/gpu", total.gpu, alloc.gpu),
                                               ("vpc.amazonaws.com/efa", total.efa, alloc.efa)) if a > b]
            return f"Insufficient {missing[0]}" if missing else "Too many pods"
        zone_needed = self.volume_zone(pod)
        if zone_needed and labels.get(ZONE) != zone_needed:
            return "had volume node affinity conflict"
        return None

    @staticmethod
    def _expr_ok(e: dict[str, Any], labels: dict[str, str], node: Obj) -> bool:
        if e.get("key") == "metadata.name":
            return _req_matches(e, node["metadata"]["name"])
        return _req_matches(e, labels.get(e.get("key", "")))

    def volume_zone(self, pod: Obj) -> str | None:
        pvc_t, pv_t = self.t("", "persistentvolumeclaims"), self.t("", "persistentvolumes")
        for v in (pod.get("spec") or {}).get("volumes") or []:
            claim = (v.get("persistentVolumeClaim") or {}).get("claimName")
            if not claim:
                continue
            pvc = self.store.get(pvc_t, pod["metadata"]["namespace"], claim)
            pv_name = ((pvc or {}).get("spec") or {}).get("volumeName")
            pv = self.store.get(pv_t, None, pv_name) if pv_name else None
            for term in (((pv or {}).get("spec") or {}).get("nodeAffinity") or {}).get("required", {}).get(
                    "nodeSelectorTerms", []):
                for e in term.get("matchExpressions") or []:
                    if e.get("key") == ZONE and e.get("values"):
                        return str(e["values"][0])
        return None

    def unbound_immediate_claims(self, pod: Obj) -> list[str]:
        pvc_t, sc_t = self.t("", "persistentvolumeclaims"), self.t("storage.k8s.io", "storageclasses")
        out = []
        for v in (pod.get("spec") or {}).get("volumes") or []:
            claim = (v.get("persistentVolumeClaim") or {}).get("claimName")
            if not claim:
                continue
            pvc = self.store.get(pvc_t, pod["metadata"]["namespace"], claim)
            if pvc is None:
                out.append(f'persistentvolumeclaim "{claim}" not found')
                continue
            if (pvc.get("status") or {}).get("phase") == "Bound":
                continue
            sc_name = (pvc.get("spec") or {}).get("storageClassName")
            sc = self.store.get(sc_t, None, sc_name) if sc_name else None
            if sc is None or sc.get("volumeBindingMode") != "WaitForFirstConsumer":
                out.append("pod has unbound immediate PersistentVolumeClaims")
        return out

    # -------------------------------------------------------------------------------------- scheduling loop

    async def scheduler(self) -> None:
        while not self.stopped:
            await self.wait_kick("sched", max(0.2, self.clock.scaled(20)))
            try:
                await self.schedule_pending()
            except Exception:
                self.log.exception("scheduler")

    async def schedule_pending(self) -> None:
        pod_t, node_t = self.t("", "pods"), self.t("", "nodes")
        pending = [p for p in self.store.list(pod_t)
                   if not (p.get("spec") or {}).get("nodeName") and pod_active(p)
                   and (p.get("spec") or {}).get("schedulerName", "default-scheduler") == "default-scheduler"]
        pending.sort(key=lambda p: p["metadata"]["creationTimestamp"])
        live_uids = {p["metadata"]["uid"] for p in pending}
        for claim in self.claims.values():
            claim.pods = [u for u in claim.pods if u in live_uids]
        for pod in pending:
            nodes = [n for n in self.store.list(node_t) if self.node_usable(n)]
            placed = self._placed_pods()
            volume_problems = self.unbound_immediate_claims(pod)
            if volume_problems:
                self.unschedulable(pod, f"0/{len(nodes)} nodes are available: {volume_problems[0]}. preemption: "
                                        f"0/{len(nodes)} nodes are available: {len(nodes)} Preemption is not helpful "
                                        "for scheduling.")
                continue
            reasons: dict[str, int] = {}
            chosen = None
            for node in nodes:
                why = self.fits_node(pod, node, placed)
                if why is None:
                    chosen = node
                    break
                reasons[why] = reasons.get(why, 0) + 1
            if chosen is not None:
                self.bind_pod(pod, chosen)
                continue
            if len(nodes) == 0:
                msg = "no nodes available to schedule pods"
            else:
                detail = ", ".join(f"{n} {r}" if r.startswith("Insufficient") else f"{n} node(s) {r}"
                                   for r, n in sorted(reasons.items()))
                msg = (f"0/{len(nodes)} nodes are available: {detail}. preemption: 0/{len(nodes)} nodes are "
                       f"available: {len(nodes)} No preemption victims found for incoming pod.")
            self.unschedulable(pod, msg)
            await self.provision_for(pod)

    def unschedulable(self, pod: Obj, message: str) -> None:
        self.throttled_event(pod, "Warning", "FailedScheduling", message, "default-scheduler", every_real=60)
        conds = (pod.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "PodScheduled" and c.get("message") == message for c in conds):
            return

        def mark(o: Obj) -> None:
            st = o.setdefault("status", {})
            st["conditions"] = set_condition(st.get("conditions") or [], "PodScheduled", "False", "Unschedulable",
                                             message, lastProbeTime=None)
        self.store.mutate(self.t("", "pods"), pod["metadata"]["namespace"], pod["metadata"]["name"], mark)

    def bind_pod(self, pod: Obj, node: Obj, announce: bool = True) -> None:
        pod_t = self.t("", "pods")
        node_name = node["metadata"]["name"]
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        for claim in self.claims.values():
            if pod["metadata"]["uid"] in claim.pods:
                claim.pods.remove(pod["metadata"]["uid"])

        def bind(o: Obj) -> None:
            o["spec"]["nodeName"] = node_name
            st = o.setdefault("status", {})
            st["conditions"] = set_condition(st.get("conditions") or [], "PodScheduled", "True", "", "",
                                             lastProbeTime=None)
        self.store.mutate(pod_t, ns, name, bind)
        if announce:
            self.events.emit(pod, "Normal", "Scheduled", f"Successfully assigned {ns}/{name} to {node_name}",
                             "default-scheduler")
        self.kick("pvc")
        self.start_pod(ns, name)

    # -------------------------------------------------------------------------------------- provisioning

    def _pool_requirements(self, pool: Obj) -> list[dict[str, Any]]:
        return list(((pool.get("spec") or {}).get("template") or {}).get("spec", {}).get("requirements") or [])

    def _pool_taints(self, pool: Obj) -> list[dict[str, Any]]:
        return list(((pool.get("spec") or {}).get("template") or {}).get("spec", {}).get("taints") or [])

    def _nodeclass_of(self, pool: Obj) -> Obj | None:
        ref = ((pool.get("spec") or {}).get("template") or {}).get("spec", {}).get("nodeClassRef") or {}
        return self.store.get(self.t("eks.amazonaws.com", "nodeclasses"), None, ref.get("name", "default"))

    @staticmethod
    def shape_labels(s: Shape) -> dict[str, str]:
        labels = {ITYPE: s.name, FAMILY: s.family, CATEGORY: s.category, GENERATION: str(s.generation),
                  "kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux",
                  "eks.amazonaws.com/instance-cpu": str(s.vcpus),
                  "eks.amazonaws.com/instance-memory": str(s.memory_mib)}
        if s.gpus:
            labels.update({"eks.amazonaws.com/instance-gpu-count": str(s.gpus),
                           "eks.amazonaws.com/instance-gpu-manufacturer": "nvidia",
                           "eks.amazonaws.com/instance-gpu-name": s.gpu_model.replace("NVIDIA ", "").lower()
                           .replace(" ", "-"),
                           "eks.amazonaws.com/instance-gpu-memory": str(s.gpu_memory_mib)})
        return labels

    async def plan_claim(self, pod: Obj, pool: Obj) -> tuple[Claim | None, str]:
        """A NodeClaim for `pod` from `pool`, or the reason the pool cannot take it (Karpenter's wording)."""
        pool_name = pool["metadata"]["name"]
        spec = pod.get("spec") or {}
        taints = self._pool_taints(pool)
        if not self.tolerates(spec.get("tolerations") or [], taints):
            t = next(t for t in taints if not self.tolerates(spec.get("tolerations") or [], [t]))
            taint = {"key": t["key"], **({"value": str(t["value"])} if t.get("value") else {}),
                     "effect": t["effect"]}
            return None, (f'incompatible with nodepool "{pool_name}", did not tolerate taint '
                          f"{json.dumps(taint, separators=(',', ':'))}")
        nodeclass = self._nodeclass_of(pool)
        if nodeclass is None:
            return None, f'incompatible with nodepool "{pool_name}", nodeclass does not exist'
        reqs = self._pool_requirements(pool)
        need = pod_requests(pod)
        pod_terms = self.node_selector_terms(pod)
        placed = self._placed_pods()
        candidates: list[Shape] = []
        for s in sorted(shapes().values(), key=lambda s: (s.gpus, s.vcpus, s.memory_mib)):
            labels = self.shape_labels(s)
            if not all(_req_matches(r, labels.get(r["key"])) for r in reqs
                       if r["key"] in labels and r["key"] not in (CAP, ZONE)):
                continue
            if not any(all(_req_matches(e, labels.get(e["key"])) for e in term
                           if e["key"] in labels) for term in pod_terms):
                continue
            if not need.fits_in(s.allocatable()):
                continue
            candidates.append(s)
        req_desc = ", ".join(f"{r['key']} {r.get('operator', 'In')} [{' '.join(map(str, r.get('values') or []))}]"
                             for r in reqs)
        if not candidates:
            return None, (f'incompatible with nodepool "{pool_name}", no instance type satisfied resources '
                          f"{need.describe()} and requirements {req_desc} (no instance type met the scheduling "
                          "requirements or had enough resources)")
        # capacity types allowed by the pool and the pod
        pool_caps: list[str] = next((list(r.get("values") or []) for r in reqs
                                     if r["key"] == CAP and r.get("operator", "In") == "In"), ["on-demand"])
        pod_caps: set[str] | None = None
        for term in pod_terms:
            for e in term:
                if e["key"] == CAP and e.get("operator", "In") == "In":
                    pod_caps = set(e.get("values") or [])
        caps = [c for c in pool_caps if pod_caps is None or c in pod_caps]
        if not caps:
            return None, (f'incompatible with nodepool "{pool_name}", incompatible requirements, key {CAP}, '
                          f"{CAP} In {sorted(pod_caps or [])} not in {CAP} In {pool_caps}")
        reservations = [r for r in (nodeclass.get("status") or {}).get("capacityReservations") or []
                        if r.get("state", "active") == "active"]
        zones_allowed = set(self.info.zones) if self.info.zones else None
        for term in pod_terms:
            for e in term:
                if e["key"] == ZONE and e.get("operator", "In") == "In":
                    zones_allowed = set(e.get("values") or []) & (zones_allowed or set(e.get("values") or []))
        for r in reqs:
            if r["key"] == ZONE and r.get("operator", "In") == "In":
                zones_allowed = set(r.get("values") or []) & (zones_allowed or set(r.get("values") or []))
        for s in candidates:
            offered = await self.bridge.offered_zones(s.name)
            zones = sorted(z for z in offered if zones_allowed is None or z in zones_allowed)
            options: list[tuple[str, str, str | None]] = []
            if "reserved" in caps:
                for r in reservations:
                    if r.get("instanceType") == s.name and r.get("availabilityZone") in zones and \
                            int(r.get("availableInstanceCount", 1)) > self.reserved_in_use(r.get("id", "")):
                        options.append((r["availabilityZone"], "reserved", r.get("id")))
            for cap in ("spot", "on-demand"):
                if cap in caps:
                    options.extend((z, cap, None) for z in zones)
            for zone, cap, rid in options:
                if self.offering_unavailable.get((s.name, zone, cap), 0) > time.monotonic():
                    continue
                topo = {ZONE: zone, HOST: "nodeclaim/new"}
                ok, why = self.affinity_ok(pod, topo, placed)
                if not ok:
                    continue
                labels = {**self.shape_labels(s), ZONE: zone, CAP: cap, "karpenter.sh/nodepool": pool_name,
                          "eks.amazonaws.com/nodeclass": nodeclass["metadata"]["name"],
                          "topology.kubernetes.io/region": self.info.region, "eks.amazonaws.com/compute-type": "auto"}
                labels.update(((pool.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {})
                return Claim(name=f"{pool_name}-{_claim_suffix()}", pool=pool_name, shape=s, zone=zone,
                             capacity_type=cap, reservation_id=rid, labels=labels, taints=taints), ""
        return None, (f'incompatible with nodepool "{pool_name}", no instance type met the scheduling requirements '
                      f"or had enough resources (zones {sorted(zones_allowed or [])}, capacity types {caps})")

    def reserved_in_use(self, reservation_id: str) -> int:
        n = sum(1 for c in self.claims.values() if c.reservation_id == reservation_id)
        for nc in self.store.list(self.t("karpenter.sh", "nodeclaims")):
            if (nc["metadata"].get("annotations") or {}).get("sandbox.dynamo-wizard.io/reservation") == \
                    reservation_id and nc["metadata"]["name"] not in self.claims:
                n += 1
        return n

    async def provision_for(self, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        if any(uid in c.pods for c in self.claims.values()):
            return
        placed = self._placed_pods()
        need = pod_requests(pod)
        # an in-flight claim with room
        for claim in self.claims.values():
            total = claim.used + need
            topo = {ZONE: claim.zone, HOST: f"nodeclaim/{claim.name}"}
            if not total.fits_in(claim.shape.allocatable()):
                continue
            fake_node = {"metadata": {"name": claim.name, "labels": claim.labels}, "spec": {"taints": claim.taints}}
            if not self.tolerates((pod.get("spec") or {}).get("tolerations") or [], claim.taints):
                continue
            if not any(all(self._expr_ok(e, claim.labels, fake_node) for e in term)
                       for term in self.node_selector_terms(pod)):
                continue
            if not self.affinity_ok(pod, topo, placed)[0]:
                continue
            claim.pods.append(uid)
            claim.used = total
            self.events.emit(pod, "Normal", "Nominated", f"Pod should schedule on: nodeclaim/{claim.name}", AUTO)
            return
        if self.faults.pending and self.is_gpu_pod(pod):
            await self.pending_fault(pod)
            return
        pools = [p for p in self.store.list(self.t("karpenter.sh", "nodepools"))
                 if not p["metadata"].get("deletionTimestamp")]
        pools.sort(key=lambda p: -int((p.get("spec") or {}).get("weight", 0) or 0))
        reasons: list[str] = []
        for pool in pools:
            planned, why = await self.plan_claim(pod, pool)
            if planned is None:
                reasons.append(why)
                continue
            planned.pods.append(uid)
            planned.used = need
            self.claims[planned.name] = planned
            self.create_nodeclaim(planned, pool)
            self.events.emit(pod, "Normal", "Nominated", f"Pod should schedule on: nodeclaim/{planned.name}", AUTO)
            return
        if reasons:
            self.throttled_event(pod, "Warning", "FailedScheduling", "Failed to schedule pod, " + "; ".join(reasons),
                                 AUTO, every_real=120)

    def is_gpu_pod(self, pod: Obj) -> bool:
        return pod_requests(pod).gpu > 0

    async def pending_fault(self, pod: Obj) -> None:
        reason = self.faults.pending or "insufficient capacity"
        sel = (pod.get("spec") or {}).get("nodeSelector") or {}
        itype = sel.get(ITYPE, "the requested instance type")
        zone = self.info.zones[0] if self.info.zones else f"{self.info.region}a"
        if "capacity" in reason.lower():
            message = (f"Failed to schedule pod, creating instance, insufficient capacity, with fleet error(s), "
                       f"InsufficientInstanceCapacity: We currently do not have sufficient {itype} capacity in the "
                       f"Availability Zone you requested ({zone}). Our system will be working on provisioning "
                       f"additional capacity. You can currently get {itype} capacity by not specifying an "
                       "Availability Zone in your request or choosing a different Availability Zone.")
        else:
            message = f"Failed to schedule pod, {reason}"
        self.throttled_event(pod, "Warning", "FailedScheduling", message, AUTO, every_real=180)

    def create_nodeclaim(self, claim: Claim, pool: Obj) -> None:
        nc_t = self.t("karpenter.sh", "nodeclaims")
        tmpl_spec = ((pool.get("spec") or {}).get("template") or {}).get("spec") or {}
        reqs = [r for r in self._pool_requirements(pool) if r["key"] not in (ITYPE, ZONE, CAP)]
        reqs += [{"key": ITYPE, "operator": "In", "values": [claim.shape.name]},
                 {"key": ZONE, "operator": "In", "values": [claim.zone]},
                 {"key": CAP, "operator": "In", "values": [claim.capacity_type]},
                 {"key": "karpenter.sh/nodepool", "operator": "In", "values": [claim.pool]}]
        annotations = {"karpenter.sh/nodepool-hash": "1234567890", "karpenter.sh/nodepool-hash-version": "v3",
                       "compatibility.karpenter.sh/v1beta1-nodeclass-reference": "{\"name\":\"default\"}"}
        if claim.reservation_id:
            annotations["sandbox.dynamo-wizard.io/reservation"] = claim.reservation_id
        unknown = {"status": "Unknown", "reason": "AwaitingReconciliation",
                   "message": "object is awaiting reconciliation", "lastTransitionTime": now_iso()}
        self.store.create(nc_t, None, {
            "metadata": {"name": claim.name, "labels": {"karpenter.sh/nodepool": claim.pool, **{
                k: v for k, v in claim.labels.items() if k in (ITYPE, ZONE, CAP, FAMILY)}},
                "annotations": annotations, "finalizers": ["karpenter.sh/termination"],
                "ownerReferences": [owner_ref(pool, controller=False)]},
            "spec": {"nodeClassRef": tmpl_spec.get("nodeClassRef") or {"group": "eks.amazonaws.com",
                                                                         "kind": "NodeClass", "name": "default"},
                     "requirements": reqs, "taints": claim.taints,
                     "expireAfter": tmpl_spec.get("expireAfter", "336h"),
                     "terminationGracePeriod": tmpl_spec.get("terminationGracePeriod", "24h0m0s"),
                     "resources": {"requests": {"cpu": f"{int(claim.used.cpu * 1000)}m",
                                                "memory": f"{claim.used.mem}Mi", "pods": str(claim.used.pods),
                                                **({"nvidia.com/gpu": str(claim.used.gpu)} if claim.used.gpu
                                                   else {})}}},
            "status": {"conditions": [
                {"type": t, **unknown} for t in ("Launched", "Registered", "Initialized")] + [
                {"type": "Ready", "status": "Unknown", "reason": "ReconcilingDependents",
                 "message": "Initialized=Unknown, Launched=Unknown, Registered=Unknown",
                 "lastTransitionTime": now_iso()}]},
        })
        self.spawn(f"nodeclaim/{claim.name}", self.run_nodeclaim(claim))

    def _claim_condition(self, name: str, ctype: str) -> None:
        nc_t = self.t("karpenter.sh", "nodeclaims")

        def upd(o: Obj) -> None:
            st = o.setdefault("status", {})
            conds = set_condition(st.get("conditions") or [], ctype, "True", ctype, "")
            done = {c["type"] for c in conds if c.get("status") == "True"}
            missing = [t for t in ("Initialized", "Launched", "Registered") if t not in done]
            conds = set_condition(conds, "Ready", "True" if not missing else "Unknown",
                                  "Ready" if not missing else "ReconcilingDependents",
                                  ", ".join(f"{t}=Unknown" for t in missing))
            st["conditions"] = conds
        nc = self.store.mutate(nc_t, None, name, upd)
        if nc is not None:
            self.events.emit(nc, "Normal", ctype, f"Status condition transitioned, Type: {ctype}, Status: Unknown "
                             f"-> True, Reason: {ctype}", "karpenter")

    async def run_nodeclaim(self, claim: Claim) -> None:
        nc_t, node_t = self.t("karpenter.sh", "nodeclaims"), self.t("", "nodes")
        s = claim.shape
        boot = self.clock.real("gpu_node_large" if s.large else "gpu_node" if s.gpus else "cpu_node")
        subnet = self.info.subnet_in(claim.zone)
        try:
            instance_id = await self.bridge.launch_instance(
                instance_type=s.name, zone=claim.zone, subnet_id=subnet.id if subnet else "",
                security_group_ids=[self.info.cluster_security_group] if self.info.cluster_security_group else [],
                tags={"eks:eks-cluster-name": self.info.name, "eks:kubernetes-node-pool-name": claim.pool,
                      "karpenter.sh/nodepool": claim.pool, "karpenter.sh/nodeclaim": claim.name,
                      "eks:kubernetes-node-class-name": "default", "Name": f"{self.info.name}-{claim.pool}"},
                capacity_type=claim.capacity_type, reservation_id=claim.reservation_id)
        except LaunchError as err:
            nc = self.store.get(nc_t, None, claim.name)
            if nc is not None:
                self.events.emit(nc, "Warning", "InsufficientCapacityError" if "Capacity" in err.code else
                                 "LaunchFailed", f"NodeClaim {claim.name} event: creating instance, {err}", "karpenter")
                self.store.delete(nc_t, None, claim.name)
            self.offering_unavailable[(s.name, claim.zone, claim.capacity_type)] = \
                time.monotonic() + self.clock.duration("capacity_retry")
            self.claims.pop(claim.name, None)
            self.kick("sched")
            return
        provider_id = f"aws:///{claim.zone}/{instance_id}"
        alloc = s.allocatable()
        capacity = {"cpu": str(s.vcpus), "memory": quantity_mem(s.memory_mib), "pods": str(alloc.pods),
                    "ephemeral-storage": "81854Mi"}
        allocatable = {"cpu": f"{int(alloc.cpu * 1000)}m", "memory": quantity_mem(alloc.mem), "pods": str(alloc.pods),
                       "ephemeral-storage": "76224326324"}
        if s.gpus:
            capacity["nvidia.com/gpu"] = allocatable["nvidia.com/gpu"] = str(s.gpus)
        if s.efa:
            capacity["vpc.amazonaws.com/efa"] = allocatable["vpc.amazonaws.com/efa"] = str(s.efa)

        def launched(o: Obj) -> None:
            st = o.setdefault("status", {})
            st.update({"providerID": provider_id, "imageID": "ami-0a1b2c3d4e5f60718", "capacity": capacity,
                       "allocatable": allocatable})
        if self.store.mutate(nc_t, None, claim.name, launched) is None:
            await self.bridge.terminate_instances([instance_id])
            self.claims.pop(claim.name, None)
            return
        self._claim_condition(claim.name, "Launched")
        await self.clock.sleep(boot * 0.55)
        if self.store.get(nc_t, None, claim.name) is None:
            return
        ip = self.node_ip(claim.zone)
        labels = {**claim.labels, HOST: instance_id, "karpenter.sh/registered": "true",
                  "topology.k8s.aws/zone-id": self.zone_id(claim.zone), "node.kubernetes.io/instance-type": s.name,
                  "failure-domain.beta.kubernetes.io/zone": claim.zone, "beta.kubernetes.io/instance-type": s.name}
        node_obj = {
            "metadata": {"name": instance_id, "labels": labels,
                         "annotations": {"alpha.kubernetes.io/provided-node-ip": ip,
                                         "karpenter.sh/nodepool-hash": "1234567890"},
                         "ownerReferences": [{"apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
                                              "name": claim.name, "uid": self.store.require(
                                                  nc_t, None, claim.name)["metadata"]["uid"],
                                              "blockOwnerDeletion": True}]},
            "spec": {"providerID": provider_id, "taints": [
                *claim.taints, {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]},
            "status": {"capacity": capacity, "allocatable": allocatable,
                       "addresses": [{"type": "InternalIP", "address": ip},
                                     {"type": "Hostname", "address": f"ip-{ip.replace('.', '-')}.ec2.internal"}],
                       "nodeInfo": {"kubeletVersion": f"v{self.info.version}.2-eks-b3126f4",
                                    "kubeProxyVersion": "", "containerRuntimeVersion": "containerd://2.1.4+bottlerocket",
                                    "osImage": "Bottlerocket (EKS Auto, Nvidia) 2026.11.2 (aws-k8s-"
                                               f"{self.info.version}-nvidia)" if s.gpus else
                                               f"Bottlerocket (EKS Auto) 2026.11.2 (aws-k8s-{self.info.version})",
                                    "operatingSystem": "linux", "architecture": "amd64",
                                    "kernelVersion": "6.12.46", "machineID": instance_id[2:].ljust(32, "0"),
                                    "systemUUID": "ec2" + instance_id[2:].ljust(29, "0"),
                                    "bootID": instance_id[2:].rjust(32, "1")},
                       "conditions": [{"type": "Ready", "status": "False", "reason": "KubeletNotReady",
                                       "message": "container runtime network not ready",
                                       "lastHeartbeatTime": now_iso(), "lastTransitionTime": now_iso()}]},
        }
        self.store.create(node_t, None, node_obj)
        self.store.mutate(nc_t, None, claim.name, lambda o: o["status"].__setitem__("nodeName", instance_id))
        self._claim_condition(claim.name, "Registered")
        await self.clock.sleep(boot * 0.45)

        def ready(o: Obj) -> None:
            o["spec"]["taints"] = [t for t in o["spec"].get("taints") or []
                                   if t["key"] != "node.kubernetes.io/not-ready"]
            o["metadata"]["labels"]["karpenter.sh/initialized"] = "true"
            o["status"]["conditions"] = [
                {"type": t, "status": "False", "reason": r, "message": m, "lastHeartbeatTime": now_iso(),
                 "lastTransitionTime": now_iso()} for t, r, m in (
                    ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                    ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                    ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"))] + [
                {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready "
                 "status", "lastHeartbeatTime": now_iso(), "lastTransitionTime": now_iso()}]
        node = self.store.mutate(node_t, None, instance_id, ready)
        if node is None:
            return
        self.events.emit(node, "Normal", "NodeReady", f"Node {instance_id} status is now: NodeReady", "kubelet",
                         host=instance_id)
        self._claim_condition(claim.name, "Initialized")
        self.claims.pop(claim.name, None)
        self.node_empty_since.pop(instance_id, None)
        for ds in self.store.list(self.t("apps", "daemonsets")):
            self.enqueue(("apps", "daemonsets"), ds["metadata"]["namespace"], ds["metadata"]["name"])
        self.kick("sched")

    def node_ip(self, zone: str) -> str:
        subnet = self.info.subnet_in(zone)
        base = subnet.cidr.split("/")[0].split(".") if subnet else ["192", "168", "96", "0"]
        self.ip_counter += 1
        n = self.ip_counter + 10
        return f"{base[0]}.{base[1]}.{int(base[2]) + n // 250}.{n % 250 + 4}"

    def zone_id(self, zone: str) -> str:
        subnet = next((s for s in self.info.subnets if s.zone == zone), None)
        return subnet.zone_id if subnet else zone

    # -------------------------------------------------------------------------------------- disruption

    def on_nodeclaim(self, nc: Obj, kind: str) -> None:
        name = nc["metadata"]["name"]
        if kind != "DELETED" and nc["metadata"].get("deletionTimestamp"):
            self.spawn(f"nodeclaim-terminate/{name}", self.terminate_nodeclaim(name))
        if kind == "DELETED":
            self.claims.pop(name, None)
            task = self.tasks.get(f"nodeclaim/{name}")
            if task is not None:
                task.cancel()

    async def terminate_nodeclaim(self, name: str) -> None:
        nc_t, node_t, pod_t = self.t("karpenter.sh", "nodeclaims"), self.t("", "nodes"), self.t("", "pods")
        nc = self.store.get(nc_t, None, name)
        if nc is None:
            return
        task = self.tasks.get(f"nodeclaim/{name}")
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        self.claims.pop(name, None)
        node_name = (nc.get("status") or {}).get("nodeName")
        node = self.store.get(node_t, None, node_name) if node_name else None
        if node is not None and node_name:
            def cordon(o: Obj) -> None:
                o["spec"]["unschedulable"] = True
                taints = o["spec"].setdefault("taints", [])
                if not any(t["key"] == "karpenter.sh/disrupted" for t in taints):
                    taints.append({"key": "karpenter.sh/disrupted", "effect": "NoSchedule"})
            self.store.mutate(node_t, None, node_name, cordon)
            for pod in self.pods_on(node_name):
                try:
                    self.store.delete(pod_t, pod["metadata"]["namespace"], pod["metadata"]["name"])
                except Exception:
                    pass
            deadline = time.monotonic() + max(1.0, self.clock.scaled(120))
            while any(True for _ in self.pods_on(node_name)) and time.monotonic() < deadline:
                await asyncio.sleep(max(0.05, self.clock.scaled(2)))
        provider = (nc.get("status") or {}).get("providerID", "")
        instance_id = provider.rsplit("/", 1)[-1] if provider else None
        if instance_id:
            await self.bridge.terminate_instances([instance_id])
        if node_name:
            node = self.store.get(node_t, None, node_name)
            if node is not None:
                self.store.remove(node_t, node)
            for pod in [p for p in self.store.list(pod_t) if (p.get("spec") or {}).get("nodeName") == node_name]:
                self.store.remove(pod_t, pod)
        self.store.mutate(nc_t, None, name, lambda o: o["metadata"].__setitem__("finalizers", []))
        self.kick("sched")

    def on_node(self, node: Obj, kind: str) -> None:
        if kind == "DELETED":
            claim_ref = next((r for r in node["metadata"].get("ownerReferences") or []
                              if r.get("kind") == "NodeClaim"), None)
            nc_t = self.t("karpenter.sh", "nodeclaims")
            if claim_ref and self.store.get(nc_t, None, claim_ref["name"]) is not None:
                nc = self.store.get(nc_t, None, claim_ref["name"])
                if nc is not None and not nc["metadata"].get("deletionTimestamp"):
                    self.store.delete(nc_t, None, claim_ref["name"])
        self.kick("sched")

    async def consolidator(self) -> None:
        while not self.stopped:
            await asyncio.sleep(max(0.1, self.clock.scaled(self.clock.real("consolidation_check") / 3)))
            try:
                self.consolidate()
            except Exception:
                self.log.exception("consolidation")

    def consolidate(self) -> None:
        nc_t, np_t = self.t("karpenter.sh", "nodeclaims"), self.t("karpenter.sh", "nodepools")
        now = time.monotonic()
        for node in self.store.list(self.t("", "nodes")):
            if not self.node_usable(node):
                continue
            name = node["metadata"]["name"]
            workload = [p for p in self.pods_on(name) if not any(
                r.get("kind") == "DaemonSet" for r in p["metadata"].get("ownerReferences") or [])]
            if workload or any(True for c in self.claims.values() if c.pods):
                self.node_empty_since.pop(name, None)
                continue
            since = self.node_empty_since.setdefault(name, now)
            pool = self.store.get(np_t, None, (node["metadata"].get("labels") or {}).get("karpenter.sh/nodepool", ""))
            disruption = (pool or {}).get("spec", {}).get("disruption") or {}
            if disruption.get("consolidationPolicy", "WhenEmptyOrUnderutilized") not in (
                    "WhenEmpty", "WhenEmptyOrUnderutilized"):
                continue
            after = _parse_duration(str(disruption.get("consolidateAfter", "30s")))
            if after is None or now - since < self.clock.scaled(after):
                continue
            claim_ref = next((r for r in node["metadata"].get("ownerReferences") or []
                              if r.get("kind") == "NodeClaim"), None)
            nc = self.store.get(nc_t, None, claim_ref["name"]) if claim_ref else None
            if nc is None or nc["metadata"].get("deletionTimestamp"):
                continue
            self.events.emit(nc, "Normal", "DisruptionTerminating", "Disrupting NodeClaim: Empty", "karpenter")
            self.events.emit(node, "Normal", "DisruptionTerminating", "Disrupting Node: Empty", "karpenter")
            self.store.delete(nc_t, None, nc["metadata"]["name"])
            self.node_empty_since.pop(name, None)

    # -------------------------------------------------------------------------------------- pools, classes

    def reconcile_nodepool(self, name: str) -> None:
        np_t = self.t("karpenter.sh", "nodepools")
        pool = self.store.get(np_t, None, name)
        if pool is None:
            return
        nodeclass = self._nodeclass_of(pool)
        nc_ready = nodeclass is not None and any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (nodeclass.get("status") or {}).get("conditions") or [])
        nodes = [n for n in self.store.list(self.t("", "nodes"))
                 if (n["metadata"].get("labels") or {}).get("karpenter.sh/nodepool") == name]
        total = Res()
        for n in nodes:
            a = (n.get("status") or {}).get("capacity") or {}
            total = total + Res(cpu=float(a.get("cpu", 0)), gpu=int(a.get("nvidia.com/gpu", 0)))
        resources = {"cpu": str(int(total.cpu)), "nodes": str(len(nodes)), "pods": str(110 * len(nodes))}
        if total.gpu:
            resources["nvidia.com/gpu"] = str(total.gpu)
        conds = (pool.get("status") or {}).get("conditions") or []
        conds = set_condition(conds, "ValidationSucceeded", "True", "ValidationSucceeded", "")
        conds = set_condition(conds, "NodeClassReady", "True" if nc_ready else "False",
                              "NodeClassReady" if nc_ready else "NodeClassNotReady",
                              "" if nc_ready else ("NodeClass not found" if nodeclass is None else
                                                   "NodeClass is not ready"))
        conds = set_condition(conds, "Ready", "True" if nc_ready else "False", "Ready" if nc_ready else
                              "UnhealthyDependents", "" if nc_ready else "NodeClassReady=False")
        status = {"conditions": conds, "resources": resources, "nodes": len(nodes)}
        self.store.update_status(np_t, pool, status)

    async def reconcile_nodeclass(self, name: str) -> None:
        ncl_t = self.t("eks.amazonaws.com", "nodeclasses")
        ncl = self.store.get(ncl_t, None, name)
        if ncl is None:
            return
        meta = ncl["metadata"]
        spec = ncl.get("spec") or {}
        if meta.get("deletionTimestamp"):
            in_use = [c for c in self.store.list(self.t("karpenter.sh", "nodeclaims"))
                      if ((c.get("spec") or {}).get("nodeClassRef") or {}).get("name") == name]
            if not in_use:
                self.store.mutate(ncl_t, None, name, lambda o: o["metadata"].__setitem__("finalizers", []))
            else:
                self.throttled_event(ncl, "Normal", "WaitingOnNodeClaimTermination",
                                     f"Waiting on NodeClaim termination for {', '.join(sorted(c['metadata']['name'] for c in in_use))}",
                                     "karpenter")
            return
        if name != "default" and "eks.amazonaws.com/termination" not in (meta.get("finalizers") or []):
            self.store.mutate(ncl_t, None, name, lambda o: o["metadata"].setdefault("finalizers", []).append(
                "eks.amazonaws.com/termination"))
        subnets: list[dict[str, str]] = []
        for term in spec.get("subnetSelectorTerms") or []:
            for s in self.info.subnets:
                if term.get("id") == s.id or (term.get("tags") and not s.public):
                    if s.id not in {x["id"] for x in subnets}:
                        subnets.append({"id": s.id, "zone": s.zone, "zoneID": s.zone_id})
        sgs = [{"id": t["id"], "name": f"eks-cluster-sg-{self.info.name}"} for t in
               spec.get("securityGroupSelectorTerms") or [] if t.get("id")]
        status: dict[str, Any] = {"subnets": subnets, "securityGroups": sgs,
                                  "instanceProfile": f"eks-{self.info.region}-{self.info.name}-{name}"}
        problems = []
        if not spec.get("role"):
            problems.append("role is required")
        if not subnets:
            problems.append("SubnetsReady=False")
        terms = spec.get("capacityReservationSelectorTerms") or []
        if terms:
            found = await self.bridge.reservations(terms)
            status["capacityReservations"] = [{
                "availabilityZone": r.get("AvailabilityZone"), "id": r.get("CapacityReservationId"),
                "instanceMatchCriteria": r.get("InstanceMatchCriteria", "targeted"),
                "instanceType": r.get("InstanceType"), "ownerID": r.get("OwnerId", self.info.account),
                "reservationType": r.get("ReservationType", "default"), "state": r.get("State", "active"),
                "availableInstanceCount": r.get("AvailableInstanceCount", r.get("TotalInstanceCount", 1)),
                **({"endTime": r["EndDate"]} if r.get("EndDate") else {}),
            } for r in found if r.get("State") in (None, "active", "scheduled", "payment-pending")]
            if not status["capacityReservations"]:
                problems.append("CapacityReservationsReady=False")
        conds = (ncl.get("status") or {}).get("conditions") or []
        for ctype, ok in (("SubnetsReady", bool(subnets)), ("SecurityGroupsReady", bool(sgs)),
                          ("InstanceProfileReady", bool(spec.get("role"))),
                          ("CapacityReservationsReady", not terms or bool(status.get("capacityReservations")))):
            conds = set_condition(conds, ctype, "True" if ok else "False", ctype if ok else f"{ctype[:-5]}NotFound",
                                  "" if ok else f"no {ctype[:-5].lower()} found")
        conds = set_condition(conds, "Ready", "False" if problems else "True",
                              "UnhealthyDependents" if problems else "Ready", ", ".join(problems))
        status["conditions"] = conds
        cur = self.store.get(ncl_t, None, name)
        if cur is not None:
            self.store.update_status(ncl_t, cur, status)
        for pool in self.store.list(self.t("karpenter.sh", "nodepools")):
            self.enqueue(("karpenter.sh", "nodepools"), None, pool["metadata"]["name"])
        self.kick("sched")


def _parse_duration(text: str) -> float | None:
    if text in ("Never", ""):
        return None
    total, num = 0.0, ""
    units = {"h": 3600, "m": 60, "s": 1}
    for ch in text:
        if ch.isdigit() or ch == ".":
            num += ch
        elif ch in units and num:
            total += float(num) * units[ch]
            num = ""
    return total + (float(num) if num else 0)


__all__ = ["AutoscalingMixin", "Claim", "Requirement"]
