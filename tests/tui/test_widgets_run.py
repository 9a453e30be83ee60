"""RunMonitor on its own host (as the cleanup screen will use it): a real runner, follow, user picks, stale runs."""

from __future__ import annotations

import threading
from pathlib import Path

from textual import on
from textual.app import App, ComposeResult

from dynamo_wizard.core.events import RunFinished, StepOutput
from dynamo_wizard.core.runner import Runner, Step, StepContext, done
from dynamo_wizard.tui.widgets.log_panes import LogPanes
from dynamo_wizard.tui.widgets.run_view import RunEvent, RunMonitor
from dynamo_wizard.tui.widgets.step_list import StepList

from .waiting import wait_until


class Host(App[None]):
    def __init__(self, log_dir: Path) -> None:
        super().__init__()
        self.log_dir = log_dir
        self.finished: list[RunFinished] = []

    def compose(self) -> ComposeResult:
        yield StepList(id="steps")
        yield LogPanes(self.log_dir, id="logs")

    def on_mount(self) -> None:
        self.monitor = RunMonitor(self.screen, self.query_one(StepList), self.query_one(LogPanes))

    @on(RunEvent)
    def run_event(self, message: RunEvent) -> None:
        if self.monitor.apply(message) and isinstance(message.event, RunFinished):
            self.finished.append(message.event)

    @on(StepList.StepSelected)
    def picked(self, message: StepList.StepSelected) -> None:
        self.monitor.step_selected(message)


def deletion_graph(gate: threading.Event) -> list[Step]:
    def delete(name: str, wait: bool = False):  # type: ignore[no-untyped-def]
        def action(ctx: StepContext) -> object:
            ctx.log(f"deleting {name}")
            if wait:
                ctx.wait_until(gate.is_set, f"{name} to be gone", interval=0.02)
            ctx.log(f"{name} is gone")
            return done()
        return action

    return [
        Step("graphs", "DynamoGraphDeployments", delete("graphs")),
        Step("helm", "Dynamo platform release", delete("helm", wait=True), deps=("graphs",)),
        Step("efs", "EFS file system", delete("efs"), deps=("graphs",)),
        Step("cluster", "EKS cluster", delete("cluster"), deps=("helm", "efs")),
    ]


async def test_monitor_follows_the_run_until_the_user_picks_a_step(tmp_path: Path) -> None:
    gate = threading.Event()
    app = Host(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        steps, logs = app.query_one(StepList), app.query_one(LogPanes)
        runner = Runner(deletion_graph(gate), deployment="demo", log_dir=tmp_path, max_workers=1)
        app.monitor.start(runner)
        # The steps are listed before they run; the view follows the one that started last.
        await wait_until(pilot, lambda: list(steps.states) == ["graphs", "helm", "efs", "cluster"])
        await wait_until(pilot, lambda: steps.status_of("helm") == "running")
        assert logs.shown_step == "helm" and steps.selected_step == "helm"
        steps.focus()
        while not steps.has_focus_within:  # focus() takes effect on a later message cycle
            await pilot.pause()
        await pilot.press("up")  # the user picks "graphs": following stops
        await wait_until(pilot, lambda: logs.shown_step == "graphs")
        assert not app.monitor.following
        gate.set()
        await wait_until(pilot, lambda: app.finished != [])
        assert app.finished[0].ok
        assert logs.shown_step == "graphs", "the user's pick is kept while steps start"
        assert all(s.status == "done" for s in steps.states.values())
        pane = logs.pane("cluster")
        assert pane is not None and pane.log_path == tmp_path / "cluster.log"
        await wait_until(pilot, lambda: "cluster is gone" in pane.lines)


async def test_events_of_an_earlier_run_are_ignored(tmp_path: Path) -> None:
    gate = threading.Event()
    gate.set()
    app = Host(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        steps = app.query_one(StepList)
        app.monitor.start(Runner(deletion_graph(gate), deployment="demo", log_dir=tmp_path))
        await wait_until(pilot, lambda: len(app.finished) == 1)
        app.monitor.start(Runner(deletion_graph(gate), deployment="demo", log_dir=tmp_path))
        await wait_until(pilot, lambda: len(app.finished) == 2)
        # A late event from run 1 changes nothing.
        stale = RunEvent(RunFinished(ok=False, summary="late"), run_number=1)
        assert app.monitor.apply(stale) is False
        app.monitor.listen(StepOutput("efs", "a late line"), run_number=1)
        app.query_one(LogPanes).flush()
        pane = app.query_one(LogPanes).pane("efs")
        assert pane is not None and "a late line" not in pane.lines and "efs is gone" in pane.lines
        assert all(s.status == "done" for s in steps.states.values())


async def test_a_late_highlight_message_of_the_list_moving_by_itself_does_not_change_the_shown_log(
    tmp_path: Path,
) -> None:
    # The list's StepSelected reaches the host after run events already queued: when the run moved on
    # (another step started, or one failed), the late message must not bring back the step it left.
    app = Host(tmp_path)
    async with app.run_test(size=(100, 30)):
        steps, logs = app.query_one(StepList), app.query_one(LogPanes)
        steps.set_steps([("efs", "EFS"), ("platform", "Platform")])
        app.monitor.show("efs")
        app.monitor.show("platform")
        app.monitor.step_selected(StepList.StepSelected("efs", by_user=False))
        assert logs.shown_step == "platform" and app.monitor.following
        # A pick of the user's, however late, is the user's choice.
        app.monitor.step_selected(StepList.StepSelected("efs", by_user=True))
        assert logs.shown_step == "efs" and not app.monitor.following
