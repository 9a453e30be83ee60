"""The cleanup screen, driven by keys (Pilot) against moto, kmock and the stand-in tools."""

from __future__ import annotations

from typing import Any

from textual.app import App

from dynamo_wizard.cloud.owned import OwnedAws
from dynamo_wizard.commands import cleanup as cmd
from dynamo_wizard.core import cleanup as c
from dynamo_wizard.core.ledger import Ledger
from dynamo_wizard.screens.cleanup import CleanupScreen
from dynamo_wizard.tui.widgets.confirm import ConfirmDialog

from ..tui.waiting import wait_until
from .conftest import Deployed


class Host(App[None]):
    def __init__(self, screen: CleanupScreen) -> None:
        super().__init__()
        self._screen = screen

    def on_mount(self) -> None:
        self.push_screen(self._screen)


def _screen(d: Deployed, deployment: str | None = "demo", **kw: Any) -> CleanupScreen:
    return CleanupScreen(deployment, session_factory=lambda name: cmd.open_session(
        name, region="us-east-1", backend_factory=d.backend), **kw)


async def test_the_list_shows_everything_checked_and_keys_toggle(deployed: Deployed) -> None:
    screen = _screen(deployed)
    async with Host(screen).run_test(size=(140, 40)) as pilot:
        await wait_until(pilot, lambda: screen.state == "listing" and screen.inventory is not None, 60)
        inv = screen.inventory
        assert inv is not None and len(screen.checked) == len(inv.live()) > 15
        assert screen.table.row_count == len(inv.items)
        first = screen.table.get_row_at(0)
        assert str(first[0]) == "[x]" and first[1] == "DynamoGraphDeployment" and str(first[3]) == "exists"
        header = screen.header_text()
        assert "Clean up demo: review what goes" in header and "checked" in header and "$" in header
        await pilot.press("space")
        assert len(screen.checked) == len(inv.live()) - 1
        assert str(screen.table.get_row_at(0)[0]) == "[ ]"
        await pilot.press("a")  # not all checked -> all
        assert len(screen.checked) == len(inv.live())
        await pilot.press("a")  # all checked -> none
        assert screen.checked == set()
        await pilot.press("enter")  # nothing checked: refused, no dialog
        await pilot.pause()
        assert not isinstance(pilot.app.screen, ConfirmDialog)
        assert deployed.tool_calls() == []


async def test_typed_confirmation_then_the_live_run_deletes_everything(deployed: Deployed) -> None:
    screen = _screen(deployed)
    async with Host(screen).run_test(size=(140, 40)) as pilot:
        await wait_until(pilot, lambda: screen.state == "listing", 60)
        await pilot.press("enter")
        await pilot.pause()
        dialog = pilot.app.screen
        assert isinstance(dialog, ConfirmDialog) and dialog.require_text == "demo"
        await pilot.press(*"dem", "enter")  # not the name: stays open, nothing runs
        await pilot.pause()
        assert pilot.app.screen is dialog and screen.state == "listing"
        await pilot.press("o", "enter")
        await wait_until(pilot, lambda: screen.state == "running" or screen.state in ("done", "failed"), 60)
        await wait_until(pilot, lambda: screen.state in ("done", "failed") and screen.left_after is not None, 120)
        assert screen.state == "done", screen.result_text
        assert "Everything checked is gone" in screen.result_text
        assert screen.step_list.status_of(c.S_CLUSTER) == "done"
        assert screen.log_panes.tail(c.S_HELM, 50)
    assert OwnedAws("us-east-1", deployed.session).tagged_leftovers("demo") == []
    assert not Ledger("demo").live_resources()


async def test_keeping_the_cluster_deletes_the_rest_and_leaves_it(deployed: Deployed) -> None:
    screen = _screen(deployed)
    async with Host(screen).run_test(size=(140, 40)) as pilot:
        await wait_until(pilot, lambda: screen.state == "listing", 60)
        inv = screen.inventory
        assert inv is not None
        for index, item in enumerate(inv.items):
            if item.kind in (c.CLUSTER, c.STACK):
                screen.table.move_cursor(row=index)
                await pilot.press("space")
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press(*"demo", "enter")
        await wait_until(pilot, lambda: screen.state in ("done", "failed") and screen.left_after is not None, 120)
        assert screen.state == "done", screen.result_text
    owned = OwnedAws("us-east-1", deployed.session)
    assert owned.exists(c.Ref(c.CLUSTER, "demo"))
    assert [call["argv"][0] for call in deployed.tool_calls()] == ["uninstall"]  # no eksctl
    left = cmd.open_session("demo", region="us-east-1", backend_factory=deployed.backend).inventory.live()
    assert {i.kind for i in left} == {c.CLUSTER, c.STACK}


async def test_without_a_deployment_it_lists_the_known_ones(deployed: Deployed) -> None:
    screen = _screen(deployed, deployment=None,
                     list_deployments=lambda: ({"demo": ("us-east-1", "ledger+tag")}, ["a note"]))
    async with Host(screen).run_test(size=(140, 40)) as pilot:
        await wait_until(pilot, lambda: screen.state == "picking" and screen.query_one("#cleanup-picker").option_count, 60)
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.state == "listing" and screen.inventory is not None, 60)
        assert screen.inventory is not None and screen.inventory.deployment == "demo"
