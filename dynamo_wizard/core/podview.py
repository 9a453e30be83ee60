"""Pods of a deployment's namespace as table rows: a pure fold of pod and event objects.

The watch (cloud.kube) feeds plain dicts, in the Kubernetes API's JSON shape (`metadata.creationTimestamp`,
`involvedObject`, ...) or the Python client's `to_dict()` shape (`creation_timestamp`, `involved_object`,
datetimes instead of strings); both are accepted. Nothing here imports kubernetes, so the fold is tested
without a cluster.

The point of the table is that a Pending pod says *why*: the scheduler's reason (Insufficient
nvidia.com/gpu, no nodes), Auto Mode launching a node for it (Nominated), an image pull in progress or
failing, a crash loop with its last exit reason (OOMKilled).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

REASON_MAX = 160
"""Longest reason kept; the table truncates further to its column."""

_UNKNOWN_EVENTS_MAX = 5000
"""Events may arrive before their pod; keep at most this many such pods' events."""


@dataclass(frozen=True)
class PodRow:
    uid: str
    namespace: str
    name: str
    ready: int
    total: int
    status: str
    """kubectl-style status: the phase, or the more telling container state (ContainerCreating,
    ImagePullBackOff, CrashLoopBackOff, OOMKilled), Terminating or Completed."""
    phase: str
    restarts: int
    node: str
    created_at: float | None
    reason: str
    """One line saying why the pod is where it is (empty when it is ready and nothing happened since)."""
    warning: bool
    """The reason is a problem (a Warning event, a failing container), shown in the warning colour."""

    @property
    def ready_text(self) -> str:
        return f"{self.ready}/{self.total}"


# --------------------------------------------------------------------------------------------------
# Reading dicts in either shape


def _get(obj: Mapping[str, Any] | None, *keys: str) -> Any:
    """The first present key of `keys` (camelCase and snake_case spellings of one field)."""
    if not obj:
        return None
    for key in keys:
        value = obj.get(key)
        if value is not None:
            return value
    return None


def _timestamp(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, (int, float)):
        return float(value)
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return _get(obj, "metadata") or {}


def format_age(seconds: float | None) -> str:
    """kubectl's short age: 45s, 3m12s (under 10 minutes), 25m, 5h3m, 3d4h, 40d."""
    if seconds is None:
        return ""
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 10:
        return f"{m}m{s}s" if s else f"{m}m"
    if m < 180:
        return f"{m}m"
    h, m = divmod(m, 60)
    if h < 8:
        return f"{h}h{m}m" if m else f"{h}h"
    if h < 48:
        return f"{h}h"
    d, h = divmod(h, 24)
    if d < 8:
        return f"{d}d{h}h" if h else f"{d}d"
    return f"{d}d"


# --------------------------------------------------------------------------------------------------
# Events


@dataclass(frozen=True)
class PodEvent:
    """The parts of a Kubernetes Event (core/v1 or events.k8s.io/v1) the table uses."""

    pod_uid: str
    pod_namespace: str
    pod_name: str
    type: str
    reason: str
    message: str
    count: int
    at: float | None


def read_event(event: Mapping[str, Any]) -> PodEvent | None:
    """An Event about a Pod, or None for events about other kinds."""
    involved = _get(event, "involvedObject", "involved_object", "regarding") or {}
    kind = _get(involved, "kind")
    if kind not in (None, "Pod"):
        return None
    name = _get(involved, "name") or ""
    if not name:
        return None
    series = _get(event, "series") or {}
    at = (
        _timestamp(_get(series, "lastObservedTime", "last_observed_time"))
        or _timestamp(_get(event, "lastTimestamp", "last_timestamp", "deprecatedLastTimestamp"))
        or _timestamp(_get(event, "eventTime", "event_time"))
        or _timestamp(_get(event, "firstTimestamp", "first_timestamp"))
        or _timestamp(_get(_meta(event), "creationTimestamp", "creation_timestamp"))
    )
    count = _get(series, "count") or _get(event, "count", "deprecatedCount") or 1
    return PodEvent(
        pod_uid=_get(involved, "uid") or "",
        pod_namespace=_get(involved, "namespace") or _get(_meta(event), "namespace") or "",
        pod_name=name,
        type=_get(event, "type") or "Normal",
        reason=_get(event, "reason") or "",
        message=" ".join(str(_get(event, "message", "note") or "").split()),
        count=int(count) if str(count).isdigit() else 1,
        at=at,
    )


_SCHEDULING_CAUSES: tuple[tuple[str, str], ...] = (
    ("insufficient nvidia.com/gpu", "Insufficient nvidia.com/gpu"),
    ("no nodes available", "no nodes available"),
    ("insufficient cpu", "Insufficient cpu"),
    ("insufficient memory", "Insufficient memory"),
    ("insufficient vpc.amazonaws.com/efa", "Insufficient vpc.amazonaws.com/efa"),
    ("untolerated taint", "untolerated taint"),
    ("didn't match pod's node affinity", "node affinity/selector not matched"),
    ("didn't match pod affinity", "pod affinity not matched"),
    ("unbound immediate persistentvolumeclaims", "waiting for its volume (PVC unbound)"),
    ('persistentvolumeclaim "', "waiting for its volume (PVC missing)"),
    ("volume node affinity conflict", "volume in another zone"),
    ("exceed limits for nodepool", "NodePool limits reached"),
    ("incompatible with nodepool", "no NodePool fits the pod"),
    ("no instance type met", "no instance type fits the pod"),
)


def _short(text: str, limit: int = REASON_MAX) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def scheduling_cause(message: str) -> str:
    """'0/3 nodes are available: 3 Insufficient nvidia.com/gpu. preemption: ...' -> 'Insufficient nvidia.com/gpu'."""
    low = message.lower()
    causes = [label for needle, label in _SCHEDULING_CAUSES if needle in low]
    if len(causes) > 1 and "untolerated taint" in causes:
        # On Auto Mode the tainted nodes are the system ones: noise beside the real cause.
        causes.remove("untolerated taint")
    if causes:
        return ", ".join(dict.fromkeys(causes))
    head = message.split(" preemption:", 1)[0].rstrip(". ")
    return _short(head, 80) or "unschedulable"


def summarize_event(event: PodEvent) -> str:
    """One line for an event, saying what it means for the pod."""
    reason, message = event.reason, event.message
    low = message.lower()
    if reason == "FailedScheduling":
        text = scheduling_cause(message)
    elif reason == "Nominated":
        claim = next((w for w in message.split() if w.startswith("nodeclaim/")), "")
        text = f"node launching ({claim})" if claim else "node launching"
    elif reason == "Scheduled":
        node = message.rsplit(" to ", 1)[-1] if " to " in message else ""
        text = f"scheduled on {node}" if node else "scheduled"
    elif reason == "Pulling":
        text = "pulling image " + message.split("Pulling image", 1)[-1].strip().strip('"')
    elif reason == "Pulled":
        text = "image pulled"
    elif reason == "BackOff" and "pulling image" in low:
        text = "image pull back-off: " + message
    elif reason == "BackOff":
        text = "crash loop: " + message
    elif reason in ("Failed", "ErrImagePull") and ("image" in low or "pull" in low):
        text = "image pull failed: " + message
    elif reason == "Unhealthy":
        text = "probe failing (model still loading?): " + message
    elif reason == "OOMKilling" or "oomkilled" in low:
        text = "out of memory: " + message
    else:
        text = f"{reason}: {message}" if message else reason
    if event.count > 1:
        text += f" (×{event.count})"
    return _short(text)


# --------------------------------------------------------------------------------------------------
# Pods


@dataclass
class _PodEvents:
    """What a pod's events have said so far."""

    latest: PodEvent | None = None
    scheduling: PodEvent | None = None
    nominated: PodEvent | None = None

    def add(self, event: PodEvent) -> bool:
        """Fold one event in; True when it is newer than what was there."""
        newer = self.latest is None or (event.at or 0) >= (self.latest.at or 0)
        if newer:
            self.latest = event
        if event.reason == "FailedScheduling":
            if self.scheduling is None or (event.at or 0) >= (self.scheduling.at or 0):
                self.scheduling = event
        elif event.reason == "Nominated":
            self.nominated = event
        elif event.reason == "Scheduled":
            self.scheduling = None
            self.nominated = None
        return newer


_BENIGN_WAITING = {"ContainerCreating", "PodInitializing"}


def _container_statuses(status: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(_get(status, "containerStatuses", "container_statuses") or [])


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for cond in _get(status, "conditions") or []:
        if _get(cond, "type") == kind:
            return cond  # type: ignore[no-any-return]
    return None


def pod_row(pod: Mapping[str, Any], events: _PodEvents | None = None) -> PodRow | None:
    """One row for a pod, or None when the object is not a pod with a uid."""
    meta = _meta(pod)
    uid = _get(meta, "uid")
    if not uid:
        return None
    spec = _get(pod, "spec") or {}
    status = _get(pod, "status") or {}
    phase = _get(status, "phase") or "Pending"
    containers = _container_statuses(status)
    total = len(_get(spec, "containers") or []) or len(containers)
    ready = sum(1 for c in containers if _get(c, "ready"))
    restarts = sum(int(_get(c, "restartCount", "restart_count") or 0) for c in containers)
    node = _get(spec, "nodeName", "node_name") or ""

    shown_status = phase
    reason = ""
    warning = False

    # The most telling container state, as kubectl shows it.
    for c in containers:
        state = _get(c, "state") or {}
        waiting = _get(state, "waiting")
        terminated = _get(state, "terminated")
        if waiting and _get(waiting, "reason"):
            shown_status = _get(waiting, "reason")
            if shown_status not in _BENIGN_WAITING:
                warning = True
                last = _get(_get(c, "lastState", "last_state") or {}, "terminated") or {}
                last_reason = _get(last, "reason")
                msg = _get(waiting, "message") or ""
                if last_reason and shown_status == "CrashLoopBackOff":
                    reason = f"last exit: {last_reason} (exit code {_get(last, 'exitCode', 'exit_code')})"
                    if last_reason == "OOMKilled":
                        reason += "; give the container more memory"
                elif msg:
                    reason = _short(msg)
                break
        elif terminated and _get(terminated, "reason") and phase not in ("Succeeded",):
            shown_status = _get(terminated, "reason")
            warning = shown_status != "Completed"
    if phase == "Succeeded":
        shown_status = "Completed"
    elif phase == "Failed":
        warning = True
        reason = reason or _short(_get(status, "message") or _get(status, "reason") or "")
    if _get(meta, "deletionTimestamp", "deletion_timestamp"):
        shown_status = "Terminating"

    scheduled = _condition(status, "PodScheduled")
    unscheduled = phase == "Pending" and not node and (
        scheduled is None or _get(scheduled, "status") != "True"
    )
    if not reason and unscheduled:
        why = ""
        if events and events.scheduling:
            why = scheduling_cause(events.scheduling.message)
        elif scheduled is not None and _get(scheduled, "message"):
            why = scheduling_cause(_get(scheduled, "message"))
        if why:
            warning = True
        if events and events.nominated:
            launching = summarize_event(events.nominated)
            why = f"{why}; {launching}" if why else launching
        reason = why or "waiting to be scheduled"

    if not reason and events and events.latest:
        latest = events.latest
        ready_cond = _condition(status, "Ready")
        ready_since = _timestamp(_get(ready_cond, "lastTransitionTime", "last_transition_time")) if ready_cond else None
        fully_ready = total > 0 and ready == total and phase == "Running"
        if not (fully_ready and ready_since is not None and (latest.at or 0) < ready_since):
            reason = summarize_event(latest)
            warning = warning or latest.type == "Warning"

    return PodRow(
        uid=str(uid),
        namespace=_get(meta, "namespace") or "",
        name=_get(meta, "name") or "",
        ready=ready,
        total=total,
        status=str(shown_status),
        phase=str(phase),
        restarts=restarts,
        node=str(node),
        created_at=_timestamp(_get(meta, "creationTimestamp", "creation_timestamp")),
        reason=reason,
        warning=warning,
    )


def fold(pods: Iterable[Mapping[str, Any]], events: Iterable[Mapping[str, Any]] = ()) -> list[PodRow]:
    """Rows for `pods` (in their order), each with what `events` said about it."""
    view = PodView()
    for event in events:
        view.event_seen(event)
    for pod in pods:
        view.pod_changed("ADDED", pod)
    return view.rows()


class PodView:
    """The incremental fold a watch feeds: pods by uid, their events, and what changed since last asked.

    Thread-safe: a watch thread calls `pod_changed`/`event_seen`/`relisted`; the UI calls
    `take_changes` at its own pace (the table renders at most ~20 times a second whatever the event
    rate, and a pod that changed ten times between two renders is rendered once).
    """

    def __init__(self, namespace: str | None = None) -> None:
        self.namespace = namespace
        self._lock = threading.Lock()
        self._pods: dict[str, Mapping[str, Any]] = {}
        self._rows: dict[str, PodRow] = {}
        self._events: dict[str, _PodEvents] = {}
        self._uid_by_name: dict[tuple[str, str], str] = {}
        self._changed: dict[str, PodRow | None] = {}

    def _refold(self, uid: str) -> None:
        pod = self._pods.get(uid)
        if pod is None:
            return
        row = pod_row(pod, self._events.get(uid))
        if row is not None and self._rows.get(uid) != row:
            self._rows[uid] = row
            self._changed[uid] = row

    def pod_changed(self, event_type: str, pod: Mapping[str, Any]) -> None:
        """A watch event for a pod: ADDED, MODIFIED or DELETED."""
        meta = _meta(pod)
        uid = _get(meta, "uid")
        if not uid:
            return
        ns = _get(meta, "namespace") or ""
        if self.namespace and ns and ns != self.namespace:
            return
        key = (ns, _get(meta, "name") or "")
        with self._lock:
            if event_type == "DELETED":
                self._forget(uid, key)
                return
            self._pods[uid] = pod
            self._uid_by_name[key] = uid
            pending = self._events.pop(key_for_unknown(key), None)
            if pending is not None:
                merged = self._events.setdefault(uid, _PodEvents())
                for ev in (pending.scheduling, pending.nominated, pending.latest):
                    if ev is not None:
                        merged.add(ev)
            self._refold(uid)

    def _forget(self, uid: str, key: tuple[str, str]) -> None:
        self._pods.pop(uid, None)
        self._events.pop(uid, None)
        if self._uid_by_name.get(key) == uid:
            del self._uid_by_name[key]
        if self._rows.pop(uid, None) is not None:
            self._changed[uid] = None
        else:
            self._changed.pop(uid, None)

    def event_seen(self, event: Mapping[str, Any]) -> None:
        """A Kubernetes Event (ADDED or MODIFIED); events about other kinds are ignored."""
        ev = read_event(event)
        if ev is None:
            return
        if self.namespace and ev.pod_namespace and ev.pod_namespace != self.namespace:
            return
        with self._lock:
            uid = ev.pod_uid if ev.pod_uid in self._pods else self._uid_by_name.get((ev.pod_namespace, ev.pod_name))
            if uid is None:
                # The pod is not known yet (events and pods are separate watches): keep it by name.
                if len(self._events) < _UNKNOWN_EVENTS_MAX:
                    self._events.setdefault(key_for_unknown((ev.pod_namespace, ev.pod_name)), _PodEvents()).add(ev)
                return
            self._events.setdefault(uid, _PodEvents()).add(ev)
            self._refold(uid)

    def relisted(self, pods: Iterable[Mapping[str, Any]]) -> None:
        """After a watch reconnects with a fresh list: pods absent from it are gone."""
        fresh = list(pods)
        seen = {str(_get(_meta(p), "uid")) for p in fresh}
        with self._lock:
            for uid in [u for u in self._pods if u not in seen]:
                meta = _meta(self._pods[uid])
                self._forget(uid, (_get(meta, "namespace") or "", _get(meta, "name") or ""))
        for pod in fresh:
            self.pod_changed("MODIFIED", pod)

    def rows(self) -> list[PodRow]:
        with self._lock:
            return list(self._rows.values())

    def take_changes(self) -> dict[str, PodRow | None]:
        """uid -> new row (None: the pod is gone) for every pod that changed since the last call."""
        with self._lock:
            changes, self._changed = self._changed, {}
        return changes


def key_for_unknown(key: tuple[str, str]) -> str:
    """Where events for a pod not seen yet wait (a key that cannot collide with a uid)."""
    return f"name:{key[0]}/{key[1]}"
