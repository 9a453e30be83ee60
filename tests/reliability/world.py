"""The canary world: one deployment in a fresh sandbox, driven through every front end with a canary HF token,
among resources that are not the wizard's. test_secrets.py and test_isolation.py assert on what it recorded.

What happens, in order (`build_world`):
1. A fresh sandbox service. Resources that carry no dynamo-wizard tag or label are made in it: an EFS file system
   (with a mount target), a security group named dynamo-efs-sg with an NFS rule, an EFS file system tagged for
   *another* deployment, and another EKS cluster holding a namespace dynamo-system, a NodePool gpu, StorageClasses
   efs-sc-dynamic and auto-ebs-sc, a Secret hf-token-secret and a PVC model-cache: the names the wizard uses.
2. The TUI (WizardApp in sandbox mode, the real discovery, runner and pod watch): every screen in turn with Enter,
   the canary typed into the serving screen's token field, the review's files tab, an export, the confirmation,
   and the provision screen running the real apply. The API server refuses the first create of a Secret (an
   injected fault), so the run fails at the token step, shows its error, and is retried with `r` to the end.
   Every screen is captured as SVG along the way. (If the TUI part breaks, the error is kept for its test and a
   headless apply stands in, so the other checks still run.)
3. Objects that are not the wizard's are put into the wizard's own cluster (a namespace, a ConfigMap in the
   wizard's namespace, a StorageClass, a NodePool, a PVC); then `apply` again, headless, with HF_TOKEN set (a
   resume: everything is found and adopted). `render`, `validate` and `status --json` run too.
4. `cleanup` with the cluster deletion failing once: it deletes everything else and stops before the cluster, so
   the foreign objects inside the cluster can be checked; then `cleanup` again, to the end.
Every CLI run goes through `dynamo_wizard.cli.main` in-process with stdout and stderr captured; every log record
of the process is kept; temporary files go to a directory of the world's own.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import html
import io
import json
import logging
import os
import re
import secrets
import string
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dynamo_wizard.core import manifests as mf
from dynamo_wizard.sandbox.testing import SandboxHandle, running_sandbox

ROOT = Path(__file__).resolve().parents[2]
SPEED = float(os.environ.get("DYNAMO_WIZARD_RELIABILITY_SPEED", "20"))
REGION = "us-east-1"
FOREIGN_CLUSTER = "team-gpu"
OTHER_DEPLOYMENT = "other-team"
NAMESPACE = "dynamo-system"
RUN_TIMEOUT = 300.0


def make_canary() -> str:
    return "hf_CANARY" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(24))


def canary_needles(canary: str) -> list[str]:
    """The canary, fragments of it that survive clipping on screen, and its base64 at each byte alignment
    (a Secret manifest or a base64'd log would hold those)."""
    tail = canary[len("hf_CANARY"):]
    needles = [canary, *(tail[i:i + 10] for i in range(0, len(tail) - 9, 7))]
    raw = canary.encode()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode()
        first_fixed = -(-8 * offset // 6)  # the first base64 character that no byte before the canary touches
        needles.append(encoded[first_fixed:-4])  # the last group depends on what follows
    return needles


def find_canary(text: str, needles: list[str]) -> list[str]:
    return [n for n in needles if n and n in text]


# ---------------------------------------------------------------------------------------------------
# A small Kubernetes REST client (standard library, real HTTP): the test's own hands, not the product's


class KubeRest:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint.rstrip("/")

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.endpoint + path, data=data, method=method, headers={
            "Authorization": "Bearer k8s-aws-v1.reliability-test", "Content-Type": "application/json",
            "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - 127.0.0.1 only
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                return err.code, json.loads(raw)
            except ValueError:
                return err.code, raw.decode(errors="replace")

    def create(self, path: str, obj: dict[str, Any]) -> dict[str, Any]:
        status, body = self.request("POST", path, obj)
        if status not in (200, 201):
            raise AssertionError(f"creating {path}: {status} {body}")
        return body  # type: ignore[no-any-return]

    def get(self, path: str) -> dict[str, Any] | None:
        status, body = self.request("GET", path)
        if status == 404:
            return None
        if status != 200:
            raise AssertionError(f"reading {path}: {status} {body}")
        return body  # type: ignore[no-any-return]


# Foreign Kubernetes objects: (collection path, object). Names are the wizard's own where it has one.
def foreign_objects_for_other_cluster() -> list[tuple[str, dict[str, Any]]]:
    ns = NAMESPACE
    return [
        ("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns,
                                                                                     "labels": {"team": "ml"}}}),
        ("/apis/karpenter.sh/v1/nodepools", {
            "apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": mf.GPU_NODEPOOL},
            "spec": {"template": {"spec": {"nodeClassRef": {"group": "eks.amazonaws.com", "kind": "NodeClass",
                                                            "name": "default"},
                                           "requirements": [{"key": "eks.amazonaws.com/instance-family",
                                                             "operator": "In", "values": ["p5"]}]}},
                     "limits": {"nvidia.com/gpu": 16}}}),
        ("/apis/storage.k8s.io/v1/storageclasses", {
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": mf.EFS_STORAGE_CLASS},
            "provisioner": "efs.csi.aws.com", "parameters": {"provisioningMode": "efs-ap",
                                                             "fileSystemId": "fs-0team0000"}}),
        ("/apis/storage.k8s.io/v1/storageclasses", {
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "auto-ebs-sc"},
            "provisioner": "ebs.csi.eks.amazonaws.com", "parameters": {"type": "gp3"}}),
        (f"/api/v1/namespaces/{ns}/secrets", {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": mf.HF_SECRET_NAME, "namespace": ns},
            "type": "Opaque", "data": {"HF_TOKEN": base64.b64encode(b"team-token-not-a-canary").decode()}}),
        (f"/api/v1/namespaces/{ns}/persistentvolumeclaims", {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "model-cache", "namespace": ns},
            "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": mf.EFS_STORAGE_CLASS,
                     "resources": {"requests": {"storage": "100Gi"}}}}),
    ]


def foreign_objects_for_our_cluster() -> list[tuple[str, dict[str, Any]]]:
    ns = NAMESPACE
    return [
        ("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}),
        ("/api/v1/namespaces/team-a/configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                                  "metadata": {"name": "team-settings", "namespace": "team-a"},
                                                  "data": {"owner": "team-a"}}),
        (f"/api/v1/namespaces/{ns}/configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                                 "metadata": {"name": "team-notes", "namespace": ns},
                                                 "data": {"note": "not the wizard's"}}),
        (f"/api/v1/namespaces/{ns}/persistentvolumeclaims", {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "team-data", "namespace": ns},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "auto-ebs-sc",
                     "resources": {"requests": {"storage": "1Gi"}}}}),
        ("/apis/storage.k8s.io/v1/storageclasses", {
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "team-sc"},
            "provisioner": "ebs.csi.eks.amazonaws.com", "parameters": {"type": "io2"}}),
        ("/apis/karpenter.sh/v1/nodepools", {
            "apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "team-pool"},
            "spec": {"template": {"spec": {"nodeClassRef": {"group": "eks.amazonaws.com", "kind": "NodeClass",
                                                            "name": "default"},
                                           "requirements": [{"key": "eks.amazonaws.com/instance-family",
                                                             "operator": "In", "values": ["g5"]}]}}}}),
    ]


def object_path(collection: str, obj: dict[str, Any]) -> str:
    return f"{collection}/{obj['metadata']['name']}"


def kube_fingerprint(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a change by someone else would alter: identity, labels, annotations, finalizers, spec and data
    (status is the cluster's to change)."""
    if obj is None:
        return None
    meta = obj.get("metadata") or {}
    spec = obj.get("spec")
    if isinstance(spec, dict) and obj.get("kind") == "PersistentVolumeClaim":
        spec = {k: v for k, v in spec.items() if k != "volumeName"}  # set by the binder when it binds
    return {
        "uid": meta.get("uid"), "labels": meta.get("labels") or {}, "annotations": meta.get("annotations") or {},
        "finalizers": meta.get("finalizers") or [], "deleting": bool(meta.get("deletionTimestamp")),
        "spec": spec, **{k: obj.get(k) for k in ("data", "stringData", "provisioner", "parameters", "type")},
    }


# ---------------------------------------------------------------------------------------------------
# Foreign AWS resources


@dataclass
class ForeignAws:
    vpc_id: str
    subnet_id: str
    fs_id: str  # untagged, with a mount target
    mount_target_id: str
    other_fs_id: str  # tagged for another deployment
    sg_id: str  # named dynamo-efs-sg, in the default VPC
    cluster_endpoint: str = ""
    cluster_arn: str = ""


def create_foreign_aws(sandbox: SandboxHandle) -> ForeignAws:
    ec2, efs, eks = sandbox.client("ec2"), sandbox.client("efs"), sandbox.client("eks")
    vpc = next(v for v in ec2.describe_vpcs()["Vpcs"] if v.get("IsDefault"))
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]
    subnet = sorted(subnets, key=lambda s: s["AvailabilityZone"])[0]
    sg_id = ec2.create_security_group(GroupName=mf.EFS_SECURITY_GROUP_NAME, Description="team NFS",
                                      VpcId=vpc["VpcId"])["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg_id, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 2049, "ToPort": 2049, "IpRanges": [{"CidrIp": vpc["CidrBlock"]}]}])
    fs_id = efs.create_file_system(CreationToken="team-models", Encrypted=True, ThroughputMode="elastic",
                                   Tags=[{"Key": "Name", "Value": "dynamo-model-cache"}])["FileSystemId"]
    other_fs_id = efs.create_file_system(CreationToken=f"dynamo-wizard-{OTHER_DEPLOYMENT}", Tags=[
        {"Key": mf.TAG_DEPLOYMENT, "Value": OTHER_DEPLOYMENT}])["FileSystemId"]
    mt_id = _retry(lambda: efs.create_mount_target(FileSystemId=fs_id, SubnetId=subnet["SubnetId"],
                                                    SecurityGroups=[sg_id])["MountTargetId"])
    role = sandbox.client("iam").create_role(RoleName="team-gpu-cluster-role", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "eks.amazonaws.com"},
                                                "Action": ["sts:AssumeRole", "sts:TagSession"]}]}))["Role"]["Arn"]
    eks.create_cluster(name=FOREIGN_CLUSTER, roleArn=role, version="1.34",
                       resourcesVpcConfig={"subnetIds": [s["SubnetId"] for s in subnets[:2]]},
                       computeConfig={"enabled": True, "nodeRoleArn": role, "nodePools": ["general-purpose", "system"]},
                       kubernetesNetworkConfig={"elasticLoadBalancing": {"enabled": True}},
                       storageConfig={"blockStorage": {"enabled": True}}, tags={"team": "ml"})
    foreign = ForeignAws(vpc["VpcId"], subnet["SubnetId"], fs_id, mt_id, other_fs_id, sg_id)
    deadline = time.monotonic() + 60
    while True:
        cluster = eks.describe_cluster(name=FOREIGN_CLUSTER)["cluster"]
        if cluster.get("status") == "ACTIVE" and cluster.get("endpoint", "").startswith("http://127.0.0.1"):
            kube = KubeRest(cluster["endpoint"])
            if kube.request("GET", "/version")[0] == 200:
                break
        if time.monotonic() > deadline:
            raise AssertionError(f"the foreign cluster did not become ACTIVE: {cluster.get('status')}")
        time.sleep(0.1)  # polling the simulated EKS against the deadline above
    foreign.cluster_endpoint, foreign.cluster_arn = cluster["endpoint"], cluster["arn"]
    for collection, obj in foreign_objects_for_other_cluster():
        kube.create(collection, obj)
    return foreign


def _retry(call: Callable[[], Any], attempts: int = 20) -> Any:
    """The sandbox may answer a create before the file system is available: try again, briefly."""
    for i in range(attempts):
        try:
            return call()
        except Exception:  # noqa: BLE001 - the last attempt re-raises
            if i == attempts - 1:
                raise
            time.sleep(0.1)  # the simulated file system becomes available on the sandbox's clock
    return None


def aws_fingerprint(sandbox: SandboxHandle, foreign: ForeignAws) -> dict[str, Any]:
    """Everything about the foreign AWS resources that a modification or deletion would change."""
    ec2, efs, eks = sandbox.client("ec2"), sandbox.client("efs"), sandbox.client("eks")
    out: dict[str, Any] = {}
    for fs_id in (foreign.fs_id, foreign.other_fs_id):
        try:
            fs = efs.describe_file_systems(FileSystemId=fs_id)["FileSystems"][0]
            out[fs_id] = {k: fs.get(k) for k in ("CreationToken", "Encrypted", "ThroughputMode", "PerformanceMode")}
            out[fs_id]["Tags"] = sorted((t["Key"], t["Value"]) for t in fs.get("Tags") or [])
            out[fs_id]["MountTargets"] = sorted(
                (m["MountTargetId"], m["SubnetId"]) for m in efs.describe_mount_targets(FileSystemId=fs_id)["MountTargets"])
        except efs.exceptions.FileSystemNotFound:
            out[fs_id] = None
    try:
        sg = ec2.describe_security_groups(GroupIds=[foreign.sg_id])["SecurityGroups"][0]
        out[foreign.sg_id] = {"name": sg["GroupName"], "vpc": sg["VpcId"], "tags": sg.get("Tags") or [],
                              "ingress": sorted(json.dumps(p, sort_keys=True) for p in sg.get("IpPermissions") or [])}
    except Exception as err:  # noqa: BLE001 - gone (InvalidGroup.NotFound) is what the comparison shows
        out[foreign.sg_id] = f"gone: {type(err).__name__}"
    try:
        cluster = eks.describe_cluster(name=FOREIGN_CLUSTER)["cluster"]
        out[FOREIGN_CLUSTER] = {k: cluster.get(k) for k in ("arn", "status", "version", "tags", "endpoint")}
    except eks.exceptions.ResourceNotFoundException:
        out[FOREIGN_CLUSTER] = None
    return out


def kube_fingerprints(endpoint: str, objects: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    kube = KubeRest(endpoint)
    return {object_path(c, o): kube_fingerprint(kube.get(object_path(c, o))) for c, o in objects}


# ---------------------------------------------------------------------------------------------------
# Captures


@dataclass
class Capture:
    what: str
    argv: list[str]
    code: int | None
    stdout: str
    stderr: str
    error: str = ""  # an exception that escaped cli.main (a traceback for the user)


@dataclass
class World:
    root: Path
    sandbox: SandboxHandle
    canary: str
    needles: list[str]
    home: Path
    tmpdir: Path
    foreign: ForeignAws | None = None
    deployment: str = ""
    plan_path: Path | None = None
    export_dir: Path | None = None
    render_dir: Path | None = None
    our_cluster_endpoint: str = ""
    captures: list[Capture] = field(default_factory=list)
    log_records: list[str] = field(default_factory=list)
    screenshots: dict[str, str] = field(default_factory=dict)
    stage_errors: dict[str, str] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    aws_before: dict[str, Any] = field(default_factory=dict)
    aws_after: dict[str, Any] = field(default_factory=dict)
    other_cluster_before: dict[str, Any] = field(default_factory=dict)
    other_cluster_after: dict[str, Any] = field(default_factory=dict)
    in_cluster_before: dict[str, Any] = field(default_factory=dict)
    in_cluster_after_reapply: dict[str, Any] = field(default_factory=dict)
    in_cluster_before_cluster_delete: dict[str, Any] = field(default_factory=dict)
    ours_before_cleanup: list[str] = field(default_factory=list)
    ours_before_cluster_delete: list[str] = field(default_factory=list)
    secret_value: str | None = None  # the HF token as the cluster's Secret holds it (the positive control)
    sandbox_occurrences: list[str] = field(default_factory=list)  # where the canary is in the sandbox's files

    def capture(self, name: str) -> Capture:
        return next(c for c in self.captures if c.what == name)

    def stage(self, name: str) -> contextlib.AbstractContextManager[None]:
        return _stage(self, name)


@contextlib.contextmanager
def _stage(world: World, name: str) -> Iterator[None]:
    """A stage whose failure is kept for the tests that need it, so the other stages still run."""
    try:
        yield
    except Exception:  # noqa: BLE001 - reported by the test that checks this stage
        world.stage_errors[name] = traceback.format_exc()


def run_cli(world: World, what: str, argv: list[str]) -> Capture:
    from dynamo_wizard.cli import main

    out, err = io.StringIO(), io.StringIO()
    code: int | None = None
    error = ""
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 2
        except Exception:  # noqa: BLE001 - a traceback the user would have seen
            error = traceback.format_exc()
    capture = Capture(what, argv, code, out.getvalue(), err.getvalue(), error)
    world.captures.append(capture)
    return capture


class _Records(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.sink.append(f"{record.name} {record.levelname} {record.getMessage()}")
            if record.exc_info:
                self.sink.append("".join(traceback.format_exception(*record.exc_info)))
        except Exception:  # noqa: BLE001 - a record that cannot be formatted is not what this test is about
            self.sink.append(f"{record.name} {record.levelname} <unformattable>")


@contextlib.contextmanager
def capturing_logs(sink: list[str]) -> Iterator[None]:
    """Every record of the product at DEBUG and of everything else at INFO, as a user enabling logs would see."""
    handler = _Records(sink)
    root, product = logging.getLogger(), logging.getLogger("dynamo_wizard")
    levels = (root.level, product.level)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    product.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(levels[0])
        product.setLevel(levels[1])


def svg_text(svg: str) -> str:
    """The characters of a Textual SVG screenshot, in order (a leaked token is split across <text> runs)."""
    runs = re.findall(r"<text[^>]*>(.*?)</text>", svg, flags=re.S)
    return "".join(html.unescape(re.sub(r"<[^>]+>", "", r)) for r in runs).replace("\xa0", " ")


# ---------------------------------------------------------------------------------------------------
# The TUI part


async def drive_tui(world: World) -> None:
    from textual.pilot import Pilot

    from dynamo_wizard.tui.app import WizardApp

    app = WizardApp(mode="sandbox", use_draft=False, hf_token=None)
    shots = world.screenshots

    def shot(name: str) -> None:
        shots[name] = app.export_screenshot()

    async def until(pilot: Pilot[Any], condition: Callable[[], object], what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (screen: "
                                     f"{type(app.screen).__name__})")
            await pilot.pause(0.02)

    async def settle(pilot: Pilot[Any]) -> None:
        for _ in range(100):
            await app.workers.wait_for_complete()
            await pilot.pause()
            if not any(w.is_running for w in app.workers):
                return
        raise AssertionError("the wizard's workers kept starting")

    def on(step: str) -> Callable[[], bool]:
        return lambda: getattr(app.screen, "step", None) == step

    def left(step: str) -> Callable[[], bool]:
        return lambda: getattr(app.screen, "step", None) != step

    order = ["welcome", "region", "families", "capacity", "serving", "review"]
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: getattr(app.screen, "step", None) == "welcome", "the welcome screen")
        await settle(pilot)
        for step in order[:-1]:
            await until(pilot, on(step), f"the {step} screen")
            await settle(pilot)
            if step == "serving":
                app.screen.query_one("#hf-token").value = world.canary  # type: ignore[attr-defined]
                await pilot.pause()
            shot(step)
            await pilot.press("enter")
            await until(pilot, left(step), f"leaving {step}")
        await until(pilot, lambda: getattr(app.screen, "step", None) == "review", "the review screen")
        await settle(pilot)
        review: Any = app.screen
        await until(pilot, lambda: review.review is not None, "the review's checks", timeout=120)
        if review.blocking():
            raise AssertionError(f"the review refuses to confirm: {review.blocking()}")
        shot("review")
        await pilot.press("f")
        await pilot.pause()
        shot("review-files")
        plan = app.answers.to_plan()
        world.deployment = plan.deployment
        # Export: the plan and every rendered file.
        export_dir = world.root / "tui-export"
        await pilot.press("e")
        await until(pilot, lambda: type(app.screen).__name__ == "PromptDialog", "the export dialog")
        app.screen.query_one("#prompt-input").value = str(export_dir)  # type: ignore[attr-defined]
        shot("export-dialog")
        await pilot.press("enter")
        await until(pilot, lambda: (export_dir / "plan.yaml").exists() and app.screen is review, "the export")
        await settle(pilot)
        world.export_dir = export_dir
        world.plan_path = export_dir / "plan.yaml"
        shot("review-exported")
        # Confirm, with the API server refusing the Secret's create on each of the step's three attempts (a
        # 500 is transient: the runner tries the step twice more before it fails): the run fails there.
        world.sandbox.faults(",".join(["fail-once=kube:create:secrets"] * 3))
        await pilot.press("c")  # "Create…" (Enter may belong to the file list that has the focus)
        await until(pilot, lambda: type(app.screen).__name__ == "ConfirmDialog", "the confirmation")
        shot("confirm")
        app.screen.query_one("#confirm-yes").press()  # type: ignore[attr-defined]
        await until(pilot, lambda: type(app.screen).__name__ == "ProvisionScreen", "the provision screen")
        provision: Any = app.screen
        await until(pilot, lambda: provision.state in ("failed", "done", "cancelled"), "the first run to end",
                    timeout=RUN_TIMEOUT)
        world.notes["tui_first_state"] = provision.state
        world.notes["tui_first_failed"] = sorted(getattr(provision, "failed_steps", []) or [])
        shot("provision-failed")
        if provision.state == "failed":
            await pilot.press("r")
            await until(pilot, lambda: provision.state == "running", "the retry to start")
            await until(pilot, lambda: provision.state in ("failed", "done", "cancelled"), "the retried run to end",
                        timeout=RUN_TIMEOUT)
        world.notes["tui_final_state"] = provision.state
        shot("provision-end")
        if provision.state != "done":
            raise AssertionError(f"the TUI's run ended {provision.state}")


# ---------------------------------------------------------------------------------------------------
# The world


def _scan_tree(root: Path, needles: list[str]) -> dict[str, list[str]]:
    """path -> needles found, for every file under root (text, or bytes decoded leniently)."""
    found: dict[str, list[str]] = {}
    if not root.exists():
        return found
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        try:
            text = path.read_bytes().decode("utf-8", errors="replace")
        except OSError:
            continue
        hits = find_canary(text, needles)
        if hits:
            found[str(path)] = hits
    return found


def _secret_paths(node: Any, needles: list[str], trail: tuple[str, ...] = (),
                  owner: dict[str, Any] | None = None) -> list[tuple[tuple[str, ...], dict[str, Any] | None]]:
    """Where in a JSON document a needle appears, with the nearest enclosing Kubernetes object."""
    if isinstance(node, dict):
        if isinstance(node.get("metadata"), dict):
            owner = node
        hits = []
        for key, value in node.items():
            if find_canary(str(key), needles):
                hits.append(((*trail, str(key)), owner))
            hits += _secret_paths(value, needles, (*trail, str(key)), owner)
        return hits
    if isinstance(node, list):
        return [h for i, v in enumerate(node) for h in _secret_paths(v, needles, (*trail, str(i)), owner)]
    if isinstance(node, str) and find_canary(node, needles):
        return [(trail, owner)]
    return []


def sandbox_occurrences(world: World) -> list[str]:
    """Every place in the sandbox's files that holds the canary, except the one place that must: the HF token
    Secret in the wizard's namespace (the Kubernetes state of the simulated cluster)."""
    problems: list[str] = []
    for path, hits in _scan_tree(world.sandbox.directory, world.needles).items():
        rel = str(Path(path).relative_to(world.sandbox.directory))
        if rel.startswith("clusters/") and rel.endswith(".json"):
            try:
                doc = json.loads(Path(path).read_text(encoding="utf-8"))
            except ValueError:
                problems.append(f"{rel}: unreadable, holds {hits}")
                continue
            for trail, owner in _secret_paths(doc, world.needles):
                meta = (owner or {}).get("metadata") or {}
                in_secret = (meta.get("name") == mf.HF_SECRET_NAME and meta.get("namespace") == NAMESPACE
                             and ((owner or {}).get("kind") in ("Secret", None) or "secrets" in trail)
                             and any(k in ("data", "stringData") for k in trail))
                if not in_secret:
                    problems.append(f"{rel}: {'/'.join(trail)} (in {meta.get('namespace')}/{meta.get('name')})")
            continue
        problems.append(f"{rel}: {hits}")
    return problems


def read_secret(endpoint: str) -> str | None:
    secret = KubeRest(endpoint).get(f"/api/v1/namespaces/{NAMESPACE}/secrets/{mf.HF_SECRET_NAME}")
    if secret is None:
        return None
    if (secret.get("stringData") or {}).get(mf.HF_SECRET_KEY):
        return str(secret["stringData"][mf.HF_SECRET_KEY])
    data = (secret.get("data") or {}).get(mf.HF_SECRET_KEY)
    return base64.b64decode(data).decode() if data else None


def our_objects(endpoint: str, deployment: str) -> list[str]:
    """Objects in the wizard's cluster that carry its labels for this deployment (cleanup must leave none)."""
    kube = KubeRest(endpoint)
    found = []
    for path in (f"/api/v1/namespaces/{NAMESPACE}/persistentvolumeclaims", f"/api/v1/namespaces/{NAMESPACE}/secrets",
                 f"/api/v1/namespaces/{NAMESPACE}/configmaps", "/apis/storage.k8s.io/v1/storageclasses",
                 "/apis/karpenter.sh/v1/nodepools", f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs",
                 f"/apis/nvidia.com/v1alpha1/namespaces/{NAMESPACE}/dynamographdeployments"):
        listed = kube.get(path) or {}
        for item in listed.get("items") or []:
            labels = (item.get("metadata") or {}).get("labels") or {}
            if labels.get(mf.LABEL_DEPLOYMENT) == deployment:
                found.append(f"{path}/{item['metadata']['name']}")
    return found


def cluster_endpoint(sandbox: SandboxHandle, name: str) -> str:
    try:
        return str(sandbox.client("eks").describe_cluster(name=name)["cluster"].get("endpoint") or "")
    except Exception:  # noqa: BLE001 - no such cluster
        return ""


@contextlib.contextmanager
def world_env(world: World, mp: pytest.MonkeyPatch) -> Iterator[None]:
    """This process pointed at the world's sandbox, as `dynamo-wizard --sandbox` does; temporary files in the
    world's own directory."""
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "KUBECONFIG",
                "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        mp.delenv(var, raising=False)
    for key, value in world.sandbox.env.items():
        mp.setenv(key, value)
    mp.setenv("TMPDIR", str(world.tmpdir))
    mp.setattr(tempfile, "tempdir", str(world.tmpdir))
    world.home.mkdir(parents=True, exist_ok=True)
    yield


@contextlib.contextmanager
def build_world(root: Path) -> Iterator[World]:
    """Build the world (all stages), then hand it out with the sandbox still running; the environment is the
    caller's again (tests that act on the world use `world_env`)."""
    canary = make_canary()
    tmpdir = root / "tmp"
    tmpdir.mkdir(parents=True)
    with running_sandbox(root / "sandbox", speed=SPEED) as sandbox:
        world = World(root=root, sandbox=sandbox, canary=canary, needles=canary_needles(canary),
                      home=Path(sandbox.env["DYNAMO_WIZARD_HOME"]), tmpdir=tmpdir)
        started = time.monotonic()
        with pytest.MonkeyPatch.context() as mp, world_env(world, mp), capturing_logs(world.log_records):
            _run_world(world, mp)
        world.notes["seconds"] = round(time.monotonic() - started, 1)
        yield world


def _run_world(world: World, mp: pytest.MonkeyPatch) -> None:
    sandbox = world.sandbox
    with world.stage("foreign"):
        world.foreign = create_foreign_aws(sandbox)
        world.aws_before = aws_fingerprint(sandbox, world.foreign)
        world.other_cluster_before = kube_fingerprints(world.foreign.cluster_endpoint,
                                                       foreign_objects_for_other_cluster())
    # The TUI: screens, the typed token, export, confirm, the provision screen (the first, full apply).
    with world.stage("tui"):
        asyncio.run(drive_tui(world))
    mp.setenv("HF_TOKEN", world.canary)
    if world.plan_path is None:  # the TUI part broke before exporting: a plan of the wizard's defaults
        from dynamo_wizard.tui.answers import Answers, write_plan

        plan = Answers(region=REGION).to_plan()
        world.deployment = plan.deployment
        world.plan_path = write_plan(plan, world.root / "fallback" / "plan.yaml")
    if "tui" in world.stage_errors:
        with world.stage("fallback-apply"):
            sandbox.faults({"clear": True})
            run_cli(world, "fallback-apply", ["apply", str(world.plan_path), "--yes"])
    world.our_cluster_endpoint = cluster_endpoint(sandbox, world.deployment)
    # Foreign objects inside the wizard's own cluster, then apply again (a resume) with them present.
    with world.stage("in-cluster-foreign"):
        kube = KubeRest(world.our_cluster_endpoint)
        for collection, obj in foreign_objects_for_our_cluster():
            kube.create(collection, obj)
        world.in_cluster_before = kube_fingerprints(world.our_cluster_endpoint, foreign_objects_for_our_cluster())
    run_cli(world, "apply", ["apply", str(world.plan_path), "--yes"])
    with world.stage("in-cluster-after-reapply"):
        world.in_cluster_after_reapply = kube_fingerprints(world.our_cluster_endpoint,
                                                           foreign_objects_for_our_cluster())
    with world.stage("secret"):
        world.secret_value = read_secret(world.our_cluster_endpoint)
    with world.stage("sandbox-scan-live"):  # while the cluster (and its Secret) exists
        world.sandbox_occurrences += sandbox_occurrences(world)
    world.render_dir = world.root / "rendered"
    run_cli(world, "render", ["render", str(world.plan_path), "-o", str(world.render_dir)])
    run_cli(world, "validate", ["validate", str(world.plan_path)])
    run_cli(world, "status", ["status", "--json"])
    with world.stage("ours-before-cleanup"):
        world.ours_before_cleanup = our_objects(world.our_cluster_endpoint, world.deployment)
    # Cleanup, stopped before the cluster by a failing `eksctl delete`, then to the end.
    sandbox.faults({"clear": True})
    sandbox.faults("fail-once=eksctl-delete")
    run_cli(world, "cleanup-1", ["cleanup", "--deployment", world.deployment, "--yes"])
    with world.stage("before-cluster-delete"):
        world.in_cluster_before_cluster_delete = kube_fingerprints(world.our_cluster_endpoint,
                                                                   foreign_objects_for_our_cluster())
        world.ours_before_cluster_delete = our_objects(world.our_cluster_endpoint, world.deployment)
    sandbox.faults({"clear": True})
    run_cli(world, "cleanup-2", ["cleanup", "--deployment", world.deployment, "--yes"])
    run_cli(world, "status-after", ["status", "--json"])
    with world.stage("foreign-after"):
        assert world.foreign is not None
        world.aws_after = aws_fingerprint(sandbox, world.foreign)
        world.other_cluster_after = kube_fingerprints(world.foreign.cluster_endpoint,
                                                      foreign_objects_for_other_cluster())
    with world.stage("sandbox-scan-end"):
        world.sandbox_occurrences += sandbox_occurrences(world)
