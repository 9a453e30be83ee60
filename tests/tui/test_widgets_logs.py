"""LogPanes under Pilot: batched flushes, bounded memory, every line on disk, auto-scroll that lets go."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from textual.app import App, ComposeResult

from dynamo_wizard.tui.widgets.log_panes import FLUSHES_PER_SECOND, LogBuffer, LogPanes, display_path

from .waiting import wait_until


class LogApp(App[None]):
    def __init__(self, log_dir: Path, max_lines: int = 10_000) -> None:
        super().__init__()
        self.log_dir = log_dir
        self.max_lines = max_lines

    def compose(self) -> ComposeResult:
        yield LogPanes(self.log_dir, max_lines=self.max_lines, id="logs")


def _file_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if not line.startswith("=== ")]


async def test_lines_from_a_thread_arrive_in_few_batched_flushes(tmp_path: Path) -> None:
    app = LogApp(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        panes = app.query_one(LogPanes)
        panes.start_step("cluster", "Create the EKS cluster")
        total = 20_000

        def produce() -> None:
            for i in range(total):
                panes.write_line("cluster", f"line {i}")

        started = time.monotonic()
        worker = threading.Thread(target=produce)
        worker.start()
        pane = panes.pane("cluster")
        assert pane is not None
        last = f"line {total - 1}"
        await wait_until(pilot, lambda: pane.line_count > 0 and pane.lines[-1] == last, what="the last line shown")
        elapsed = time.monotonic() - started
        worker.join()
        # One flush per timer tick, not one render per line.
        assert 1 <= panes.flush_count <= elapsed * FLUSHES_PER_SECOND + 2, (panes.flush_count, elapsed)
        # The pane keeps its newest max_lines, in order.
        assert pane.line_count == panes.max_lines
        assert list(pane.lines) == [f"line {i}" for i in range(total - panes.max_lines, total)]
        panes.buffer.take()
        assert _file_lines(panes.log_path("cluster")) == [f"line {i}" for i in range(total)]


async def test_memory_is_bounded_but_the_file_gets_every_line(tmp_path: Path) -> None:
    app = LogApp(tmp_path, max_lines=100)
    async with app.run_test(size=(100, 30)) as pilot:
        panes = app.query_one(LogPanes)
        panes.start_step("helm", "Install the Dynamo platform")
        for i in range(1_000):
            panes.write_line("helm", f"helm {i}")
        # Before the next flush the backlog is bounded too.
        assert sum(len(step.pending) for step in panes.buffer._steps.values()) <= 100
        pane = panes.pane("helm")
        assert pane is not None
        await wait_until(pilot, lambda: pane.line_count > 0 and pane.lines[-1] == "helm 999")
        for i in range(1_000, 1_500):
            panes.write_line("helm", f"helm {i}")
        await wait_until(pilot, lambda: pane.lines[-1] == "helm 1499")
        assert pane.line_count <= 100
        assert pane.lines[0] == "helm 1400"
        lines = _file_lines(panes.log_path("helm"))
        assert lines == [f"helm {i}" for i in range(1_500)]


async def test_auto_scroll_stops_when_the_user_scrolls_up_and_end_follows_again(tmp_path: Path) -> None:
    app = LogApp(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        panes = app.query_one(LogPanes)
        panes.start_step("download", "Download the model")
        pane = panes.pane("download")
        assert pane is not None
        for i in range(200):
            panes.write_line("download", f"dl {i}")
        await wait_until(pilot, lambda: pane.line_count == 200)
        await wait_until(pilot, lambda: pane.scroll_y == pane.max_scroll_y and pane.max_scroll_y > 0)
        pane.focus()
        while not pane.has_focus_within:  # focus() takes effect on a later message cycle
            await pilot.pause()
        await pilot.press("pageup")
        await wait_until(pilot, lambda: pane.scroll_y < pane.max_scroll_y)
        held = pane.scroll_y
        for i in range(200, 400):
            panes.write_line("download", f"dl {i}")
        await wait_until(pilot, lambda: pane.line_count == 400)
        await pilot.pause()
        assert pane.scroll_y == held, "the view moved while the user was reading"
        await pilot.press("end")
        await wait_until(pilot, lambda: pane.scroll_y == pane.max_scroll_y)
        for i in range(400, 500):
            panes.write_line("download", f"dl {i}")
        await wait_until(pilot, lambda: pane.line_count == 500 and pane.scroll_y == pane.max_scroll_y)


async def test_each_step_has_its_pane_with_the_file_path_in_its_border(tmp_path: Path) -> None:
    app = LogApp(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        panes = app.query_one(LogPanes)
        panes.start_step("efs", "EFS file system")
        panes.start_step("platform", "Dynamo platform")
        panes.write_line("efs", "creating file system")
        panes.write_line("platform", "helm upgrade --install")
        panes.write_line("platform", "10%\r50%\r100%")
        await pilot.pause()
        efs, platform = panes.pane("efs"), panes.pane("platform")
        assert efs is not None and platform is not None
        await wait_until(pilot, lambda: platform.line_count == 2 and efs.line_count == 1)
        assert efs.border_title == "EFS file system"
        assert str(efs.border_subtitle).endswith("efs.log")
        assert efs.log_path == tmp_path / "efs.log" and efs.log_path.exists()
        # The first step is shown; the other is hidden until chosen.
        assert panes.shown_step == "efs" and efs.display and not platform.display
        panes.show("platform")
        await pilot.pause()
        assert platform.display and not efs.display
        # A progress bar's carriage returns show as its last state; the file keeps the raw line.
        assert platform.lines[-1] == "100%"
        assert b"10%\r50%\r100%" in (tmp_path / "platform.log").read_bytes()
        assert panes.tail("platform", 5) == ["helm upgrade --install", "100%"]


def test_buffer_writes_from_many_threads_lose_nothing(tmp_path: Path) -> None:
    buffer = LogBuffer(tmp_path, max_pending=50)
    def produce(n: int) -> None:
        for i in range(2_000):
            buffer.append(f"s{n}", f"{n}:{i}")

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    taken = buffer.take()
    assert all(len(lines) == 50 for lines in taken.values())
    for n in range(4):
        assert buffer.lines_written(f"s{n}") == 2_000
        assert (tmp_path / f"s{n}.log").read_text().splitlines() == [f"{n}:{i}" for i in range(2_000)]
    buffer.close()


def test_display_path_keeps_the_file_name() -> None:
    long = Path("/very/long/state/directory/" + "x" * 80 + "/deployments/demo/logs/cluster.log")
    shown = display_path(long, limit=40)
    assert len(shown) == 40 and shown.startswith("…") and shown.endswith("logs/cluster.log")
    assert display_path(Path.home() / "a.log") == "~/a.log"


# --------------------------------------------------------------------------------------------------
# Under a flood: bounded work a tick, cheap measuring that still measures what Log shows


def test_line_width_is_what_log_shows() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from rich.cells import cell_len
    from textual.widgets import Log

    from dynamo_wizard.tui.widgets.log_panes import line_width

    def shown_width(line: str) -> int:
        return cell_len(Log._process_line(line))

    for line in ["", "plain ascii", "2026-11-28 18:00:00 [ℹ]  waiting for CloudFormation stack", "a\tb\t\tc",
                 "\x1b[31mred\x1b[0m", "日本語のログ abc", "e\u0301", "👨\u200d👩\u200d👧 family", "1\ufe0f⃣", "█" * 700,
                 "x" * 600 + "ℹ", "\t日本\x07"]:
        assert line_width(line) == shown_width(line), line

    @settings(max_examples=150, deadline=None)
    @given(st.text(alphabet=st.characters(codec="utf-8"), max_size=80)
           | st.text(alphabet="ab \t\x1b\x07ℹ日█\u200d\ufe0f\u0301", max_size=40))
    def same(line: str) -> None:
        assert line_width(line) == shown_width(line)

    same()


def test_buffer_take_with_a_limit_leaves_the_rest_in_order(tmp_path: Path) -> None:
    buffer = LogBuffer(tmp_path, max_pending=1_000)
    for i in range(250):
        buffer.append("a", f"a{i}")
    for i in range(30):
        buffer.append("b", f"b{i}")
    first = buffer.take(limit=100)
    assert first == {"a": [f"a{i}" for i in range(100)], "b": [f"b{i}" for i in range(30)]}
    assert buffer.take(limit=100) == {"a": [f"a{i}" for i in range(100, 200)]}
    buffer.append("b", "b30")
    assert buffer.take(limit=100) == {"a": [f"a{i}" for i in range(200, 250)], "b": ["b30"]}
    assert buffer.take(limit=100) == {}
    buffer.close()


async def test_a_tick_moves_a_bounded_number_of_lines(tmp_path: Path, monkeypatch: Any) -> None:
    import dynamo_wizard.tui.widgets.log_panes as log_panes

    monkeypatch.setattr(log_panes, "FLUSH_MAX_LINES", 300)
    app = LogApp(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        panes = app.query_one(LogPanes)
        panes.start_step("cluster", "Create the EKS cluster")
        pane = panes.pane("cluster")
        assert pane is not None
        batches: list[int] = []
        real_append = pane.append_lines

        def append_lines(lines: list[str]) -> None:
            batches.append(len(lines))
            real_append(lines)

        pane.append_lines = append_lines  # type: ignore[method-assign]
        for i in range(2_000):
            panes.write_line("cluster", f"line {i}")
        await wait_until(pilot, lambda: pane.line_count == 2_000, what="every line")
        assert max(batches) <= 300 and len(batches) >= 7, batches
        assert list(pane.lines) == [f"line {i}" for i in range(2_000)]
        # An explicit flush (the end of a run) still moves everything at once.
        for i in range(2_000, 3_000):
            panes.write_line("cluster", f"line {i}")
        panes.flush()
        assert pane.line_count == 3_000 and batches[-1] == 1_000


def test_file_writes_are_batched_but_nothing_is_left_behind(tmp_path: Path) -> None:
    from dynamo_wizard.tui.widgets.log_panes import WRITE_BATCH_LINES

    buffer = LogBuffer(tmp_path)
    buffer.start("efs", "EFS file system", at=0)
    for i in range(WRITE_BATCH_LINES + 10):
        buffer.append("efs", f"efs {i}")
    # Whole batches go to the file as they fill; a flush (take) or close writes the rest, in order.
    buffer.append("efs", "last")
    buffer.close()
    on_disk = (tmp_path / "efs.log").read_text().splitlines()
    assert on_disk[0].startswith("=== EFS file system: started")
    assert on_disk[1:] == [
        *(f"efs {i}" for i in range(WRITE_BATCH_LINES + 10)), "last"]


async def test_pane_lines_are_drawn_as_log_draws_them(tmp_path: Path) -> None:
    from textual.widgets import Log

    from dynamo_wizard.tui.widgets.log_panes import line_width

    app = LogApp(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        panes = app.query_one(LogPanes)
        panes.start_step("cluster", "Create the EKS cluster")
        lines = ["plain", "2026-11-28 18:00:00 [ℹ]  waiting for CloudFormation stack", "a\tb", "\x1b[31mred",
                 "日本語のログ", "👨\u200d👩 family", " "]
        for line in lines:
            panes.write_line("cluster", line)
        pane = panes.pane("cluster")
        assert pane is not None
        await wait_until(pilot, lambda: pane.line_count == len(lines))
        style = pane.rich_style
        for y in range(len(lines)):
            ours = pane._render_line_strip(y, style)
            theirs = Log._render_line_strip(pane, y, style)
            # (segment boundaries may differ; every character and its style may not)
            assert [(char, segment.style) for segment in ours for char in segment.text] == [
                (char, segment.style) for segment in theirs for char in segment.text], lines[y]
            assert ours.cell_length == theirs.cell_length == line_width(pane.lines[y]), lines[y]


async def test_a_full_pane_still_shows_the_newest_lines(tmp_path: Path) -> None:
    # Textual's Log, once it holds max_lines and follows the end, repaints only lines past the end after
    # a write: the screen keeps showing old lines. The panes must show the newest.
    app = LogApp(tmp_path, max_lines=100)
    async with app.run_test(size=(100, 30)) as pilot:
        panes = app.query_one(LogPanes)
        panes.start_step("cluster", "Create the EKS cluster")
        pane = panes.pane("cluster")
        assert pane is not None
        for batch in range(5):
            last = f"flood line {(batch + 1) * 150 - 1}"
            for i in range(batch * 150, (batch + 1) * 150):
                panes.write_line("cluster", f"flood line {i}")

            def arrived(last: str = last) -> bool:
                return pane.line_count > 0 and pane.lines[-1] == last

            await wait_until(pilot, arrived)
            await pilot.pause()
            screen = app.export_screenshot().replace("&#160;", " ")
            assert last in screen, f"batch {batch}: the screen is stale"
