"""Snapshots of every wizard screen at 100×30 (and the review at 200×60), against the sandbox's seeded data
with the clock frozen (tests/tui/wizard_backends.py).

Update with `pytest tests/tui/snapshots --snapshot-update` after a deliberate change, and look at the SVGs
under __snapshots__ before committing them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from ..waiting import wait_until
from ..wizard_backends import WizardAws, make_app

ROOT = Path(__file__).resolve().parents[3]
ORDER = ["welcome", "region", "families", "capacity", "serving", "review"]


@pytest.fixture
def tools(wizard_tools: Path) -> Path:
    return wizard_tools


async def settle(pilot: Pilot[Any]) -> None:
    app = pilot.app
    for _ in range(50):
        await app.workers.wait_for_complete()
        await pilot.pause()
        if not any(w.is_running for w in app.workers):
            await pilot.wait_for_scheduled_animations()
            await pilot.pause()
            return
    raise AssertionError("workers kept starting")


def go_to(step: str, then: Callable[[Pilot[Any]], Awaitable[None]] | None = None) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        await wait_until(pilot, lambda: getattr(app.screen, "step", None) == "welcome", what="welcome")
        await settle(pilot)
        while getattr(app.screen, "step", None) != step:
            current = getattr(app.screen, "step", None)
            await pilot.press("enter")
            await wait_until(pilot, lambda left=current: getattr(app.screen, "step", None) != left,
                             what=f"leaving {current}")
            await settle(pilot)
        if then is not None:
            await then(pilot)
            await settle(pilot)
    return run_before


@pytest.mark.parametrize("step", ORDER)
def test_screen_at_100x30(step: str, snap_compare: Any, wizard_aws: WizardAws, tools: None) -> None:
    app = make_app(wizard_aws.discovery)
    assert snap_compare(app, terminal_size=(100, 30), run_before=go_to(step))


def test_review_at_200x60(snap_compare: Any, wizard_aws: WizardAws, tools: None) -> None:
    app = make_app(wizard_aws.discovery)
    assert snap_compare(app, terminal_size=(200, 60), run_before=go_to("review"))


def test_review_files_at_100x30(snap_compare: Any, wizard_aws: WizardAws, tools: None) -> None:
    async def files(pilot: Pilot[Any]) -> None:
        await pilot.press("f", "down", "down")

    app = make_app(wizard_aws.discovery)
    assert snap_compare(app, terminal_size=(100, 30), run_before=go_to("review", files))


def test_serving_with_efa_refused_at_100x30(snap_compare: Any, wizard_aws: WizardAws, tools: None) -> None:
    async def refuse(pilot: Pilot[Any]) -> None:
        pilot.app.screen.query_one("#modes").highlight("disagg-efa")
        await pilot.press("enter")

    app = make_app(wizard_aws.discovery)
    assert snap_compare(app, terminal_size=(100, 30), run_before=go_to("serving", refuse))


def test_help_at_100x30(snap_compare: Any, wizard_aws: WizardAws, tools: None) -> None:
    async def help_(pilot: Pilot[Any]) -> None:
        await pilot.press("question_mark")

    app = make_app(wizard_aws.discovery)
    assert snap_compare(app, terminal_size=(100, 30), run_before=go_to("capacity", help_))
