"""A host app for the provision screen in tests: a base screen below it, like the review screen."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.app import App, ComposeResult
from textual.screen import Screen
from textual.widgets import Static

from dynamo_wizard.core.catalog import load_catalog
from dynamo_wizard.core.plan import Plan, load_plan
from dynamo_wizard.screens.provision import ProvisionScreen

ROOT = Path(__file__).resolve().parents[2]


def example_plan(name: str = "agg") -> Plan:
    candidates = sorted((ROOT / "examples").glob("*.yaml"))
    for path in candidates:
        if name in path.stem:
            return load_plan(path)
    return load_plan(candidates[0])


class ReviewStandIn(Screen[None]):
    def compose(self) -> ComposeResult:
        yield Static("review", id="review-marker")


class ProvisionHost(App[None]):
    """Pushes `make_screen()` over a stand-in for the review screen."""

    def __init__(self, make_screen: Callable[[], ProvisionScreen]) -> None:
        super().__init__()
        self.make_screen = make_screen
        self.catalog = load_catalog()
        self.cleanup_requests: list[str | None] = []

    def on_mount(self) -> None:
        self.push_screen(ReviewStandIn())
        self.push_screen(self.make_screen())

    def start_cleanup(self, deployment: str | None = None) -> None:
        self.cleanup_requests.append(deployment)

    @property
    def provision(self) -> ProvisionScreen:
        screen = self.screen
        assert isinstance(screen, ProvisionScreen), screen
        return screen


def screen_of(app: App[Any]) -> ProvisionScreen:
    for screen in app.screen_stack:
        if isinstance(screen, ProvisionScreen):
            return screen
    raise AssertionError("no provision screen in the stack")


class ScriptedRunner:
    """A runner that plays a fixed list of events from its own thread, like the real one does.

    `hold_after`: after that many events it waits until cancelled (then finishes with a cancelled
    StepFinished and RunFinished), so tests can look at a run in the middle.
    """

    def __init__(self, steps: list[tuple[str, str]], events: list[Any], hold_after: int | None = None) -> None:
        import threading

        self.steps = steps
        self.events = events
        self.hold_after = hold_after
        self.listeners: list[Callable[[Any], None]] = []
        self.cancelled = threading.Event()
        self.ran = threading.Event()

    def add_listener(self, listener: Callable[[Any], None]) -> None:
        self.listeners.append(listener)

    def _emit(self, event: Any) -> None:
        for listener in self.listeners:
            listener(event)

    def run(self) -> None:
        from dynamo_wizard.core.events import RunFinished, StepFinished, StepStarted

        self.ran.set()
        running: list[str] = []
        for i, event in enumerate(self.events):
            if self.hold_after is not None and i == self.hold_after:
                self.cancelled.wait(timeout=60)
            if self.cancelled.is_set():
                for step_id in running:
                    self._emit(StepFinished(step_id, "cancelled", elapsed=1.0))
                self._emit(RunFinished(ok=False, cancelled=True, summary="cancelled by the user"))
                return
            if isinstance(event, StepStarted):
                running.append(event.step_id)
            elif isinstance(event, StepFinished) and event.step_id in running:
                running.remove(event.step_id)
            self._emit(event)

    def cancel(self) -> None:
        self.cancelled.set()
