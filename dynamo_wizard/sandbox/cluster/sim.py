"""One simulated cluster: its object store, API server, logs and the controllers acting on them."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from ..faults import Faults
from ..kube.logs import LogHub
from ..kube.resources import ResourceType
from ..kube.server import ApiServer
from ..kube.store import Obj, Store
from ..timings import SimClock
from .autoscaling import AutoscalingMixin, Claim
from .base import Key
from .bootstrap import ClusterInfo, bootstrap
from .bridge import AwsBridge
from .dynamo import DGD, DynamoMixin
from .events import EventRecorder
from .pods import PodsMixin
from .workloads import WorkloadsMixin


class ClusterSim(WorkloadsMixin, AutoscalingMixin, PodsMixin, DynamoMixin):
    def __init__(self, info: ClusterInfo, clock: SimClock, faults: Faults, bridge: AwsBridge,
                 directory: Path | None = None) -> None:
        self.info = info
        self.clock = clock
        self.faults = faults
        self.bridge = bridge
        self.directory = directory
        self.log = logging.getLogger(f"sandbox.cluster.{info.name}")
        self.store = Store(info.name)
        self.logs = LogHub(directory / "logs" if directory else None)
        self.events = EventRecorder(self.store)
        self.server = ApiServer(self.store, self.logs, faults, self.proxy)
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        self.claims: dict[str, Claim] = {}
        self.node_images: dict[str, set[str]] = {}
        self.node_empty_since: dict[str, float] = {}
        self.offering_unavailable: dict[tuple[str, str, str], float] = {}
        self.last_event: dict[tuple[str, str, str], float] = {}
        self.oom_jobs: set[str] = set()
        self.downloaded_models: set[str] = set()
        self.endpoints_dirty: set[str] = set()
        self.ip_counter = 0
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._queued: set[Key] = set()
        self._kicks: dict[str, asyncio.Event] = {"sched": asyncio.Event(), "pvc": asyncio.Event(),
                                                 "endpoints": asyncio.Event()}
        self._loops: list[asyncio.Task[Any]] = []
        self.stopped = False

    # -------------------------------------------------------------------------------------- plumbing

    def _on_change(self, kind: str, rtype: ResourceType, obj: Obj) -> None:
        try:
            self.handle(kind, rtype, obj)
        except Exception:
            self.log.exception("handling %s %s", kind, rtype.plural)

    # -------------------------------------------------------------------------------------- lifecycle

    async def start(self, port: int = 0, fresh: bool = True) -> int:
        if fresh:
            bootstrap(self.store, self.info)
        self.store.subscribe(self._on_change)
        port = await self.server.start(port)
        loop = asyncio.get_running_loop()
        self._loops = [loop.create_task(self._worker()), loop.create_task(self.scheduler()),
                       loop.create_task(self.pvc_binder()), loop.create_task(self.consolidator()),
                       loop.create_task(self._endpoint_loop())]
        self.resume()
        return port

    def resume(self) -> None:
        """After a restart (or at start): pick up every object's lifecycle where its state says it is."""
        for rtype, obj in list(self.store.all_objects()):
            self.handle("SYNC", rtype, obj)
        for pod in self.store.list(self.t("", "pods")):
            if (pod.get("spec") or {}).get("nodeName") and not pod["metadata"].get("deletionTimestamp"):
                self.start_pod(pod["metadata"]["namespace"], pod["metadata"]["name"])
        self.kick("sched")
        self.kick("pvc")

    async def stop(self) -> None:
        self.stopped = True
        self.store.unsubscribe(self._on_change)
        pending = {t for t in [*self._loops, *self.tasks.values()] if not t.done()}
        # Python 3.11's wait_for can swallow a cancellation; loops also check `stopped`, and stragglers are
        # cancelled again rather than awaited forever.
        for _ in range(5):
            if not pending:
                break
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=1.0)
        self.tasks.clear()
        await self.server.stop()

    # -------------------------------------------------------------------------------------- dispatch

    def handle(self, kind: str, rtype: ResourceType, obj: Obj) -> None:
        key = rtype.key
        meta = obj.get("metadata") or {}
        ns, name = meta.get("namespace"), meta.get("name", "")
        if key == ("", "pods"):
            self.on_pod(obj, kind)
        elif key == ("", "namespaces"):
            self.on_namespace(obj, "ADDED" if kind == "SYNC" else kind)
        elif key in (("apps", "deployments"), ("apps", "replicasets"), ("apps", "statefulsets"),
                     ("apps", "daemonsets"), ("batch", "jobs")):
            if kind != "DELETED":
                self.enqueue(key, ns, name)
            owner = next((r for r in meta.get("ownerReferences") or [] if r.get("controller")), None)
            if owner and owner.get("kind") == "Deployment":
                self.enqueue(("apps", "deployments"), ns, owner["name"])
            if kind == "DELETED" or key == ("apps", "deployments"):
                self.after_workload_status(obj)
        elif key == ("", "services"):
            if ns:
                self.endpoints_changed(ns)
        elif key == ("", "persistentvolumeclaims"):
            self.on_pvc(obj, kind)
        elif key == ("storage.k8s.io", "storageclasses"):
            self.kick("pvc")
        elif key == ("karpenter.sh", "nodepools"):
            if kind != "DELETED":
                self.enqueue(key, None, name)
            self.kick("sched")
        elif key == ("eks.amazonaws.com", "nodeclasses"):
            if kind != "DELETED":
                self.enqueue(key, None, name)
        elif key == ("karpenter.sh", "nodeclaims"):
            self.on_nodeclaim(obj, kind)
            for pool in [(obj["metadata"].get("labels") or {}).get("karpenter.sh/nodepool")]:
                if pool:
                    self.enqueue(("karpenter.sh", "nodepools"), None, pool)
        elif key == ("", "nodes"):
            self.on_node(obj, kind)
            pool = (meta.get("labels") or {}).get("karpenter.sh/nodepool")
            if pool:
                self.enqueue(("karpenter.sh", "nodepools"), None, pool)
        elif key == DGD:
            if kind != "DELETED":
                self.enqueue(key, ns, name)
        elif key in (("", "secrets"), ("", "configmaps")):
            pass

    def pod_changed(self, pod: Obj) -> None:
        labels = pod["metadata"].get("labels") or {}
        if labels.get("nvidia.com/dynamo-graph-deployment-name"):
            self.enqueue(DGD, pod["metadata"]["namespace"], labels["nvidia.com/dynamo-graph-deployment-name"])

    async def _worker(self) -> None:
        while not self.stopped:
            item = await self._queue.get()
            self._queued.discard(item)
            key, ns, name = item
            try:
                if key == ("apps", "deployments"):
                    self.reconcile_deployment(ns or "", name)
                elif key == ("apps", "replicasets"):
                    self.reconcile_replicaset(ns or "", name)
                elif key == ("apps", "statefulsets"):
                    self.reconcile_statefulset(ns or "", name)
                elif key == ("apps", "daemonsets"):
                    self.reconcile_daemonset(ns or "", name)
                elif key == ("batch", "jobs"):
                    self.reconcile_job(ns or "", name)
                elif key == ("karpenter.sh", "nodepools"):
                    self.reconcile_nodepool(name)
                elif key == ("eks.amazonaws.com", "nodeclasses"):
                    self.spawn(f"nodeclass/{name}", self.reconcile_nodeclass(name))
                elif key == DGD:
                    self.reconcile_dgd(ns or "", name)
            except Exception:
                self.log.exception("reconciling %s %s/%s", key, ns, name)
            if self._queue.empty():
                await asyncio.sleep(0)

    async def _endpoint_loop(self) -> None:
        while not self.stopped:
            await self.wait_kick("endpoints", 5.0)
            await asyncio.sleep(0.02)  # gather a burst of pod changes into one pass
            while self.endpoints_dirty:
                ns = self.endpoints_dirty.pop()
                try:
                    self.reconcile_endpoints(ns)
                except Exception:
                    self.log.exception("endpoints in %s", ns)

    # -------------------------------------------------------------------------------------- persistence

    def snapshot(self) -> dict[str, Any]:
        data = self.store.snapshot()
        data["info"] = self.info.to_dict()
        data["port"] = self.server.port
        return data

    def load(self, data: dict[str, Any]) -> None:
        self.store.load(data)
