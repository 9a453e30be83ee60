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
        while not steps.has_focus_within:  # focus() takes effect on a later message cycle
            await pilot.pause()
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


# --------------------------------------------------------------------------------------------------
# PodTable under load: what keeps frames short must not change what is shown


def _cells_of(strip: Any) -> list[tuple[str, Any]]:
    """A rendered line as (character, style) pairs: segment boundaries differ, what shows must not."""
    return [(char, segment.style) for segment in strip for char in segment.text]


async def test_pod_table_lean_lines_are_what_datatable_draws() -> None:
    from textual.coordinate import Coordinate
    from textual.widgets import DataTable

    app = PodApp(Clock(90.0))
    async with app.run_test(size=(120, 14)) as pilot:
        table = app.query_one(PodTable)
        table.set_rows([
            _row("a" * 40),  # cut in the middle
            _row("b", reason="Insufficient nvidia.com/gpu; " * 12, warning=True),  # cut with an ellipsis
            _row("c", status="Running", phase="Running", ready=1, node="i-0abc", restarts=3),
            _row("日本語のポッド", reason="理由 " * 30),  # wide characters
            _row("e", status="CrashLoopBackOff", reason="last exit: OOMKilled (exit code 137) ×3", warning=True),
        ])
        await pilot.pause()
        compared = 0
        for focused in (False, True):
            if focused:
                table.focus()
            for cursor_row, hover_row in ((0, 2), (1, 1), (3, -1), (4, 0)):
                table.cursor_coordinate = Coordinate(cursor_row, 0)
                table.hover_coordinate = Coordinate(hover_row, 1)
                table._show_hover_cursor = True
                await pilot.pause()
                table._pseudo_class_state = table.get_pseudo_class_state()
                for y in range(0, 7):  # the header, five rows, a line past the end
                    for x1, x2 in ((0, 118), (5, 60), (30, 118)):  # scrolled sideways too
                        ours = table._render_line(y, x1, x2, table.rich_style)
                        theirs = DataTable._render_line(table, y, x1, x2, table.rich_style)
                        assert _cells_of(ours) == _cells_of(theirs), (focused, cursor_row, hover_row, y, x1, x2)
                        compared += 1
        assert compared == 2 * 4 * 7 * 3


async def test_pod_table_one_changed_pod_repaints_one_line() -> None:
    app = PodApp(Clock(90.0))
    async with app.run_test(size=(160, 30)) as pilot:
        table = app.query_one(PodTable)
        table.set_rows([_row(f"p{i}") for i in range(20)])
        await pilot.pause()
        await pilot.pause()
        drawn: list[int] = []
        real_render_line = table.render_line

        def render_line(y: int) -> Any:
            drawn.append(y)
            return real_render_line(y)

        table.render_line = render_line  # type: ignore[method-assign]
        table.apply_changes({"uid-p7": _row("p7", restarts=2)})
        await wait_until(pilot, lambda: drawn, what="a repaint")
        await pilot.pause()
        assert drawn == [1 + 7], drawn  # the header is line 0
        assert "2" in table.render_line(1 + 7).text


async def test_pod_table_counts_in_the_border_follow_without_a_full_repaint() -> None:
    app = PodApp(Clock(90.0))
    async with app.run_test(size=(120, 12)) as pilot:
        table = app.query_one(PodTable)
        table.set_rows([_row("a"), _row("b")])
        await pilot.pause()

        def border() -> str:
            return app.export_screenshot().replace("&#160;", " ")

        assert "2 pods · 0 ready · 2 pending" in border()
        table.set_rows([_row("a", status="Running", phase="Running", ready=1), _row("b")])
        await pilot.pause()
        assert str(table.border_subtitle) == "2 pods · 1 ready · 1 pending"
        assert "2 pods · 1 ready · 1 pending" in border(), "the border line was not repainted"


async def test_pod_table_big_listing_arrives_in_chunks_in_order(monkeypatch: Any) -> None:
    import dynamo_wizard.tui.widgets.pod_table as pod_table

    monkeypatch.setattr(pod_table, "FRAME_BUDGET", 0.0)  # every chunk is MIN_CHUNK changes
    app = PodApp(Clock(90.0))
    async with app.run_test(size=(160, 30)) as pilot:
        table = app.query_one(PodTable)
        count = 10 * pod_table.MIN_CHUNK + 5
        table.apply_changes({f"uid-p{i}": _row(f"p{i}") for i in range(count)})
        # One frame's worth now, the rest after the frames that follow.
        assert table.row_count == pod_table.MIN_CHUNK
        table.apply_changes({"uid-p600": _row("p600", reason="changed while waiting"),
                             "uid-p3": _row("p3", restarts=1)})
        await wait_until(pilot, lambda: table.row_count == count, what="every row")
        await pilot.pause()
        assert [str(key.value) for key in table.rows] == [f"uid-p{i}" for i in range(count)]
        assert table.row_texts("uid-p600")["reason"] == "changed while waiting"
        assert table.row_texts("uid-p3")["restarts"] == "1"
        # The size (scroll range) is set once everything is in: header + every row.
        await wait_until(pilot, lambda: table.virtual_size.height == count + 1, what="the final size")
        assert table.max_scroll_y > 0
        assert str(table.border_subtitle).startswith(f"{count} pods · 0 ready · {count} pending")


async def test_pod_table_keeps_frames_short_under_a_stream_of_changes() -> None:
    # A small version of bench/pod_table.py: 500 pods, a feeder thread changing 1,000 of them a second;
    # the event loop must never be stuck for long (generous bound: this machine is shared).
    app = PodApp(Clock(time.time()))
    async with app.run_test(size=(160, 40)) as pilot:
        table = app.query_one(PodTable)
        view = PodView()
        table.attach(view)
        for i in range(500):
            view.pod_changed("ADDED", pod(f"p{i}"))
        await wait_until(pilot, lambda: len(table.pods) == 500, timeout=20, what="the listing")
        stop = threading.Event()

        def feed() -> None:
            n = 0
            while not stop.is_set():
                for _ in range(10):
                    view.pod_changed("MODIFIED", pod(f"p{(n * 7) % 500}", phase="Running", node="i-1",
                                                     restarts=n % 5, scheduled="True"))
                    n += 1
                stop.wait(0.01)

        lags: list[float] = []
        last = time.perf_counter()

        def beat() -> None:
            nonlocal last
            now = time.perf_counter()
            lags.append(now - last - 0.01)
            last = now

        app.set_interval(0.01, beat)
        feeder = threading.Thread(target=feed)
        feeder.start()
        try:
            await wait_until(pilot, lambda: len(lags) >= 150, timeout=30, what="150 heartbeats")
        finally:
            stop.set()
            feeder.join()
        lags.sort()
        assert lags[len(lags) // 2] < 0.05, lags[len(lags) // 2]  # the median frame: short
        assert table.render_batches > 5


async def test_pod_table_many_pods_gone_at_once_keeps_rows_and_lines_right() -> None:
    from textual.coordinate import Coordinate

    app = PodApp(Clock(90.0))
    async with app.run_test(size=(160, 20)) as pilot:
        table = app.query_one(PodTable)
        table.set_rows([_row(f"p{i:03d}") for i in range(300)])
        await wait_until(pilot, lambda: table.row_count == 300, what="the listing")
        table.cursor_coordinate = Coordinate(299, 0)
        started = time.monotonic()
        # In one snapshot: two pods in three go, some change, new ones come.
        kept = [i for i in range(300) if i % 3 == 0]
        table.set_rows([_row(f"p{i:03d}", restarts=1 if i % 2 else 0) for i in kept]
                       + [_row(f"new{i}") for i in range(5)])
        expected = [f"uid-p{i:03d}" for i in kept] + [f"uid-new{i}" for i in range(5)]
        await wait_until(pilot, lambda: table.row_count == len(expected), what="the removals")
        assert time.monotonic() - started < 5  # DataTable's own removals: seconds for a few hundred
        await pilot.pause()
        assert [str(row.key.value) for row in table.ordered_rows] == expected
        assert all(table.get_row_index(uid) == index for index, uid in enumerate(expected))
        assert table.cursor_row == len(kept) - 1  # clamped to what was left (the new rows come after)
        table.scroll_home(animate=False)
        await pilot.pause()
        assert "p003" in table.render_line(2).text and table.row_texts("uid-p003")["restarts"] == "1"
        assert str(table.border_subtitle).startswith(f"{len(expected)} pods")
        await wait_until(pilot, lambda: table.virtual_size.height == len(expected) + 1, what="the new size")
