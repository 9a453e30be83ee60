"""The provisioning graph against the sandbox: boto3 over HTTP to the AWS front (moto), the real kubernetes
client over HTTP to the cluster's fake API server, the fake eksctl and helm executables (their argv
recorded). Everything goes through the product's own paths: `build_backends` from the environment,
`make_runner`, the `apply` command."""

from __future__ import annotations

import argparse
import io
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dynamo_wizard import cli
from dynamo_wizard.cloud.backends import build_backends, pod_watch_for
from dynamo_wizard.commands import apply as apply_cmd
from dynamo_wizard.core.errors import WizardError
from dynamo_wizard.core.events import ResourceRecorded, StepOutput, StepStarted
from dynamo_wizard.core.ledger import Ledger
from dynamo_wizard.core.paths import deployment_dir, state_dir
from dynamo_wizard.core.plan import Plan, save_plan
from dynamo_wizard.core.podview import PodView
from dynamo_wizard.core.runner import Runner, RunReport
from dynamo_wizard.core.steps import ProvisionOptions

from .conftest import TOKEN, Events, plan_named

TAG = "dynamo-wizard/deployment"
CREATING_STEPS = ("cluster", "namespace", "gpu-nodepool", "default-storageclass", "efs", "efs-volumes", "platform",
                  "hf-secret", "model-download", "gpu-warmup", "graph")
WAIT = 30.0


def run_plan(plan: Plan, events: Events | None = None, *, token: str = TOKEN) -> tuple[Runner, RunReport, Events]:
    events = events or Events()
    runner = apply_cmd.make_runner(plan, token, listeners=[events],
                                   options=ProvisionOptions(hf_token=token, poll=0.05, poll_max=0.3))
    return runner, runner.run(), events


def entries(plan: Plan) -> list[dict[str, Any]]:
    return list(Ledger(plan.deployment).entries())


def wait_for(condition: Any, what: str, timeout: float = WAIT) -> Any:
    """Poll a condition with a deadline (the watch runs in its own thread; there is no event to wait on)."""
    deadline = time.monotonic() + timeout
    stop = threading.Event()
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        stop.wait(0.05)


@pytest.fixture(scope="module")
def deployed(sandbox_service: Any) -> Iterator[dict[str, Any]]:
    """One full deployment of the agg example, shared by the tests that look at a finished deployment."""
    plan = plan_named("agg", "p-agg")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in sandbox_service.env.items():
            mp.setenv(key, value)
        mp.delenv("HF_TOKEN", raising=False)
        Path(sandbox_service.env["DYNAMO_WIZARD_HOME"]).mkdir(parents=True, exist_ok=True)
        runner, report, events = run_plan(plan)
        yield {"plan": plan, "runner": runner, "report": report, "events": events,
               "entries": entries(plan), "calls": sandbox_service.calls()}


# --------------------------------------------------------------------------------------------------


def test_full_graph_runs_to_the_smoke_test(deployed: dict[str, Any], sandbox_env: Any) -> None:
    plan: Plan = deployed["plan"]
    report: RunReport = deployed["report"]
    assert report.ok, {k: (v.status, v.error) for k, v in report.steps.items()}
    assert set(deployed["events"].statuses().values()) == {"done"}
    smoke = deployed["runner"].state["smoke"]
    assert smoke["model"] == plan.serving.model and smoke["answer"]

    # AWS: found by our tag, and the ledger holds the real ids.
    efs = sandbox_env.client("efs")
    fs = efs.describe_file_systems(CreationToken=f"dynamo-wizard-{plan.deployment}")["FileSystems"]
    assert len(fs) == 1 and {"Key": TAG, "Value": plan.deployment} in fs[0]["Tags"]
    cluster = sandbox_env.client("eks").describe_cluster(name=plan.cluster_name)["cluster"]
    assert cluster["tags"][TAG] == plan.deployment
    live = {(r.kind, r.name): r for r in Ledger(plan.deployment).live_resources()}
    assert live[("efs-file-system", f"dynamo-efs-{plan.deployment}")].resource_id == fs[0]["FileSystemId"]
    sg = live[("security-group", "dynamo-efs-sg")].resource_id
    groups = sandbox_env.client("ec2").describe_security_groups(GroupIds=[sg])["SecurityGroups"]
    assert {"Key": TAG, "Value": plan.deployment} in groups[0]["Tags"]
    assert any(p["FromPort"] == 2049 for p in groups[0]["IpPermissions"])
    mts = efs.describe_mount_targets(FileSystemId=fs[0]["FileSystemId"])["MountTargets"]
    assert {m["AvailabilityZoneName"] for m in mts} == {n for k, n in live if k == "efs-mount-target"}
    assert len({m["AvailabilityZoneName"] for m in mts}) == len(mts)  # one per zone
    kinds = {k for k, _ in live}
    assert {"cluster", "namespace", "nodepool", "storage-class", "pvc", "helm-release", "secret", "job",
            "dgd"} <= kinds
    # The warm-up Deployment was created, then deleted when the graph took its nodes.
    assert Ledger(plan.deployment).find("deployment", f"{plan.deployment}-gpu-warmup").state == "deleted"

    # Every create has its intent first.
    actions = [(e["action"], e["kind"], e["name"]) for e in deployed["entries"]]
    for action, kind, name in actions:
        if action == "created":
            assert actions.index(("intent", kind, name)) < actions.index(("created", kind, name))

    # Kubernetes objects carry our labels.
    backends = build_backends(plan.region)
    kube = backends.connect(backends.kube_access(backends.aws.describe_cluster(plan.cluster_name)))
    dgd = kube.get("nvidia.com/v1alpha1", "DynamoGraphDeployment", plan.graph_name, plan.namespace)
    assert dgd["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "dynamo-wizard", TAG: plan.deployment}
    secret = kube.get("v1", "Secret", "hf-token-secret", plan.namespace)
    assert secret is not None  # the token went there, and only there:
    files = [p for p in state_dir().rglob("*") if p.is_file()]
    files += [p for p in Path(sandbox_env.directory).rglob("*.jsonl") if p.is_file()]
    assert files and all(TOKEN not in p.read_text(errors="replace") for p in files)

    # helm got a kubeconfig of its own, removed after use; every step has a log file.
    helm = [c for c in deployed["calls"] if c["tool"] == "helm"]
    paths = [c["argv"][c["argv"].index("--kubeconfig") + 1] for c in helm]
    assert paths and not any(Path(p).exists() for p in paths)
    logs = deployment_dir(plan.deployment) / "logs"
    assert "eksctl create cluster" in (logs / "cluster.log").read_text()
    assert "answered" in (logs / "smoke-test.log").read_text()


def test_second_run_creates_nothing_new(deployed: dict[str, Any], sandbox_env: Any) -> None:
    plan: Plan = deployed["plan"]
    before_entries = entries(plan)
    before_calls = sandbox_env.calls()
    runner, report, events = run_plan(plan)
    assert report.ok
    statuses = events.statuses()
    assert {s: statuses[s] for s in CREATING_STEPS} == {s: "skipped" for s in CREATING_STEPS}
    assert statuses["smoke-test"] == "done"
    new_entries = entries(plan)[len(before_entries):]
    assert [e for e in new_entries if e["action"] in ("intent", "created")] == []
    new_calls = sandbox_env.calls()[len(before_calls):]
    assert [c["argv"][:2] for c in new_calls if c["argv"][:2] in (["create", "cluster"], ["upgrade", "--install"])] == []
    fs = sandbox_env.client("efs").describe_file_systems(CreationToken=f"dynamo-wizard-{plan.deployment}")
    assert len(fs["FileSystems"]) == 1


def test_pod_watch_follows_pods_and_reconnects(deployed: dict[str, Any], sandbox_env: Any) -> None:
    plan: Plan = deployed["plan"]
    view = PodView(plan.namespace)
    stop = threading.Event()
    watch = pod_watch_for(plan.cluster_name, plan.region, poll=0.2)
    thread = threading.Thread(target=watch, args=(plan.namespace, view, stop), daemon=True)
    thread.start()
    try:
        wait_for(lambda: any(r.name.startswith(f"{plan.graph_name}-frontend") for r in view.rows()),
                 "the frontend pod in the pod view")
        sandbox_env.faults("drop-watch=4")
        backends = build_backends(plan.region)
        kube = backends.connect(backends.kube_access(backends.aws.describe_cluster(plan.cluster_name)))
        kube.create({"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": "watch-probe", "namespace": plan.namespace},
                     "spec": {"containers": [{"name": "c", "image": "busybox"}],
                              "nodeSelector": {"node.kubernetes.io/instance-type": "nonexistent.type"}}})
        row = wait_for(lambda: next((r for r in view.rows() if r.name == "watch-probe"), None),
                       "the new pod after the watch dropped")
        assert row.phase == "Pending"
        kube.delete("v1", "Pod", "watch-probe", plan.namespace)
        wait_for(lambda: all(r.name != "watch-probe" for r in view.rows()), "the deleted pod to leave the view")
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()


def test_apply_command_resumes_and_prints_the_endpoint(deployed: dict[str, Any], sandbox_env: Any,
                                                        capsys: pytest.CaptureFixture[str],
                                                        tmp_path: Path) -> None:
    plan: Plan = deployed["plan"]
    plan_file = save_plan(plan, tmp_path / "plan.yaml")
    assert cli.main(["apply", str(plan_file), "--yes"]) == 0
    out = capsys.readouterr().out
    assert "[cluster] ✔ already present" in out
    assert f"port-forward: kubectl -n {plan.namespace} port-forward svc/{plan.graph_name}-frontend 8000:8000" in out
    assert "cost:" in out and "/h" in out
    assert "[smoke-test] ✔ done" in out

    # Without --yes and without a terminal to ask on, it refuses and says how to go on.
    with pytest.raises(WizardError, match="--yes"):
        apply_cmd.run(argparse.Namespace(plan=str(plan_file), yes=False), inp=io.StringIO(""), out=io.StringIO())


def test_failure_blocks_only_dependants_and_a_resume_completes(sandbox_env: Any) -> None:
    plan = plan_named("agg", "p-fail")
    sandbox_env.faults("fail-once=helm")
    _, report, events = run_plan(plan)
    assert not report.ok and not report.cancelled
    statuses = events.statuses()
    assert statuses["platform"] == "failed"
    assert "helm" in (events.finished("platform").error or "")
    assert events.finished("platform").fix
    for step in ("model-download", "graph", "smoke-test"):
        assert statuses[step] == "blocked", step
    for step in ("cluster", "efs", "efs-volumes", "namespace", "hf-secret", "gpu-nodepool", "gpu-warmup"):
        assert statuses[step] == "done", step

    _, report, events = run_plan(plan)
    assert report.ok
    statuses = events.statuses()
    assert statuses["platform"] == "done" and statuses["efs"] == "skipped" and statuses["cluster"] == "skipped"
    created = Counter((e["kind"], e["name"]) for e in entries(plan) if e["action"] == "created")
    assert created and max(created.values()) == 1
    argvs = [c["argv"][:2] for c in sandbox_env.calls() if plan.cluster_name in json.dumps(c["argv"])
             or "p-fail" in json.dumps(c["argv"])]
    assert argvs.count(["create", "cluster"]) == 1


def cancelling_runner(plan: Plan, when: Any) -> tuple[Runner, Events]:
    """A runner that cancels itself the first time `when(event)` is true."""
    events = Events()
    holder: dict[str, Runner] = {}

    def hook(event: Any) -> None:
        if not holder["runner"].cancelled and when(event):
            holder["runner"].cancel()

    events.hooks.append(hook)
    holder["runner"] = apply_cmd.make_runner(plan, TOKEN, listeners=[events],
                                             options=ProvisionOptions(hf_token=TOKEN, poll=0.05, poll_max=0.3))
    return holder["runner"], events


def test_cancel_lets_eksctl_finish_then_stops(sandbox_env: Any) -> None:
    plan = plan_named("agg", "p-cancel")
    runner, events = cancelling_runner(
        plan, lambda e: isinstance(e, StepOutput) and e.step_id == "cluster" and "[ℹ]" in e.line)
    report = runner.run()
    assert report.cancelled
    statuses = events.statuses()
    assert statuses["cluster"] == "done"  # a plain stop does not leave a half-made cluster
    assert set(statuses.values()) == {"done", "cancelled"} and statuses["efs"] == "cancelled"
    lines = [e.line for e in events.items if isinstance(e, StepOutput) and e.step_id == "cluster"]
    assert any(line.startswith("stop requested: eksctl keeps going") for line in lines)
    cluster = Ledger(plan.deployment).find("cluster", plan.cluster_name)
    assert cluster is not None and cluster.state == "created"
    assert sandbox_env.client("eks").describe_cluster(name=plan.cluster_name)["cluster"]["status"] == "ACTIVE"


def test_cancelled_run_leaves_the_ledger_consistent_with_what_exists(sandbox_env: Any) -> None:
    plan = plan_named("agg", "p-cancel")  # resumes the deployment the previous test stopped
    runner, events = cancelling_runner(
        plan, lambda e: isinstance(e, ResourceRecorded) and e.kind == "efs-file-system" and e.action == "created")
    report = runner.run()
    assert report.cancelled and not report.ok
    statuses = events.statuses()
    assert statuses["cluster"] in ("skipped", "done") and statuses["efs"] == "cancelled"
    assert statuses.get("smoke-test") == "cancelled"

    ledger = Ledger(plan.deployment)
    ec2, efs, eks = sandbox_env.client("ec2"), sandbox_env.client("efs"), sandbox_env.client("eks")
    recorded = {(r.kind, r.resource_id) for r in ledger.live_resources() if r.state in ("created", "adopted")}
    assert any(kind == "efs-file-system" for kind, _ in recorded)
    for kind, rid in recorded:  # everything the ledger says exists, exists
        if kind == "efs-file-system":
            assert efs.describe_file_systems(FileSystemId=rid)["FileSystems"]
        elif kind == "security-group":
            assert ec2.describe_security_groups(GroupIds=[rid])["SecurityGroups"]
        elif kind == "efs-mount-target":
            assert efs.describe_mount_targets(MountTargetId=rid)["MountTargets"]
    assert eks.describe_cluster(name=plan.cluster_name)["cluster"]["status"] == "ACTIVE"
    # ... and everything of ours that exists is in the ledger (nothing created behind its back).
    tagged = [f for f in efs.describe_file_systems()["FileSystems"]
              if {"Key": TAG, "Value": plan.deployment} in f.get("Tags", [])]
    assert tagged and {f["FileSystemId"] for f in tagged} <= {rid for _, rid in recorded}
    for fs in tagged:
        for mt in efs.describe_mount_targets(FileSystemId=fs["FileSystemId"])["MountTargets"]:
            assert ("efs-mount-target", mt["MountTargetId"]) in recorded
    started = {e.step_id for e in events.items if isinstance(e, StepStarted)}
    assert "graph" not in started


def test_oom_killed_download_says_what_memory_to_set(sandbox_env: Any) -> None:
    plan = plan_named("agg", "p-oom")
    sandbox_env.faults("oom-download")
    _, report, events = run_plan(plan)
    assert not report.ok
    failed = events.finished("model-download")
    assert failed.status == "failed"
    assert "OOMKilled" in (failed.error or "") and "4Gi" in (failed.error or "")
    assert "storage.downloadMemory: 16Gi" in (failed.fix or "")
    assert events.statuses()["graph"] == "blocked"


def test_kube_adapter_against_the_clusters_api_server(deployed: dict[str, Any], sandbox_env: Any) -> None:
    plan: Plan = deployed["plan"]
    backends = build_backends(plan.region)
    kube = backends.connect(backends.kube_access(backends.aws.describe_cluster(plan.cluster_name)))
    labels = {"app.kubernetes.io/managed-by": "dynamo-wizard", TAG: plan.deployment}
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "adapter-probe", "namespace": plan.namespace, "labels": labels}, "data": {"a": "1"}}
    assert kube.apply(cm).action == "created"
    assert kube.apply(cm).action == "unchanged"
    assert kube.apply({**cm, "data": {"a": "2"}}).action == "patched"
    assert kube.get("v1", "ConfigMap", "adapter-probe", plan.namespace)["data"] == {"a": "2"}
    names = [c["metadata"]["name"] for c in kube.list("v1", "ConfigMap", plan.namespace, labels=labels)]
    assert "adapter-probe" in names
    assert "adapter-probe" not in [c["metadata"]["name"] for c in
                                   kube.list("v1", "ConfigMap", plan.namespace, labels={TAG: "someone-else"})]
    assert kube.delete("v1", "ConfigMap", "adapter-probe", plan.namespace, wait=10) is True
    assert kube.get("v1", "ConfigMap", "adapter-probe", plan.namespace) is None
    assert kube.delete("v1", "ConfigMap", "adapter-probe", plan.namespace) is False
    # NodeClaims of our GPU pool, pod logs, events and the service proxy.
    assert kube.nodeclaims(["gpu"]) and all(c["metadata"]["labels"]["karpenter.sh/nodepool"] == "gpu"
                                            for c in kube.nodeclaims(["gpu"]))
    worker = next(p for p in kube.list("v1", "Pod", plan.namespace,
                                       labels={"nvidia.com/dynamo-graph-deployment-name": plan.graph_name})
                  if "worker" in p["metadata"]["name"])
    assert "Starting to load model" in kube.read_log(plan.namespace, worker["metadata"]["name"])
    followed = []
    for line in kube.follow_log(plan.namespace, worker["metadata"]["name"]):  # a running pod: the stream stays open
        followed.append(line)
        if "Starting to load model" in line:
            break
    assert followed
    assert kube.latest_event(plan.namespace, "Pod", worker["metadata"]["name"]) is not None
    reply = kube.proxy("GET", plan.namespace, f"{plan.graph_name}-frontend", 8000, "/v1/models")
    assert reply.ok and plan.serving.model in reply.body


def test_reserved_capacity_and_the_efa_check(sandbox_env: Any) -> None:
    """The guide's p5 example on a reservation the sandbox has: the reserved NodeClass copies the default
    NodeClass's role and selectors and waits for the reservation to show active; the EFA check reads the
    workers' logs."""
    reservation = {"ids": ["cr-0c3d4e5f60718293a"], "fallback": "on-demand"}
    plan = plan_named("disagg-p5-reserved", "p-p5", reservation=reservation)
    runner, report, events = run_plan(plan)
    assert report.ok, {k: (v.status, v.error) for k, v in report.steps.items()}
    assert "cr-0c3d4e5f60718293a" in events.finished("reserved-capacity").summary
    backends = build_backends(plan.region)
    kube = backends.connect(backends.kube_access(backends.aws.describe_cluster(plan.cluster_name)))
    default = kube.get("eks.amazonaws.com/v1", "NodeClass", "default")
    reserved = kube.get("eks.amazonaws.com/v1", "NodeClass", "gpu-reserved")
    assert reserved["spec"]["role"] == default["spec"]["role"]
    assert reserved["spec"]["subnetSelectorTerms"] == default["spec"]["subnetSelectorTerms"]
    assert reserved["spec"]["capacityReservationSelectorTerms"] == [{"id": "cr-0c3d4e5f60718293a"}]
    assert events.finished("efa-check").status == "done"
    assert set(runner.state["efa"].values()) == {"efa"}


def test_an_earlier_attempts_eksctl_still_creating_the_cluster_is_waited_for_not_duplicated(
    sandbox_env: Any, tmp_path: Path,
) -> None:
    """An apply killed during `eksctl create cluster` leaves that eksctl running (it is not ours to stop any
    more). Applying again at once finds its stack before its cluster exists (real stacks spend minutes on the
    network first; the sandbox holds the stack there): the cluster step waits for that cluster and adopts it."""
    import os
    import subprocess

    import yaml

    from dynamo_wizard.core import manifests as mf

    plan = plan_named("agg", "p-early")
    config = tmp_path / "eksctl-cluster.yaml"
    zones = ("us-east-1a", "us-east-1b")
    config.write_text(yaml.safe_dump(mf.eksctl_cluster_config(plan, mf.ClusterFacts(zones=zones)), sort_keys=False))
    sandbox_env.faults("hold=eksctl-stack")
    earlier = subprocess.Popen([sandbox_env.env["DYNAMO_WIZARD_EKSCTL"], "create", "cluster", "-f", str(config)],
                               env={**os.environ, **sandbox_env.env}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    result: dict[str, Any] = {}
    events = Events()
    try:
        wait_for(lambda: "hold=eksctl-stack" in sandbox_env.status()["faults"]["fired"], "the earlier eksctl's stack")
        assert sandbox_env.client("eks").list_clusters()["clusters"].count(plan.cluster_name) == 0
        thread = threading.Thread(target=lambda: result.update(report=run_plan(plan, events)[1]), daemon=True)
        thread.start()
        stack = mf.eksctl_cluster_stack_name(plan)
        cluster_lines = lambda: [e.line for e in list(events.items)  # noqa: E731
                                 if isinstance(e, StepOutput) and e.step_id == "cluster"]
        wait_for(lambda: any(f"stack {stack} of an earlier attempt is" in x for x in cluster_lines()),
                 "the cluster step to find the earlier stack")
        sandbox_env.faults("release=eksctl-stack")
        thread.join(timeout=180)
        assert earlier.wait(timeout=120) == 0, "the earlier eksctl was disturbed"
    finally:
        sandbox_env.faults("release=eksctl-stack")
        if earlier.poll() is None:
            earlier.kill()
    report = result["report"]
    assert report.ok, [(f.step_id, f.error) for f in report.failed()]
    assert events.statuses()["cluster"] == "done"
    assert any("earlier attempt is ACTIVE; adopted" in x for x in cluster_lines())
    # Our own eksctl ran once and stopped at the stack; nothing else made a second cluster.
    creates = [c for c in sandbox_env.calls("eksctl") if c["argv"][:2] == ["create", "cluster"]
               and str(config) not in c["argv"] and plan.cluster_name in json.dumps(c)]
    assert len(creates) <= 1
    assert sandbox_env.client("eks").list_clusters()["clusters"].count(plan.cluster_name) == 1
    created = [e for e in entries(plan) if e["kind"] == "cluster" and e["action"] == "created"]
    assert len(created) == 1
