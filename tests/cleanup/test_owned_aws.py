"""AWS discovery and deletion over boto3 against moto's server: ours by tag only, others survive."""

from __future__ import annotations

import boto3
import pytest

from dynamo_wizard.cloud.owned import OwnedAws
from dynamo_wizard.core import cleanup as c
from dynamo_wizard.core.ledger import Ledger

from .world import build_aws


def _discover(session: boto3.session.Session, deployment: str = "demo", ledger: list[c.Ref] | None = None
              ) -> c.Discovery:
    disc = c.Discovery(deployment=deployment, region="us-east-1")
    OwnedAws("us-east-1", session).discover(deployment, ledger or [], disc)
    return disc


def _found(disc: c.Discovery, kind: str) -> set[str]:
    return {f.ref.resource_id or f.ref.name for f in disc.found if f.ref.kind == kind}


def test_discovery_finds_ours_by_tag_and_nothing_of_anyone_else(aws: boto3.session.Session) -> None:
    world = build_aws(aws)
    disc = _discover(aws)
    assert {f.ref.name for f in disc.found if f.ref.kind == c.CLUSTER} == {"demo"}
    assert _found(disc, c.SECURITY_GROUP) == {world.sg_id}
    assert _found(disc, c.FILE_SYSTEM) == {world.fs_id}
    assert _found(disc, c.MOUNT_TARGET) == set(world.mount_target_ids)
    assert _found(disc, c.ACCESS_POINT) == set(world.access_point_ids)
    # Both eksctl stacks: one by our tag, one by eksctl's tag on a cluster that carries ours.
    assert {f.ref.name for f in disc.found if f.ref.kind == c.STACK} == set(world.stacks)
    everything = {f.ref.resource_id for f in disc.found} | {f.ref.name for f in disc.found}
    for theirs in world.foreign.values():
        assert theirs not in everything
    assert {c.CLUSTER, c.STACK, c.FILE_SYSTEM, c.MOUNT_TARGET, c.SECURITY_GROUP} <= disc.checked
    cluster = next(f for f in disc.found if f.ref.kind == c.CLUSTER)
    assert cluster.cost_per_hour == pytest.approx(0.10)


def test_a_ledger_cluster_without_our_tag_is_left_alone(aws: boto3.session.Session) -> None:
    build_aws(aws)
    disc = _discover(aws, ledger=[c.Ref(c.CLUSTER, "their-cluster")])
    assert "their-cluster" not in {f.ref.name for f in disc.found}
    assert "eksctl-their-cluster-cluster" not in {f.ref.name for f in disc.found}
    assert any("their-cluster" in n and "left alone" in n for n in disc.notes)


def test_a_ledger_id_of_a_file_system_that_lost_our_tag_is_not_trusted(aws: boto3.session.Session) -> None:
    world = build_aws(aws)
    disc = _discover(aws, ledger=[c.Ref(c.FILE_SYSTEM, "dynamo-efs", resource_id=world.foreign["fs"])])
    assert world.foreign["fs"] not in _found(disc, c.FILE_SYSTEM)


def test_file_system_in_use_is_retried_until_its_mount_targets_are_gone(aws: boto3.session.Session) -> None:
    """moto answers FileSystemInUse like AWS; the loop backs off and retries, the ledger says deleted."""
    world = build_aws(aws, with_foreign=False)
    owned = OwnedAws("us-east-1", aws)
    ledger = Ledger("demo")
    ledger.created("efs-file-system", "dynamo-efs", world.fs_id)
    item = c.InventoryItem(ref=c.Ref(c.FILE_SYSTEM, "dynamo-efs", resource_id=world.fs_id), state="exists",
                           ledger_kind="efs-file-system", ledger_name="dynamo-efs", ledger_state="created")
    slept: list[float] = []
    lines: list[str] = []

    def sleep(seconds: float) -> None:
        # The mount targets go while we wait (as they do on AWS a minute after their delete).
        slept.append(seconds)
        if len(slept) == 2:
            for mt in world.mount_target_ids:
                owned.efs.delete_mount_target(MountTargetId=mt)

    outcome = c.delete_all([item], owned, ledger, lines.append, step_id=c.S_FILE_SYSTEM, region="us-east-1",
                           cluster="demo", timeout=60, pacing=c.Pacing(poll=0.01, backoff_start=0.01), sleep=sleep)
    assert outcome.ok, outcome.failed
    assert len(slept) >= 2 and slept[1] == pytest.approx(slept[0] * 2)  # backoff doubled
    assert any("FileSystemInUse" in line for line in lines)
    assert not owned.exists(item.ref)
    assert ledger.find("efs-file-system", "dynamo-efs").state == "deleted"  # type: ignore[union-attr]


def test_what_cannot_be_deleted_is_reported_with_the_manual_command(aws: boto3.session.Session) -> None:
    world = build_aws(aws, with_foreign=False)
    owned = OwnedAws("us-east-1", aws)
    item = c.InventoryItem(ref=c.Ref(c.FILE_SYSTEM, "dynamo-efs", resource_id=world.fs_id), state="exists")
    t = [0.0]

    def clock() -> float:
        return t[0]

    def sleep(seconds: float) -> None:
        t[0] += seconds

    outcome = c.delete_all([item], owned, Ledger("demo"), lambda _l: None, step_id=c.S_FILE_SYSTEM,
                           region="us-east-1", cluster="demo", timeout=30, pacing=c.Pacing(poll=1, backoff_start=1),
                           sleep=sleep, clock=clock)
    assert not outcome.ok
    ref, why, command = outcome.failed[0]
    assert ref.resource_id == world.fs_id and "FileSystemInUse" in why
    assert command == f"aws efs delete-file-system --file-system-id {world.fs_id} --region us-east-1"
    assert owned.exists(item.ref)  # nothing was forced
    err = c.DeletionFailed(outcome)
    assert world.fs_id in str(err) and command in err.fix


def test_deleting_in_order_leaves_nothing_tagged_and_theirs_intact(aws: boto3.session.Session) -> None:
    world = build_aws(aws)
    owned = OwnedAws("us-east-1", aws)
    disc = _discover(aws)
    inventory = c.build_inventory("demo", [], disc)
    specs = c.plan_deletion(inventory)
    ledger = Ledger("demo")
    # Without eksctl here, the cluster step deletes through EKS directly: exercise the AWS kinds only.
    for spec in specs:
        items = [i for i in spec.items if i.kind != c.CLUSTER]
        if spec.step_id == c.S_CLUSTER:
            owned.eks.delete_cluster(name="demo")
        outcome = c.delete_all(items, owned, ledger, lambda _l: None, step_id=spec.step_id, region="us-east-1",
                               cluster="demo", timeout=30, pacing=c.Pacing(poll=0.01, backoff_start=0.01))
        assert outcome.ok, (spec.step_id, outcome.failed)
    assert owned.tagged_leftovers("demo") == []
    assert _discover(aws).found == []
    # Another team's look-alikes are all still there.
    assert owned.exists(c.Ref(c.SECURITY_GROUP, "dynamo-efs-sg", resource_id=world.foreign["sg"]))
    assert owned.exists(c.Ref(c.SECURITY_GROUP, "dynamo-efs-sg", resource_id=world.foreign["sg-other-deployment"]))
    assert owned.exists(c.Ref(c.FILE_SYSTEM, "dynamo-efs", resource_id=world.foreign["fs"]))
    assert owned.exists(c.Ref(c.MOUNT_TARGET, "x", resource_id=world.foreign["mt"]))
    assert owned.exists(c.Ref(c.CLUSTER, "their-cluster"))
    assert owned.exists(c.Ref(c.STACK, "eksctl-their-cluster-cluster"))


def test_deployments_by_tag_lists_every_deployment_in_the_region(aws: boto3.session.Session) -> None:
    build_aws(aws)
    found = OwnedAws("us-east-1", aws).deployments_by_tag()
    assert set(found) == {"demo", "someone-else"}
    assert found["demo"][c.CLUSTER] == ["demo"]
    assert found["someone-else"][c.SECURITY_GROUP]


def test_a_node_that_outlived_its_cluster_is_found_and_terminated(aws: boto3.session.Session) -> None:
    """Auto Mode nodes go with their cluster; one that did not holds the VPC and bills: cleanup finds it by
    the cluster tag EKS puts on it, but only for a cluster of ours that is gone."""
    world = build_aws(aws, with_foreign=False)
    ec2 = aws.client("ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]

    def node(cluster: str) -> str:
        return ec2.run_instances(ImageId=image, InstanceType="g6e.2xlarge", MinCount=1, MaxCount=1,
                                 SubnetId=world.subnet_ids[0], TagSpecifications=[{
                                     "ResourceType": "instance",
                                     "Tags": [{"Key": "eks:eks-cluster-name", "Value": cluster}]}],
                                 )["Instances"][0]["InstanceId"]

    ours, theirs = node("demo"), node("their-cluster")
    owned = OwnedAws("us-east-1", aws)
    ledger = [c.Ref(c.CLUSTER, "demo")]
    # While the cluster exists its nodes are its own business (the NodePool's cost counts them).
    assert _found(_discover(aws, ledger=ledger), c.INSTANCE) == set()
    owned.eks.delete_cluster(name="demo")
    disc = _discover(aws, ledger=ledger)
    assert _found(disc, c.INSTANCE) == {ours}
    node_found = next(f for f in disc.found if f.ref.kind == c.INSTANCE)
    assert node_found.cost_per_hour and node_found.cost_per_hour > 1 and "g6e.2xlarge" in node_found.detail
    inventory = c.build_inventory("demo", [], disc)
    cluster_step = next(s for s in c.plan_deletion(inventory) if s.step_id == c.S_CLUSTER)
    assert [r.kind for r in cluster_step.refs] == [c.INSTANCE, c.STACK, c.STACK]  # nodes before the stacks
    outcome = c.delete_all([i for i in cluster_step.items if i.kind == c.INSTANCE], owned, Ledger("demo"),
                           lambda _l: None, step_id=c.S_CLUSTER, region="us-east-1", cluster="demo", timeout=30,
                           pacing=c.Pacing(poll=0.01, backoff_start=0.01))
    assert outcome.ok
    assert not owned.exists(c.Ref(c.INSTANCE, ours, resource_id=ours))
    assert owned.exists(c.Ref(c.INSTANCE, theirs, resource_id=theirs))
    assert c.manual_command(c.Ref(c.INSTANCE, ours, resource_id=ours), "us-east-1", None) == \
        f"aws ec2 terminate-instances --instance-ids {ours} --region us-east-1"
