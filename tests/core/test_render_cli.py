"""`dynamo-wizard render` and `validate` as a user runs them: a plan outside the repository, real
subprocesses, real kubectl/envsubst/bash on the written files."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from dynamo_wizard.commands.render import run_render, run_validate
from dynamo_wizard.core.validate import validate_documents

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
KUBECTL = ROOT / ".tools" / "bin" / "kubectl"

PLAN = """\
apiVersion: dynamo-wizard/v1
kind: Plan
deployment: outside
region: us-west-2
gpu: {families: [g7e], capacityTypes: [spot]}
serving:
  mode: disagg-tcp
  instanceType: g7e.2xlarge
  model: Qwen/Qwen3-0.6B
"""


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("DYNAMO_WIZARD_SCHEMAS", None) if env is None or "DYNAMO_WIZARD_SCHEMAS" not in env else None
    return subprocess.run([sys.executable, "-m", "dynamo_wizard", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=120)


def read_docs(path: Path) -> list[Any]:
    if path.suffix == ".json":
        return [json.loads(path.read_text())]
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def written_manifests(out: Path) -> list[tuple[str, Any]]:
    docs = []
    for path in sorted(out.rglob("*")):
        if path.is_file() and path.suffix in (".yaml", ".json") and path.name != "plan.yaml":
            docs += [(str(path.relative_to(out)), d) for d in read_docs(path)]
    return docs


def test_a_plan_outside_the_repository_renders_and_validates(tmp_path: Path, shared_reference: Path) -> None:
    work = tmp_path / "elsewhere"
    work.mkdir()
    (work / "my-plan.yaml").write_text(PLAN)
    proc = cli("render", "my-plan.yaml", "-o", "out", "--schemas", str(shared_reference), cwd=work)
    assert proc.returncode == 0, proc.stderr
    out = work / "out"
    assert "wrote out/" in proc.stdout
    assert "checked: DynamoGraphDeployment nvidia.com/v1alpha1 strictly" in proc.stdout
    names = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert names == [".dynamo-wizard-render", "00-eksctl-cluster.yaml", "10-storageclass-auto-ebs-sc.yaml",
                     "11-nodepool-gpu.yaml", "20-namespace.yaml", "21-efs-storage.yaml",
                     "30-dynamo-platform-values.yaml", "40-model-download/kustomization.yaml",
                     "40-model-download/model-download.yaml", "50-graph-outside-disagg-tcp.yaml", "plan.yaml",
                     "runbook.sh"]
    # The files on disk (not our in-memory objects) pass every validator.
    assert validate_documents(written_manifests(out), shared_reference, "1.34") == []
    assert os.access(out / "runbook.sh", os.X_OK)
    assert subprocess.run(["bash", "-n", str(out / "runbook.sh")], capture_output=True).returncode == 0
    # plan.yaml is the normalised plan and validates on its own.
    proc = cli("validate", str(out / "plan.yaml"), "--schemas", str(shared_reference), cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert "valid (9 files would be rendered)" in proc.stdout


def test_validate_without_schemas_says_what_it_skipped(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(PLAN)
    proc = cli("validate", "p.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "skipped: eksctl ClusterConfig and custom resources" in proc.stdout
    assert "checked: core kinds with kubernetes-validate --strict (Kubernetes 1.34)" in proc.stdout


def test_schemas_from_the_environment(tmp_path: Path, shared_reference: Path) -> None:
    (tmp_path / "p.yaml").write_text(PLAN)
    proc = cli("validate", "p.yaml", cwd=tmp_path, env={"DYNAMO_WIZARD_SCHEMAS": str(shared_reference)})
    assert proc.returncode == 0, proc.stderr
    assert "skipped: eksctl" not in proc.stdout and "strictly against" in proc.stdout


def test_an_invalid_plan_exits_2_with_one_line_per_problem_and_writes_nothing(tmp_path: Path) -> None:
    bad = PLAN.replace("mode: disagg-tcp", "mode: disagg-efa").replace("families: [g7e]", "families: [g7e, p6]")
    bad += "  colour: blue\n"
    (tmp_path / "bad.yaml").write_text(bad)
    proc = cli("render", "bad.yaml", "-o", "out", cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == ["error: serving.colour: unknown key — remove it or check its spelling against "
                     "docs/plan-format.md"]
    assert not (tmp_path / "out").exists()
    (tmp_path / "bad.yaml").write_text(bad.replace("  colour: blue\n", ""))
    proc = cli("render", "bad.yaml", "-o", "out", cwd=tmp_path)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2, proc.stderr
    assert errors[0].startswith("error: gpu.families[1]: 'p6' is not an EKS Auto Mode GPU instance family")
    assert errors[1].startswith("error: serving.mode: disagg-efa needs EFA, and g7e.2xlarge has no EFA interface")
    assert all(" — " in e for e in errors)  # every line has its fix
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize("content", ["", "- a list\n", "apiVersion: [unclosed\n", "\x00\x01binary", "a: *nope\n",
                                     "\udcff".encode("utf-8", "surrogateescape").decode("latin-1")])
def test_garbage_plans_never_give_a_traceback(tmp_path: Path, content: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "p.yaml").write_text(content, encoding="latin-1")
    assert run_validate(args(tmp_path / "p.yaml")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: plan") and "Traceback" not in err


def test_a_missing_plan_or_schemas_dir_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_validate(args(tmp_path / "nope.yaml")) == 2
    assert f"error: plan: no file at {tmp_path / 'nope.yaml'}" in capsys.readouterr().err
    (tmp_path / "p.yaml").write_text(PLAN)
    assert run_validate(args(tmp_path / "p.yaml", schemas=tmp_path / "no-such-dir")) == 2
    assert f"error: --schemas: no directory at {tmp_path / 'no-such-dir'}" in capsys.readouterr().err


def args(plan: Path, out: Path | None = None, schemas: Path | None = None) -> argparse.Namespace:
    return argparse.Namespace(plan=str(plan), output=str(out) if out else None,
                              schemas=str(schemas) if schemas else None)


def test_render_replaces_its_own_output_but_never_a_foreign_directory(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "p.yaml"
    plan.write_text(PLAN)
    out = tmp_path / "out"
    assert run_render(args(plan, out)) == 0
    (out / "00-eksctl-cluster.yaml").write_text("edited by hand\n")
    assert run_render(args(plan, out)) == 0  # a previous render: replaced as a whole
    assert "edited by hand" not in (out / "00-eksctl-cluster.yaml").read_text()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    capsys.readouterr()
    assert run_render(args(plan, foreign)) == 2
    assert "holds files dynamo-wizard did not write" in capsys.readouterr().err
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp dirs left behind


def test_a_failed_re_render_leaves_the_previous_one_intact(tmp_path: Path) -> None:
    plan = tmp_path / "p.yaml"
    plan.write_text(PLAN)
    out = tmp_path / "out"
    assert run_render(args(plan, out)) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    plan.write_text(PLAN.replace("g7e.2xlarge", "g7e.3xlarge"))
    assert run_render(args(plan, out)) == 2
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_an_unwritable_output_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "p.yaml"
    plan.write_text(PLAN)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert run_render(args(plan, blocker / "out")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --output: cannot write") and "Traceback" not in err


def test_warnings_are_shown_and_do_not_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "p.yaml"
    plan.write_text(PLAN.replace("Qwen/Qwen3-0.6B", "someone/their-model"))
    assert run_validate(args(plan)) == 0
    err = capsys.readouterr().err
    assert err.startswith("warning: serving.model: 'someone/their-model' is not in the catalog")


def test_the_token_never_reaches_the_rendered_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_ThisIsASecretTokenValue1234567")
    plan = tmp_path / "p.yaml"
    plan.write_text(PLAN)
    assert run_render(args(plan, tmp_path / "out")) == 0
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            assert "hf_ThisIsASecret" not in path.read_text()
    runbook = (tmp_path / "out" / "runbook.sh").read_text()
    assert "printf 'HF_TOKEN=%s\\n' \"$HF_TOKEN\"" in runbook  # read from the environment at apply time


@pytest.mark.skipif(not KUBECTL.exists(), reason="kubectl not installed in .tools/bin (scripts/get-k8s-tools.sh)")
def test_the_download_kustomization_builds_with_real_kubectl(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run_render(args(EXAMPLES / "disagg-efa.yaml", out)) == 0
    proc = subprocess.run([str(KUBECTL), "kustomize", str(out / "40-model-download")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    (job,) = list(yaml.safe_load_all(proc.stdout))
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == {"requests": {"memory": "16Gi"}}
    assert container["image"] == "python:3.10-slim"


@pytest.mark.skipif(shutil.which("envsubst") is None, reason="envsubst (gettext-base) not installed")
def test_runbook_placeholders_fill_into_valid_files(tmp_path: Path, shared_reference: Path) -> None:
    """The runbook's envsubst steps turn the placeholders into real values and a valid zone list."""
    out = tmp_path / "out"
    assert run_render(args(EXAMPLES / "agg.yaml", out)) == 0
    env = {**os.environ, "EKS_CP_AZS": "us-east-1a\n- us-east-1b\n- us-east-1c", "EFS_FS_ID": "fs-0123abcd"}
    cluster = subprocess.run(["envsubst", "${EKS_CP_AZS}"], input=(out / "00-eksctl-cluster.yaml").read_text(),
                             capture_output=True, text=True, env=env, check=True).stdout
    config = yaml.safe_load(cluster)
    assert config["availabilityZones"] == ["us-east-1a", "us-east-1b", "us-east-1c"]
    efs = subprocess.run(["envsubst", "${EFS_FS_ID}"], input=(out / "21-efs-storage.yaml").read_text(),
                         capture_output=True, text=True, env=env, check=True).stdout
    docs = list(yaml.safe_load_all(efs))
    assert docs[0]["parameters"]["fileSystemId"] == "fs-0123abcd"
    assert validate_documents([("c", config)] + [("e", d) for d in docs], shared_reference, "1.34") == []
    runbook = (out / "runbook.sh").read_text()
    assert "envsubst '${EKS_CP_AZS}'" in runbook and "envsubst '${EFS_FS_ID}'" in runbook


def test_runbook_fills_the_reserved_nodeclass_with_jq(tmp_path: Path, shared_reference: Path) -> None:
    """Run the runbook's jq program on the rendered NodeClass with a default NodeClass like Auto Mode's."""
    if shutil.which("jq") is None:
        pytest.skip("jq not installed")
    out = tmp_path / "out"
    assert run_render(args(EXAMPLES / "disagg-p5-reserved.yaml", out)) == 0
    runbook = (out / "runbook.sh").read_text()
    start = runbook.index("  jq --argjson d")
    program = runbook[runbook.index("'", start) + 1: runbook.index("' \\\n", start)]
    default = {"spec": {"role": "AmazonEKSAutoNodeRole", "subnetSelectorTerms": [{"tags": {"kubernetes.io/role/internal-elb": "1"}}],
                        "securityGroupSelectorTerms": [{"tags": {"aws:eks:cluster-name": "demo-p5"}}]}}
    proc = subprocess.run(["jq", "--argjson", "d", json.dumps(default), program,
                           str(out / "12-nodeclass-gpu-reserved.json")], capture_output=True, text=True, check=True)
    filled = json.loads(proc.stdout)
    assert filled["spec"]["role"] == "AmazonEKSAutoNodeRole"
    assert filled["spec"]["subnetSelectorTerms"] == default["spec"]["subnetSelectorTerms"]
    assert filled["spec"]["capacityReservationSelectorTerms"] == [{"id": "cr-0123456789abcdef0"}]
    assert "dynamo-wizard/fill-at-apply" not in filled["metadata"].get("annotations", {})
    assert validate_documents([("nc", filled)], shared_reference, "1.34") == []
