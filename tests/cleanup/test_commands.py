"""`dynamo-wizard cleanup` and `status` end to end against moto (boto3 over HTTP), kmock (the kubernetes
client over HTTP) and stand-in eksctl/helm that act on both."""

from __future__ import annotations

import argparse
import io
import json
from typing import Any

import pytest
from kubernetes import client

from dynamo_wizard.cloud.owned import OwnedAws, OwnedKube
from dynamo_wizard.commands import cleanup as cmd
from dynamo_wizard.core import cleanup as c
from dynamo_wizard.core.events import Event, StepFinished
from dynamo_wizard.core.ledger import Ledger

from .conftest import Deployed
from .world import NS


def _args(**kw: Any) -> argparse.Namespace:
    return argparse.Namespace(deployment=kw.get("deployment", "demo"), yes=kw.get("yes", True), json=kw.get("json"))


def _cleanup(d: Deployed, answer: str = "", **kw: Any) -> tuple[int, str]:
    out = io.StringIO()
    rc = cmd.run_cleanup(_args(**kw), backend_factory=d.backend, inp=io.StringIO(answer), out=out)
    return rc, out.getvalue()


def test_cleanup_leaves_nothing_tagged_or_labelled_and_a_second_cleanup_is_a_no_op(deployed: Deployed) -> None:
    rc, text = _cleanup(deployed)
    assert rc == 0, text
    assert "Everything demo created is gone." in text
    # The order of the design: graphs, helm, NATS volume, claims, EFS, SG, pools, cluster.
    starts = [line.split("]")[0][1:] for line in text.splitlines() if "] ▶ " in line]
    for earlier, later in [(c.S_DGD, c.S_HELM), (c.S_HELM, c.S_NATS_PVC), (c.S_MOUNT_TARGETS, c.S_FILE_SYSTEM),
                           (c.S_MOUNT_TARGETS, c.S_SECURITY_GROUP), (c.S_SECURITY_GROUP, c.S_CLUSTER),
                           (c.S_RESERVED_NODEPOOL, c.S_RESERVED_NODECLASS)]:
        assert starts.index(earlier) < starts.index(later), (earlier, later, starts)
    owned = OwnedAws("us-east-1", deployed.session)
    assert owned.tagged_leftovers("demo") == []
    disc = c.Discovery("demo")
    OwnedKube(deployed.api).discover("demo", [], disc)
    # The cluster went with eksctl (the fake API server stays up: what was deleted one by one is gone).
    kube_left = {(f.ref.kind, f.ref.name) for f in disc.found}
    assert kube_left <= {("namespace", NS), ("secret", "hf-token-secret"), ("storage-class", "auto-ebs-sc")}
    assert not Ledger("demo").live_resources()
    # Another team's look-alikes survive, in AWS and in the cluster.
    w = deployed.world
    assert owned.exists(c.Ref(c.SECURITY_GROUP, "dynamo-efs-sg", resource_id=w.foreign["sg"]))
    assert owned.exists(c.Ref(c.FILE_SYSTEM, "dynamo-efs", resource_id=w.foreign["fs"]))
    assert owned.exists(c.Ref(c.CLUSTER, "their-cluster"))
    assert owned.exists(c.Ref(c.STACK, "eksctl-their-cluster-cluster"))
    core = client.CoreV1Api(deployed.api)
    assert {p.metadata.name for p in core.list_namespaced_persistent_volume_claim("team-b").items} == {
        "dynamo-platform-nats-js-dynamo-platform-nats-0", "model-cache"}
    assert [call["argv"][:2] for call in deployed.tool_calls()] == [["uninstall", "dynamo-platform"],
                                                                    ["delete", "cluster"]]
    ledger_lines = Ledger("demo").path.read_text()
    calls_before = deployed.tool_calls()
    rc, text = _cleanup(deployed)
    assert rc == 0 and "Nothing to clean up for demo." in text
    assert Ledger("demo").path.read_text() == ledger_lines
    assert deployed.tool_calls() == calls_before


def test_without_yes_the_deployment_name_must_be_typed(deployed: Deployed) -> None:
    rc, text = _cleanup(deployed, answer="dem\n", yes=False)
    assert rc == 1 and "Not confirmed; nothing was deleted." in text
    assert OwnedAws("us-east-1", deployed.session).exists(c.Ref(c.CLUSTER, "demo"))
    assert deployed.tool_calls() == []
    rc, text = _cleanup(deployed, answer="", yes=False)  # end of input: no answer, no deletion
    assert rc == 1 and deployed.tool_calls() == []
    rc, text = _cleanup(deployed, answer="demo\n", yes=False)
    assert rc == 0, text


def test_no_deployment_given_uses_the_only_one_known(deployed: Deployed, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tag discovery in the default region also sees "someone-else" (an SG tagged for another deployment).
    monkeypatch.setattr(cmd, "deployments_by_tag", lambda regions: ({}, []))
    rc, text = _cleanup(deployed, deployment=None)
    assert rc == 0 and "Deployment demo in us-east-1" in text


def test_several_deployments_are_listed_and_one_is_asked_for(deployed: Deployed) -> None:
    out = io.StringIO()
    with pytest.raises(cmd.WizardError, match="more than one deployment"):
        cmd.run_cleanup(_args(deployment=None, yes=True), backend_factory=deployed.backend,
                        inp=io.StringIO(""), out=out)
    assert "demo  (us-east-1, from ledger+tag)" in out.getvalue()
    assert "someone-else  (us-east-1, from tag)" in out.getvalue()
    with pytest.raises(cmd.WizardError, match="not one of them"):
        cmd.run_cleanup(_args(deployment=None, yes=False), backend_factory=deployed.backend,
                        inp=io.StringIO("nope\n"), out=io.StringIO())


def test_a_cleanup_cancelled_half_way_resumes_and_finishes(deployed: Deployed) -> None:
    session = cmd.open_session("demo", region="us-east-1", backend_factory=deployed.backend)
    runner = session.runner()

    def stop_after_mount_targets(event: Event) -> None:
        if isinstance(event, StepFinished) and event.step_id == c.S_MOUNT_TARGETS:
            runner.cancel()

    runner.add_listener(stop_after_mount_targets)
    report = runner.run()
    assert report.cancelled and not report.ok
    assert report.status(c.S_MOUNT_TARGETS) == "done"
    assert report.status(c.S_CLUSTER) == "cancelled"
    owned = OwnedAws("us-east-1", deployed.session)
    assert owned.exists(c.Ref(c.CLUSTER, "demo"))  # not reached yet
    assert not any(owned.exists(c.Ref(c.MOUNT_TARGET, "", resource_id=m)) for m in deployed.world.mount_target_ids)
    # Resume: a fresh cleanup finds what is left (the ledger says what went) and finishes.
    rc, text = _cleanup(deployed)
    assert rc == 0, text
    assert owned.tagged_leftovers("demo") == []
    assert "delete-efs-mount-targets" not in text  # already done, not in the resumed graph


def test_status_reports_each_deployment_with_what_exists(deployed: Deployed) -> None:
    out = io.StringIO()
    assert cmd.run_status(_args(json=True), backend_factory=deployed.backend, out=out) == 0
    data = json.loads(out.getvalue())
    demo = next(d for d in data["deployments"] if d["deployment"] == "demo")
    assert demo["source"] == "ledger+tag" and demo["clusterState"] == "exists"
    kinds = {(r["kind"], r["name"]): r["state"] for r in demo["resources"]}
    assert kinds[("cluster", "demo")] == "exists"
    assert kinds[("dgd", "demo-agg")] == "exists"
    assert demo["costPerHour"] > 1.0  # the GPU node of the pool, plus the control plane
    text = io.StringIO()
    cmd.run_status(_args(json=False), backend_factory=deployed.backend, out=text)
    assert "EKS cluster" in text.getvalue() and "$0.10/h" in text.getvalue()
    rc, cleanup_text = _cleanup(deployed)
    assert rc == 0, cleanup_text
    out = io.StringIO()
    cmd.run_status(_args(json=True), backend_factory=deployed.backend, out=out)
    demo = next(d for d in json.loads(out.getvalue())["deployments"] if d["deployment"] == "demo")
    assert demo["exists"] == 0 and demo["clusterState"] == "gone"
