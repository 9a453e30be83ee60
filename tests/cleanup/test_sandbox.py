"""Cleanup after a real `apply`, in the sandbox: the product's own clients against the sandbox's AWS and its
cluster API, eksctl and helm as the sandbox's fakes (they record their calls)."""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from textual.screen import Screen
from textual.widgets import Static

from dynamo_wizard.cloud.kube import api_client_for_cluster
from dynamo_wizard.cloud.owned import OwnedAws
from dynamo_wizard.commands import apply as apply_cmd
from dynamo_wizard.commands import cleanup as cmd
from dynamo_wizard.core import cleanup as c
from dynamo_wizard.core.ledger import Ledger
from dynamo_wizard.sandbox.testing import SandboxHandle, running_sandbox
from dynamo_wizard.screens.cleanup import CleanupScreen
from dynamo_wizard.tui.app import WizardApp
from dynamo_wizard.tui.widgets.confirm import ConfirmDialog

from ..tui.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
NS = "dynamo-system"


@pytest.fixture(scope="module")
def sandbox_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    """This module's own sandbox, fast (the deployments here are set up, not watched)."""
    with running_sandbox(tmp_path_factory.mktemp("cleanup-sandbox"), speed=200) as handle:
        yield handle


def _apply(tmp_path: Path, deployment: str) -> None:
    text = (ROOT / "examples" / "agg.yaml").read_text(encoding="utf-8").replace("deployment: demo-agg",
                                                                                f"deployment: {deployment}")
    text = text.replace("region: us-east-1", "region: us-east-1\nzones: [us-east-1a, us-east-1b]")
    plan = tmp_path / f"{deployment}.yaml"
    plan.write_text(text, encoding="utf-8")
    out = io.StringIO()
    rc = apply_cmd.run(argparse.Namespace(plan=str(plan), yes=True), out=out, inp=io.StringIO(""))
    assert rc == 0, out.getvalue()[-3000:]


def _cleanup(deployment: str, answer: str = "", **kw: Any) -> tuple[int, str]:
    out = io.StringIO()
    args = argparse.Namespace(deployment=deployment, yes=kw.get("yes", True))
    rc = cmd.run_cleanup(args, inp=io.StringIO(answer), out=out)
    return rc, out.getvalue()


def _kube(deployment: str) -> client.ApiClient:
    cluster = OwnedAws("us-east-1").eks.describe_cluster(name=deployment)["cluster"]
    return api_client_for_cluster(cluster, "us-east-1")


def test_after_a_full_apply_cleanup_leaves_nothing_and_a_second_is_a_no_op(sandbox_env: SandboxHandle,
                                                                            tmp_path: Path) -> None:
    _apply(tmp_path, "sbx-full")
    owned = OwnedAws("us-east-1")
    assert owned.tagged_leftovers("sbx-full")  # the apply tagged what it made
    # Another team's look-alikes, outside our cluster: an untagged dynamo-efs-sg and dynamo-efs.
    ec2, efs = owned.ec2, owned.efs
    default_vpc = next(v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if v.get("IsDefault"))
    their_sg = ec2.create_security_group(GroupName="dynamo-efs-sg", Description="team b", VpcId=default_vpc)["GroupId"]
    their_fs = efs.create_file_system(CreationToken="team-b", Tags=[{"Key": "Name", "Value": "dynamo-efs"}])[
        "FileSystemId"]
    rc, text = _cleanup("sbx-full")
    assert rc == 0, text
    assert "Everything sbx-full created is gone." in text
    assert owned.tagged_leftovers("sbx-full") == []
    assert not Ledger("sbx-full").live_resources()
    assert owned.exists(c.Ref(c.SECURITY_GROUP, "dynamo-efs-sg", resource_id=their_sg))
    assert owned.exists(c.Ref(c.FILE_SYSTEM, "dynamo-efs", resource_id=their_fs))
    calls = sandbox_env.calls()
    assert any(r["tool"] == "helm" and r["argv"][:2] == ["uninstall", "dynamo-platform"] for r in calls)
    assert any(r["tool"] == "eksctl" and r["argv"][:2] == ["delete", "cluster"] and "sbx-full" in r["argv"]
               for r in calls)
    # The design's order, as the log shows it: graphs, helm, NATS volume; EFS before the cluster.
    starts = [line.split("]")[0][1:] for line in text.splitlines() if "] ▶ " in line]
    for earlier, later in [(c.S_DGD, c.S_HELM), (c.S_HELM, c.S_NATS_PVC), (c.S_PVCS, c.S_MOUNT_TARGETS),
                           (c.S_MOUNT_TARGETS, c.S_FILE_SYSTEM), (c.S_SECURITY_GROUP, c.S_CLUSTER)]:
        assert starts.index(earlier) < starts.index(later), starts
    ledger_text = Ledger("sbx-full").path.read_text()
    calls_before = len(sandbox_env.calls())
    rc, text = _cleanup("sbx-full")
    assert rc == 0 and "Nothing to clean up for sbx-full." in text
    assert Ledger("sbx-full").path.read_text() == ledger_text
    assert len(sandbox_env.calls()) == calls_before


def test_keeping_the_cluster_removes_ours_inside_it_and_leaves_theirs(sandbox_env: SandboxHandle,
                                                                      tmp_path: Path) -> None:
    """With the cluster kept, every object of ours inside it is deleted one by one; another team's objects
    with the same names or shapes (no label of ours) stay."""
    _apply(tmp_path, "sbx-keep")
    api = _kube("sbx-keep")
    core, storage = client.CoreV1Api(api), client.StorageV1Api(api)
    custom = client.CustomObjectsApi(api)
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-b"}})
    core.create_namespaced_persistent_volume_claim("team-b", {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "dynamo-platform-nats-js-dynamo-platform-nats-0", "namespace": "team-b",
                     "labels": {"app.kubernetes.io/name": "nats", "app.kubernetes.io/instance": "dynamo-platform"}},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    storage.create_storage_class({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                                  "metadata": {"name": "efs-sc-team-b"}, "provisioner": "efs.csi.aws.com"})
    custom.create_cluster_custom_object("karpenter.sh", "v1", "nodepools", {
        "apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "gpu-team-b"},
        "spec": {"template": {"spec": {"nodeClassRef": {"group": "eks.amazonaws.com", "kind": "NodeClass",
                                                        "name": "default"}, "requirements": []}}}})
    session = cmd.open_session("sbx-keep")
    keep = [i.key for i in session.inventory.live() if i.kind not in (c.CLUSTER, c.STACK)]
    report = session.runner(selected=keep).run()
    assert report.ok, [(s.step_id, s.error) for s in report.failed()]
    after = cmd.open_session("sbx-keep").inventory
    assert {i.kind for i in after.live()} == {c.CLUSTER, c.STACK}
    assert "team-b" in {n.metadata.name for n in core.list_namespace().items}
    assert [p.metadata.name for p in core.list_namespaced_persistent_volume_claim("team-b").items] == [
        "dynamo-platform-nats-js-dynamo-platform-nats-0"]
    assert storage.read_storage_class("efs-sc-team-b").metadata.name == "efs-sc-team-b"
    pools = {p["metadata"]["name"] for p in custom.list_cluster_custom_object("karpenter.sh", "v1", "nodepools")["items"]}
    assert "gpu-team-b" in pools and "gpu" not in pools
    assert NS not in {n.metadata.name for n in core.list_namespace().items}  # ours, deleted one by one
    # Then the cluster: everything goes.
    rc, text = _cleanup("sbx-keep")
    assert rc == 0, text
    assert OwnedAws("us-east-1").tagged_leftovers("sbx-keep") == []


def test_status_lists_sandbox_deployments_with_what_exists(sandbox_env: SandboxHandle, tmp_path: Path) -> None:
    _apply(tmp_path, "sbx-status")
    out = io.StringIO()
    assert cmd.run_status(argparse.Namespace(json=True), out=out) == 0
    data = json.loads(out.getvalue())
    mine = next(d for d in data["deployments"] if d["deployment"] == "sbx-status")
    assert mine["source"] == "ledger+tag" and mine["clusterState"] == "exists"
    kinds = {r["kind"] for r in mine["resources"] if r["state"] == "exists"}
    assert {c.CLUSTER, c.STACK, c.FILE_SYSTEM, c.MOUNT_TARGET, c.SECURITY_GROUP, c.DGD, c.HELM_RELEASE,
            c.PVC, c.NODEPOOL} <= kinds
    assert mine["costPerHour"] > 2.0  # the GPU node and the control plane
    rc, text = _cleanup("sbx-status")
    assert rc == 0, text


class _Welcome(Screen[None]):
    def compose(self) -> Any:
        yield Static("welcome")


async def test_the_wizard_app_reaches_cleanup_and_it_deletes_everything(sandbox_env: SandboxHandle,
                                                                        tmp_path: Path) -> None:
    """Installed in WizardApp as "cleanup" (welcome screen, command palette, after a failed run all call
    start_cleanup): the real screen, with the product's own session and runner, against the sandbox."""
    _apply(tmp_path, "sbx-tui")
    app = WizardApp(screens={"welcome": _Welcome}, use_draft=False, mode="sandbox")
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, _Welcome), 60)
        app.start_cleanup("sbx-tui")
        await wait_until(pilot, lambda: isinstance(app.screen, CleanupScreen), 60)
        screen: Any = app.screen
        assert app.is_screen_installed("cleanup")
        await wait_until(pilot, lambda: screen.state == "listing" and screen.inventory is not None, 120)
        assert screen.inventory.deployment == "sbx-tui" and len(screen.checked) > 15
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), 60)
        await pilot.press(*"sbx-tui", "enter")
        await wait_until(pilot, lambda: screen.state in ("done", "failed") and screen.left_after is not None, 180)
        assert screen.state == "done", screen.result_text
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, _Welcome), 60)
        app.action_cleanup()  # the command palette's entry: no deployment given, so it asks which
        await wait_until(pilot, lambda: isinstance(app.screen, CleanupScreen) and app.screen is not screen, 60)
        assert app.screen.state in ("picking", "loading")  # type: ignore[attr-defined]
    assert OwnedAws("us-east-1").tagged_leftovers("sbx-tui") == []
