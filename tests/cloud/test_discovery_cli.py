"""`dynamo-wizard gpus | reservations | preflight`, as a user runs them."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import yaml

from dynamo_wizard import cli
from dynamo_wizard.cloud.aws import AwsDiscovery
from dynamo_wizard.commands import discovery as commands
from dynamo_wizard.core.catalog import load_catalog
from dynamo_wizard.sandbox.awsgaps import SandboxState

ROOT = Path(__file__).resolve().parents[2]


def test_gpus_json_subprocess_matches_direct_boto3(aws_env: dict[str, str]) -> None:
    """The subprocess has no gap handlers: EC2 data must match; quotas and prices degrade with notes."""
    done = subprocess.run([sys.executable, "-m", "dynamo_wizard", "gpus", "--json", "--region", "us-east-1",
                           "--families", "g6e,g7e,p5"], env=dict(os.environ), capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    ec2 = boto3.client("ec2", region_name="us-east-1")
    types = {t["InstanceType"]: t for t in ec2.describe_instance_types(
        Filters=[{"Name": "instance-type", "Values": ["g6e.*", "g7e.*", "p5.*"]}])["InstanceTypes"]}
    offered: dict[str, set[str]] = {}
    for o in ec2.describe_instance_type_offerings(LocationType="availability-zone", Filters=[
            {"Name": "instance-type", "Values": list(types)}])["InstanceTypeOfferings"]:
        offered.setdefault(o["InstanceType"], set()).add(o["Location"])
    got = {o["instance_type"]: o for o in report["offerings"]}
    assert set(got) == set(offered)
    catalog = load_catalog()
    for name, o in got.items():
        gpu = types[name]["GpuInfo"]["Gpus"][0]
        assert (o["gpus"], o["gpu_memory_mib"], o["vcpus"]) == (
            gpu["Count"], gpu["MemoryInfo"]["SizeInMiB"], types[name]["VCpuInfo"]["DefaultVCpus"])
        assert o["efa_supported"] == types[name]["NetworkInfo"]["EfaSupported"]
        assert set(o["zones"]) == offered[name]
        assert o["price_source"] == "catalog" and o["on_demand_price"] == catalog.instance_type(name).on_demand_price  # type: ignore[union-attr]
        assert o["quota"]["on_demand_vcpus"] is None
    assert report["quotas"] == [] and report["account"] == "123456789012"
    assert any("GetServiceQuota" in n for n in report["notes"]) and any("pricing" in n for n in report["notes"])


@pytest.fixture
def wired(aws_session: boto3.Session, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> boto3.Session:
    """The commands' discovery on the session with gap fills; fake eksctl and helm for preflight."""
    monkeypatch.setattr(commands, "discovery_from_env",
                        lambda **kw: AwsDiscovery(aws_session, max_workers=8, refresh=kw.get("refresh", False)))
    for tool, version in (("eksctl", "0.230.0"), ("helm", "v3.19.0+g3d8990f")):
        path = tmp_path / tool
        path.write_text(f"#!/bin/sh\necho '{version}'\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
        monkeypatch.setenv(f"DYNAMO_WIZARD_{tool.upper()}", str(path))
    return aws_session


def test_gpus_table(wired: boto3.Session, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["gpus", "--region", "us-east-1", "--families", "g6e,p5"]) == 0
    out, err = capsys.readouterr()
    row = next(line for line in out.splitlines() if line.startswith("g6e.2xlarge "))
    assert "NVIDIA L40S" in row and "45 GiB" in row and "a b c d" in row and "2.242 " in row + " "
    assert "G 192 vCPU = 24" in row and "*" not in row
    p5 = next(line for line in out.splitlines() if line.startswith("p5.48xlarge "))
    assert "yes (32)" in p5 and "P 192 vCPU = 1" in p5
    assert err == ""


def test_gpus_bad_input_is_a_clear_error(wired: boto3.Session, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["gpus", "--region", "us-east-9"]) == 1
    assert "error: unknown region 'us-east-9'" in capsys.readouterr().err
    assert cli.main(["gpus", "--families", "g6e.2xlarge"]) == 1
    err = capsys.readouterr().err
    assert "is not an instance family" in err and "Traceback" not in err


def test_reservations_table_and_json(wired: boto3.Session, gap_state: SandboxState,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["reservations", "--region", "us-east-1"]) == 0
    out = capsys.readouterr().out
    block = next(line for line in out.splitlines() if line.startswith("cr-0c3d4e5f60718293a"))
    assert "Capacity Block" in block and "left)" in block and "1/1" in block and "team=ml-platform" in block
    assert cli.main(["reservations", "--region", "us-east-1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {r["id"] for r in data["reservations"]} == {r.id for r in gap_state.reservations["us-east-1"]}
    assert data["notes"] == []
    gap_state.faults.deny_regions = {"us-west-2"}
    assert cli.main(["reservations", "--region", "us-west-2"]) == 1
    assert "note: us-west-2: ec2.DescribeCapacityReservations was denied" in capsys.readouterr().err


def _plan_file(tmp_path: Path, name: str, **over: object) -> Path:
    data = yaml.safe_load((ROOT / "examples" / "agg.yaml").read_text())
    data.update(over)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_preflight_passes_for_a_plan_that_fits(wired: boto3.Session, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["preflight", str(_plan_file(tmp_path, "ok.yaml"))]) == 0
    out = capsys.readouterr().out
    assert "✓ credentials: account 123456789012" in out and "✓ tool:eksctl: eksctl 0.230.0" in out
    assert "✓ quota:" in out and "all checks passed" in out


def test_preflight_fails_with_fixes(wired: boto3.Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = _plan_file(tmp_path, "p5.yaml", zones=["us-east-1a", "us-east-1b"],
                      gpu={"families": ["p5"], "capacityTypes": ["on-demand"]},
                      reservation={"ids": ["cr-0c3d4e5f60718293a"], "fallback": "on-demand"},
                      serving={"mode": "disagg-efa", "instanceType": "p5.48xlarge", "model": "Qwen/Qwen3-32B",
                               "prefill": {"replicas": 6, "gpus": 2, "tensorParallel": 2},
                               "decode": {"replicas": 2, "gpus": 2, "tensorParallel": 2}})
    assert cli.main(["preflight", str(plan)]) == 1
    out = capsys.readouterr().out
    assert "✗ quota:" in out and "fix: raise L-417A185B (Running On-Demand P instances) in us-east-1 by 192" in out
    assert "! capacity-block:cr-0c3d4e5f60718293a" in out and "left" in out
    assert cli.main(["preflight", str(plan), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and any(v["check"] == "quota" and not v["ok"] for v in data["verdicts"])


def test_preflight_of_a_bad_plan_exits_2(wired: boto3.Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: dynamo-wizard/v1\nkind: Plan\n")
    assert cli.main(["preflight", str(bad)]) == 2
    assert "error: " in capsys.readouterr().err
