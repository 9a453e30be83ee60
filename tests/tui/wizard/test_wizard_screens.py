"""Pilot tests of the wizard's screens 1-6 against the sandbox (its service process on 127.0.0.1, through
the product's own AwsDiscovery and tool checks, as `dynamo-wizard --sandbox` runs): navigation forward and
back keeps answers, unavailable options say why, invalid input is refused with a message, nothing is
created before confirm."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from dynamo_wizard.cloud.aws import AwsDiscovery
from dynamo_wizard.core.paths import draft_plan_path
from dynamo_wizard.core.plan import load_plan
from dynamo_wizard.tui.answers import load_draft
from dynamo_wizard.tui.app import WizardApp
from dynamo_wizard.tui.offline import PlanOnlyDiscovery
from dynamo_wizard.tui.widgets.choice_table import ChoiceTable

from ..waiting import wait_until

ROOT = Path(__file__).resolve().parents[3]
SIZE = (100, 30)


def sandbox_app(discovery: Any, **kwargs: Any) -> WizardApp:
    """The app as `dynamo-wizard --sandbox` makes it (real clock), with the module's shared discovery."""
    return WizardApp(discovery, mode="sandbox", **kwargs)


async def settle(app: WizardApp, pilot: Pilot[Any]) -> None:
    """Until no worker runs and every message they posted is handled."""
    for _ in range(50):
        await app.workers.wait_for_complete()
        await pilot.pause()
        if not any(w.is_running for w in app.workers):
            await pilot.pause()
            return
    raise AssertionError("workers kept starting")


async def on_screen(app: WizardApp, pilot: Pilot[Any], step: str) -> None:
    await wait_until(pilot, lambda: getattr(app.screen, "step", None) == step, what=f"the {step} screen")
    await settle(app, pilot)


def table(app: WizardApp, selector: str) -> ChoiceTable:
    return app.screen.query_one(selector, ChoiceTable)


def status(app: WizardApp) -> str:
    return str(app.screen.query_one("#status").render())


async def enter_until(app: WizardApp, pilot: Pilot[Any], step: str) -> None:
    order = ["welcome", "region", "families", "capacity", "serving", "review"]
    await wait_until(pilot, lambda: getattr(app.screen, "step", None) is not None, what="the first screen")
    await settle(app, pilot)
    while getattr(app.screen, "step", None) != step:
        current = getattr(app.screen, "step", None)
        await pilot.press("enter")
        await wait_until(pilot, lambda left=current: getattr(app.screen, "step", None) != left,
                         what=f"leaving {current}")
        await settle(app, pilot)
        assert order.index(getattr(app.screen, "step", "welcome")) > order.index(current or "welcome")


# Welcome ----------------------------------------------------------------------------------------------


async def test_welcome_shows_identity_tools_and_goes_on(wizard_sandbox: AwsDiscovery) -> None:
    app = sandbox_app(wizard_sandbox)
    async with app.run_test(size=SIZE) as pilot:
        await on_screen(app, pilot, "welcome")
        identity = str(app.screen.query_one("#identity").render())
        assert "123456789012" in identity and "arn:aws:sts::123456789012:user/moto" in identity
        tools_line = str(app.screen.query_one("#tools").render())
        assert "eksctl ✓" in tools_line and "helm ✓" in tools_line  # the sandbox's eksctl and helm
        actions = table(app, "#actions")
        assert actions.highlighted_key == "new"
        assert {r.key for r in actions.rows} == {"new", "plan-only"}  # already in the sandbox
        assert "SANDBOX" in str(app.screen.query_one("#mode-banner").render())
        await pilot.press("enter")
        await on_screen(app, pilot, "region")
        assert app.answers.deployment == "ai-dynamo"


async def test_welcome_without_credentials_offers_sandbox_and_plan_only(
        wizard_sandbox: AwsDiscovery, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from dynamo_wizard.cloud.aws import AwsDiscovery

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    app = WizardApp(lambda: AwsDiscovery(max_workers=2))  # real AWS mode; the chain finds no credentials
    async with app.run_test(size=SIZE) as pilot:
        await on_screen(app, pilot, "welcome")
        assert "no usable credentials" in str(app.screen.query_one("#identity").render())
        actions = table(app, "#actions")
        new = actions.row("new")
        assert new is not None and not new.available and "no AWS credentials" in new.reason
        assert actions.highlighted_key == "sandbox"
        # Choosing the unavailable option is refused with its reason; nothing moves.
        actions.highlight("new")
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen.step == "welcome"
        assert "no AWS credentials" in status(app)
        # Plan-only mode goes on with the catalog, clearly bannered.
        actions.highlight("plan-only")
        await pilot.press("enter")
        await on_screen(app, pilot, "region")
        assert app.mode == "plan-only"
        assert "PLAN ONLY" in str(app.screen.query_one("#mode-banner").render())


async def test_welcome_refuses_an_invalid_deployment_name(wizard_sandbox: AwsDiscovery) -> None:
    app = sandbox_app(wizard_sandbox)
    async with app.run_test(size=SIZE) as pilot:
        await on_screen(app, pilot, "welcome")
        name = app.screen.query_one("#deployment")
        name.value = "Bad_Name"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen.step == "welcome"
        assert "not valid" in status(app) and "lowercase" in status(app)
        assert app.screen.focused is name
        name.value = "demo-1"  # type: ignore[attr-defined]
        await pilot.press("enter")  # Enter in the name field takes the highlighted action
        await on_screen(app, pilot, "region")
        assert app.answers.deployment == "demo-1"


# Region -----------------------------------------------------------------------------------------------


async def test_region_ranks_by_families_and_excludes_zones_without_eks(wizard_sandbox: AwsDiscovery) -> None:
    app = sandbox_app(wizard_sandbox)
    async with app.run_test(size=SIZE) as pilot:
        await on_screen(app, pilot, "welcome")
        await pilot.press("enter")
        await on_screen(app, pilot, "region")
        regions = table(app, "#regions")
        keys = [r.key for r in regions.rows]
        assert len(keys) == 24
        available = [r for r in regions.rows if r.available]
        unavailable = [r for r in regions.rows if not r.available]
        assert unavailable and all(r.reason for r in unavailable)  # shown, with the reason
        assert keys.index(unavailable[0].key) > keys.index(available[-1].key)  # usable ones first
        # The ranking: families offered in one zone, descending.
        screen = app.screen
        scores = [screen.choices[k].best_zone[1] for k in keys if screen.choices[k].available]  # type: ignore[attr-defined]
        assert scores == sorted(scores, reverse=True)
        assert regions.highlighted_key == "us-east-1"  # the configured region is the default
        choice = screen.choices["us-east-1"]  # type: ignore[attr-defined]
        assert "us-east-1e" not in choice.cluster_zones
        assert ("us-east-1e", "use1-az3 has no EKS control plane") in choice.excluded_zones
        assert choice.g_quota == 192 and choice.p_quota == 192
        # Typing filters the list; Escape clears the filter (it does not go back).
        await pilot.press("e", "u", "-", "w")
        assert {r.key for r in regions.visible_rows} == {"eu-west-1", "eu-west-2", "eu-west-3"}
        await pilot.press("escape")
        assert app.screen.step == "region" and len(regions.visible_rows) == 24
        # An unusable region is refused with its reason.
        regions.highlight(unavailable[0].key)
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen.step == "region" and unavailable[0].reason in status(app)
        regions.highlight("us-east-1")
        await pilot.press("enter")
        await on_screen(app, pilot, "families")
        assert app.answers.region == "us-east-1"
        assert app.answers.zones == ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d", "us-east-1f"]


# Instance families ------------------------------------------------------------------------------------


async def test_families_pick_type_add_family_and_say_why_not(wizard_sandbox: AwsDiscovery) -> None:
    app = sandbox_app(wizard_sandbox)
    async with app.run_test(size=SIZE) as pilot:
        await enter_until(app, pilot, "families")
        types = table(app, "#types")
        assert types.highlighted_key == "g6e.2xlarge"
        row = types.row("g6e.2xlarge")
        assert row is not None and row.available
        assert "1 × NVIDIA L40S 45 GB" in row.detail and "EFA no" in row.detail
        families = {r.cells[0].plain for r in types.rows}  # type: ignore[union-attr]
        assert {"g5", "g6", "g6e", "g7e", "p5", "p5e", "p5en", "p4d", "p6-b200"} <= families  # exact families
        offered = wizard_sandbox.region_summary("us-east-1", ["p6-b200"])
        missing = [r for r in types.rows if not r.available]
        assert missing, "moto's us-east-1 lacks some catalog types; they must be listed with the reason"
        for r in missing:
            assert r.reason.startswith(("not offered", "offered only in zones", "G vCPU", "P vCPU")), r.reason
        assert offered.region == "us-east-1"
        types.highlight(missing[0].key)
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen.step == "families" and missing[0].reason in status(app)
        # Space adds a family to the NodePool; Enter picks the type.
        types.highlight("g7e.12xlarge")
        await pilot.press("space")
        types.highlight("g6e.4xlarge")
        await pilot.press("enter")
        await on_screen(app, pilot, "capacity")
        assert app.answers.instance_type == "g6e.4xlarge"
        assert app.answers.families == ["g6e", "g7e"]


async def test_back_and_forward_keep_answers(wizard_sandbox: AwsDiscovery) -> None:
    app = sandbox_app(wizard_sandbox)
    async with app.run_test(size=SIZE) as pilot:
        await enter_until(app, pilot, "families")
        table(app, "#types").highlight("g6e.4xlarge")
        await pilot.press("enter")
        await on_screen(app, pilot, "capacity")
        await pilot.press("escape")
        await on_screen(app, pilot, "families")
        assert table(app, "#types").highlighted_key == "g6e.4xlarge"  # the same screen, as it was
        await pilot.press("escape")
        await on_screen(app, pilot, "region")
        assert table(app, "#regions").highlighted_key == "us-east-1"
        await pilot.press("enter")
        await on_screen(app, pilot, "families")
        assert table(app, "#types").highlighted_key == "g6e.4xlarge"  # a fresh screen, from the answers
        await pilot.press("enter")
        await on_screen(app, pilot, "capacity")
        await pilot.press("enter")
        await on_screen(app, pilot, "serving")
        table(app, "#modes").highlight("disagg-tcp")
        await pilot.press("enter")
        await on_screen(app, pilot, "review")
        await pilot.press("escape")
        await on_screen(app, pilot, "serving")
        assert table(app, "#modes").highlighted_key == "disagg-tcp"
        assert app.answers.mode == "disagg-tcp" and app.answers.instance_type == "g6e.4xlarge"


# Capacity ---------------------------------------------------------------------------------------------


async def test_capacity_lists_reservations_with_fit_and_uses_them_by_id(wizard_sandbox: AwsDiscovery) -> None:
    app = sandbox_app(wizard_sandbox)
    async with app.run_test(size=SIZE) as pilot:
        await enter_until(app, pilot, "capacity")
        reservations = table(app, "#reservations")
        by_id = {r.key: r for r in reservations.rows}
        assert set(by_id) == {"cr-0a1b2c3d4e5f60718", "cr-0b2c3d4e5f6071829", "cr-0c3d4e5f60718293a"}
        assert by_id["cr-0a1b2c3d4e5f60718"].available  # g6e.2xlarge in us-east-1a
        assert "g7e.12xlarge is not in the chosen families" in by_id["cr-0b2c3d4e5f6071829"].reason
        assert "p5.48xlarge is not in the chosen families" in by_id["cr-0c3d4e5f60718293a"].reason
        assert "Capacity Block" not in by_id["cr-0a1b2c3d4e5f60718"].detail
        choice = table(app, "#capacity-choice")
        assert choice.highlighted_key == "none"
        # By id with nothing marked is refused with what to do.
        choice.highlight("ids")
        await pilot.pause()
        assert app.screen.query_one("#selector-warning").has_class("-shown")
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen.step == "capacity" and "Space" in status(app)
        assert app.screen.focused is reservations.grid
        # A reservation that does not fit cannot be marked.
        reservations.highlight("cr-0b2c3d4e5f6071829")
        await pilot.press("space")
        await pilot.pause()
        assert not reservations.marked and "does not fit" in status(app)
        reservations.highlight("cr-0a1b2c3d4e5f60718")
        await pilot.press("space")
        await pilot.press("enter")
        await on_screen(app, pilot, "serving")
        assert app.answers.capacity == "ids"
        assert app.answers.reservation_ids == ["cr-0a1b2c3d4e5f60718"]
        plan = app.answers.to_plan()
        assert plan.reservation is not None and plan.reservation.ids == ("cr-0a1b2c3d4e5f60718",)


async def test_capacity_tags_are_validated(wizard_sandbox: AwsDiscovery) -> None:
    app = sandbox_app(wizard_sandbox)
    async with app.run_test(size=SIZE) as pilot:
        await enter_until(app, pilot, "capacity")
        tags = app.screen.query_one("#tags")
        tags.focus()
        while not tags.has_focus_within:  # focus() takes effect on a later message cycle
            await pilot.pause()
        await pilot.press(*"team")
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen.step == "capacity" and "is not key=value" in status(app)
        tags.value = "team=ml-platform"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await on_screen(app, pilot, "serving")
        assert app.answers.capacity == "tags" and app.answers.reservation_tags == {"team": "ml-platform"}


# Serving ----------------------------------------------------------------------------------------------


async def test_serving_explains_modes_and_models_and_checks_fit(wizard_sandbox: AwsDiscovery) -> None:
    app = sandbox_app(wizard_sandbox)
    async with app.run_test(size=SIZE) as pilot:
        await enter_until(app, pilot, "serving")
        modes = table(app, "#modes")
        efa = modes.row("disagg-efa")
        assert efa is not None and not efa.available
        assert "g6e.2xlarge has no EFA" in efa.reason and "g6e.8xlarge" in efa.reason
        modes.highlight("disagg-efa")
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen.step == "serving" and "has no EFA" in status(app)
        modes.highlight("agg")
        models = table(app, "#models")
        big = models.row("deepseek-ai/DeepSeek-R1")
        assert big is not None and not big.available and "g6e.2xlarge has 1" in big.reason
        models.highlight("deepseek-ai/DeepSeek-R1")
        await pilot.pause()
        assert "Does not fit" in str(app.screen.query_one("#fit").render())
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen.step == "serving" and "does not fit" in status(app)
        models.highlight("Qwen/Qwen3-0.6B")
        replicas = app.screen.query_one("#replicas")
        replicas.value = "0"  # type: ignore[attr-defined]
        replicas.focus()
        while not replicas.has_focus_within:  # focus() takes effect on a later message cycle
            await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen.step == "serving" and "out of range" in status(app)
        replicas.value = "2"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await on_screen(app, pilot, "review")
        plan = app.answers.to_plan()
        assert plan.serving.mode.value == "agg" and plan.serving.worker is not None
        assert plan.serving.worker.replicas == 2 and plan.serving.model == "Qwen/Qwen3-0.6B"


async def test_hf_token_never_reaches_the_plan_or_the_draft(wizard_sandbox: AwsDiscovery) -> None:
    token = "hf_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3"
    app = sandbox_app(wizard_sandbox)
    async with app.run_test(size=SIZE) as pilot:
        await enter_until(app, pilot, "serving")
        app.screen.query_one("#hf-token").value = token  # type: ignore[attr-defined]
        await pilot.press("enter")
        await on_screen(app, pilot, "review")
        assert app.hf_token == token
        assert token not in app.answers.to_plan().to_yaml()
        assert token not in draft_plan_path().read_text()


# Review -----------------------------------------------------------------------------------------------


async def test_review_shows_files_cost_verdicts_and_exports(wizard_sandbox: AwsDiscovery,
                                                            tmp_path: Path) -> None:
    app = sandbox_app(wizard_sandbox)
    async with app.run_test(size=SIZE) as pilot:
        await enter_until(app, pilot, "review")
        screen: Any = app.screen
        review = screen.review
        assert review is not None and not review.problems, review.problems
        names = [name for name, _ in review.files]
        assert names[0] == "plan.yaml" and "00-eksctl-cluster.yaml" in names
        assert any(n.startswith("50-graph-ai-dynamo-agg") for n in names)
        assert review.hourly_cost == pytest.approx(2.242 + 0.10)  # the sandbox's Pricing API price
        checks = {v.check: v for v in review.verdicts}
        assert checks["credentials"].ok and checks["tool:eksctl"].ok and checks["tool:helm"].ok
        assert not screen.blocking()
        assert "The plan is valid" in status(app)
        # Every rendered file is viewable, syntax-highlighted.
        await pilot.press("f")
        await pilot.pause()
        viewer = screen.query_one("#review-files")
        assert [f.path for f in viewer.files] == names
        await pilot.press("down")
        await pilot.pause()
        assert viewer.shown_path == "00-eksctl-cluster.yaml"
        assert "eksctl.io/v1alpha5" in screen.query_one("#file-text").text
        # Export: plan.yaml plus every file.
        target = tmp_path / "export"
        await pilot.press("e")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "PromptDialog", what="the export dialog")
        app.screen.query_one("#prompt-input").value = str(target)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_until(pilot, lambda: (target / "plan.yaml").exists() and screen.query_one("#status")
                         .has_class("-ok") and "Exported" in status(app), what="the export")
        exported = load_plan(target / "plan.yaml")
        assert exported == app.answers.to_plan()
        assert (target / "00-eksctl-cluster.yaml").exists()
        assert (target / "40-model-download" / "kustomization.yaml").exists()


class RecordingRunner:
    """Stands in for the provisioning runner at the wizard's hook: records what it was given, runs nothing."""

    def __init__(self, plan: Any, token: str | None) -> None:
        self.plan, self.token = plan, token
        self.listeners: list[Any] = []
        self.steps = [("nothing", "nothing (test runner)")]

    def add_listener(self, listener: Any) -> None:
        self.listeners.append(listener)

    def run(self) -> None:
        from dynamo_wizard.core.events import RunFinished

        for listener in self.listeners:
            listener(RunFinished(ok=True, summary="test runner: nothing was created"))

    def cancel(self) -> None:
        pass


async def test_confirm_asks_first_and_nothing_is_created_before(wizard_sandbox: AwsDiscovery) -> None:
    created: list[RecordingRunner] = []

    def runner_factory(plan: Any, token: str | None) -> RecordingRunner:
        created.append(RecordingRunner(plan, token))
        return created[-1]

    watched: list[tuple[Any, str]] = []

    def pod_watch_factory(plan: Any) -> Any:
        return lambda namespace, view, stop: watched.append((plan, namespace))

    app = sandbox_app(wizard_sandbox, runner_factory=runner_factory, pod_watch_factory=pod_watch_factory)
    async with app.run_test(size=SIZE) as pilot:
        await enter_until(app, pilot, "review")
        await pilot.press("enter")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ConfirmDialog", what="the confirmation")
        assert app.confirmed_plan is None and not created
        await pilot.press("escape")  # "Not yet"
        await pilot.pause()
        assert app.screen.step == "review" and app.confirmed_plan is None
        await pilot.press("enter")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ConfirmDialog", what="the confirmation")
        app.screen.query_one("#confirm-yes").press()  # type: ignore[attr-defined]
        await wait_until(pilot, lambda: app.confirmed_plan is not None, what="the confirmed plan")
        assert app.confirmed_plan == app.answers.to_plan()
        kept = Path(os.environ["DYNAMO_WIZARD_HOME"]) / "deployments" / "ai-dynamo" / "plan.yaml"
        assert load_plan(kept) == app.confirmed_plan
        assert not draft_plan_path().exists()  # the draft became a confirmed plan
        # The provision screen took over, with a runner made for exactly this plan.
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ProvisionScreen", what="provisioning")
        await wait_until(pilot, lambda: len(created) == 1, what="the runner")
        assert created[0].plan == app.confirmed_plan
        await wait_until(pilot, lambda: len(watched) == 1, what="the pod table's watch")
        assert watched[0] == (app.confirmed_plan, "dynamo-system")


async def test_review_refuses_to_confirm_with_failing_preflight(wizard_sandbox: AwsDiscovery, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DYNAMO_WIZARD_EKSCTL", str(tmp_path / "no-eksctl"))
    app = sandbox_app(wizard_sandbox)
    async with app.run_test(size=SIZE) as pilot:
        await enter_until(app, pilot, "review")
        screen: Any = app.screen
        assert any(b.startswith("tool:eksctl") for b in screen.blocking())
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen.step == "review" and "Cannot create: tool:eksctl" in status(app)
        assert app.confirmed_plan is None


# Draft, help, palette ---------------------------------------------------------------------------------


async def test_quitting_keeps_the_draft_and_starting_again_offers_to_continue(wizard_sandbox: AwsDiscovery) -> None:
    app = sandbox_app(wizard_sandbox)
    async with app.run_test(size=SIZE) as pilot:
        await enter_until(app, pilot, "families")
        table(app, "#types").highlight("g6e.xlarge")
        await pilot.press("enter")
        await on_screen(app, pilot, "capacity")
        await pilot.press("ctrl+q")
    draft = load_draft()
    assert draft is not None and draft.next_screen == "capacity"
    assert draft.answers.instance_type == "g6e.xlarge"

    again = sandbox_app(wizard_sandbox)
    async with again.run_test(size=SIZE) as pilot:
        await on_screen(again, pilot, "welcome")
        actions = table(again, "#actions")
        assert actions.highlighted_key == "continue"
        row = actions.row("continue")
        assert row is not None and "g6e.xlarge" in row.cells[1] and "next: Capacity" in row.cells[1]  # type: ignore[operator]
        await pilot.press("enter")
        await on_screen(again, pilot, "capacity")
        assert again.answers.instance_type == "g6e.xlarge"
        await pilot.press("escape")  # Back walks through the earlier screens
        await on_screen(again, pilot, "families")
        assert table(again, "#types").highlighted_key == "g6e.xlarge"


async def test_help_opens_for_the_screen_and_closes(wizard_sandbox: AwsDiscovery) -> None:
    app = sandbox_app(wizard_sandbox)
    async with app.run_test(size=SIZE) as pilot:
        await enter_until(app, pilot, "capacity")
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "HelpScreen", what="help")
        text = app.screen.query_one("Markdown")._markdown  # type: ignore[attr-defined]
        assert "open ODCRs" in text
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.step == "capacity"


async def test_command_palette_offers_export_logs_and_cleanup(wizard_sandbox: AwsDiscovery) -> None:
    app = sandbox_app(wizard_sandbox)
    async with app.run_test(size=SIZE) as pilot:
        await on_screen(app, pilot, "welcome")
        await pilot.press("ctrl+p")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "CommandPalette", what="the palette")
        await pilot.press(*"clean up")
        await wait_until(pilot, lambda: "Clean up a deployment" in str(
            app.screen.query_one("CommandList").get_option_at_index(0).prompt), what="the cleanup command")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.cleanup_requests == [None], what="the cleanup hook")


async def test_plan_only_mode_reaches_a_valid_plan_with_enter_alone() -> None:
    app = WizardApp(PlanOnlyDiscovery(), mode="plan-only")
    async with app.run_test(size=SIZE) as pilot:
        await on_screen(app, pilot, "welcome")
        await enter_until(app, pilot, "review")
        screen: Any = app.screen
        assert screen.review is not None and not screen.review.problems
        plan = app.answers.to_plan()
        assert (plan.region, plan.serving.instance_type, plan.serving.mode.value, plan.serving.model) == (
            "us-east-1", "g6e.2xlarge", "agg", "Qwen/Qwen3-0.6B")
        await pilot.press("enter")  # plan-only creates nothing
        await pilot.pause()
        assert app.confirmed_plan is None and "creates nothing" in status(app)


async def test_palette_exports_the_answers_from_any_screen(wizard_sandbox: AwsDiscovery, tmp_path: Path) -> None:
    app = sandbox_app(wizard_sandbox)
    async with app.run_test(size=SIZE) as pilot:
        await enter_until(app, pilot, "families")
        await pilot.press("ctrl+p")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "CommandPalette", what="the palette")
        await pilot.press(*"export")
        await wait_until(pilot, lambda: "Export" in str(
            app.screen.query_one("CommandList").get_option_at_index(0).prompt), what="the export command")
        await pilot.press("enter")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "PromptDialog", what="the export dialog")
        app.screen.query_one("#prompt-input").value = str(tmp_path / "out")  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.last_export is not None, what="the export")
        assert load_plan(tmp_path / "out" / "plan.yaml") == app.answers.to_plan()
        assert (tmp_path / "out" / "11-nodepool-gpu.yaml").exists()


async def test_welcome_resumes_or_cleans_up_a_known_deployment(wizard_sandbox: AwsDiscovery) -> None:
    from dynamo_wizard.core.ledger import Ledger
    from dynamo_wizard.tui.answers import Answers
    from dynamo_wizard.tui.backend import keep_confirmed_plan

    kept = Answers(deployment="earlier").to_plan()
    keep_confirmed_plan(kept)
    Ledger("earlier").intent("eks-cluster", "earlier", step="cluster")
    created: list[RecordingRunner] = []

    def runner_factory(plan: Any, token: str | None) -> RecordingRunner:
        created.append(RecordingRunner(plan, token))
        return created[-1]

    app = sandbox_app(wizard_sandbox, runner_factory=runner_factory,
                      pod_watch_factory=lambda plan: (lambda namespace, view, stop: None))
    async with app.run_test(size=SIZE) as pilot:
        await on_screen(app, pilot, "welcome")
        actions = table(app, "#actions")
        resume, cleanup = actions.row("resume:earlier"), actions.row("cleanup:earlier")
        assert resume is not None and resume.available and "1 resource live (eks-cluster)" in str(resume.cells[1])
        assert cleanup is not None
        # The name of a new plan must not clash with it.
        app.screen.query_one("#deployment").value = "earlier"  # type: ignore[attr-defined]
        actions.highlight("new")
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen.step == "welcome" and "exists on this machine" in status(app)
        # Clean up: the cleanup screen, for that deployment.
        actions.highlight("cleanup:earlier")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.cleanup_requests == ["earlier"], what="the cleanup hook")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "CleanupScreen", what="the cleanup screen")
        await pilot.press("escape")
        await wait_until(pilot, lambda: getattr(app.screen, "step", None) == "welcome", what="back to welcome")
        # Resume: asked first, then provisioning continues from the kept plan.
        table(app, "#actions").highlight("resume:earlier")
        await pilot.press("enter")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ConfirmDialog", what="the question")
        assert not created
        app.screen.query_one("#confirm-yes").press()  # type: ignore[attr-defined]
        await wait_until(pilot, lambda: len(created) == 1, what="the runner")
        assert created[0].plan == kept


async def test_without_credentials_the_sandbox_can_be_started_from_welcome(
        sandbox_service: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Real AWS mode, no credentials: "Use the sandbox" activates it (here: finds the module's running
    service, as `activate()` does) and the wizard goes on against it, bannered."""
    from dynamo_wizard.sandbox import client

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "DYNAMO_WIZARD_SANDBOX"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    for key, value in sandbox_service.env.items():  # activate() sets these: monkeypatch restores them after
        monkeypatch.setenv(key, os.environ.get(key, value))
    for key in sandbox_service.env:
        if key not in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("DYNAMO_WIZARD_HOME", str(tmp_path / "home"))
    app = WizardApp(lambda: AwsDiscovery(max_workers=2),
                    sandbox_activate=lambda: client.activate(directory=sandbox_service.directory))
    async with app.run_test(size=SIZE) as pilot:
        await on_screen(app, pilot, "welcome")
        actions = table(app, "#actions")
        assert actions.highlighted_key == "sandbox"
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.mode == "sandbox" and "123456789012" in str(
            app.screen.query_one("#identity").render()), timeout=60, what="the sandbox identity")
        await settle(app, pilot)
        assert "SANDBOX" in str(app.screen.query_one("#mode-banner").render())
        assert os.environ["AWS_ENDPOINT_URL"] == sandbox_service.env["AWS_ENDPOINT_URL"]
        assert {r.key for r in table(app, "#actions").rows} >= {"new", "plan-only"}


async def test_starting_from_a_plan_file_offers_its_answers() -> None:
    plan = load_plan(ROOT / "examples" / "disagg-tcp.yaml")
    app = WizardApp(PlanOnlyDiscovery(), mode="plan-only", plan=plan)
    async with app.run_test(size=SIZE) as pilot:
        await on_screen(app, pilot, "welcome")
        new = table(app, "#actions").row("new")
        assert new is not None and "from the plan file" in str(new.cells[1])
        assert app.screen.query_one("#deployment").value == plan.deployment  # type: ignore[attr-defined]
        await enter_until(app, pilot, "review")
        assert app.answers.to_plan().serving == plan.serving  # Enter keeps the plan's choices
