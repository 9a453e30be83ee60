"""Pod and Event objects in the Kubernetes API's JSON shape, for the pod table's tests."""

from __future__ import annotations

from typing import Any

NS = "dynamo-system"


def pod(
    name: str,
    uid: str | None = None,
    *,
    phase: str = "Pending",
    node: str | None = None,
    containers: int = 1,
    ready: int = 0,
    restarts: int = 0,
    waiting: str | None = None,
    waiting_message: str | None = None,
    last_terminated: str | None = None,
    created: str = "2026-01-01T00:00:00Z",
    scheduled: str | None = None,
    scheduled_message: str | None = None,
    ready_since: str | None = None,
    deleting: bool = False,
    namespace: str = NS,
) -> dict[str, Any]:
    statuses: list[dict[str, Any]] = []
    for i in range(containers):
        state: dict[str, Any] = {"running": {"startedAt": created}} if phase == "Running" else {}
        if waiting:
            state = {"waiting": {"reason": waiting, **({"message": waiting_message} if waiting_message else {})}}
        status: dict[str, Any] = {"name": f"c{i}", "ready": i < ready, "restartCount": restarts if i == 0 else 0,
                                  "state": state}
        if last_terminated and i == 0:
            status["lastState"] = {"terminated": {"reason": last_terminated, "exitCode": 137}}
        statuses.append(status)
    conditions: list[dict[str, Any]] = []
    if scheduled is not None:
        conditions.append({"type": "PodScheduled", "status": scheduled,
                           **({"reason": "Unschedulable", "message": scheduled_message} if scheduled_message else {})})
    if ready_since is not None:
        conditions.append({"type": "Ready", "status": "True", "lastTransitionTime": ready_since})
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "uid": uid or f"uid-{name}",
                            "creationTimestamp": created}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T01:00:00Z"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"containers": [{"name": f"c{i}"} for i in range(containers)],
                 **({"nodeName": node} if node else {})},
        "status": {"phase": phase, "conditions": conditions, **({"containerStatuses": statuses} if phase != "Pending" or waiting or node else {})},
    }


def event(
    pod_name: str,
    reason: str,
    message: str,
    *,
    type: str = "Normal",
    at: str = "2026-01-01T00:00:05Z",
    uid: str | None = None,
    count: int = 1,
    namespace: str = NS,
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{pod_name}.{reason}", "namespace": namespace},
        "involvedObject": {"kind": "Pod", "name": pod_name, "namespace": namespace, "uid": uid or f"uid-{pod_name}"},
        "type": type,
        "reason": reason,
        "message": message,
        "count": count,
        "lastTimestamp": at,
    }


INSUFFICIENT_GPU = (
    "0/2 nodes are available: 2 Insufficient nvidia.com/gpu, 2 node(s) had untolerated taint "
    "{CriticalAddonsOnly: }. preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod."
)
