"""Snapshots of the provision screen at 100×30: mid-run and failed (fixed clock, fixed log folder).

Update with `pytest tests/tui/test_provision_snapshots.py --snapshot-update` after a deliberate change,
and look at the SVGs under __snapshots__ before committing them.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from dynamo_wizard.core.events import RunFinished, StepFinished, StepOutput, StepStarted
from dynamo_wizard.screens.provision import ProvisionScreen

from ..podfixtures import INSUFFICIENT_GPU, event, pod
from .provision_host import ProvisionHost, ScriptedRunner, example_plan
from .waiting import wait_until

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
NOW = T0 + 1_234.0
STEPS = [
    ("cluster", "EKS cluster"), ("access", "Kubernetes access"), ("namespace", "Namespace"),
    ("nodepool", "GPU NodePool"), ("storageclass", "Default StorageClass"), ("efs", "EFS file system"),
    ("platform", "Dynamo platform"), ("secret", "HF token Secret"), ("download", "Model download"),
    ("graph", "DynamoGraphDeployment"), ("smoke", "Smoke test"),
]
# The log folder's path is on screen (the pane's border), so it must be the same on every run.
LOG_DIR = Path(tempfile.gettempdir()) / "dynamo-wizard-snapshots" / "logs"


def _prefix() -> list[Any]:
    out: list[Any] = [StepStarted("cluster", "EKS cluster", at=T0)]
    out += [StepOutput("cluster", f'[ℹ]  waiting for CloudFormation stack "eksctl-demo-agg-cluster" ({i})')
            for i in range(12)]
    out += [
        StepFinished("cluster", "done", elapsed=902.0),
        StepStarted("access", "Kubernetes access", at=T0 + 902),
        StepFinished("access", "skipped"),
        StepStarted("namespace", "Namespace", at=T0 + 903),
        StepFinished("namespace", "done", elapsed=1.0),
        StepStarted("storageclass", "Default StorageClass", at=T0 + 904),
        StepFinished("storageclass", "done", elapsed=1.0),
        StepStarted("nodepool", "GPU NodePool", at=T0 + 905),
        StepFinished("nodepool", "done", elapsed=2.0),
        StepStarted("efs", "EFS file system", at=T0 + 906),
        StepStarted("platform", "Dynamo platform", at=T0 + 910),
    ]
    out += [StepOutput("platform", line) for line in (
        'Release "dynamo-platform" does not exist. Installing it now.',
        "NAME: dynamo-platform",
        "NAMESPACE: dynamo-system",
        "STATUS: deployed",
        "waiting for deployment dynamo-platform-dynamo-operator-controller-manager (1/1 ready)",
        "waiting for statefulset dynamo-platform-nats (0/1 ready)",
    )]
    return out


def _pods(screen: ProvisionScreen) -> None:
    view = screen.pod_view
    assert view is not None
    view.pod_changed("ADDED", pod("dynamo-platform-dynamo-operator-controller-manager-6d9f8-x2k4q", phase="Running",
                                  node="i-0a1b2c3d4e5f60718", ready=1, scheduled="True",
                                  created="2026-01-01T00:15:20Z"))
    view.pod_changed("ADDED", pod("dynamo-platform-nats-0", phase="Pending", node="i-0a1b2c3d4e5f60718",
                                  waiting="ContainerCreating", scheduled="True", created="2026-01-01T00:15:20Z"))
    view.event_seen(event("dynamo-platform-nats-0", "Pulling", 'Pulling image "nats:2.10.24-alpine"'))
    view.pod_changed("ADDED", pod("demo-agg-agg-vllmdecodeworker-7c9d2f1a-5b6c7-q8w9e", scheduled="False",
                                  scheduled_message=INSUFFICIENT_GPU, created="2026-01-01T00:18:00Z"))
    view.event_seen(event("demo-agg-agg-vllmdecodeworker-7c9d2f1a-5b6c7-q8w9e", "FailedScheduling",
                          INSUFFICIENT_GPU, type="Warning"))
    view.event_seen(event("demo-agg-agg-vllmdecodeworker-7c9d2f1a-5b6c7-q8w9e", "Nominated",
                          "Pod should schedule on: nodeclaim/gpu-ggsvc"))


def _host(events: list[Any], hold_after: int | None) -> ProvisionHost:
    shutil.rmtree(LOG_DIR, ignore_errors=True)
    plan = example_plan("agg")
    runner = ScriptedRunner(STEPS, events, hold_after=hold_after)
    return ProvisionHost(lambda: ProvisionScreen(plan, lambda p: runner, clock=lambda: NOW, log_dir=LOG_DIR))


def test_snapshot_mid_run(snap_compare: Any) -> None:
    events = [*_prefix(), RunFinished(ok=True)]
    app = _host(events, hold_after=len(events) - 1)

    async def settle(pilot: Pilot[Any]) -> None:
        screen = app.provision
        await wait_until(pilot, lambda: screen.step_list.status_of("platform") == "running")
        _pods(screen)
        await wait_until(pilot, lambda: len(screen.pod_table.pods) == 3
                         and "nodeclaim" in screen.pod_table.pods[
                             "uid-demo-agg-agg-vllmdecodeworker-7c9d2f1a-5b6c7-q8w9e"].reason)
        pane = screen.log_panes.pane("platform")
        assert pane is not None
        await wait_until(pilot, lambda: pane.line_count == 6)
        screen.step_list.tick()
        await pilot.pause()

    assert snap_compare(app, terminal_size=(100, 30), run_before=settle)


def test_snapshot_failed(snap_compare: Any) -> None:
    events = [
        *_prefix(),
        StepOutput("platform", "Error: INSTALLATION FAILED: timed out waiting for the condition"),
        StepOutput("platform", "failed: the platform did not become ready in 5 minutes: "
                               "dynamo-platform-nats-0 is Pending"),
        StepFinished("platform", "failed", elapsed=301.0,
                     error="the platform did not become ready in 5 minutes: dynamo-platform-nats-0 is Pending",
                     fix="the NATS volume needs a default StorageClass; check `kubectl get sc`, then retry"),
        StepFinished("efs", "done", elapsed=190.0),
        StepFinished("secret", "blocked", error="waits on Dynamo platform"),
        StepFinished("download", "blocked", error="waits on Dynamo platform"),
        StepFinished("graph", "blocked", error="waits on Dynamo platform"),
        StepFinished("smoke", "blocked", error="waits on Dynamo platform"),
        RunFinished(ok=False, summary="1 step failed"),
    ]
    app = _host(events, hold_after=None)

    async def settle(pilot: Pilot[Any]) -> None:
        screen = app.provision
        await wait_until(pilot, lambda: screen.state == "failed")
        _pods(screen)
        await wait_until(pilot, lambda: len(screen.pod_table.pods) == 3)
        pane = screen.log_panes.pane("platform")
        assert pane is not None
        await wait_until(pilot, lambda: pane.line_count == 8)
        await pilot.pause()

    assert snap_compare(app, terminal_size=(100, 30), run_before=settle)
