"""StepList, PodTable and ConfirmDialog under Pilot."""

from __future__ import annotations

import threading
import time
from typing import Any

from textual.app import App, ComposeResult
from textual.widgets import Button, Input

from dynamo_wizard.core.podview import PodRow, PodView
from dynamo_wizard.tui.widgets.confirm import ConfirmDialog
from dynamo_wizard.tui.widgets.pod_table import RENDERS_PER_SECOND, PodTable
from dynamo_wizard.tui.widgets.step_list import StepList, format_elapsed

from ..podfixtures import INSUFFICIENT_GPU, event, pod
from .waiting import wait_until


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --------------------------------------------------------------------------------------------------
# StepList


class StepApp(App[None]):
    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock
        self.selected: list[tuple[str, bool]] = []

    def compose(self) -> ComposeResult:
        yield StepList([("cluster", "EKS cluster"), ("efs", "EFS file system"), ("helm", "Dynamo platform"),
                        ("download", "Model download"), ("graph", "Graph")], clock=self.clock)

    def on_step_list_step_selected(self, message: StepList.StepSelected) -> None:
        self.selected.append((message.step_id, message.by_user))


async def test_step_list_shows_each_status_and_a_live_elapsed_timer() -> None:
    clock = Clock(1_000.0)
    app = StepApp(clock)
    async with app.run_test(size=(60, 20)) as pilot:
        steps = app.query_one(StepList)
        assert steps.row_text("cluster").startswith("· EKS cluster")
        steps.step_started("cluster", "EKS cluster", at=1_000.0)
        clock.now = 1_065.0
        steps.tick()
        assert steps.row_text("cluster").startswith("▶ EKS cluster") and steps.row_text("cluster").endswith("1:05")
        clock.now = 1_070.0
        steps.tick()  # the timer's own tick, called once here rather than waiting a second
        assert steps.row_text("cluster").endswith("1:10")
        steps.step_finished("cluster", "done", elapsed=905.0)
        clock.now = 5_000.0
        steps.tick()
        assert steps.row_text("cluster").startswith("✓") and steps.row_text("cluster").endswith("15:05")
        steps.step_finished("efs", "skipped")
        assert steps.row_text("efs").endswith("present")
        steps.step_started("helm", "Dynamo platform", at=4_990.0)
        steps.step_finished("helm", "failed", elapsed=12.0, error="helm exited 1", fix="check the chart version")
        assert steps.row_text("helm").startswith("✗") and steps.states["helm"].error == "helm exited 1"
        steps.step_finished("download", "blocked", error="waits on helm")
        assert steps.row_text("download").startswith("⊘") and steps.row_text("download").endswith("blocked")
        steps.step_finished("graph", "cancelled")
        assert steps.row_text("graph").startswith("■") and steps.row_text("graph").endswith("stopped")
        assert steps.counts() == {"done": 1, "skipped": 1, "failed": 1, "blocked": 1, "cancelled": 1}
        # A resumed run: what did not finish well is pending again, what is done stays done.
        steps.reset_unfinished()
        assert [s.status for s in steps.states.values()] == ["done", "skipped", "pending", "pending", "pending"]
        await pilot.pause()


async def test_step_list_timer_moves_by_itself() -> None:
    clock = Clock(0.0)
    app = StepApp(clock)
    async with app.run_test(size=(60, 20)) as pilot:
        steps = app.query_one(StepList)
        steps.step_started("efs", "EFS file system", at=0.0)
        clock.now = 42.0
        await wait_until(pilot, lambda: steps.row_text("efs").endswith("0:42"), timeout=3,
                         what="the once-a-second tick")


async def test_keyboard_selection_is_the_users_and_follow_is_not() -> None:
    app = StepApp(Clock(0.0))
    async with app.run_test(size=(60, 20)) as pilot:
        steps = app.query_one(StepList)
        steps.follow("helm")
        await wait_until(pilot, lambda: ("helm", False) in app.selected)
        steps.focus()
        await pilot.press("down")
        await wait_until(pilot, lambda: ("download", True) in app.selected)
        assert steps.selected_step == "download"
        await pilot.press("up", "up")
        await wait_until(pilot, lambda: ("efs", True) in app.selected)


def test_format_elapsed() -> None:
    assert [format_elapsed(s) for s in (0, 7.9, 65, 3599, 3723)] == ["0:00", "0:07", "1:05", "59:59", "1:02:03"]


# --------------------------------------------------------------------------------------------------
# PodTable


class PodApp(App[None]):
    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock

    def compose(self) -> ComposeResult:
        yield PodTable(clock=self.clock)


def _row(name: str, **kw: Any) -> PodRow:
    base: dict[str, Any] = dict(uid=f"uid-{name}", namespace="dynamo-system", name=name, ready=0, total=1,
                                status="Pending", phase="Pending", restarts=0, node="", created_at=0.0,
                                reason="", warning=False)
    base.update(kw)
    return PodRow(**base)


async def test_pod_table_updates_by_diff_keyed_by_uid() -> None:
    app = PodApp(Clock(90.0))
    async with app.run_test(size=(160, 20)) as pilot:
        table = app.query_one(PodTable)
        table.set_rows([_row("a"), _row("b"), _row("c")])
        assert [str(k.value) for k in table.rows] == ["uid-a", "uid-b", "uid-c"]
        calls: list[tuple[str, str]] = []
        added: list[str] = []
        removed: list[str] = []
        real_update, real_add, real_remove = table.update_cell, table.add_row, table.remove_row

        def update_cell(row_key: Any, column_key: Any, value: Any, **kw: Any) -> None:
            calls.append((str(row_key), str(column_key)))
            real_update(row_key, column_key, value, **kw)

        def add_row(*cells: Any, **kw: Any) -> Any:
            added.append(kw["key"])
            return real_add(*cells, **kw)

        def remove_row(row_key: Any) -> None:
            removed.append(str(row_key))
            real_remove(row_key)

        table.update_cell = update_cell  # type: ignore[method-assign]
        table.add_row = add_row  # type: ignore[method-assign]
        table.remove_row = remove_row  # type: ignore[method-assign]

        # One pod's reason changes: one cell is updated, nothing added or removed.
        table.set_rows([_row("a"), _row("b", reason="Insufficient nvidia.com/gpu", warning=True), _row("c")])
        assert sorted(calls) == [("uid-b", "reason"), ("uid-b", "status")]
        assert not added and not removed
        calls.clear()
        # b runs, c goes, d arrives.
        table.set_rows([_row("a"), _row("b", status="Running", phase="Running", ready=1, node="i-0abc"), _row("d")])
        assert removed == ["uid-c"] and added == ["uid-d"]
        assert {c for r, c in calls if r == "uid-b"} == {"ready", "status", "reason", "node"}
        assert all(r == "uid-b" for r, _ in calls)
        assert table.row_count == 3
        assert table.row_texts("uid-b")["status"] == "Running" and table.row_texts("uid-b")["node"] == "i-0abc"
        assert table.row_texts("uid-a")["age"] == "90s"
        await pilot.pause()


async def test_pod_table_rendered_lines_follow_changed_cells() -> None:
    # The table reuses rendered cells and lines while their values are unchanged: a change must show.
    app = PodApp(Clock(90.0))
    async with app.run_test(size=(160, 20)) as pilot:
        table = app.query_one(PodTable)
        table.set_rows([_row("a"), _row("b")])
        await pilot.pause()

        def line(uid: str) -> str:
            return table.render_line(1 + table.get_row_index(uid)).text  # line 0 is the header

        assert "Pending" in line("uid-b") and "i-0abc" not in line("uid-b")
        before_a = line("uid-a")
        table.set_rows([_row("a"), _row("b", status="Running", phase="Running", ready=1, node="i-0abc",
                                         reason="Started container main")])
        await pilot.pause()
        assert "Running" in line("uid-b") and "1/1" in line("uid-b") and "Started container main" in line("uid-b")
        assert line("uid-a") == before_a
        table.apply_changes({"uid-a": None})
        await pilot.pause()
        assert "Running" in line("uid-b") and table.row_count == 1


async def test_pod_table_shows_why_a_pod_is_pending() -> None:
    app = PodApp(Clock(time.time()))
    async with app.run_test(size=(200, 20)) as pilot:
        table = app.query_one(PodTable)
        view = PodView(namespace="dynamo-system")
        table.attach(view)
        view.pod_changed("ADDED", pod("demo-worker-0", scheduled="False", scheduled_message=INSUFFICIENT_GPU))
        view.event_seen(event("demo-worker-0", "Nominated", "Pod should schedule on: nodeclaim/gpu-ggsvc"))
        await wait_until(pilot, lambda: "uid-demo-worker-0" in table.pods)
        await wait_until(pilot, lambda: "nodeclaim/gpu-ggsvc" in table.row_texts("uid-demo-worker-0")["reason"])
        texts = table.row_texts("uid-demo-worker-0")
        assert texts["status"] == "Pending" and texts["ready"] == "0/1" and texts["node"] == "—"
        assert texts["reason"].startswith("Insufficient nvidia.com/gpu")
        assert "1 pending" in str(table.border_subtitle)


async def test_pod_table_renders_at_a_bounded_rate_whatever_the_event_rate() -> None:
    app = PodApp(Clock(time.time()))
    async with app.run_test(size=(160, 30)) as pilot:
        table = app.query_one(PodTable)
        view = PodView()
        table.attach(view)
        pods = 300
        rounds = 20

        def watch() -> None:
            for r in range(rounds):
                for i in range(pods):
                    view.pod_changed("MODIFIED", pod(f"p{i}", phase="Running", node="i-1", ready=0,
                                                     restarts=r, scheduled="True"))

        started = time.monotonic()
        feeder = threading.Thread(target=watch)
        feeder.start()
        await wait_until(pilot, lambda: len(table.pods) == pods
                         and all(p.restarts == rounds - 1 for p in table.pods.values()), timeout=30)
        elapsed = time.monotonic() - started
        feeder.join()
        # 6,000 pod updates, applied in batches no more often than the render rate allows.
        assert table.render_batches <= elapsed * RENDERS_PER_SECOND + 2, (table.render_batches, elapsed)
        assert table.row_count == pods
        assert table.row_texts("uid-p7")["restarts"] == str(rounds - 1)


# --------------------------------------------------------------------------------------------------
# ConfirmDialog


class ConfirmApp(App[None]):
    def __init__(self, dialog: ConfirmDialog) -> None:
        super().__init__()
        self.dialog = dialog
        self.answers: list[bool | None] = []

    def on_mount(self) -> None:
        self.push_screen(self.dialog, self.answers.append)


async def test_typed_confirmation_needs_the_exact_name() -> None:
    app = ConfirmApp(ConfirmDialog("Delete demo-agg?", "Everything it created goes.", confirm_label="Delete",
                                   require_text="demo-agg", destructive=True))
    async with app.run_test(size=(100, 30)) as pilot:
        dialog = app.dialog
        yes = dialog.query_one("#confirm-yes", Button)
        assert yes.disabled
        await pilot.press(*"demo")
        await pilot.press("enter")
        await pilot.pause()
        assert app.answers == [] and yes.disabled
        assert "not demo-agg" in str(dialog.query_one("#confirm-hint").render())
        await pilot.press(*"-agg")
        await wait_until(pilot, lambda: not yes.disabled)
        assert dialog.query_one("#confirm-input", Input).value == "demo-agg"
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.answers == [True])


async def test_plain_confirmation_defaults_to_no_and_escape_cancels() -> None:
    app = ConfirmApp(ConfirmDialog("Stop?", "The run stops at a safe point."))
    async with app.run_test(size=(100, 30)) as pilot:
        assert app.focused is not None and app.focused.id == "confirm-no"
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.answers == [False])

    app2 = ConfirmApp(ConfirmDialog("Stop?", "The run stops at a safe point.", confirm_label="Stop"))
    async with app2.run_test(size=(100, 30)) as pilot:
        await pilot.click("#confirm-yes")
        await wait_until(pilot, lambda: app2.answers == [True])
