"""The fake API server and the controller simulation, through the real kubernetes client (no AWS)."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from .conftest import OfflineCluster, wait_for, watch_until

GPU_POOL = {
    "apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "gpu"},
    "spec": {"disruption": {"budgets": [{"nodes": "10%"}], "consolidateAfter": "300s",
                            "consolidationPolicy": "WhenEmptyOrUnderutilized"},
             "template": {"spec": {
                 "nodeClassRef": {"group": "eks.amazonaws.com", "kind": "NodeClass", "name": "default"},
                 "requirements": [
                     {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot", "on-demand"]},
                     {"key": "eks.amazonaws.com/instance-family", "operator": "In",
                      "values": ["g5", "g6", "g6e", "g7e", "p5", "p5e", "p5en"]}],
                 "taints": [{"effect": "NoSchedule", "key": "nvidia.com/gpu", "value": "Exists"}]}}},
}
TOLERATE_GPU = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def _ns(api: Any, name: str) -> None:
    try:
        client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    except ApiException as err:
        if err.status != 409:
            raise


def _events(api: Any, ns: str, name: str) -> list[dict[str, Any]]:
    resp = client.CoreV1Api(api).list_namespaced_event(ns, field_selector=f"involvedObject.name={name}",
                                                       _preload_content=False)
    items = json.loads(resp.data)["items"]
    return sorted(items, key=lambda e: int(e["metadata"]["resourceVersion"]))


@pytest.fixture(scope="module")
def gpu_pool(offline_cluster: OfflineCluster) -> None:
    client.CustomObjectsApi(offline_cluster.api).create_cluster_custom_object(
        "karpenter.sh", "v1", "nodepools", GPU_POOL)


# ------------------------------------------------------------------------------------------ API semantics


def test_auto_mode_cluster_starts_with_builtin_pools_default_nodeclass_and_no_nodes(offline_cluster: OfflineCluster) -> None:
    co = client.CustomObjectsApi(offline_cluster.api)
    pools = {p["metadata"]["name"]: p for p in co.list_cluster_custom_object("karpenter.sh", "v1", "nodepools")["items"]}
    assert {"general-purpose", "system"} <= set(pools)
    assert pools["system"]["spec"]["template"]["spec"]["taints"] == [{"key": "CriticalAddonsOnly", "effect": "NoSchedule"}]
    nodeclass = co.get_cluster_custom_object("eks.amazonaws.com", "v1", "nodeclasses", "default")
    assert nodeclass["spec"]["role"] == "eksctl-offline-cluster-AutoModeNodeRole-X"
    assert nodeclass["spec"]["subnetSelectorTerms"] == [{"id": "subnet-0a"}, {"id": "subnet-0b"}]
    assert nodeclass["spec"]["securityGroupSelectorTerms"] == [{"id": "sg-0off"}]
    core = client.CoreV1Api(offline_cluster.api)
    assert {n.metadata.name for n in core.list_namespace().items} >= {"default", "kube-system"}
    assert client.StorageV1Api(offline_cluster.api).list_storage_class().items == []  # pitfall 2: none by default
    assert client.VersionApi(offline_cluster.api).get_code().git_version.startswith("v1.34")


def test_selectors_errors_and_list_kind(offline_cluster: OfflineCluster) -> None:
    core = client.CoreV1Api(offline_cluster.api)
    _ns(offline_cluster.api, "sel")
    core.create_namespaced_config_map("sel", {"metadata": {"name": "a", "labels": {"app": "x", "tier": "1"}}})
    core.create_namespaced_config_map("sel", {"metadata": {"name": "b", "labels": {"app": "y"}}})
    names = lambda **kw: sorted(c.metadata.name for c in core.list_namespaced_config_map("sel", **kw).items)  # noqa: E731
    assert names(label_selector="app=x") == ["a"]
    assert names(label_selector="app in (x,y),!tier") == ["b"]
    assert names(field_selector="metadata.name=b") == ["b"]
    raw = json.loads(core.list_namespaced_config_map("sel", _preload_content=False).data)
    assert raw["kind"] == "ConfigMapList" and int(raw["metadata"]["resourceVersion"]) > 0
    with pytest.raises(ApiException) as dup:
        core.create_namespaced_config_map("sel", {"metadata": {"name": "a"}})
    assert dup.value.status == 409 and json.loads(dup.value.body)["reason"] == "AlreadyExists"
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("nope", "sel")
    assert missing.value.status == 404 and json.loads(missing.value.body)["message"] == 'configmaps "nope" not found'
    with pytest.raises(ApiException) as no_ns:
        core.create_namespaced_config_map("absent", {"metadata": {"name": "a"}})
    assert no_ns.value.status == 404


def test_apply_patch_replace_and_conflicts(offline_cluster: OfflineCluster) -> None:
    apps = client.AppsV1Api(offline_cluster.api)
    _ns(offline_cluster.api, "ssa")
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"v": "1"}},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"a": "web"}},
                     "template": {"metadata": {"labels": {"a": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
    created = apps.patch_namespaced_deployment("web", "ssa", body, field_manager="t",
                                               _content_type="application/apply-patch+yaml")
    assert created.metadata.generation == 1
    body["metadata"]["labels"]["v"] = "2"
    again = apps.patch_namespaced_deployment("web", "ssa", body, field_manager="t",
                                             _content_type="application/apply-patch+yaml")
    assert again.metadata.labels["v"] == "2" and again.metadata.uid == created.metadata.uid
    patched = apps.patch_namespaced_deployment("web", "ssa", [{"op": "replace", "path": "/spec/replicas", "value": 0},
                                                              {"op": "add", "path": "/metadata/labels/j", "value": "p"}])
    assert patched.metadata.labels["j"] == "p"
    stale = apps.read_namespaced_deployment("web", "ssa")
    apps.patch_namespaced_deployment("web", "ssa", {"metadata": {"labels": {"bump": "1"}}})
    stale.metadata.labels["lost"] = "update"
    with pytest.raises(ApiException) as conflict:
        apps.replace_namespaced_deployment("web", "ssa", stale)
    assert conflict.value.status == 409 and json.loads(conflict.value.body)["reason"] == "Conflict"


def test_watch_resumes_from_resource_version_and_expires(offline_cluster: OfflineCluster) -> None:
    core = client.CoreV1Api(offline_cluster.api)
    _ns(offline_cluster.api, "watch")
    core.create_namespaced_config_map("watch", {"metadata": {"name": "before"}})
    rv = core.list_namespaced_config_map("watch").metadata.resource_version
    core.create_namespaced_config_map("watch", {"metadata": {"name": "after"}})
    events = [(e["type"], e["object"].metadata.name) for e in watch.Watch().stream(
        core.list_namespaced_config_map, "watch", resource_version=rv, timeout_seconds=1)]
    assert events == [("ADDED", "after")]
    store = offline_cluster.sim.store
    oldest = store.history[0][0]
    if len(store.history) < store.history.maxlen:  # make the history full so its start is really forgotten
        offline_cluster.call(lambda: [store._emit("MODIFIED", store.type_named("", "namespaces"), {
            "metadata": {"resourceVersion": str(oldest)}}) for _ in range(store.history.maxlen)])
    with pytest.raises(ApiException) as gone:
        list(watch.Watch().stream(core.list_namespaced_config_map, "watch", resource_version="1",
                                  timeout_seconds=1))
    assert gone.value.status == 410


def test_drop_watch_fault_breaks_the_stream(offline_cluster: OfflineCluster) -> None:
    core = client.CoreV1Api(offline_cluster.api)
    offline_cluster.faults.update({"drop-watch": "1"})
    with pytest.raises((urllib3.exceptions.ProtocolError, urllib3.exceptions.HTTPError)):
        for _ in watch.Watch().stream(core.list_namespace, timeout_seconds=5):
            pass
    # only the next watch breaks
    assert [e["type"] for e in watch.Watch().stream(core.list_namespace, timeout_seconds=1)][:1] == ["ADDED"]


def test_kubectl_get_works_against_the_fake_api_server(offline_cluster: OfflineCluster, tmp_path: Path) -> None:
    kubectl = shutil.which("kubectl", path=str(Path(__file__).resolve().parents[2] / ".tools" / "bin"))
    if kubectl is None:
        pytest.skip("kubectl is not in .tools/bin (scripts/dev.sh test installs it)")
    cfg = tmp_path / "kubeconfig"
    cfg.write_text(json.dumps({"apiVersion": "v1", "kind": "Config", "current-context": "c",
                               "clusters": [{"name": "c", "cluster": {"server": offline_cluster.url}}],
                               "users": [{"name": "u", "user": {"token": "t"}}],
                               "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    out = subprocess.run([kubectl, "--kubeconfig", str(cfg), "get", "nodepools", "-o", "name"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "nodepool.karpenter.sh/general-purpose" in out.stdout


# ------------------------------------------------------------------------------------------ Auto Mode + kubelet


def test_gpu_pod_gets_a_node_from_the_gpu_pool_with_the_event_sequence(offline_cluster: OfflineCluster,
                                                                       gpu_pool: None) -> None:
    core = client.CoreV1Api(offline_cluster.api)
    _ns(offline_cluster.api, "gpu")
    added: list[dict[str, Any]] = []  # events as the watch sees them
    stream = watch.Watch()

    def record() -> None:
        try:
            for event in stream.stream(core.list_namespaced_event, "gpu", timeout_seconds=30):
                if event["type"] == "ADDED":
                    added.append(event["raw_object"])
        except (urllib3.exceptions.HTTPError, OSError, ValueError):
            pass  # stream.stop() shuts the socket down under the reader
    recorder = threading.Thread(target=record, daemon=True)
    recorder.start()
    # The watch is live once it sees an event made after it started; from then on it sees events in the
    # order they are made (its initial listing, were it to hold the pod's first events, is in name order).
    core.create_namespaced_event("gpu", {"metadata": {"name": "probe"}, "reason": "Probe", "message": "probe",
                                         "involvedObject": {"kind": "Namespace", "name": "gpu"}, "type": "Normal"})
    wait_for(lambda: any(e["metadata"]["name"] == "probe" for e in added), what="the event watch")
    core.create_namespaced_pod("gpu", {"metadata": {"name": "worker"}, "spec": {
        "nodeSelector": {"node.kubernetes.io/instance-type": "g6e.2xlarge"}, "tolerations": TOLERATE_GPU,
        "containers": [{"name": "main", "image": "nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.0.0-efa-amd64",
                        "command": ["python3", "-m", "dynamo.vllm", "--model", "Qwen/Qwen3-0.6B"],
                        "resources": {"limits": {"nvidia.com/gpu": "1"}, "requests": {"nvidia.com/gpu": "1"}}}]}})
    pod = watch_until(core.list_namespaced_pod, "gpu", field_selector="metadata.name=worker", what="ready worker",
                      predicate=lambda p: any(c["type"] == "Ready" and c["status"] == "True"
                                              for c in p["status"].get("conditions") or []))
    node = core.read_node(pod["spec"]["nodeName"])
    assert node.metadata.name.startswith("i-") and len(node.metadata.name) == 19
    labels = node.metadata.labels
    assert labels["node.kubernetes.io/instance-type"] == "g6e.2xlarge"
    assert labels["karpenter.sh/nodepool"] == "gpu" and labels["eks.amazonaws.com/instance-family"] == "g6e"
    assert node.status.allocatable["nvidia.com/gpu"] == "1"
    claims = client.CustomObjectsApi(offline_cluster.api).list_cluster_custom_object("karpenter.sh", "v1", "nodeclaims")
    claim = next(c for c in claims["items"] if c["status"].get("nodeName") == node.metadata.name)
    assert claim["metadata"]["name"].startswith("gpu-")
    assert {c["type"]: c["status"] for c in claim["status"]["conditions"]} == {
        "Launched": "True", "Registered": "True", "Initialized": "True", "Ready": "True"}
    order = ["FailedScheduling", "Nominated", "Scheduled", "Pulling", "Pulled", "Created", "Started"]
    wait_for(lambda: "Started" in [e["reason"] for e in added], what="the Started event")
    stream.stop()
    reasons = [e["reason"] for e in added if e["involvedObject"]["name"] == "worker"]
    assert [r for r in reasons if r in order] == order
    events = {e["reason"]: e for e in _events(offline_cluster.api, "gpu", "worker")}
    assert events["Nominated"]["source"]["component"] == "eks-auto-mode/compute"
    assert events["Nominated"]["message"] == f"Pod should schedule on: nodeclaim/{claim['metadata']['name']}"
    assert events["Scheduled"]["message"] == f"Successfully assigned gpu/worker to {node.metadata.name}"


def test_pending_fault_keeps_a_gpu_pod_pending_with_its_reason(offline_cluster: OfflineCluster, gpu_pool: None) -> None:
    core = client.CoreV1Api(offline_cluster.api)
    _ns(offline_cluster.api, "stuck")
    offline_cluster.faults.update({"pending": "insufficient capacity"})
    try:
        core.create_namespaced_pod("stuck", {"metadata": {"name": "big"}, "spec": {
            "nodeSelector": {"node.kubernetes.io/instance-type": "p5.48xlarge"}, "tolerations": TOLERATE_GPU,
            "containers": [{"name": "main", "image": "busybox",
                            "resources": {"limits": {"nvidia.com/gpu": "8"}}}]}})
        message = wait_for(lambda: next((e["message"] for e in _events(offline_cluster.api, "stuck", "big")
                                         if "InsufficientInstanceCapacity" in e["message"]), None),
                           what="an insufficient-capacity event")
        assert "p5.48xlarge capacity" in message
        assert core.read_namespaced_pod("big", "stuck").spec.node_name is None
        assert core.read_namespaced_pod("big", "stuck").status.phase == "Pending"
    finally:
        offline_cluster.faults.update({"pending": None})
    offline_cluster.sim.kick("sched")
    watch_until(core.list_namespaced_pod, "stuck", predicate=lambda p: bool(p["spec"].get("nodeName")),
                what="scheduled pod once the fault is cleared")


def test_unsatisfiable_pod_gets_karpenters_reason(offline_cluster: OfflineCluster, gpu_pool: None) -> None:
    core = client.CoreV1Api(offline_cluster.api)
    _ns(offline_cluster.api, "nofit")
    core.create_namespaced_pod("nofit", {"metadata": {"name": "p"}, "spec": {
        "nodeSelector": {"node.kubernetes.io/instance-type": "p5.48xlarge"},  # no toleration of the GPU taint
        "containers": [{"name": "main", "image": "busybox", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}})
    message = wait_for(lambda: next((e["message"] for e in _events(offline_cluster.api, "nofit", "p")
                                     if e["message"].startswith("Failed to schedule pod")), None),
                       what="Auto Mode's FailedScheduling")
    assert 'incompatible with nodepool "gpu", did not tolerate taint {"key":"nvidia.com/gpu","value":"Exists",' \
           '"effect":"NoSchedule"}' in message


def test_job_runs_with_followed_logs_and_completes(offline_cluster: OfflineCluster) -> None:
    core, batch = client.CoreV1Api(offline_cluster.api), client.BatchV1Api(offline_cluster.api)
    _ns(offline_cluster.api, "dl")
    core.create_namespaced_secret("dl", {"metadata": {"name": "hf-token-secret"}, "stringData": {"HF_TOKEN": "x"}})
    batch.create_namespaced_job("dl", _download_job("model-download"))
    pod = watch_until(core.list_namespaced_pod, "dl", label_selector="job-name=model-download", what="running pod",
                      predicate=lambda p: p["status"].get("phase") == "Running")
    resp = core.read_namespaced_pod_log(pod["metadata"]["name"], "dl", follow=True, _preload_content=False)
    chunks = [c.decode() for c in resp.stream(1024)]
    text = "".join(chunks)
    assert len(chunks) > 1  # incremental, not one buffered body
    assert "+ hf download Qwen/Qwen3-0.6B" in text
    assert text.rstrip().splitlines()[-1].startswith("/home/dynamo/.cache/huggingface/hub/models--Qwen--Qwen3-0.6B/")
    job = watch_until(batch.list_namespaced_job, "dl", field_selector="metadata.name=model-download",
                      what="complete job", predicate=lambda j: j["status"].get("succeeded") == 1)
    assert ("Complete", "True") in [(c["type"], c["status"]) for c in job["status"]["conditions"]]


def test_oom_fault_kills_the_download_and_fails_the_job(offline_cluster: OfflineCluster) -> None:
    core, batch = client.CoreV1Api(offline_cluster.api), client.BatchV1Api(offline_cluster.api)
    _ns(offline_cluster.api, "oom")
    core.create_namespaced_secret("oom", {"metadata": {"name": "hf-token-secret"}, "stringData": {"HF_TOKEN": "x"}})
    offline_cluster.faults.update({"oom-download": True})
    job_body = _download_job("model-download")
    job_body["spec"]["backoffLimit"] = 1
    batch.create_namespaced_job("oom", job_body)
    # read the pod while it exists: once the empty node is consolidated, pod GC removes finished pods too
    pod = watch_until(core.list_namespaced_pod, "oom", what="an OOM-killed pod", timeout=30, predicate=lambda p: any(
        (c.get("state") or {}).get("terminated", {}).get("reason") == "OOMKilled"
        for c in (p.get("status") or {}).get("containerStatuses") or []))
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 137 and pod["status"]["phase"] == "Failed"
    job = watch_until(batch.list_namespaced_job, "oom", what="failed job", timeout=30,
                      predicate=lambda j: any(c["type"] == "Failed" for c in j["status"].get("conditions") or []))
    failed = next(c for c in job["status"]["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "BackoffLimitExceeded" and job["status"]["failed"] == 2  # backoffLimit 1: two pods
    assert offline_cluster.faults.oom_download is False  # one Job only: a re-run succeeds


def _download_job(name: str) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": {
        "backoffLimit": 3, "template": {"metadata": {"labels": {"app": "model-download"}}, "spec": {
            "restartPolicy": "Never", "containers": [{
                "name": "model-download", "image": "python:3.10-slim", "command": ["sh", "-c"],
                "args": ['set -eux; pip install --no-cache-dir huggingface_hub hf_transfer; hf download "$MODEL_NAME"'],
                "envFrom": [{"secretRef": {"name": "hf-token-secret"}}],
                "env": [{"name": "MODEL_NAME", "value": "Qwen/Qwen3-0.6B"},
                        {"name": "HF_HOME", "value": "/home/dynamo/.cache/huggingface"}]}]}}}}


def test_missing_secret_blocks_the_container_until_it_exists(offline_cluster: OfflineCluster) -> None:
    core, batch = client.CoreV1Api(offline_cluster.api), client.BatchV1Api(offline_cluster.api)
    _ns(offline_cluster.api, "nosecret")
    batch.create_namespaced_job("nosecret", _download_job("dl"))
    pod = watch_until(core.list_namespaced_pod, "nosecret", what="config error", predicate=lambda p: any(
        (c.get("state") or {}).get("waiting", {}).get("reason") == "CreateContainerConfigError"
        for c in p["status"].get("containerStatuses") or []))
    assert any(e["message"] == 'Error: secret "hf-token-secret" not found'
               for e in _events(offline_cluster.api, "nosecret", pod["metadata"]["name"]))
    core.create_namespaced_secret("nosecret", {"metadata": {"name": "hf-token-secret"}, "stringData": {"HF_TOKEN": "x"}})
    watch_until(batch.list_namespaced_job, "nosecret", what="completed job",
                predicate=lambda j: j["status"].get("succeeded") == 1)


# ------------------------------------------------------------------------------------------ volumes, namespaces


def test_claim_waits_for_a_default_storage_class_then_binds_and_is_protected(offline_cluster: OfflineCluster) -> None:
    core, storage = client.CoreV1Api(offline_cluster.api), client.StorageV1Api(offline_cluster.api)
    _ns(offline_cluster.api, "vol")
    core.create_namespaced_persistent_volume_claim("vol", {"metadata": {"name": "data"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}})
    wait_for(lambda: any(e["reason"] == "FailedBinding" and "no storage class is set" in e["message"]
                         for e in _events(offline_cluster.api, "vol", "data")), what="FailedBinding")
    storage.create_storage_class({"metadata": {"name": "auto-ebs-sc", "annotations": {
        "storageclass.kubernetes.io/is-default-class": "true"}}, "provisioner": "ebs.csi.eks.amazonaws.com",
        "volumeBindingMode": "WaitForFirstConsumer"})
    core.create_namespaced_pod("vol", {"metadata": {"name": "user"}, "spec": {
        "containers": [{"name": "c", "image": "busybox"}],
        "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}})
    pvc = watch_until(core.list_namespaced_persistent_volume_claim, "vol", what="bound claim",
                      predicate=lambda c: c["status"].get("phase") == "Bound")
    assert pvc["spec"]["storageClassName"] == "auto-ebs-sc"  # assigned retroactively
    pv = core.read_persistent_volume(pvc["spec"]["volumeName"])
    node = core.read_node(core.read_namespaced_pod("user", "vol").spec.node_name)
    assert pv.spec.csi.driver == "ebs.csi.eks.amazonaws.com"
    zone = pv.spec.node_affinity.required.node_selector_terms[0].match_expressions[0].values[0]
    assert zone == node.metadata.labels["topology.kubernetes.io/zone"]  # WaitForFirstConsumer: the pod's zone
    core.delete_namespaced_persistent_volume_claim("data", "vol")
    # the claim is in use: protected by its finalizer
    assert core.read_namespaced_persistent_volume_claim("data", "vol").metadata.deletion_timestamp is not None
    core.delete_namespaced_pod("user", "vol")
    wait_for(lambda: not core.list_namespaced_persistent_volume_claim("vol").items, what="the claim to go")


def test_namespace_with_a_graph_and_no_operator_stays_terminating(offline_cluster: OfflineCluster) -> None:
    core, co = client.CoreV1Api(offline_cluster.api), client.CustomObjectsApi(offline_cluster.api)
    crds = client.ApiextensionsV1Api(offline_cluster.api)
    try:
        crds.create_custom_resource_definition({"metadata": {"name": "dynamographdeployments.nvidia.com"}, "spec": {
            "group": "nvidia.com", "scope": "Namespaced",
            "names": {"plural": "dynamographdeployments", "singular": "dynamographdeployment",
                      "kind": "DynamoGraphDeployment", "shortNames": ["dgd"]},
            "versions": [{"name": "v1alpha1", "served": True, "storage": True, "subresources": {"status": {}},
                          "schema": {"openAPIV3Schema": {"type": "object",
                                                         "x-kubernetes-preserve-unknown-fields": True}}}]}})
    except ApiException as err:
        assert err.status == 409
    _ns(offline_cluster.api, "stuckns")
    co.create_namespaced_custom_object("nvidia.com", "v1alpha1", "stuckns", "dynamographdeployments", {
        "apiVersion": "nvidia.com/v1alpha1", "kind": "DynamoGraphDeployment",
        "metadata": {"name": "g", "finalizers": ["nvidia.com/finalizer"]}, "spec": {"services": {}}})
    core.delete_namespace("stuckns")
    ns = wait_for(lambda: next((c for c in (core.read_namespace("stuckns").status.conditions or [])
                                if c.type == "NamespaceFinalizersRemaining"), None), what="stuck namespace")
    assert "nvidia.com/finalizer" in ns.message
    assert core.read_namespace("stuckns").status.phase == "Terminating"
    co.patch_namespaced_custom_object("nvidia.com", "v1alpha1", "stuckns", "dynamographdeployments", "g",
                                      {"metadata": {"finalizers": None}}, _content_type="application/merge-patch+json")
    wait_for(lambda: "stuckns" not in {n.metadata.name for n in core.list_namespace().items}, what="namespace gone")


# ------------------------------------------------------------------------------------------ Dynamo operator


def test_graph_gets_pods_status_and_a_frontend_behind_the_service_proxy(offline_cluster: OfflineCluster,
                                                                       gpu_pool: None) -> None:
    api = offline_cluster.api
    core, co, apps = client.CoreV1Api(api), client.CustomObjectsApi(api), client.AppsV1Api(api)
    _ns(offline_cluster.api, "dyn")
    from dynamo_wizard.sandbox.tools.helm import platform_objects

    platform = platform_objects("dynamo-platform", "dyn", "1.0.0", {"nats": {"enabled": False}})
    for obj in platform:
        obj.pop("_crd", None)
        rtype = offline_cluster.sim.store.kind_type(obj["apiVersion"], obj["kind"])
        offline_cluster.call(lambda o=obj, t=rtype: offline_cluster.sim.store.get(t, o["metadata"].get("namespace"),
                                                                                 o["metadata"]["name"])
                             or offline_cluster.sim.store.create(t, o["metadata"].get("namespace"), o))
    watch_until(apps.list_namespaced_deployment, "dyn", what="ready operator",
                predicate=lambda d: d["status"].get("readyReplicas") == 1)
    graph = {"apiVersion": "nvidia.com/v1alpha1", "kind": "DynamoGraphDeployment", "metadata": {"name": "agg"},
             "spec": {"services": {
                 "Frontend": {"componentType": "frontend", "replicas": 1,
                              "extraPodSpec": {"mainContainer": {"image": "nvcr.io/nvidia/ai-dynamo/dynamo-frontend:1.0.0"}}},
                 "VllmDecodeWorker": {"componentType": "worker", "replicas": 1,
                                      "resources": {"limits": {"gpu": "1"}},
                                      "extraPodSpec": {"nodeSelector": {"node.kubernetes.io/instance-type": "g6e.2xlarge"},
                                                       "tolerations": TOLERATE_GPU,
                                                       "mainContainer": {"image": "nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.0.0-efa-amd64",
                                                                         "command": ["/bin/bash", "-c"],
                                                                         "args": ["exec python3 -m dynamo.vllm --model Qwen/Qwen3-0.6B"]}}}}}}
    proxy = "/api/v1/namespaces/dyn/services/agg-frontend:8000/proxy/v1/models"
    co.create_namespaced_custom_object("nvidia.com", "v1alpha1", "dyn", "dynamographdeployments", graph)
    dgd = watch_until(co.list_namespaced_custom_object, "nvidia.com", "v1alpha1", "dyn", "dynamographdeployments",
                      what="successful graph", timeout=30,
                      predicate=lambda d: (d.get("status") or {}).get("state") == "successful")
    assert ("Ready", "True") in [(c["type"], c["status"]) for c in dgd["status"]["conditions"]]
    assert "nvidia.com/finalizer" in dgd["metadata"]["finalizers"]
    pods = core.list_namespaced_pod("dyn", label_selector="nvidia.com/dynamo-graph-deployment-name=agg").items
    assert sorted(p.metadata.labels["nvidia.com/dynamo-component"] for p in pods) == ["Frontend", "VllmDecodeWorker"]
    assert all(p.status.phase == "Running" for p in pods)
    assert core.read_namespaced_service("agg-frontend", "dyn").spec.ports[0].port == 8000
    resp = api.call_api(*api.param_serialize(method="GET", resource_path=proxy, auth_settings=["BearerToken"]))
    resp.read()
    assert json.loads(resp.data)["data"][0]["id"] == "Qwen/Qwen3-0.6B"
    resp = api.call_api(*api.param_serialize(
        method="POST", resource_path=proxy.replace("/v1/models", "/v1/chat/completions"),
        body={"model": "Qwen/Qwen3-0.6B", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5},
        header_params={"Content-Type": "application/json"}, auth_settings=["BearerToken"]))
    resp.read()
    answer = json.loads(resp.data)
    assert answer["object"] == "chat.completion" and answer["model"] == "Qwen/Qwen3-0.6B"
    assert answer["choices"][0]["finish_reason"] == "length" and answer["usage"]["completion_tokens"] == 5
    # deleting the graph while the operator runs: children go, then the graph
    co.delete_namespaced_custom_object("nvidia.com", "v1alpha1", "dyn", "dynamographdeployments", "agg")
    wait_for(lambda: not co.list_namespaced_custom_object("nvidia.com", "v1alpha1", "dyn",
                                                          "dynamographdeployments")["items"], what="graph gone")
    wait_for(lambda: not core.list_namespaced_pod("dyn", label_selector="nvidia.com/dynamo-graph-deployment-name=agg").items,
             what="graph pods gone")
    with pytest.raises(ApiException) as unavailable:
        core.connect_get_namespaced_service_proxy_with_path("agg-frontend:8000", "dyn", "v1/models")
    assert unavailable.value.status in (404, 503)


def test_pod_log_of_a_waiting_container_is_refused_like_the_api_server(offline_cluster: OfflineCluster) -> None:
    core = client.CoreV1Api(offline_cluster.api)
    _ns(offline_cluster.api, "wait")
    core.create_namespaced_pod("wait", {"metadata": {"name": "p"}, "spec": {
        "nodeSelector": {"no-such": "label"}, "containers": [{"name": "c", "image": "busybox"}]}})
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod_log("p", "wait")
    assert err.value.status == 400
    assert json.loads(err.value.body)["message"] == 'container "c" in pod "p" is waiting to start: ContainerCreating'



def test_fail_once_fault_on_a_kubernetes_call(offline_cluster: OfflineCluster) -> None:
    core = client.CoreV1Api(offline_cluster.api)
    _ns(offline_cluster.api, "fail")
    offline_cluster.faults.update({"fail-once": "kube:create:configmaps"})
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("fail", {"metadata": {"name": "c"}})
    assert err.value.status == 500 and "fail-once=kube:create:configmaps" in json.loads(err.value.body)["message"]
    assert core.create_namespaced_config_map("fail", {"metadata": {"name": "c"}}).metadata.name == "c"
