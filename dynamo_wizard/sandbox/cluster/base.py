"""What every part of the controller simulation shares: the cluster's store, clock, faults and AWS bridge,
the task and work-queue plumbing, and the methods one part calls on another (implemented by the mixins
that ClusterSim combines)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..faults import Faults
from ..kube.logs import LogHub
from ..kube.resources import ResourceType
from ..kube.server import ApiServer
from ..kube.store import Obj, Store
from ..timings import SimClock
from .bootstrap import ClusterInfo
from .bridge import AwsBridge
from .events import EventRecorder

if TYPE_CHECKING:
    from .autoscaling import Claim

Key = tuple[tuple[str, str], str | None, str]


class SimBase:
    info: ClusterInfo
    clock: SimClock
    faults: Faults
    bridge: AwsBridge
    directory: Path | None
    log: logging.Logger
    store: Store
    logs: LogHub
    events: EventRecorder
    server: ApiServer
    tasks: dict[str, asyncio.Task[Any]]
    claims: dict[str, Claim]
    node_images: dict[str, set[str]]
    node_empty_since: dict[str, float]
    offering_unavailable: dict[tuple[str, str, str], float]
    last_event: dict[tuple[str, str, str], float]
    oom_jobs: set[str]
    downloaded_models: set[str]
    endpoints_dirty: set[str]
    ip_counter: int
    stopped: bool
    _queue: asyncio.Queue[Key]
    _queued: set[Key]
    _kicks: dict[str, asyncio.Event]

    # -------------------------------------------------------------------------------------- plumbing

    def t(self, group: str, plural: str) -> ResourceType:
        return self.store.type_named(group, plural)

    def spawn(self, key: str, coro: Coroutine[Any, Any, Any]) -> None:
        cur = self.tasks.get(key)
        if cur is not None and not cur.done():
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks[key] = task

        def done(t: asyncio.Task[Any], k: str = key) -> None:
            if self.tasks.get(k) is t:
                self.tasks.pop(k, None)
            if not t.cancelled() and t.exception() is not None:
                self.log.error("task %s failed", k, exc_info=t.exception())
        task.add_done_callback(done)

    def kick(self, name: str) -> None:
        ev = self._kicks.get(name)
        if ev is not None:
            ev.set()

    async def wait_kick(self, name: str, timeout: float) -> None:
        ev = self._kicks[name]
        try:
            await asyncio.wait_for(ev.wait(), timeout=timeout)
        except TimeoutError:
            pass
        ev.clear()

    def enqueue(self, key: tuple[str, str], ns: str | None, name: str) -> None:
        item = (key, ns, name)
        if item not in self._queued:
            self._queued.add(item)
            self._queue.put_nowait(item)

    def endpoints_changed(self, ns: str) -> None:
        self.endpoints_dirty.add(ns)
        self.kick("endpoints")

    def throttled_event(self, obj: Obj, type_: str, reason: str, message: str, component: str,
                        every_real: float = 60.0) -> None:
        """An event that a controller repeats while a condition lasts: emitted at most once per `every_real`
        (scaled), aggregated by the recorder."""
        key = (obj["metadata"].get("uid", ""), reason, message)
        now = time.monotonic()
        last = self.last_event.get(key)
        if last is not None and now - last < max(0.2, self.clock.scaled(every_real)):
            return
        self.last_event[key] = now
        self.events.emit(obj, type_, reason, message, component)

    # -------------------------------------------------------------------------------------- across parts
    # Implemented by the mixins; declared here so each part can call the others.

    @staticmethod
    def tolerates(tolerations: list[dict[str, Any]], taints: list[dict[str, Any]]) -> bool:
        raise NotImplementedError

    def node_usable(self, node: Obj, ignore_ready: bool = False) -> bool:
        raise NotImplementedError

    def bind_pod(self, pod: Obj, node: Obj, announce: bool = True) -> None:
        raise NotImplementedError

    def node_ip(self, zone: str) -> str:
        raise NotImplementedError

    def start_pod(self, ns: str, name: str) -> None:
        raise NotImplementedError

    def enqueue_owner(self, pod: Obj) -> None:
        raise NotImplementedError

    def pod_changed(self, pod: Obj) -> None:
        raise NotImplementedError

    def after_workload_status(self, obj: Obj) -> None:
        raise NotImplementedError

    def on_pvc(self, pvc: Obj, kind: str) -> None:
        raise NotImplementedError

    def models_for(self, frontend_pod: Obj) -> list[str]:
        raise NotImplementedError

    def set_container(self, ns: str, name: str, uid: str, cname: str, **changes: Any) -> None:
        raise NotImplementedError
