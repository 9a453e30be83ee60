"""The pod fold: rows from pod and event dicts, so a Pending pod says why."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from dynamo_wizard.core.podview import PodView, fold, format_age, scheduling_cause

from ..podfixtures import INSUFFICIENT_GPU, NS, event, pod


def test_pending_pod_says_insufficient_gpu_and_that_a_node_is_launching() -> None:
    rows = fold(
        [pod("agg-worker-0", scheduled="False", scheduled_message=INSUFFICIENT_GPU)],
        [
            event("agg-worker-0", "FailedScheduling", INSUFFICIENT_GPU, type="Warning", count=3),
            event("agg-worker-0", "Nominated", "Pod should schedule on: nodeclaim/gpu-ggsvc"),
        ],
    )
    (row,) = rows
    assert row.status == "Pending" and row.node == "" and row.ready_text == "0/1"
    assert row.reason.startswith("Insufficient nvidia.com/gpu;")
    assert "node launching (nodeclaim/gpu-ggsvc)" in row.reason
    assert row.warning


def test_pending_without_events_reads_the_scheduling_condition() -> None:
    (row,) = fold([pod("w", scheduled="False", scheduled_message="0/0 nodes are available: no nodes available to schedule pods")])
    assert row.reason == "no nodes available"


def test_image_pull_is_shown_as_such() -> None:
    (pulling,) = fold(
        [pod("w", phase="Pending", node="i-0abc", waiting="ContainerCreating", scheduled="True")],
        [event("w", "Pulling", 'Pulling image "nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.0.0-efa-amd64"')],
    )
    assert pulling.status == "ContainerCreating" and not pulling.warning
    assert pulling.reason == "pulling image nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.0.0-efa-amd64"
    assert pulling.node == "i-0abc"

    (failing,) = fold(
        [pod("w", phase="Pending", node="i-0abc", waiting="ImagePullBackOff",
             waiting_message='Back-off pulling image "nvcr.io/x:bad"', scheduled="True")]
    )
    assert failing.status == "ImagePullBackOff" and failing.warning
    assert "Back-off pulling image" in failing.reason


def test_crash_loop_after_oom_says_so() -> None:
    (row,) = fold([pod("dl", phase="Running", node="i-1", waiting="CrashLoopBackOff", restarts=4,
                       last_terminated="OOMKilled", scheduled="True")])
    assert row.status == "CrashLoopBackOff" and row.restarts == 4 and row.warning
    assert "OOMKilled" in row.reason and "more memory" in row.reason


def test_ready_pod_hides_warnings_from_before_it_was_ready() -> None:
    ready = pod("w", phase="Running", node="i-1", ready=1, scheduled="True", ready_since="2026-01-01T00:10:00Z")
    (row,) = fold([ready], [event("w", "Unhealthy", "Readiness probe failed: connection refused", type="Warning",
                                  at="2026-01-01T00:09:00Z")])
    assert row.ready_text == "1/1" and row.status == "Running" and row.reason == "" and not row.warning
    (later,) = fold([ready], [event("w", "Unhealthy", "Readiness probe failed: timeout", type="Warning",
                                    at="2026-01-01T00:11:00Z")])
    assert later.warning and "probe failing" in later.reason


def test_terminating_and_completed() -> None:
    gone, done = fold([pod("a", phase="Running", node="i", ready=1, deleting=True),
                       pod("b", phase="Succeeded", node="i")])
    assert gone.status == "Terminating"
    assert done.status == "Completed" and not done.warning


def test_client_to_dict_shape_is_accepted() -> None:
    created = datetime(2026, 1, 1, tzinfo=UTC)
    snake = {
        "metadata": {"name": "w", "namespace": NS, "uid": "u1", "creation_timestamp": created},
        "spec": {"containers": [{"name": "main"}], "node_name": None},
        "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                                                       "message": INSUFFICIENT_GPU}],
                   "container_statuses": None},
    }
    ev = {"involved_object": {"kind": "Pod", "name": "w", "namespace": NS, "uid": "u1"},
          "reason": "Nominated", "message": "Pod should schedule on: nodeclaim/gpu-abcde", "type": "Normal",
          "last_timestamp": created}
    (row,) = fold([snake], [ev])
    assert row.created_at == created.timestamp()
    assert row.reason.startswith("Insufficient nvidia.com/gpu") and "nodeclaim/gpu-abcde" in row.reason


def test_view_reports_only_what_changed_and_deletions() -> None:
    view = PodView(namespace=NS)
    view.pod_changed("ADDED", pod("a"))
    view.pod_changed("ADDED", pod("b"))
    view.pod_changed("ADDED", pod("other", namespace="kube-system"))
    first = view.take_changes()
    assert set(first) == {"uid-a", "uid-b"}
    assert view.take_changes() == {}
    # Same object again: no change to render.
    view.pod_changed("MODIFIED", pod("a"))
    assert view.take_changes() == {}
    view.event_seen(event("a", "FailedScheduling", INSUFFICIENT_GPU, type="Warning"))
    view.pod_changed("DELETED", pod("b"))
    changes = view.take_changes()
    assert changes["uid-b"] is None
    assert changes["uid-a"] is not None and "Insufficient nvidia.com/gpu" in changes["uid-a"].reason


def test_events_before_their_pod_are_kept_until_it_appears() -> None:
    view = PodView()
    view.event_seen(event("late", "FailedScheduling", INSUFFICIENT_GPU, type="Warning"))
    view.pod_changed("ADDED", pod("late"))
    (row,) = view.rows()
    assert "Insufficient nvidia.com/gpu" in row.reason


def test_relist_after_a_reconnect_drops_pods_that_vanished() -> None:
    view = PodView()
    for name in ("a", "b", "c"):
        view.pod_changed("ADDED", pod(name))
    view.take_changes()
    view.relisted([pod("a"), pod("c", phase="Running", node="i-1", ready=1)])
    changes = view.take_changes()
    assert changes["uid-b"] is None
    assert changes["uid-c"] is not None and changes["uid-c"].status == "Running"
    assert "uid-a" not in changes
    assert sorted(r.name for r in view.rows()) == ["a", "c"]


def test_view_is_safe_to_feed_from_threads() -> None:
    view = PodView()

    def feed(base: int) -> None:
        for i in range(500):
            view.pod_changed("ADDED", pod(f"p{base}-{i}"))
            view.event_seen(event(f"p{base}-{i}", "Scheduled", "Successfully assigned ns/p to i-0123"))

    threads = [threading.Thread(target=feed, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(view.rows()) == 2_000
    assert len(view.take_changes()) == 2_000


def test_helpers() -> None:
    assert scheduling_cause("0/3 nodes are available: 3 Insufficient cpu. preemption: x") == "Insufficient cpu"
    assert scheduling_cause("something new happened. preemption: x") == "something new happened"
    assert [format_age(s) for s in (5, 119, 125, 600, 3600 * 2 + 60, 3600 * 4 + 60, 3600 * 30, 86400 * 3 + 3600, None)] == [
        "5s", "119s", "2m5s", "10m", "121m", "4h1m", "30h", "3d1h", ""]
