"""`apply` runs the preflight before creating anything: a reserved plan against the region's reservations,
the quota, the credentials."""

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


def _eksctl_made_nothing(sandbox: Any) -> bool:
    """The preflight asks `eksctl version`; nothing else may have run."""
    return [c["argv"] for c in sandbox.calls("eksctl") if c["argv"] != ["version"]] == []


def test_an_unknown_reservation_is_refused_before_anything_is_created(sandbox_env: Any, tmp_path: Path) -> None:
    plan_file = _plan_file(tmp_path, "cr-0123456789abcdef0")
    out = io.StringIO()
    with pytest.raises(PlanError) as refused:
        apply_cmd.run(argparse.Namespace(plan=str(plan_file), yes=True), inp=io.StringIO(""), out=out)
    assert any("cr-0123456789abcdef0 was not found in us-east-1" in line for line in refused.value.lines())
    assert not Ledger(load_plan(plan_file).deployment).exists()  # nothing was even intended
    assert _eksctl_made_nothing(sandbox_env)


def test_a_reservation_of_another_type_is_refused_with_the_fix(sandbox_env: Any, tmp_path: Path) -> None:
    plan_file = _plan_file(tmp_path, "cr-0a1b2c3d4e5f60718")  # the sandbox's g6e.2xlarge ODCR
    with pytest.raises(PlanError) as refused:
        apply_cmd.run(argparse.Namespace(plan=str(plan_file), yes=True), inp=io.StringIO(""), out=io.StringIO())
    text = " ".join(refused.value.lines())
    assert "g6e.2xlarge" in text and "p5.48xlarge" in text
    assert _eksctl_made_nothing(sandbox_env)


def test_a_plan_over_the_vcpu_quota_is_refused_with_the_quota_to_raise(sandbox_env: Any, tmp_path: Path) -> None:
    # Three p5.48xlarge on demand (the example's reservation is not in the sandbox): 576 vCPUs, quota 192.
    plan_file = _plan_file(tmp_path, "cr-0123456789abcdef0")
    with pytest.raises(PlanError) as refused:
        apply_cmd.run(argparse.Namespace(plan=str(plan_file), yes=True), inp=io.StringIO(""), out=io.StringIO())
    quota = [p for p in refused.value.problems if p.field == "preflight quota"]
    assert quota and "576 vCPUs needed" in quota[0].message and "L-417A185B" in quota[0].fix
    assert _eksctl_made_nothing(sandbox_env)


def test_without_credentials_nothing_starts(sandbox_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    empty = tmp_path / "aws-config"
    empty.write_text("")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    plan_file = EXAMPLE.parent / "agg.yaml"
    with pytest.raises(PlanError) as refused:
        apply_cmd.run(argparse.Namespace(plan=str(plan_file), yes=True), inp=io.StringIO(""), out=io.StringIO())
    fields = [p.field for p in refused.value.problems]
    assert "preflight credentials" in fields, refused.value.lines()
    assert not Ledger(load_plan(plan_file).deployment).exists()
    assert _eksctl_made_nothing(sandbox_env)
