"""The plumbing between a core.runner run and its widgets, for every screen that shows a run live
(provision, cleanup): a thread worker runs it; a listener (in the runner's threads) puts output lines into
the log buffer and posts every other event as a `RunEvent` message; `RunMonitor.apply` (UI thread)
keeps a `StepList` and `LogPanes` in step, following the step that started last until the user picks one.

A host screen composes the StepList and LogPanes where it likes, makes a `RunMonitor`, calls `start`,
and handles `RunEvent` (calling `apply` first) for what is its own: a header, the end panel.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from textual.message import Message
from textual.widget import Widget

from ...core.events import Event, Listener, RunFinished, RunStarted, StepFinished, StepOutput, StepStarted
from ...core.redact import redact
from .log_panes import LogPanes
from .step_list import StepList


@runtime_checkable
class RunnerLike(Protocol):
    """What a live view needs of core.runner.Runner."""

    def add_listener(self, listener: Listener) -> None: ...

    def run(self) -> Any: ...

    def cancel(self, force: bool = False) -> None: ...


class RunEvent(Message):
    """A runner event for the UI thread (output lines do not come this way: they go to the log buffer)."""

    def __init__(self, event: Event, run_number: int) -> None:
        super().__init__()
        self.event = event
        self.run_number = run_number


def runner_steps(runner: Any) -> list[tuple[str, str]]:
    """(id, title) of the runner's steps, in its order, when it tells them before running."""
    steps = getattr(runner, "steps", None)
    if callable(steps):
        steps = steps()
    if isinstance(steps, dict):
        steps = list(steps.values())
    out: list[tuple[str, str]] = []
    for step in steps or ():
        if isinstance(step, tuple) and len(step) == 2:
            out.append((str(step[0]), str(step[1])))
            continue
        step_id = getattr(step, "id", None) or getattr(step, "step_id", None) or getattr(step, "name", None)
        if step_id:
            out.append((str(step_id), str(getattr(step, "title", None) or step_id)))
    return out


class RunMonitor:
    """Runs runners (one at a time) for `host` and keeps `steps` and `logs` in step with them."""

    def __init__(self, host: Widget, steps: StepList, logs: LogPanes, *, worker_name: str = "runner") -> None:
        self.host = host
        self.steps = steps
        self.logs = logs
        self.buffer = logs.buffer  # the listener's way in, from the runner's threads
        self.worker_name = worker_name
        self.runner: RunnerLike | None = None
        self.run_number = 0
        self.running = False
        self.following = True
        self.failed_steps: list[str] = []
        self._finished_seen: dict[int, bool] = {}

    # -- starting ------------------------------------------------------------------------------------

    def start(self, runner: RunnerLike, on_thread_error: Callable[[BaseException], str] | None = None) -> int:
        """Run `runner` in a thread worker of the host; returns the run's number (events carry it)."""
        self.run_number += 1
        run_number = self.run_number
        self.runner = runner
        self.running = True
        self.following = True
        self.failed_steps = []
        runner.add_listener(lambda event: self.listen(event, run_number))
        known = runner_steps(runner)
        self.steps.reset_unfinished()
        self.steps.set_steps(known)
        for step_id, title in known:
            self.logs.add_step(step_id, title)

        def run() -> None:
            try:
                runner.run()
            except Exception as err:  # noqa: BLE001 - a runner bug must not take the screen down
                text = on_thread_error(err) if on_thread_error else f"the runner stopped: {err}"
                self.host.post_message(RunEvent(RunFinished(ok=False, summary=redact(text)), run_number))
                return
            if not self._finished_seen.get(run_number):
                summary = "the run ended without a result"
                self.host.post_message(RunEvent(RunFinished(ok=False, summary=summary), run_number))

        self.host.run_worker(run, thread=True, name=self.worker_name, group=self.worker_name, exit_on_error=False)
        return run_number

    def cancel(self) -> None:
        if self.runner is not None and self.running:
            self.runner.cancel()

    # -- the listener (runner threads) ---------------------------------------------------------------

    def listen(self, event: Event, run_number: int) -> None:
        """Touches no widget: lines into the buffer, the rest posted to the host."""
        buffer = self.buffer
        if isinstance(event, StepOutput):
            if run_number == self.run_number:  # a stray line of an earlier run stays out
                buffer.append(event.step_id, redact(event.line))
            return
        if isinstance(event, RunStarted) and event.log_dir:
            buffer.use_files_of(Path(event.log_dir))  # the runner writes the full logs itself
        elif isinstance(event, StepStarted):
            if event.log_path:
                buffer.set_path(event.step_id, Path(event.log_path))
            buffer.start(event.step_id, event.title, event.at)
        elif isinstance(event, RunFinished):
            self._finished_seen[run_number] = True
        self.host.post_message(RunEvent(event, run_number))

    def feed(self, event: Event) -> None:
        """An event as if the current run had sent it (tests, replays)."""
        self.listen(event, self.run_number)

    # -- applying (UI thread) ------------------------------------------------------------------------

    def apply(self, message: RunEvent) -> bool:
        """Bring the step list and panes up to date; False for an event of an earlier run (ignore it)."""
        if message.run_number != self.run_number:
            return False
        event = message.event
        steps, logs = self.steps, self.logs
        if isinstance(event, RunStarted):
            steps.set_steps((d.step_id, d.title) for d in event.steps)
            for d in event.steps:
                logs.add_step(d.step_id, d.title)
        elif isinstance(event, StepStarted):
            steps.step_started(event.step_id, event.title, event.at)
            logs.add_step(event.step_id, event.title)
            if event.log_path:
                logs.set_log_path(event.step_id, Path(event.log_path))
            if self.following:
                self.show(event.step_id)
        elif isinstance(event, StepFinished):
            steps.step_finished(event.step_id, event.status, event.elapsed, event.error, event.fix)
            if event.status == "failed":
                self.failed_steps.append(event.step_id)
                if self.following:
                    self.show(event.step_id)
        elif isinstance(event, RunFinished):
            self.running = False
            logs.flush()
            if self.failed_steps and not event.ok:
                self.show(self.failed_steps[0])  # its last lines, whatever was picked
        return True

    # -- selection -----------------------------------------------------------------------------------

    def show(self, step_id: str) -> None:
        """Highlight a step and show its log, without it counting as the user's choice."""
        self.steps.follow(step_id)
        self.logs.show(step_id)

    def step_selected(self, message: StepList.StepSelected) -> None:
        """The host forwards StepList.StepSelected here: the user's pick stops following."""
        if not message.by_user:
            # The list moved because `show` moved it, and `show` already showed that log. The message
            # arrives later, behind run events, so acting on it could show a step the run has left.
            return
        self.following = False
        self.logs.show(message.step_id)

    def follow_run(self) -> None:
        """Follow again: show the step that started last among those running."""
        self.following = True
        running = [s.step_id for s in self.steps.states.values() if s.status == "running"]
        if running:
            self.show(running[-1])
