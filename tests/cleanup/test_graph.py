"""The pure side of cleanup: the inventory's states and the deletion graph's order."""

from __future__ import annotations

from dynamo_wizard.core import cleanup as c
from dynamo_wizard.core.ledger import Ledger


def _found(kind: str, name: str, namespace: str | None = None, rid: str | None = None, **kw: object
           ) -> c.FoundResource:
    return c.FoundResource(c.Ref(kind, name, namespace=namespace, resource_id=rid), **kw)  # type: ignore[arg-type]


def _full_discovery() -> c.Discovery:
    ns = "dynamo-system"
    found = [
        _found(c.CLUSTER, "demo", cost_per_hour=0.1),
        _found(c.STACK, "eksctl-demo-cluster"),
        _found(c.STACK, "eksctl-demo-addon-aws-efs-csi-driver-podidentityrole-efs-csi-controller-sa"),
        _found(c.SECURITY_GROUP, "dynamo-efs-sg", rid="sg-1"),
        _found(c.FILE_SYSTEM, "dynamo-efs", rid="fs-1"),
        _found(c.MOUNT_TARGET, "us-east-1a", rid="fsmt-1"),
        _found(c.ACCESS_POINT, "fsap-1", rid="fsap-1"),
        _found(c.DGD, "demo-agg", ns), _found(c.HELM_RELEASE, "dynamo-platform", ns),
        _found(c.PVC, "dynamo-platform-nats-js-dynamo-platform-nats-0", ns),
        _found(c.PVC, "model-cache", ns), _found(c.JOB, "model-download", ns),
        _found(c.STORAGE_CLASS, "efs-sc-dynamic", detail="efs.csi.aws.com"),
        _found(c.STORAGE_CLASS, "auto-ebs-sc", detail="ebs.csi.eks.amazonaws.com"),
        _found(c.NODEPOOL, "gpu", cost_per_hour=2.2), _found(c.NODEPOOL, "gpu-reserved"),
        _found(c.NODECLASS, "gpu-reserved"), _found(c.NAMESPACE, ns), _found(c.SECRET, "hf-token-secret", ns),
    ]
    return c.Discovery("demo", "us-east-1", "demo", found, set(c.AWS_KINDS | c.KUBE_KINDS), "exists")


def test_ledger_kinds_are_normalised_whatever_their_spelling() -> None:
    assert c.canonical_kind("EFS file system") == c.FILE_SYSTEM
    assert c.canonical_kind("efs_filesystem") == c.FILE_SYSTEM
    assert c.canonical_kind("DynamoGraphDeployment") == c.DGD
    assert c.canonical_kind("PersistentVolumeClaim") == c.PVC
    assert c.canonical_kind("eks-cluster") == c.CLUSTER


def test_inventory_states_exist_gone_and_ledger_only() -> None:
    ledger = Ledger("demo")
    ledger.created("security-group", "dynamo-efs-sg", "sg-1")  # found: exists
    ledger.created("efs-file-system", "dynamo-efs", "fs-old")  # not found, AWS searched: gone
    ledger.intent("pvc", "dynamo-system/model-cache")  # found by namespace/name
    ledger.created("nodepool", "gpu")  # cluster unreachable: ledger-only
    ledger.created("efs-mount-target", "subnet-9", "fsmt-9")
    ledger.deleted("efs-mount-target", "subnet-9", "fsmt-9")  # deleted and not found: not shown
    disc = c.Discovery("demo", "us-east-1", "demo", [
        _found(c.SECURITY_GROUP, "dynamo-efs-sg", rid="sg-1"),
        _found(c.PVC, "model-cache", "dynamo-system"),
        _found(c.MOUNT_TARGET, "us-east-1a", rid="fsmt-2"),  # found by tag only
    ], {c.SECURITY_GROUP, c.FILE_SYSTEM, c.MOUNT_TARGET, c.PVC}, "unreachable")
    inv = c.build_inventory("demo", ledger.resources(), disc)
    states = {(i.kind, i.name): (i.state, i.in_ledger) for i in inv.items}
    assert states == {
        (c.SECURITY_GROUP, "dynamo-efs-sg"): ("exists", True),
        (c.FILE_SYSTEM, "dynamo-efs"): ("gone", True),
        (c.PVC, "model-cache"): ("exists", True),
        (c.NODEPOOL, "gpu"): ("ledger-only", True),
        (c.MOUNT_TARGET, "us-east-1a"): ("exists", False),
    }
    assert [i.name for i in inv.gone()] == ["dynamo-efs"]
    data = inv.to_dict()
    assert data["clusterState"] == "unreachable" and len(data["resources"]) == 5  # type: ignore[arg-type]


def test_a_deleted_cluster_takes_its_kubernetes_objects_with_it() -> None:
    ledger = Ledger("demo")
    ledger.created("cluster", "demo")
    ledger.created("pvc", "model-cache", namespace="dynamo-system")
    disc = c.Discovery("demo", "us-east-1", "demo", [], {c.CLUSTER}, "gone")
    inv = c.build_inventory("demo", ledger.resources(), disc)
    assert {i.state for i in inv.items} == {"gone"}
    assert [s.step_id for s in c.plan_deletion(inv)] == [c.S_RECONCILE]
    assert c.mark_gone(ledger, inv.gone()) == 2
    assert not ledger.live_resources()


def test_full_graph_follows_the_design_order() -> None:
    inv = c.build_inventory("demo", [], _full_discovery())
    specs = c.plan_deletion(inv)
    order = c.topological(specs)
    pos = {sid: i for i, sid in enumerate(order)}
    # DGDs first, while the operator runs; helm after; NATS volume after helm.
    assert pos[c.S_DGD] < pos[c.S_HELM] < pos[c.S_NATS_PVC]
    assert pos[c.S_JOB] < pos[c.S_PVCS] < pos[c.S_EFS_SC]
    assert pos[c.S_PVCS] < pos[c.S_MOUNT_TARGETS] < pos[c.S_FILE_SYSTEM]
    assert pos[c.S_MOUNT_TARGETS] < pos[c.S_SECURITY_GROUP] < pos[c.S_CLUSTER]
    assert pos[c.S_ACCESS_POINTS] < pos[c.S_FILE_SYSTEM]
    assert pos[c.S_RESERVED_NODEPOOL] < pos[c.S_RESERVED_NODECLASS] < pos[c.S_CLUSTER]
    assert order[-1] == c.S_CLUSTER
    by_id = {s.step_id: s for s in specs}
    # Every dependency of every step is finished before it (the runner only needs depends_on).
    for spec in specs:
        for dep in spec.depends_on:
            assert pos[dep] < pos[spec.step_id]
    # The cluster goes, so namespace, secret and the default StorageClass vanish with it.
    assert c.S_CLUSTER_OBJECTS not in by_id
    assert {i.name for i in by_id[c.S_CLUSTER].vanish_with} == {"dynamo-system", "hf-token-secret", "auto-ebs-sc"}
    assert [r.kind for r in by_id[c.S_CLUSTER].refs] == [c.CLUSTER, c.STACK, c.STACK]  # cluster, then stacks
    assert {r.name for r in by_id[c.S_NATS_PVC].refs} == {"dynamo-platform-nats-js-dynamo-platform-nats-0"}
    assert {r.name for r in by_id[c.S_PVCS].refs} == {"model-cache"}
    assert {r.name for r in by_id[c.S_EFS_SC].refs} == {"efs-sc-dynamic"}
    assert abs(inv.cost_per_hour() - 2.3) < 1e-9


def test_keeping_the_cluster_deletes_namespace_secret_and_default_storageclass_one_by_one() -> None:
    inv = c.build_inventory("demo", [], _full_discovery())
    keep = [i.key for i in inv.items if i.kind not in (c.CLUSTER, c.STACK)]
    specs = {s.step_id: s for s in c.plan_deletion(inv, keep)}
    assert c.S_CLUSTER not in specs
    assert {r.name for r in specs[c.S_CLUSTER_OBJECTS].refs} == {"dynamo-system", "hf-token-secret", "auto-ebs-sc"}
    assert set(specs[c.S_CLUSTER_OBJECTS].depends_on) >= {c.S_HELM, c.S_PVCS, c.S_GPU_NODEPOOL}


def test_a_kept_cluster_keeps_its_stacks_even_if_they_are_checked() -> None:
    inv = c.build_inventory("demo", [], _full_discovery())
    all_but_cluster = [i.key for i in inv.items if i.kind != c.CLUSTER]
    specs = {s.step_id: s for s in c.plan_deletion(inv, all_but_cluster)}
    assert c.S_CLUSTER not in specs  # deleting eksctl's stack would take the kept cluster's VPC with it
    assert "the cluster's stacks and nodes stay with the cluster you kept" in c.selection_warnings(
        inv, all_but_cluster)


def test_unchecked_items_are_left_out_and_dependencies_on_missing_steps_dropped() -> None:
    inv = c.build_inventory("demo", [], _full_discovery())
    only = [i.key for i in inv.items if i.kind in (c.FILE_SYSTEM, c.MOUNT_TARGET)]
    specs = c.plan_deletion(inv, only)
    assert [(s.step_id, s.depends_on) for s in specs] == [
        (c.S_MOUNT_TARGETS, ()), (c.S_FILE_SYSTEM, (c.S_MOUNT_TARGETS,))]


def test_manual_commands_are_real_command_lines() -> None:
    assert c.manual_command(c.Ref(c.SECURITY_GROUP, "dynamo-efs-sg", resource_id="sg-1"), "us-west-2", "demo") == \
        "aws ec2 delete-security-group --group-id sg-1 --region us-west-2"
    assert c.manual_command(c.Ref(c.CLUSTER, "demo"), "us-west-2", "demo") == \
        "eksctl delete cluster --name demo --region us-west-2 --wait"
    assert c.manual_command(c.Ref(c.PVC, "model-cache", namespace="ns"), "r", "demo") == \
        "aws eks update-kubeconfig --name demo --region r && kubectl -n ns delete pvc model-cache"
    assert c.manual_command(c.Ref(c.HELM_RELEASE, "dynamo-platform", namespace="ns"), "r", "demo") == \
        "helm uninstall dynamo-platform -n ns"
