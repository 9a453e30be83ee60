"""The provision screen driven by a runner thread: the end state, the failure state, retry, quit, back."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dynamo_wizard.core.events import RunFinished, StepFinished, StepOutput, StepStarted
from dynamo_wizard.core.inventory import CapacityReservation
from dynamo_wizard.core.podview import PodView
from dynamo_wizard.core.redact import register_secret
from dynamo_wizard.screens.provision import (
    ProvisionScreen,
    capacity_block_end,
    estimate_cost,
    format_time_left,
    port_forward_command,
)
from dynamo_wizard.tui.widgets.confirm import ConfirmDialog

from ..podfixtures import INSUFFICIENT_GPU, event, pod
from .provision_host import ProvisionHost, ReviewStandIn, ScriptedRunner, example_plan
from .waiting import wait_until

STEPS = [("cluster", "EKS cluster"), ("efs", "EFS file system"), ("platform", "Dynamo platform"),
         ("download", "Model download"), ("smoke", "Smoke test")]


def happy_events() -> list[Any]:
    out: list[Any] = []
    for step_id, title in STEPS:
        out.append(StepStarted(step_id, title))
        out.extend(StepOutput(step_id, f"{step_id} line {i}") for i in range(50))
        out.append(StepFinished(step_id, "done", elapsed=3.0))
    out.append(RunFinished(ok=True, summary="serving"))
    return out


def failing_events() -> list[Any]:
    return [
        StepStarted("cluster", "EKS cluster"),
        StepFinished("cluster", "skipped"),
        StepStarted("efs", "EFS file system"),
        StepStarted("platform", "Dynamo platform"),
        *[StepOutput("platform", f"helm: line {i}") for i in range(20)],
        StepOutput("platform", "Error: INSTALLATION FAILED: chart dynamo-platform-9.9.9 not found"),
        StepOutput("platform", "failed: helm upgrade --install exited 1"),
        StepFinished("platform", "failed", elapsed=41.0, error="helm upgrade --install exited 1",
                     fix="use a Dynamo release that exists (dynamo.release in the plan)"),
        StepFinished("efs", "done", elapsed=50.0),
        StepFinished("download", "blocked", error="waits on Dynamo platform"),
        StepFinished("smoke", "blocked", error="waits on Dynamo platform"),
        RunFinished(ok=False, summary="1 step failed"),
    ]


async def test_a_run_to_the_end_shows_the_endpoint_port_forward_and_cost(tmp_path: Path) -> None:
    plan = example_plan("agg")
    runner = ScriptedRunner(STEPS, happy_events())
    app = ProvisionHost(lambda: ProvisionScreen(plan, lambda p: runner, log_dir=tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.provision
        await wait_until(pilot, lambda: screen.state == "done", what="the run to finish")
        assert [s.status for s in screen.step_list.states.values()] == ["done"] * 5
        assert port_forward_command(plan) == "kubectl -n dynamo-system port-forward svc/demo-agg-agg-frontend 8000:8000"
        assert port_forward_command(plan) in screen.result_plain
        assert "http://localhost:8000/v1" in screen.result_plain
        cost = estimate_cost(plan, app.catalog)
        assert cost is not None and cost.total_per_hour is not None
        assert f"${cost.total_per_hour:,.2f}/h (1 x g6e.2xlarge at $" in screen.result_plain
        assert f"≈ ${cost.total_per_hour:,.2f}/h" in screen.header_text()
        assert "serving" in screen.header_text() and "5/5 steps" in screen.header_text()
        # Every line reached its step's file.
        for step_id, _ in STEPS:
            lines = [x for x in (tmp_path / f"{step_id}.log").read_text().splitlines() if not x.startswith("===")]
            assert lines == [f"{step_id} line {i}" for i in range(50)]
        # Done: retry is not offered, clean up is.
        assert screen.check_action("retry", ()) is False and screen.check_action("cleanup", ()) is True


async def test_a_failure_shows_the_step_its_last_lines_the_error_and_the_fix_then_retry_resumes(tmp_path: Path) -> None:
    plan = example_plan("agg")
    runners = [ScriptedRunner(STEPS, failing_events()), ScriptedRunner(STEPS, happy_events())]
    made: list[ScriptedRunner] = []

    def factory(p: Any) -> ScriptedRunner:
        made.append(runners[len(made)])
        return made[-1]

    app = ProvisionHost(lambda: ProvisionScreen(plan, factory, log_dir=tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.provision
        await wait_until(pilot, lambda: screen.state == "failed", what="the failure")
        states = screen.step_list.states
        assert states["platform"].status == "failed" and states["efs"].status == "done"
        assert states["cluster"].status == "skipped"
        assert states["download"].status == "blocked" and states["smoke"].status == "blocked"
        text = screen.result_plain
        assert "✗ Dynamo platform failed" in text and "after 0:41" in text
        assert "helm upgrade --install exited 1" in text
        assert "dynamo.release" in text
        assert "Model download, Smoke test" in text
        assert "r retry" in text and "c clean up" in text
        # The failing step's pane is the one shown, and its last lines are there.
        assert screen.log_panes.shown_step == "platform"
        pane = screen.log_panes.pane("platform")
        assert pane is not None
        await wait_until(pilot, lambda: pane.line_count > 0 and pane.lines[-1].startswith("failed: helm upgrade"))
        assert "Error: INSTALLATION FAILED" in pane.lines[-2]
        assert "FAILED" in screen.header_text()

        await pilot.press("r")
        await wait_until(pilot, lambda: screen.state == "done", what="the resumed run")
        assert len(made) == 2
        assert all(s.status == "done" for s in states.values())
        # Both runs appended to the same log file.
        assert (tmp_path / "platform.log").read_text().count("=== Dynamo platform: started") == 2


async def test_quit_during_a_run_asks_then_stops_at_a_safe_point(tmp_path: Path) -> None:
    plan = example_plan("agg")
    runner = ScriptedRunner(STEPS, happy_events(), hold_after=30)
    app = ProvisionHost(lambda: ProvisionScreen(plan, lambda p: runner, log_dir=tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.provision
        steps = screen.step_list
        await wait_until(pilot, lambda: steps.status_of("cluster") == "running")
        await pilot.press("q")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        # "Keep going" is the default: Enter does not stop the run.
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is screen)
        assert screen.state == "running" and not runner.cancelled.is_set()

        await pilot.press("q")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.click("#confirm-yes")
        await wait_until(pilot, lambda: runner.cancelled.is_set())
        await wait_until(pilot, lambda: app.return_code is not None or not app.is_running, what="the app to exit")
    assert screen.state == "cancelled"
    assert steps.status_of("cluster") == "cancelled"


async def test_back_during_a_run_can_be_declined_and_back_after_failure_returns_to_the_plan(tmp_path: Path) -> None:
    plan = example_plan("agg")
    runner = ScriptedRunner(STEPS, failing_events(), hold_after=3)
    app = ProvisionHost(lambda: ProvisionScreen(plan, lambda p: runner, log_dir=tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.provision
        await wait_until(pilot, lambda: screen.state == "running" and runner.ran.is_set())
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("escape")  # the dialog's own cancel
        await wait_until(pilot, lambda: app.screen is screen)
        assert screen.state == "running"
        runner.hold_after = None
        screen.runner.cancel()  # type: ignore[union-attr]
        await wait_until(pilot, lambda: screen.state == "cancelled")
        await pilot.press("c")
        await wait_until(pilot, lambda: app.cleanup_requests == ["demo-agg"])
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, ReviewStandIn), what="back on the plan")


async def test_pods_from_a_watch_and_redacted_output(tmp_path: Path) -> None:
    plan = example_plan("agg")
    token = "hf_" + "a1B2c3D4" * 4
    register_secret(token)
    stop_seen = threading.Event()

    def watch(watched: Any, view: PodView, stop: threading.Event) -> None:
        assert watched is plan and view.namespace == "dynamo-system"
        view.pod_changed("ADDED", pod("demo-agg-agg-vllmdecodeworker-0", scheduled="False",
                                      scheduled_message=INSUFFICIENT_GPU))
        view.event_seen(event("demo-agg-agg-vllmdecodeworker-0", "FailedScheduling", INSUFFICIENT_GPU,
                              type="Warning"))
        stop.wait(30)
        stop_seen.set()

    events = [StepStarted("secret", "HF token Secret"), StepOutput("secret", f"token is {token}"),
              StepFinished("secret", "done", elapsed=1.0), RunFinished(ok=True)]
    runner = ScriptedRunner([("secret", "HF token Secret")], events)
    app = ProvisionHost(lambda: ProvisionScreen(plan, lambda p: runner, log_dir=tmp_path, pod_watch=watch))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.provision
        table = screen.pod_table
        await wait_until(pilot, lambda: "uid-demo-agg-agg-vllmdecodeworker-0" in table.pods)
        await wait_until(pilot, lambda: table.pods["uid-demo-agg-agg-vllmdecodeworker-0"].reason != "")
        assert table.pods["uid-demo-agg-agg-vllmdecodeworker-0"].reason.startswith("Insufficient nvidia.com/gpu")
        await wait_until(pilot, lambda: screen.state == "done")
        await wait_until(pilot, lambda: stop_seen.is_set(), what="the pod watch to stop when the run ends")
        pane = screen.log_panes.pane("secret")
        assert pane is not None
        await wait_until(pilot, lambda: pane.line_count > 0)
        assert token not in "\n".join(pane.lines) and "****" in "\n".join(pane.lines)
        assert token not in (tmp_path / "secret.log").read_text()


def test_capacity_block_time_left() -> None:
    plan = example_plan("p5-reserved")
    assert plan.reservation is not None
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    rid = plan.reservation.ids[0] if plan.reservation.ids else "cr-0123456789abcdef0"
    block = CapacityReservation(id=rid, instance_type="p5.48xlarge", zone="us-east-1a", total=2, available=2,
                                state="active", reservation_type="capacity-block",
                                start=now - timedelta(hours=1), end=now + timedelta(hours=23, minutes=10),
                                tags=dict(plan.reservation.tags))
    other = CapacityReservation(id="cr-0fffffffffffffff0", instance_type="p5.48xlarge", zone="us-east-1a", total=1,
                                available=1, state="active", reservation_type="capacity-block",
                                end=now + timedelta(hours=1))
    end = capacity_block_end(plan, [block, other] if not plan.reservation.tags else [block])
    assert end == now + timedelta(hours=23, minutes=10)
    assert format_time_left((end - now).total_seconds()) == "23h 10m"
    assert format_time_left(3 * 86400 + 7200) == "3d 2h" and format_time_left(-5) == "ended"
    assert capacity_block_end(example_plan("agg"), [block]) is None


async def test_the_header_shows_the_capacity_block_time_left(tmp_path: Path) -> None:
    plan = example_plan("p5-reserved")
    assert plan.reservation is not None
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    rid = plan.reservation.ids[0] if plan.reservation.ids else "cr-0123456789abcdef0"
    block = CapacityReservation(id=rid, instance_type="p5.48xlarge", zone="us-east-1a", total=2, available=2,
                                state="active", reservation_type="capacity-block", end=now + timedelta(hours=5),
                                tags=dict(plan.reservation.tags))
    runner = ScriptedRunner(STEPS, happy_events())
    app = ProvisionHost(lambda: ProvisionScreen(plan, lambda p: runner, log_dir=tmp_path, reservations=[block],
                                                clock=lambda: now.timestamp()))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.provision
        await wait_until(pilot, lambda: screen.state == "done")
        assert "block left 5h 00m" in screen.header_text()
        assert "Capacity Block ends in 5h 00m" in screen.result_plain


async def test_request_quit_when_idle_exits_at_once(tmp_path: Path) -> None:
    plan = example_plan("agg")
    runner = ScriptedRunner(STEPS, happy_events())
    app = ProvisionHost(lambda: ProvisionScreen(plan, lambda p: runner, log_dir=tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.provision
        await wait_until(pilot, lambda: screen.state == "done")
        screen.request_quit()
        await wait_until(pilot, lambda: not app.is_running, what="the app to exit")


class _SlowStopRunner(ScriptedRunner):
    """A run whose first stop request waits for a safe point that does not come (eksctl still working)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stop_calls: list[bool] = []

    def cancel(self, force: bool = False) -> None:  # type: ignore[override]
        self.stop_calls.append(force)
        if force:
            super().cancel()


async def test_quitting_again_while_stopping_offers_to_interrupt_now(tmp_path: Path) -> None:
    plan = example_plan("agg")
    runner = _SlowStopRunner(STEPS, happy_events(), hold_after=30)
    app = ProvisionHost(lambda: ProvisionScreen(plan, lambda p: runner, log_dir=tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.provision
        await wait_until(pilot, lambda: screen.step_list.status_of("cluster") == "running")
        await pilot.press("q")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.click("#confirm-yes")
        await wait_until(pilot, lambda: screen.state == "stopping" and runner.stop_calls == [False])
        assert not runner.cancelled.is_set()
        await pilot.press("q")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.click("#confirm-yes")
        await wait_until(pilot, lambda: runner.stop_calls == [False, True])
        await wait_until(pilot, lambda: not app.is_running, what="the app to exit after the forced stop")
