"""Kubernetes Events as the kubelet, the scheduler and Auto Mode write them (aggregated like the real
event recorder: the same reason and message on the same object bumps `count`)."""

from __future__ import annotations

import secrets
from typing import Any

from ..kube.store import Obj, Store, now_iso


class EventRecorder:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._recent: dict[tuple[str, str, str, str], tuple[str, str]] = {}

    def emit(self, obj: Obj, type_: str, reason: str, message: str, component: str, host: str | None = None,
             field_path: str | None = None) -> None:
        meta = obj.get("metadata") or {}
        ns = meta.get("namespace") or "default"
        ev_type = self.store.type_named("", "events")
        if self.store.get(self.store.type_named("", "namespaces"), None, ns) is None:
            return
        key = (meta.get("uid", ""), reason, message, component)
        now = now_iso()
        prior = self._recent.get(key)
        if prior is not None:
            existing = self.store.get(ev_type, prior[0], prior[1])
            if existing is not None:
                def bump(e: Obj) -> None:
                    e["count"] = int(e.get("count", 1)) + 1
                    e["lastTimestamp"] = now
                self.store.mutate(ev_type, prior[0], prior[1], bump)
                return
        involved: dict[str, Any] = {"kind": obj.get("kind"), "name": meta.get("name"), "uid": meta.get("uid"),
                                    "apiVersion": obj.get("apiVersion"),
                                    "resourceVersion": meta.get("resourceVersion")}
        if meta.get("namespace"):
            involved["namespace"] = meta["namespace"]
        if field_path:
            involved["fieldPath"] = field_path
        source: dict[str, Any] = {"component": component}
        if host:
            source["host"] = host
        name = f"{meta.get('name')}.{secrets.token_hex(8)}"
        self.store.create(ev_type, ns, {
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": involved, "reason": reason, "message": message, "type": type_,
            "source": source, "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "reportingComponent": component, "reportingInstance": host or "",
        })
        self._recent[key] = (ns, name)
        if len(self._recent) > 5000:
            self._recent.pop(next(iter(self._recent)))
