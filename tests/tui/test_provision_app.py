"""The provision screen inside the real WizardApp: confirm -> provision -> back -> confirm again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dynamo_wizard.core.ledger import Ledger
from dynamo_wizard.core.plan import Plan
from dynamo_wizard.core.runner import Runner
from dynamo_wizard.screens.provision import ProvisionScreen
from dynamo_wizard.tui.app import WizardApp

from .provision_host import ReviewStandIn, example_plan
from .test_provision_runner import World, graph
from .waiting import wait_until


async def test_wizard_app_pushes_the_installed_provision_screen_and_a_new_one_after_going_back(tmp_path: Path) -> None:
    world = World()
    runners: list[tuple[Plan, str | None]] = []

    def runner_factory(plan: Plan, hf_token: str | None) -> Runner:
        runners.append((plan, hf_token))
        return Runner(graph(world), deployment=plan.deployment, ledger=Ledger(plan.deployment), log_dir=tmp_path)

    app = WizardApp(screens={"welcome": ReviewStandIn}, runner_factory=runner_factory, use_draft=False,
                    hf_token="hf_" + "x" * 30)
    plan = example_plan("agg")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, ReviewStandIn))
        app.start_provisioning(plan)
        await wait_until(pilot, lambda: isinstance(app.screen, ProvisionScreen))
        first: Any = app.screen
        assert app.is_screen_installed("provision")
        await wait_until(pilot, lambda: first.state == "done")
        assert runners == [(plan, "hf_" + "x" * 30)]
        assert first.plan is plan

        await pilot.press("e")  # edit the plan: back where we came from
        await wait_until(pilot, lambda: isinstance(app.screen, ReviewStandIn))
        app.start_provisioning(plan)
        await wait_until(pilot, lambda: isinstance(app.screen, ProvisionScreen))
        second: Any = app.screen
        assert second is not first, "a confirmed plan gets a new provision screen and a new run"
        await wait_until(pilot, lambda: second.state == "done")
        assert len(runners) == 2
        # The second run found everything from the first: all present, nothing created again.
        assert all(s.status == "skipped" for s in second.step_list.states.values())
