"""One live log pane per step, fast under a flood (toolong's way).

- Lines arrive from any thread (`LogPanes.write_line`, called by the runner's listener in its worker
  thread) into a `LogBuffer`: no Textual message per line, which would swamp the event loop at 10,000
  lines a second.
- Every line goes to the step's log file on disk (the full log, whatever the screen keeps), written
  `WRITE_BATCH_LINES` at a time and at every flush, so the producer's thread holds the GIL briefly.
- A timer moves what accumulated into the `Log` widgets at most `FLUSHES_PER_SECOND` times a second, one
  `write_lines` per pane per flush, so the cost of rendering does not grow with the input rate. A tick
  moves at most `FLUSH_MAX_LINES` lines (the rest at the next ticks), so a burst never makes one long
  frame that keys wait behind (bench/log_pane.py: key latency under a 10,000 lines/s flood).
- Lines are measured (new ones for the horizontal scroll range, drawn ones for their strip) without
  rich's per-character loop (`line_width`: ~10x faster on a line with one non-ASCII character), and a
  frame looks the pane's style up once, not once a line.
- Memory is bounded: a pane keeps `max_lines`, and lines waiting for the next flush are bounded too (the
  oldest are dropped from the screen, never from the file).
- `Log`, not `RichLog`: plain text lines are cheap to store and render.
- Auto-scroll follows the end only while the view is at the end: scroll up to read and it stays put;
  `end` follows again.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.geometry import Region
from textual.strip import Strip
from textual.widgets import Log

FLUSHES_PER_SECOND = 20
FLUSH_MAX_LINES = 2_000
"""Lines one timer tick moves to the panes: 40,000 lines/s, four times the flood the panes are built for."""
WRITE_BATCH_LINES = 256
"""Lines gathered before a write to the step's file (the files are also written at every flush)."""
DEFAULT_MAX_LINES = 10_000
TAIL_LINES = 40
"""Lines kept per step for the failure summary, independent of the panes."""
SHOWN_LINE_MAX = 2_000
"""Characters of one line kept in memory for the screen (the file gets the whole line)."""

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def log_file_name(step_id: str) -> str:
    return (_SAFE_NAME.sub("_", step_id).strip("._") or "step") + ".log"


def display_path(path: Path, limit: int = 64) -> str:
    """A path short enough for a border: home as ~, and the head elided (the file name matters most)."""
    text = str(path)
    home = str(Path.home())
    if home not in ("", "/") and text.startswith(home + "/"):
        text = "~" + text[len(home):]
    return text if len(text) <= limit else "…" + text[-(limit - 1):]


def _for_screen(line: str) -> str:
    # Progress bars redraw with carriage returns; the screen shows the last state of the line.
    if "\r" in line:
        line = line.rstrip("\r").rsplit("\r", 1)[-1]
    return line if len(line) <= SHOWN_LINE_MAX else line[:SHOWN_LINE_MAX] + "…"


_PRINTABLE_ASCII_RUNS = re.compile(r"[\x20-\x7e]+")
_NON_ASCII_RUN = re.compile(r"([^\x00-\x7f]+)")
_CONTEXTUAL = re.compile("[\x00-\x1f\u200d\ufe0f]")
"""Tabs and control codes (Log replaces them), and the zero-width joiner and variation selector 16, whose
width depends on their neighbours."""


def line_width(line: str) -> int:
    """Cells a line takes on the screen, as `Log` shows it: rich's `cell_len` of the line with tabs
    expanded and control codes replaced, without rich's Python loop over every character.

    Printable ASCII is one cell a character; the other characters are measured by rich as one string,
    which its cache makes free when it recurs (eksctl's `ℹ`, a progress bar's blocks)."""
    if line.isascii() and line.isprintable():
        return len(line)
    rest = _PRINTABLE_ASCII_RUNS.sub("", line)
    if _CONTEXTUAL.search(rest):
        line = Log._process_line(line)
        rest = _PRINTABLE_ASCII_RUNS.sub("", line)
        if "\u200d" in rest or "\ufe0f" in rest:
            return cell_len(line)
    return len(line) - len(rest) + cell_len(rest)  # cell_len caches short strings


@dataclass
class _StepLog:
    path: Path
    pending: deque[str]
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    file: IO[str] | None = None
    lines_written: int = 0
    unwritten: list[str] = field(default_factory=list)
    """Lines for the file not written yet (written a batch at a time: one write call per line costs the
    producer's thread as much as the rest of `append`)."""
    dirty: bool = False


class LogBuffer:
    """Thread-safe sink for step output: every line to the step's file, a bounded backlog for the screen.

    Knows nothing of Textual, so the headless CLI could write the same files with it.
    """

    def __init__(self, log_dir: Path, max_pending: int = DEFAULT_MAX_LINES, write_files: bool = True) -> None:
        self.log_dir = Path(log_dir)
        self.max_pending = max_pending
        self.write_files = write_files
        """False when the producer writes the files itself (core.runner does): then paths are its paths."""
        self._lock = threading.Lock()
        self._steps: dict[str, _StepLog] = {}
        self._ready = False  # any step with lines waiting for the screen

    def _step(self, step_id: str) -> _StepLog:
        step = self._steps.get(step_id)
        if step is None:
            step = _StepLog(path=self.log_dir / log_file_name(step_id), pending=deque(maxlen=self.max_pending))
            self._steps[step_id] = step
        return step

    def path(self, step_id: str) -> Path:
        with self._lock:
            return self._step(step_id).path

    def use_files_of(self, log_dir: Path) -> None:
        """The producer writes the full logs itself, one file per step in `log_dir`: stop writing ours."""
        with self._lock:
            self.write_files = False
            self.log_dir = Path(log_dir)
            for step_id, step in self._steps.items():
                self._write(step)
                if step.file is not None:
                    step.file.close()
                    step.file = None
                step.path = self.log_dir / log_file_name(step_id)

    def set_path(self, step_id: str, path: Path) -> None:
        """Where the step's full log is (the producer's own file)."""
        with self._lock:
            self._step(step_id).path = Path(path)

    def start(self, step_id: str, title: str, at: float | None = None) -> None:
        """Mark the start of a run of the step in its file (a resumed run appends to the same file)."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at if at is not None else time.time()))
        with self._lock:
            if not self.write_files:
                return
            step = self._step(step_id)
            step.unwritten.append(f"=== {title}: started {stamp} ===")
            self._write(step)

    def _open(self, step: _StepLog) -> IO[str]:
        if step.file is None:
            step.path.parent.mkdir(parents=True, exist_ok=True)
            step.file = open(step.path, "a", encoding="utf-8", errors="replace")  # noqa: SIM115 (kept open)
        return step.file

    def _write(self, step: _StepLog) -> None:
        if step.unwritten:
            self._open(step).write("\n".join(step.unwritten) + "\n")
            step.unwritten.clear()
            step.dirty = True

    def append(self, step_id: str, line: str) -> None:
        """One line of output (already redacted by the runner), from any thread."""
        with self._lock:
            step = self._step(step_id)
            if self.write_files:
                step.unwritten.append(line)
                if len(step.unwritten) >= WRITE_BATCH_LINES:
                    self._write(step)
            step.lines_written += 1
            shown = _for_screen(line)
            step.pending.append(shown)
            step.tail.append(shown)
            self._ready = True

    def extend(self, step_id: str, lines: Iterable[str]) -> None:
        for line in lines:
            self.append(step_id, line)

    def take(self, limit: int | None = None) -> dict[str, list[str]]:
        """Lines waiting for the screen, per step (at most `limit` a step, the oldest first; the rest
        stay for the next call); flushes the files so they are current on disk."""
        with self._lock:
            taken: dict[str, list[str]] = {}
            if self._ready:
                left = False
                for step_id, step in self._steps.items():
                    pending = step.pending
                    if not pending:
                        continue
                    lines = list(pending)
                    pending.clear()
                    if limit is not None and len(lines) > limit:
                        pending.extend(lines[limit:])  # (C loops: a popleft a line is slower)
                        del lines[limit:]
                        left = True
                    taken[step_id] = lines
                self._ready = left
            for step in self._steps.values():
                self._write(step)
                if step.dirty and step.file is not None:
                    step.file.flush()
                    step.dirty = False
            return taken

    def tail(self, step_id: str, count: int = 10) -> list[str]:
        with self._lock:
            step = self._steps.get(step_id)
            return list(step.tail)[-count:] if step else []

    def lines_written(self, step_id: str) -> int:
        with self._lock:
            step = self._steps.get(step_id)
            return step.lines_written if step else 0

    def close(self) -> None:
        with self._lock:
            for step in self._steps.values():
                if self.write_files:
                    self._write(step)
                if step.file is not None:
                    step.file.close()
                    step.file = None


class StepLogPane(Log):
    """A step's log: a `Log` whose border shows the step and where its full log is on disk."""

    BINDINGS = [
        Binding("end", "follow", "Follow", show=False),
    ]

    DEFAULT_CSS = """
    StepLogPane {
        border: round $panel;
        border-title-color: $primary;
        border-subtitle-color: $text-muted;
        background: $surface;
        height: 1fr;
        overflow-x: auto;
        overflow-y: scroll;
        scrollbar-size-vertical: 1;
        &:focus {
            border: round $primary;
        }
    }
    """

    def __init__(self, step_id: str, title: str, path: Path, max_lines: int, **kwargs: object) -> None:
        super().__init__(max_lines=max_lines, auto_scroll=True, **kwargs)  # type: ignore[arg-type]
        self.step_id = step_id
        self.log_path = path
        self.border_title = title
        self.border_subtitle = display_path(path)

    def _update_size(self, updates: int, lines: list[str]) -> None:  # type: ignore[override]
        # Log measures new lines in a thread worker per write; at 20 batches a second that is a thread
        # start per batch, and a worker still running when the app closes fails the app. Measured in
        # place, ~1 µs a line (rich's cell_len loops over every character of a line that is not pure
        # ASCII: ~20 µs for a line of eksctl output with its `ℹ`).
        if lines:
            self._update_maximum_width(updates, max(map(line_width, lines)))

    def _render_line_strip(self, y: int, rich_style: Style) -> Strip:
        # Log measures each line it draws with rich's cell_len, a Python loop over the characters of any
        # line that is not pure ASCII (~20 µs, every line of every frame while the log scrolls); and the
        # screen measures the line's segment again each frame when it cuts lines into its regions. Here
        # the line is measured once, and its non-ASCII characters get segments of their own, so the
        # long ASCII runs take rich's fast path and the rest hits its cache.
        if self.text_selection is not None or self.highlight:
            return super()._render_line_strip(y, rich_style)
        line = self._process_line(self._lines[y])
        text = Text(line, no_wrap=True)
        text.stylize(rich_style)
        segments = list(text.render(self.app.console))
        if len(segments) == 1 and not line.isascii():
            (segment,) = segments
            segments = [Segment(run, segment.style) for run in _NON_ASCII_RUN.split(line) if run]
        return Strip(segments, line_width(line))

    _frame_style: Style | None = None

    def render_lines(self, crop: Region) -> list[Strip]:
        # Log looks the widget's style up for every line (it walks every ancestor's CSS, ~0.2 ms): once
        # a frame is enough.
        self._frame_style = super().rich_style
        try:
            return super().render_lines(crop)
        finally:
            self._frame_style = None

    @property
    def rich_style(self) -> Style:
        return self._frame_style or super().rich_style

    following = True
    """The view is at the end and stays there as lines come (false once the user scrolls up)."""

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self.size.height:
            self.following = new_value >= self.max_scroll_y

    def append_lines(self, lines: list[str]) -> None:
        """One batch of lines; the view stays at the end while following."""
        self.write_lines(lines, scroll_end=False)
        if self.following:
            self._stay_at_end()
            # The batch may bring a horizontal scrollbar that takes a row: look again after the layout.
            self.call_after_refresh(self._stay_at_end)

    def _stay_at_end(self) -> None:
        if self.following:
            self.scroll_end(animate=False, immediate=True, x_axis=False)

    def watch_show_horizontal_scrollbar(self, shown: bool) -> None:
        self.call_after_refresh(self._stay_at_end)

    def on_resize(self) -> None:
        # The border shows what fits: the path's tail (the file name) is what matters.
        self.border_subtitle = display_path(self.log_path, max(16, self.size.width - 6))
        self._stay_at_end()  # shown again, or made smaller: still at the end
        self.call_after_refresh(self._stay_at_end)

    def action_follow(self) -> None:
        self.scroll_end(animate=False, immediate=True, x_axis=False)


class LogPanes(Container):
    """One `StepLogPane` per step, one shown at a time; fed from any thread through `write_line`."""

    DEFAULT_CSS = """
    LogPanes {
        height: 1fr;
        & > StepLogPane { display: none; }
        & > StepLogPane.-shown { display: block; }
    }
    """

    def __init__(
        self,
        log_dir: Path,
        *,
        max_lines: int = DEFAULT_MAX_LINES,
        buffer: LogBuffer | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.max_lines = max_lines
        self.buffer = buffer or LogBuffer(log_dir, max_pending=max_lines)
        self._panes: dict[str, StepLogPane] = {}
        self._titles: dict[str, str] = {}
        self.shown_step: str | None = None
        self.flush_count = 0
        """How many flushes moved lines to the screen (for tests and benchmarks)."""

    def compose(self) -> ComposeResult:
        return iter(())

    def on_mount(self) -> None:
        self.set_interval(1 / FLUSHES_PER_SECOND, self._flush_tick, name="log-panes-flush")

    def _flush_tick(self) -> None:
        self.flush(limit=FLUSH_MAX_LINES)

    def on_unmount(self) -> None:
        self.flush()
        self.buffer.close()

    # -- steps ---------------------------------------------------------------------------------------

    def add_step(self, step_id: str, title: str) -> StepLogPane:
        """The pane of a step, made on first use (it is empty until the step writes)."""
        pane = self._panes.get(step_id)
        if pane is not None:
            if title and title != self._titles.get(step_id):
                self._titles[step_id] = title
                pane.border_title = title
            return pane
        self._titles[step_id] = title or step_id
        pane = StepLogPane(step_id, self._titles[step_id], self.buffer.path(step_id), self.max_lines)
        self._panes[step_id] = pane
        self.mount(pane)
        if self.shown_step is None:
            self.show(step_id)
        return pane

    def pane(self, step_id: str) -> StepLogPane | None:
        return self._panes.get(step_id)

    @property
    def step_ids(self) -> list[str]:
        return list(self._panes)

    def show(self, step_id: str) -> None:
        if step_id not in self._panes:
            self.add_step(step_id, step_id)
        if self.shown_step == step_id:
            return
        if self.shown_step is not None and self.shown_step in self._panes:
            self._panes[self.shown_step].remove_class("-shown")
        self.shown_step = step_id
        self._panes[step_id].add_class("-shown")

    def start_step(self, step_id: str, title: str, at: float | None = None) -> None:
        """A step started: its pane exists and its file marks the start of this run."""
        self.add_step(step_id, title)
        self.buffer.start(step_id, title, at)

    # -- lines ---------------------------------------------------------------------------------------

    def write_line(self, step_id: str, line: str) -> None:
        """Thread-safe: buffer a line for `step_id`; it reaches the file now and the screen at the next flush."""
        self.buffer.append(step_id, line)

    def flush(self, limit: int | None = None) -> None:
        """Move buffered lines into the panes: one `write_lines` per pane, however many lines arrived
        (at most `limit` a pane; the timer's ticks use `FLUSH_MAX_LINES`)."""
        taken = self.buffer.take(limit)
        if not taken:
            return
        self.flush_count += 1
        for step_id, lines in taken.items():
            pane = self._panes.get(step_id) or self.add_step(step_id, step_id)
            pane.append_lines(lines)

    def tail(self, step_id: str, count: int = 10) -> list[str]:
        return self.buffer.tail(step_id, count)

    def log_path(self, step_id: str) -> Path:
        return self.buffer.path(step_id)

    def set_log_path(self, step_id: str, path: Path) -> None:
        """The step's full log is this file (written by its producer): the border shows it."""
        self.buffer.set_path(step_id, path)
        pane = self._panes.get(step_id)
        if pane is not None:
            pane.log_path = Path(path)
            pane.border_subtitle = display_path(pane.log_path, max(16, pane.size.width - 6) if pane.size.width else 64)
