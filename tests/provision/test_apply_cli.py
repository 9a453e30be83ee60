"""`dynamo-wizard apply` before anything is provisioned: the plan is checked, and nothing happens without
a yes (asked on a terminal; refused without one)."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from dynamo_wizard import cli
from dynamo_wizard.commands import apply as apply_cmd
from dynamo_wizard.core.errors import WizardError
from dynamo_wizard.core.paths import state_dir

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_answering_no_does_nothing(sandbox_env: object, capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    code = apply_cmd.run(argparse.Namespace(plan=str(EXAMPLES / "agg.yaml"), yes=False), inp=Terminal("n\n"), out=out)
    text = out.getvalue()
    assert code == apply_cmd.EXIT_REFUSED
    assert "Serving Qwen/Qwen3-0.6B (agg) on g6e.2xlarge" in text and "Go ahead? [y/N]" in text
    assert "Nothing was done." in text
    assert not (state_dir() / "deployments").exists()  # no ledger, no plan copy: nothing started


def test_no_terminal_and_no_yes_is_refused_with_the_way_on() -> None:
    with pytest.raises(WizardError) as err:
        apply_cmd.run(argparse.Namespace(plan=str(EXAMPLES / "agg.yaml"), yes=False), inp=io.StringIO(""),
                      out=io.StringIO())
    assert "no terminal" in err.value.message and "--yes" in err.value.fix


def test_a_broken_plan_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "plan.yaml"
    bad.write_text((EXAMPLES / "agg.yaml").read_text().replace("instanceType: g6e.2xlarge",
                                                               "instanceType: g6e.huge"))
    assert cli.main(["apply", str(bad), "--yes"]) == 2
    err = capsys.readouterr().err
    assert "serving.instanceType" in err and "Traceback" not in err
