"""The provision screen fed by the real core.runner, on pure-python steps (no cloud): end, failure, resume, stop."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from dynamo_wizard.core.errors import StepError
from dynamo_wizard.core.ledger import Ledger
from dynamo_wizard.core.plan import Plan
from dynamo_wizard.core.runner import Runner, Step, StepContext, done, skipped
from dynamo_wizard.screens.provision import ProvisionScreen
from dynamo_wizard.tui.widgets.confirm import ConfirmDialog

from .provision_host import ProvisionHost, example_plan
from .waiting import wait_until


class World:
    """What the steps 'create': a dict standing in for AWS and the cluster, shared across runs."""

    def __init__(self) -> None:
        self.things: dict[str, str] = {}
        self.helm_broken = False
        self.creates: list[str] = []
        self.hold = threading.Event()  # the download waits on this when `slow_download`
        self.slow_download = False


def make_step(world: World, step_id: str, title: str, deps: tuple[str, ...] = (), lines: int = 20) -> Step:
    def action(ctx: StepContext) -> Any:
        if step_id in world.things:
            ctx.adopted("Thing", step_id, world.things[step_id])
            return skipped(f"adopted {step_id}")
        for i in range(lines):
            ctx.log(f"{step_id}: working {i}")
        if step_id == "platform" and world.helm_broken:
            ctx.log("Error: INSTALLATION FAILED: chart dynamo-platform-9.9.9 not found")
            raise StepError("helm upgrade --install exited 1", "use a Dynamo release that exists (dynamo.release)")
        if step_id == "download" and world.slow_download:
            ctx.wait_until(lambda: world.hold.is_set(), "the model download", interval=0.05)
        ctx.intent("Thing", step_id)
        world.things[step_id] = f"id-{step_id}"
        world.creates.append(step_id)
        ctx.created("Thing", step_id, world.things[step_id])
        return done(f"created {step_id}")

    return Step(step_id, title, action, deps=deps, timeout=60)


def graph(world: World) -> list[Step]:
    return [
        make_step(world, "cluster", "EKS cluster", lines=200),
        make_step(world, "efs", "EFS file system", ("cluster",)),
        make_step(world, "platform", "Dynamo platform", ("cluster",)),
        make_step(world, "download", "Model download", ("efs", "platform")),
        make_step(world, "smoke", "Smoke test", ("download",)),
    ]


def factory(world: World, log_dir: Path, made: list[Runner]) -> Any:
    def make(plan: Plan) -> Runner:
        runner = Runner(graph(world), deployment=plan.deployment, ledger=Ledger(plan.deployment), log_dir=log_dir)
        made.append(runner)
        return runner

    return make


async def test_real_runner_to_the_end(tmp_path: Path) -> None:
    plan, world = example_plan("agg"), World()
    made: list[Runner] = []
    app = ProvisionHost(lambda: ProvisionScreen(plan, factory(world, tmp_path, made), log_dir=tmp_path / "unused"))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.provision
        await wait_until(pilot, lambda: screen.state == "done", what="the run to finish")
        states = screen.step_list.states
        assert list(states) == ["cluster", "efs", "platform", "download", "smoke"]
        assert all(s.status == "done" for s in states.values())
        assert world.creates and sorted(world.creates) == sorted(states)
        assert "kubectl -n dynamo-system port-forward svc/demo-agg-agg-frontend 8000:8000" in screen.result_plain
        # The runner writes the full logs; the panes show its files and keep the newest lines.
        pane = screen.log_panes.pane("cluster")
        assert pane is not None and pane.log_path == tmp_path / "cluster.log"
        assert str(pane.border_subtitle).endswith("cluster.log")
        await wait_until(pilot, lambda: pane.line_count > 0 and pane.lines[-1].startswith("done in"))
        assert "cluster: working 199" in pane.lines
        on_disk = (tmp_path / "cluster.log").read_text()
        assert on_disk.count("cluster: working") == 200 and on_disk.count("cluster: working 199\n") == 1
        assert not (tmp_path / "unused").exists() or not any((tmp_path / "unused").iterdir())
        # What was created was recorded, and the screen saw it.
        assert {(r.action, r.name) for r in screen.resources} >= {("created", s) for s in states}


async def test_real_runner_failure_then_resume_creates_nothing_twice(tmp_path: Path) -> None:
    plan, world = example_plan("agg"), World()
    made: list[Runner] = []
    world.helm_broken = True
    app = ProvisionHost(lambda: ProvisionScreen(plan, factory(world, tmp_path, made)))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.provision
        await wait_until(pilot, lambda: screen.state == "failed", what="the failure")
        states = screen.step_list.states
        assert states["platform"].status == "failed"
        assert states["efs"].status == "done"  # independent of the failure: it went on
        assert states["download"].status == "blocked" and states["smoke"].status == "blocked"
        assert "helm upgrade --install exited 1" in screen.result_plain
        assert "dynamo.release" in screen.result_plain
        assert "Model download, Smoke test" in screen.result_plain
        assert screen.log_panes.shown_step == "platform"
        pane = screen.log_panes.pane("platform")
        assert pane is not None
        await wait_until(pilot, lambda: pane.line_count > 0 and pane.lines[-1] == "failed: helm upgrade --install exited 1")
        assert pane.lines[-2] == "Error: INSTALLATION FAILED: chart dynamo-platform-9.9.9 not found"

        world.helm_broken = False
        await pilot.press("r")
        await wait_until(pilot, lambda: screen.state == "done", what="the resumed run")
        assert len(made) == 2
        assert states["cluster"].status == "skipped" and states["efs"].status == "skipped"
        assert screen.step_list.row_text("cluster").endswith("present")
        assert [states[s].status for s in ("platform", "download", "smoke")] == ["done"] * 3
        assert sorted(world.creates) == sorted(states), "something was created twice"


async def test_real_runner_stops_at_a_safe_point_when_quitting(tmp_path: Path) -> None:
    plan, world = example_plan("agg"), World()
    made: list[Runner] = []
    world.slow_download = True
    app = ProvisionHost(lambda: ProvisionScreen(plan, factory(world, tmp_path, made)))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.provision
        steps = screen.step_list
        await wait_until(pilot, lambda: steps.status_of("download") == "running")
        await pilot.press("q")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.click("#confirm-yes")
        await wait_until(pilot, lambda: not app.is_running, what="the app to exit after the stop")
    assert made[0].cancelled
    assert steps.status_of("download") == "cancelled" and steps.status_of("smoke") == "cancelled"
    assert screen.state == "cancelled"
    assert "download" not in world.things
