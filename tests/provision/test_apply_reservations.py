"""`apply` checks a reserved plan against the region's reservations before creating anything."""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

import pytest

from dynamo_wizard.commands import apply as apply_cmd
from dynamo_wizard.core.errors import PlanError
from dynamo_wizard.core.ledger import Ledger
from dynamo_wizard.core.plan import load_plan

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "disagg-p5-reserved.yaml"


def _plan_file(tmp_path: Path, reservation: str) -> Path:
    text = EXAMPLE.read_text().replace("cr-0123456789abcdef0", reservation)
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    return path


def test_an_unknown_reservation_is_refused_before_anything_is_created(sandbox_env: Any, tmp_path: Path) -> None:
    plan_file = _plan_file(tmp_path, "cr-0123456789abcdef0")
    out = io.StringIO()
    with pytest.raises(PlanError) as refused:
        apply_cmd.run(argparse.Namespace(plan=str(plan_file), yes=True), inp=io.StringIO(""), out=out)
    assert any("cr-0123456789abcdef0 was not found in us-east-1" in line for line in refused.value.lines())
    assert not Ledger(load_plan(plan_file).deployment).exists()  # nothing was even intended
    assert sandbox_env.calls("eksctl") == []


def test_a_reservation_of_another_type_is_refused_with_the_fix(sandbox_env: Any, tmp_path: Path) -> None:
    plan_file = _plan_file(tmp_path, "cr-0a1b2c3d4e5f60718")  # the sandbox's g6e.2xlarge ODCR
    with pytest.raises(PlanError) as refused:
        apply_cmd.run(argparse.Namespace(plan=str(plan_file), yes=True), inp=io.StringIO(""), out=io.StringIO())
    text = " ".join(refused.value.lines())
    assert "g6e.2xlarge" in text and "p5.48xlarge" in text
    assert sandbox_env.calls("eksctl") == []
