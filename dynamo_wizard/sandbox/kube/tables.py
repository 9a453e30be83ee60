"""`as=Table` responses, so plain `kubectl get` prints the usual columns against the sandbox."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .resources import ResourceType

Obj = dict[str, Any]


def age(ts: str | None) -> str:
    if not ts:
        return "<unknown>"
    try:
        then = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "<unknown>"
    s = int((datetime.now(UTC) - then).total_seconds())
    if s < 120:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60}s" if s < 600 else f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60}m" if s < 36000 else f"{s // 3600}h"
    return f"{s // 86400}d"


def pod_status_text(pod: Obj) -> str:
    """What kubectl shows in the STATUS column."""
    if pod["metadata"].get("deletionTimestamp"):
        return "Terminating"
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Pending"
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        if "waiting" in state and state["waiting"].get("reason"):
            reason = state["waiting"]["reason"]
        elif "terminated" in state:
            reason = state["terminated"].get("reason") or "Completed"
    if reason == "Running" and not all(cs.get("ready") for cs in status.get("containerStatuses") or [{}]):
        return "Running"
    return str(reason)


def _pod_row(pod: Obj) -> list[Any]:
    st = pod.get("status") or {}
    css = st.get("containerStatuses") or []
    n = len((pod.get("spec") or {}).get("containers") or [])
    ready = sum(1 for c in css if c.get("ready"))
    restarts = sum(int(c.get("restartCount", 0)) for c in css)
    return [pod["metadata"]["name"], f"{ready}/{n}", pod_status_text(pod), restarts,
            age(pod["metadata"].get("creationTimestamp")), st.get("podIP") or "<none>",
            (pod.get("spec") or {}).get("nodeName") or "<none>"]


def _node_row(node: Obj) -> list[Any]:
    conds = {c["type"]: c["status"] for c in (node.get("status") or {}).get("conditions") or []}
    labels = node["metadata"].get("labels") or {}
    roles = "<none>"
    version = ((node.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", "")
    return [node["metadata"]["name"], "Ready" if conds.get("Ready") == "True" else "NotReady", roles,
            age(node["metadata"].get("creationTimestamp")), version, labels.get("node.kubernetes.io/instance-type")]


def table(rtype: ResourceType, objs: list[Obj], list_rv: str) -> Obj:
    def col(name: str, typ: str = "string", priority: int = 0) -> Obj:
        return {"name": name, "type": typ, "format": "name" if name == "Name" else "", "description": name,
                "priority": priority}

    if rtype.key == ("", "pods"):
        cols = [col("Name"), col("Ready"), col("Status"), col("Restarts", "integer"), col("Age"),
                col("IP", priority=1), col("Node", priority=1)]
        rows = [_pod_row(o) for o in objs]
    elif rtype.key == ("", "nodes"):
        cols = [col("Name"), col("Status"), col("Roles"), col("Age"), col("Version"),
                col("Instance-Type", priority=1)]
        rows = [_node_row(o) for o in objs]
    else:
        cols = [col("Name"), col("Age")]
        rows = [[o["metadata"]["name"], age(o["metadata"].get("creationTimestamp"))] for o in objs]
    return {
        "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": list_rv},
        "columnDefinitions": cols,
        "rows": [{"cells": r, "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                         "metadata": o["metadata"]}} for r, o in zip(rows, objs, strict=True)],
    }
