"""`dynamo-wizard plan`: the same questions as line prompts (questionary, driven through prompt_toolkit's pipe
input), writing the same plan file as the TUI for the same answers — checked byte for byte against the TUI
driven by Pilot, both against the sandbox."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from dynamo_wizard.cli import main
from dynamo_wizard.cloud.aws import AwsDiscovery
from dynamo_wizard.commands import plan_prompts
from dynamo_wizard.commands.plan_prompts import AnswerError, PlainWizard, Prompter
from dynamo_wizard.core.catalog import load_catalog
from dynamo_wizard.core.plan import load_plan
from dynamo_wizard.tui.app import WizardApp
from dynamo_wizard.tui.widgets.choice_table import ChoiceTable

from ..waiting import wait_until
from .test_wizard_screens import enter_until, on_screen

DOWN, ENTER, BACKSPACE = "\x1b[B", "\r", "\x7f"


class PipedPrompter(Prompter):
    """The real questionary prompts; before each one, the keys a user would type into it are sent down the
    pipe (one prompt at a time, so no prompt reads keys meant for the next)."""

    def __init__(self, pipe: Any, keys: list[tuple[str, str]]) -> None:
        super().__init__(input=pipe, output=DummyOutput())
        self.pipe = pipe
        self.keys = list(keys)
        self.asked: list[str] = []
        self.said: list[str] = []

    def _ask(self, question: Any) -> Any:
        expected, keys = self.keys.pop(0)
        self.asked.append(expected)
        self.pipe.send_text(keys)
        return question.unsafe_ask()

    def say(self, text: str) -> None:
        self.said.append(text)


def down_to(options: list[str], wanted: str, disabled: set[str] = frozenset()) -> str:  # type: ignore[assignment]
    """Arrow-down presses from the first usable option to `wanted` (questionary skips disabled ones)."""
    usable = [o for o in options if o not in disabled]
    return DOWN * usable.index(wanted)


def plan_keys(discovery: AwsDiscovery) -> list[tuple[str, str]]:
    extra = ["g5", "g6", "g7e", "p4d", "p4de", "p5", "p5e", "p5en", "p6-b200"]
    summary = discovery.region_summary("us-east-1", list(load_catalog().families))
    offered = {o.family for o in summary.offerings if o.zones}
    disabled = {f for f in extra if f not in offered}
    return [
        ("deployment", BACKSPACE * 20 + "demo-same" + ENTER),
        ("region", ENTER),  # the configured region is the default
        ("instanceType", "g6e.4xlarge" + ENTER),  # typing filters the list
        ("families", down_to(extra, "g7e", disabled) + " " + ENTER),
        ("capacity", DOWN + ENTER),  # by id
        ("reservationIds", " " + ENTER),  # the first (fitting) reservation
        ("fallback", DOWN + ENTER),  # on-demand
        ("mode", DOWN + ENTER),  # disagg-efa is disabled (no EFA): the next is disagg-tcp
        ("model", "Qwen3-0.6B" + ENTER),
        ("prefillReplicas", ENTER),
        ("decodeReplicas", BACKSPACE + "2" + ENTER),
    ]


async def test_plan_prompts_write_the_same_plan_as_the_tui(wizard_sandbox: AwsDiscovery, tmp_path: Path) -> None:
    # The plain front end, through its prompts (in a thread: questionary runs its own event loop).
    def plain() -> tuple[Any, PipedPrompter]:
        with create_pipe_input() as pipe:
            prompter = PipedPrompter(pipe, plan_keys(wizard_sandbox))
            return PlainWizard(wizard_sandbox, prompter).run(), prompter

    answers, prompter = await asyncio.to_thread(plain)
    assert not prompter.keys, f"questions not asked: {prompter.keys}"
    assert prompter.asked[0] == "deployment" and prompter.asked[-1] == "decodeReplicas"
    prompts_file = plan_prompts.write_plan(answers.to_plan(), tmp_path / "prompts.yaml")

    # The TUI, with the same answers.
    app = WizardApp(wizard_sandbox, mode="sandbox")
    async with app.run_test(size=(100, 30)) as pilot:
        await on_screen(app, pilot, "welcome")
        app.screen.query_one("#deployment").value = "demo-same"  # type: ignore[attr-defined]
        await enter_until(app, pilot, "families")
        types = app.screen.query_one("#types", ChoiceTable)
        types.highlight("g7e.12xlarge")
        await pilot.press("space")
        types.highlight("g6e.4xlarge")
        await pilot.press("enter")
        await on_screen(app, pilot, "capacity")
        reservations = app.screen.query_one("#reservations", ChoiceTable)
        first = next(r.key for r in reservations.rows if r.available)
        reservations.highlight(first)
        await pilot.press("space")
        app.screen.query_one("#fallback").value = "on-demand"  # type: ignore[attr-defined]
        reservations.focus()
        while not reservations.has_focus_within:  # focus() takes effect on a later message cycle
            await pilot.pause()
        await pilot.press("enter")
        await on_screen(app, pilot, "serving")
        app.screen.query_one("#modes", ChoiceTable).highlight("disagg-tcp")
        await pilot.pause()
        app.screen.query_one("#models", ChoiceTable).highlight("Qwen/Qwen3-0.6B")
        app.screen.query_one("#decode").value = "2"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await on_screen(app, pilot, "review")
        target = tmp_path / "tui-export"
        await pilot.press("e")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "PromptDialog", what="the export dialog")
        app.screen.query_one("#prompt-input").value = str(target)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_until(pilot, lambda: (target / "plan.yaml").exists(), what="the export")

    tui_file = target / "plan.yaml"
    assert prompts_file.read_bytes() == tui_file.read_bytes()
    plan = load_plan(tui_file)
    assert plan.deployment == "demo-same" and plan.gpu.families == ("g6e", "g7e")
    assert plan.serving.instance_type == "g6e.4xlarge" and plan.serving.mode.value == "disagg-tcp"
    assert plan.reservation is not None and plan.reservation.ids == (first,)
    assert plan.reservation.fallback == "on-demand"
    assert plan.serving.decode is not None and plan.serving.decode.replicas == 2


def test_plan_prompts_refuse_what_the_tui_refuses(wizard_sandbox: AwsDiscovery) -> None:
    """An answer the TUI shows as unavailable is refused with the same reason."""
    given = {"deployment": "x", "region": "us-east-1", "instanceType": "g6e.2xlarge", "families": [],
             "capacity": "none", "capacityTypes": "on-demand,spot", "mode": "disagg-efa"}
    wizard = PlainWizard(wizard_sandbox, Prompter(output=DummyOutput()), given=given, interactive=False)
    with pytest.raises(AnswerError) as err:
        wizard.run()
    assert "mode: 'disagg-efa' cannot be used: g6e.2xlarge has no EFA" in str(err.value)


def test_plan_command_with_an_answers_file_and_no_terminal(wizard_sandbox: AwsDiscovery, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    answers = tmp_path / "answers.yaml"
    answers.write_text(yaml.safe_dump({
        "deployment": "scripted", "region": "us-east-1", "instanceType": "g6e.2xlarge", "families": [],
        "capacity": "none", "capacityTypes": "on-demand", "mode": "agg", "model": "Qwen/Qwen3-0.6B", "replicas": 1,
    }))
    out = tmp_path / "plan.yaml"
    assert main(["plan", "-o", str(out), "--answers", str(answers)]) == 0
    plan = load_plan(out)
    assert plan.deployment == "scripted" and plan.gpu.capacity_types == ("on-demand",)
    assert plan.zones == ("us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d", "us-east-1f")
    # A missing answer without a terminal: a clear message, exit 1, no file.
    answers.write_text(yaml.safe_dump({"deployment": "scripted", "region": "us-east-1"}))
    out2 = tmp_path / "plan2.yaml"
    assert main(["plan", "-o", str(out2), "--answers", str(answers)]) == 1
    err = capsys.readouterr().err
    assert "no answer for 'instanceType'" in err and "answers file" in err
    assert not out2.exists()
    # An unknown key is named.
    answers.write_text("regoin: us-east-1\n")
    assert main(["plan", "-o", str(out2), "--answers", str(answers)]) == 1
    assert "unknown answer 'regoin'" in capsys.readouterr().err


def test_plan_only_answers_need_no_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    answers = {"planOnly": True, "deployment": "offline", "region": "eu-west-1", "instanceType": "g6e.2xlarge",
               "families": [], "capacity": "none", "capacityTypes": "on-demand,spot", "mode": "agg",
               "model": "Qwen/Qwen3-0.6B", "replicas": 1}
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(answers))
    args = argparse.Namespace(output=str(tmp_path / "p.yaml"), answers=str(tmp_path / "a.yaml"))
    assert plan_prompts.run(args) == 0
    assert load_plan(tmp_path / "p.yaml").region == "eu-west-1"
