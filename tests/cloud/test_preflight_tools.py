"""Tool discovery: PATH or DYNAMO_WIZARD_* overrides, versions parsed, support judged."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dynamo_wizard.cloud.tools import check_tool, check_tools, parse_version


def _fake(tmp_path: Path, name: str, output: str, rc: int = 0) -> Path:
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\necho '{output}'\nexit {rc}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_parse_version() -> None:
    assert parse_version("0.230.0") == (0, 230, 0)
    assert parse_version("v3.19.0+g3d8990f") == (3, 19, 0)
    assert parse_version("0.231.0-dev+a1b2c3") == (0, 231, 0)
    assert parse_version("no version here") is None


@pytest.mark.parametrize(("tool", "output", "ok", "words"), [
    ("eksctl", "0.230.0", True, "eksctl 0.230.0"),
    ("eksctl", "0.199.0", False, "too old: autoModeConfig needs 0.200"),
    ("helm", "v4.1.0+g1234567", True, "helm 4.1.0"),
    ("helm", "v2.16.12+g47f0b88", False, "use helm 3 or 4"),
])
def test_versions_are_judged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tool: str, output: str, ok: bool,
                             words: str) -> None:
    monkeypatch.setenv(f"DYNAMO_WIZARD_{tool.upper()}", str(_fake(tmp_path, tool, output)))
    result = check_tool(tool)
    assert result.ok is ok and words in result.message and result.path == str(tmp_path / tool)


def test_missing_broken_and_not_executable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("DYNAMO_WIZARD_EKSCTL", raising=False)
    assert check_tool("eksctl").message == "eksctl not found on PATH"
    monkeypatch.setenv("DYNAMO_WIZARD_HELM", str(_fake(tmp_path, "helm", "Error: boom", rc=1)))
    broken = check_tool("helm")
    assert not broken.ok and "did not report a version" in broken.message
    plain = tmp_path / "eksctl-plain"
    plain.write_text("not a program")
    monkeypatch.setenv("DYNAMO_WIZARD_EKSCTL", str(plain))
    assert "is not an executable file" in check_tool("eksctl").message


def test_real_kubectl_and_helm_when_present(monkeypatch: pytest.MonkeyPatch) -> None:
    tools = Path(__file__).resolve().parents[2] / ".tools" / "bin"
    if not (tools / "kubectl").exists():
        pytest.skip("real kubectl/helm not installed (scripts/get-k8s-tools.sh)")
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("DYNAMO_WIZARD_HELM", raising=False)
    by_name = {t.name: t for t in check_tools()}
    assert by_name["kubectl"].ok and (parse_version(by_name["kubectl"].version or "") or (0,))[0] == 1
    assert by_name["helm"].ok and by_name["helm"].version and by_name["helm"].version[0] in "34"
