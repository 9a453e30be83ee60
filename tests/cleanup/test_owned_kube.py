"""Kubernetes discovery and deletion through the real kubernetes client against kmock."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from dynamo_wizard.cloud.owned import OwnedKube
from dynamo_wizard.core import cleanup as c
from dynamo_wizard.core.ledger import Ledger

from .world import NS, build_kube


def _discover(api: client.ApiClient, ledger: list[c.Ref] | None = None, deployment: str = "demo") -> c.Discovery:
    disc = c.Discovery(deployment=deployment)
    OwnedKube(api).discover(deployment, ledger or [], disc)
    return disc


def _keys(disc: c.Discovery) -> set[tuple[str, str, str]]:
    return {(f.ref.kind, f.ref.namespace or "", f.ref.name) for f in disc.found}


def test_discovery_finds_our_labelled_objects_and_the_helm_leftovers_in_our_namespace(kube: Any) -> None:
    _, api = kube
    build_kube(api)
    keys = _keys(_discover(api))
    assert keys == {
        ("namespace", "", NS),
        ("dgd", NS, "demo-agg"),
        ("job", NS, "model-download"),
        ("deployment", NS, "dynamo-wizard-gpu-warmup"),
        ("pvc", NS, "model-cache"), ("pvc", NS, "compilation-cache"), ("pvc", NS, "perf-cache"),
        ("pvc", NS, "dynamo-platform-nats-js-dynamo-platform-nats-0"),
        ("secret", NS, "hf-token-secret"),
        ("helm-release", NS, "dynamo-platform"),
        ("storage-class", "", "efs-sc-dynamic"), ("storage-class", "", "auto-ebs-sc"),
        ("nodepool", "", "gpu"), ("nodepool", "", "gpu-reserved"),
        ("nodeclass", "", "gpu-reserved"),
    }
    # Another team's NATS claim and release in team-b, their NodePools and StorageClass: not ours.
    assert not {k for k in keys if k[1] == "team-b" or k[2] in ("gpu-team-b", "gpu-other", "efs-sc-dynamic-b")}


def test_the_nats_claim_is_ours_only_in_a_namespace_we_own(kube: Any) -> None:
    """The NATS claim has no label of ours; a namespace is ours by our label or by our ledger."""
    _, api = kube
    build_kube(api)
    core = client.CoreV1Api(api)
    core.delete_namespace(NS)  # the same namespace, without our labels (kmock cannot unset by patch)
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    keys = _keys(_discover(api))
    assert ("pvc", NS, "dynamo-platform-nats-js-dynamo-platform-nats-0") not in keys
    assert ("helm-release", NS, "dynamo-platform") not in keys
    keys = _keys(_discover(api, ledger=[c.Ref(c.HELM_RELEASE, "dynamo-platform", namespace=NS)]))
    assert ("pvc", NS, "dynamo-platform-nats-js-dynamo-platform-nats-0") in keys
    assert ("helm-release", NS, "dynamo-platform") in keys


def test_a_same_named_storageclass_without_our_label_survives_cleanup(kube: Any) -> None:
    _, api = kube
    storage = client.StorageV1Api(api)
    storage.create_storage_class({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                                  "metadata": {"name": "efs-sc-dynamic"}, "provisioner": "efs.csi.aws.com"})
    ledger = Ledger("demo")
    ledger.intent("storage-class", "efs-sc-dynamic")
    disc = _discover(api, ledger=[c.ledger_ref(r) for r in ledger.resources()])
    inventory = c.build_inventory("demo", ledger.resources(), disc)
    [item] = inventory.items
    assert item.state == "gone"  # ours never came to be; theirs is not ours
    assert c.plan_deletion(inventory)[0].step_id == c.S_RECONCILE
    assert storage.read_storage_class("efs-sc-dynamic").metadata.name == "efs-sc-dynamic"


def test_pool_cost_comes_from_its_nodes(kube: Any) -> None:
    _, api = kube
    build_kube(api)
    disc = _discover(api)
    gpu = next(f for f in disc.found if f.ref.kind == c.NODEPOOL and f.ref.name == "gpu")
    reserved = next(f for f in disc.found if f.ref.kind == c.NODEPOOL and f.ref.name == "gpu-reserved")
    assert gpu.cost_per_hour and gpu.cost_per_hour > 1.0 and "g6e.2xlarge" in gpu.detail
    assert reserved.cost_per_hour is None and reserved.detail == "no nodes"


@pytest.mark.parametrize("operator_running", [True, False])
def test_graph_finalizers_are_cleared_only_when_no_operator_is_left(kube: Any, operator_running: bool) -> None:
    server, api = kube
    build_kube(api)
    if not operator_running:
        client.AppsV1Api(api).delete_namespaced_deployment("dynamo-platform-dynamo-operator-controller-manager", NS)
    owned = OwnedKube(api)
    ref = c.Ref(c.DGD, "demo-agg", namespace=NS)
    lines: list[str] = []
    owned.delete(ref, lines.append)
    # With the operator there, the graph waits in Terminating for the operator to clear its finalizer.
    assert owned.exists(ref) is operator_running
    assert any("removing the finalizers" in line for line in lines) is not operator_running


def test_full_kube_deletion_in_graph_order_keeps_theirs(kube: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    """Every Kubernetes step of the plan, with the cluster kept (so namespace and secret go one by one)."""
    _, api = kube
    build_kube(api, finalizer=False)
    fake_helm = tmp_path / "helm"
    # helm uninstall removes the release records, as the real one does (tests have no helm server side).
    fake_helm.write_text("#!/bin/sh\necho \"release \\\"$2\\\" uninstalled\"\n")
    fake_helm.chmod(0o755)
    monkeypatch.setenv("DYNAMO_WIZARD_HELM", str(fake_helm))
    owned = OwnedKube(api)
    core = client.CoreV1Api(api)
    real_delete = owned.delete

    def delete(ref: c.Ref, log: Any, cancel: Any = None) -> None:
        real_delete(ref, log, cancel)
        if ref.kind == c.HELM_RELEASE:
            core.delete_namespaced_secret("sh.helm.release.v1.dynamo-platform.v1", NS)

    owned.delete = delete  # type: ignore[method-assign]
    disc = _discover(api)
    inventory = c.build_inventory("demo", [], disc)
    specs = c.plan_deletion(inventory)
    assert [s.step_id for s in specs] == [
        c.S_DGD, c.S_WARMUP, c.S_HELM, c.S_NATS_PVC, c.S_JOB, c.S_PVCS, c.S_EFS_SC, c.S_RESERVED_NODEPOOL,
        c.S_RESERVED_NODECLASS, c.S_GPU_NODEPOOL, c.S_CLUSTER_OBJECTS]
    lines: list[str] = []
    for spec in specs:
        outcome = c.delete_all(spec.items, owned, Ledger("demo"), lines.append, step_id=spec.step_id,
                               region="us-east-1", cluster="demo", timeout=10, pacing=c.Pacing(poll=0.01))
        assert outcome.ok, (spec.step_id, outcome.failed)
    assert any("helm uninstall dynamo-platform -n dynamo-system --kubeconfig" in line for line in lines)
    assert _discover(api).found == []
    assert core.read_namespace("team-b").metadata.name == "team-b"
    # Our warm-up Deployment went; the operator's (helm's, no label of ours) is for helm to remove.
    assert [d.metadata.name for d in client.AppsV1Api(api).list_namespaced_deployment(NS).items] == [
        "dynamo-platform-dynamo-operator-controller-manager"]
    assert {p.metadata.name for p in core.list_namespaced_persistent_volume_claim("team-b").items} == {
        "dynamo-platform-nats-js-dynamo-platform-nats-0", "model-cache"}
    pools = client.CustomObjectsApi(api).list_cluster_custom_object("karpenter.sh", "v1", "nodepools")["items"]
    assert {p["metadata"]["name"] for p in pools} == {"gpu-team-b", "gpu-other"}


def test_an_unreachable_cluster_is_reported_not_raised(kube: Any) -> None:
    server, api = kube
    build_kube(api)
    server.stop()
    owned = OwnedKube(api)
    with pytest.raises(c.ClusterUnreachable):
        owned.exists(c.Ref(c.PVC, "model-cache", namespace=NS))
    assert owned.reachable() is False
