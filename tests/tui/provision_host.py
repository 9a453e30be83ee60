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
