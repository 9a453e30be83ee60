"""The list of a run's steps with their status and elapsed time; moving through it picks the log shown."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from textual.content import Content
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from ...core.events import StepStatus

Clock = Callable[[], float]

# status -> (icon, style of the icon, label used instead of an elapsed time)
_LOOK: dict[str, tuple[str, str, str]] = {
    "pending": ("·", "dim", ""),
    "running": ("▶", "$accent bold", ""),
    "done": ("✓", "$success bold", ""),
    "skipped": ("✓", "dim", "present"),
    "failed": ("✗", "$error bold", "failed"),
    "blocked": ("⊘", "$warning", "blocked"),
    "cancelled": ("■", "$warning", "stopped"),
}
FINISHED: frozenset[str] = frozenset({"done", "skipped", "failed", "blocked", "cancelled"})


def format_elapsed(seconds: float) -> str:
    """0:07, 12:34, 1:02:03."""
    s = max(0, int(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


@dataclass
class StepState:
    step_id: str
    title: str
    status: StepStatus = "pending"
    started_at: float | None = None
    elapsed: float | None = None
    error: str | None = None
    fix: str | None = None

    def elapsed_at(self, now: float) -> float | None:
        if self.status == "running" and self.started_at is not None:
            return max(0.0, now - self.started_at)
        return self.elapsed


class StepList(OptionList):
    """Steps with status (pending, running with a live timer, done, skipped as already present, failed,
    blocked, cancelled). Up/down moves through them; each move posts `StepList.StepSelected`."""

    DEFAULT_CSS = """
    StepList {
        width: 34;
        height: 1fr;
        border: round $panel;
        border-title-color: $primary;
        &:focus { border: round $primary; }
    }
    """

    class StepSelected(Message):
        """A step was highlighted; `by_user` is False when the list moved by itself (following the run)."""

        def __init__(self, step_id: str, by_user: bool) -> None:
            super().__init__()
            self.step_id = step_id
            self.by_user = by_user

    def __init__(
        self,
        steps: Iterable[tuple[str, str]] = (),
        *,
        clock: Clock = time.time,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes, markup=False)
        self.clock = clock
        self.states: dict[str, StepState] = {}
        self._moving_by_itself = False
        self.border_title = "Steps"
        for step_id, title in steps:
            self.add_step(step_id, title)

    def on_mount(self) -> None:
        self.set_interval(1.0, self.tick, name="step-list-elapsed")

    # -- rendering -----------------------------------------------------------------------------------

    def _prompt(self, state: StepState) -> Content:
        icon, style, label = _LOOK.get(state.status, _LOOK["pending"])
        elapsed = state.elapsed_at(self.clock())
        right = label
        if state.status in ("running", "done") and elapsed is not None:
            right = format_elapsed(elapsed)
        elif state.status == "failed" and elapsed is not None:
            right = format_elapsed(elapsed)
        width = max(self.scrollable_content_region.width, 0) or (self.styles.width.value if self.styles.width else 30)
        title_room = max(8, int(width) - 2 - len(right) - 1)
        title = state.title if len(state.title) <= title_room else state.title[: title_room - 1] + "…"
        pad = " " * max(1, int(width) - 2 - len(title) - len(right))
        # No colour that could vanish on the highlight bar: only the icon is coloured.
        right_style = "bold" if state.status == "running" else "dim"
        title_style = "dim" if state.status in ("pending", "skipped", "blocked") else ""
        return Content.assemble((icon, style), " ", (title, title_style), pad, (right, right_style))

    def _render_state(self, step_id: str) -> None:
        state = self.states[step_id]
        self.replace_option_prompt(step_id, self._prompt(state))

    def on_resize(self) -> None:
        for step_id in self.states:
            self._render_state(step_id)

    def tick(self) -> None:
        """Once a second: running steps' timers move."""
        for state in self.states.values():
            if state.status == "running":
                self._render_state(state.step_id)

    # -- state ---------------------------------------------------------------------------------------

    def add_step(self, step_id: str, title: str) -> StepState:
        state = self.states.get(step_id)
        if state is not None:
            if title and title != state.title:
                state.title = title
                self._render_state(step_id)
            return state
        state = StepState(step_id, title or step_id)
        self.states[step_id] = state
        self.add_option(Option(self._prompt(state), id=step_id))
        return state

    def set_steps(self, steps: Iterable[tuple[str, str]]) -> None:
        for step_id, title in steps:
            self.add_step(step_id, title)

    def step_started(self, step_id: str, title: str = "", at: float | None = None) -> None:
        state = self.add_step(step_id, title)
        state.status = "running"
        state.started_at = at if at is not None else self.clock()
        state.elapsed = None
        state.error = state.fix = None
        self._render_state(step_id)

    def step_finished(
        self,
        step_id: str,
        status: StepStatus,
        elapsed: float | None = None,
        error: str | None = None,
        fix: str | None = None,
    ) -> None:
        state = self.add_step(step_id, "")
        if elapsed is None and state.started_at is not None:
            elapsed = self.clock() - state.started_at
        state.status = status
        state.elapsed = elapsed
        state.error, state.fix = error, fix
        self._render_state(step_id)

    def reset_unfinished(self) -> None:
        """Before a resumed run: what did not finish well goes back to pending."""
        for state in self.states.values():
            if state.status not in ("done", "skipped"):
                state.status = "pending"
                state.started_at = state.elapsed = None
                state.error = state.fix = None
                self._render_state(state.step_id)

    def status_of(self, step_id: str) -> StepStatus | None:
        state = self.states.get(step_id)
        return state.status if state else None

    @property
    def selected_step(self) -> str | None:
        option = self.highlighted_option
        return option.id if option is not None else None

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for state in self.states.values():
            out[state.status] = out.get(state.status, 0) + 1
        return out

    def row_text(self, step_id: str) -> str:
        """The text of a step's row as shown (for tests and the headless views)."""
        return self._prompt(self.states[step_id]).plain

    # -- selection -----------------------------------------------------------------------------------

    def follow(self, step_id: str) -> None:
        """Move the highlight to a step without it counting as the user's choice."""
        if step_id not in self.states:
            return
        self._moving_by_itself = True
        try:
            self.highlighted = self.get_option_index(step_id)
        finally:
            self._moving_by_itself = False

    def watch_highlighted(self, highlighted: int | None) -> None:
        super().watch_highlighted(highlighted)
        if highlighted is None or highlighted >= self.option_count:
            return
        option = self.get_option_at_index(highlighted)
        if option.id is not None:
            self.post_message(self.StepSelected(option.id, by_user=not self._moving_by_itself))
