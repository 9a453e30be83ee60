"""Isolation: what carries no dynamo-wizard tag or label of the deployment is never modified or deleted, by
apply or by cleanup, even where it has the wizard's own names (a security group dynamo-efs-sg, a StorageClass
efs-sc-dynamic, a NodePool gpu, a Secret hf-token-secret, a namespace dynamo-system in another cluster).

The world (world.py) made foreign resources before the deployment, and foreign objects inside the deployment's
own cluster after it; it fingerprinted them before and after (identity, tags or labels, spec, data). The one
thing that does take foreign objects with it is the deletion of the wizard's own cluster: everything inside a
cluster goes with it, as it does on EKS. So the objects inside it are checked once cleanup has deleted
everything else and only the cluster is left (the first cleanup's `eksctl delete` fails, on purpose).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dynamo_wizard.core import manifests as mf

from .world import (
    FOREIGN_CLUSTER,
    OTHER_DEPLOYMENT,
    REGION,
    World,
    aws_fingerprint,
    foreign_objects_for_other_cluster,
    kube_fingerprints,
    run_cli,
    world_env,
)


def _stage_ok(world: World, *names: str) -> None:
    for name in names:
        assert name not in world.stage_errors, f"stage {name} failed:\n{world.stage_errors[name]}"


def test_cleanup_removed_the_deployment(canary_world: World) -> None:
    """The positive control: cleanup did run, and took everything of the deployment's (otherwise 'untouched'
    below would prove nothing)."""
    w = canary_world
    assert w.capture("cleanup-2").code == 0, w.capture("cleanup-2").stdout[-2000:]
    eks, efs, ec2 = w.sandbox.client("eks"), w.sandbox.client("efs"), w.sandbox.client("ec2")
    assert w.deployment not in eks.list_clusters()["clusters"]
    tagged = [fs["FileSystemId"] for fs in efs.describe_file_systems()["FileSystems"]
              if {"Key": mf.TAG_DEPLOYMENT, "Value": w.deployment} in (fs.get("Tags") or [])]
    assert tagged == []
    groups = ec2.describe_security_groups(Filters=[{"Name": f"tag:{mf.TAG_DEPLOYMENT}", "Values": [w.deployment]}])
    assert groups["SecurityGroups"] == []


def test_foreign_aws_resources_are_untouched(canary_world: World) -> None:
    w = canary_world
    _stage_ok(w, "foreign", "foreign-after")
    assert w.foreign is not None
    for key, value in w.aws_before.items():
        assert value is not None and not isinstance(value, str), f"{key} was not made: {value}"
    assert w.aws_after == w.aws_before


def test_another_deployments_tagged_resources_are_untouched(canary_world: World) -> None:
    """Cleanup of one deployment leaves what is tagged for another."""
    w = canary_world
    assert w.foreign is not None
    other = w.aws_after[w.foreign.other_fs_id]
    assert other is not None and (mf.TAG_DEPLOYMENT, OTHER_DEPLOYMENT) in other["Tags"]
    assert other == w.aws_before[w.foreign.other_fs_id]


def test_another_cluster_and_its_objects_are_untouched(canary_world: World) -> None:
    w = canary_world
    _stage_ok(w, "foreign", "foreign-after")
    assert w.aws_after[FOREIGN_CLUSTER] == w.aws_before[FOREIGN_CLUSTER]
    assert w.aws_after[FOREIGN_CLUSTER]["status"] == "ACTIVE"
    assert all(v is not None for v in w.other_cluster_before.values()), w.other_cluster_before
    assert w.other_cluster_after == w.other_cluster_before


def test_foreign_objects_in_the_wizards_cluster_survive_apply_and_cleanup(canary_world: World) -> None:
    w = canary_world
    _stage_ok(w, "in-cluster-foreign", "in-cluster-after-reapply", "before-cluster-delete", "ours-before-cleanup")
    assert all(v is not None for v in w.in_cluster_before.values()), w.in_cluster_before
    assert w.capture("apply").code == 0
    assert w.in_cluster_after_reapply == w.in_cluster_before, "apply changed objects that are not the wizard's"
    # The first cleanup stopped at the cluster: by then it had deleted what it deletes one by one.
    assert "eksctl" in w.capture("cleanup-1").stdout or "cluster" in w.capture("cleanup-1").stdout
    deleted = sorted(set(w.ours_before_cleanup) - set(w.ours_before_cluster_delete))
    assert deleted, f"cleanup deleted none of the deployment's objects: {w.ours_before_cleanup}"
    assert w.in_cluster_before_cluster_delete == w.in_cluster_before, \
        "cleanup deleted or changed objects that are not the wizard's"
    print(f"figures isolation: {len(w.aws_before)} foreign AWS resources, {len(w.other_cluster_before)} objects in "
          f"another cluster, {len(w.in_cluster_before)} foreign objects in the wizard's cluster; cleanup deleted "
          f"{len(deleted)} of the deployment's objects before the cluster: {deleted}")


def test_apply_refuses_a_cluster_that_is_not_the_wizards_and_cleanup_leaves_it(
        canary_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plan naming an existing cluster the wizard did not create: apply stops before anything is made, and
    cleanup of that deployment deletes nothing."""
    w = canary_world
    assert w.foreign is not None
    plan = tmp_path / "intruder.yaml"
    plan.write_text(json.dumps({
        "apiVersion": "dynamo-wizard/v1", "kind": "Plan", "deployment": "intruder", "region": REGION,
        "cluster": {"name": FOREIGN_CLUSTER}, "gpu": {"families": ["g6e"]},
        "serving": {"mode": "agg", "instanceType": "g6e.2xlarge", "model": "Qwen/Qwen3-0.6B"}}))
    with world_env(w, monkeypatch):
        before_aws = aws_fingerprint(w.sandbox, w.foreign)
        before_objects = kube_fingerprints(w.foreign.cluster_endpoint, foreign_objects_for_other_cluster())
        applied = run_cli(w, "intruder-apply", ["apply", str(plan), "--yes"])
        cleaned = run_cli(w, "intruder-cleanup", ["cleanup", "--deployment", "intruder", "--yes"])
        after_aws = aws_fingerprint(w.sandbox, w.foreign)
        after_objects = kube_fingerprints(w.foreign.cluster_endpoint, foreign_objects_for_other_cluster())
    assert applied.code not in (0, None) and not applied.error
    said = applied.stdout + applied.stderr
    assert FOREIGN_CLUSTER in said and "not created by" in said, said[-1500:]
    assert cleaned.code == 0 and not cleaned.error, cleaned.stdout[-1500:] + cleaned.stderr[-1500:]
    assert after_aws == before_aws
    assert after_objects == before_objects
    calls = [c for c in w.sandbox.calls("eksctl") if FOREIGN_CLUSTER in " ".join(c.get("argv") or [])]
    assert calls == [], f"eksctl was run on the foreign cluster: {calls}"


def test_a_foreign_security_group_with_the_wizards_name_in_its_vpc_is_not_modified(
        canary_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Someone else's `dynamo-efs-sg` inside the deployment's own VPC (made between eksctl and the EFS step, or by
    hand): the EFS step and cleanup leave it as it was. The deployment's cluster exists already (tagged, as a
    first run leaves it), so the cluster step adopts it and the run is short: the real cluster and EFS steps,
    on the real runner, then `cleanup`."""
    from dynamo_wizard.cloud.backends import build_backends
    from dynamo_wizard.commands.apply import default_options
    from dynamo_wizard.core.ledger import Ledger
    from dynamo_wizard.core.plan import plan_from_dict
    from dynamo_wizard.core.runner import Runner
    from dynamo_wizard.core.steps import S_CLUSTER, S_EFS, build_provision_graph

    w = canary_world
    name = "sg-trap"
    with world_env(w, monkeypatch):
        ec2, eks, iam = w.sandbox.client("ec2"), w.sandbox.client("eks"), w.sandbox.client("iam")
        vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.42.{i}.0/24", AvailabilityZone=f"{REGION}{zone}")
                   ["Subnet"]["SubnetId"] for i, zone in enumerate("ab")]
        foreign_sg = ec2.create_security_group(GroupName=mf.EFS_SECURITY_GROUP_NAME, Description="team NFS",
                                               VpcId=vpc)["GroupId"]
        role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        eks.create_cluster(name=name, roleArn=role, resourcesVpcConfig={"subnetIds": subnets},
                           computeConfig={"enabled": True, "nodeRoleArn": role,
                                          "nodePools": ["general-purpose", "system"]},
                           tags={mf.TAG_DEPLOYMENT: name})
        before = ec2.describe_security_groups(GroupIds=[foreign_sg])["SecurityGroups"][0]
        plan = plan_from_dict({
            "apiVersion": "dynamo-wizard/v1", "kind": "Plan", "deployment": name, "region": REGION,
            "gpu": {"families": ["g6e"]},
            "serving": {"mode": "agg", "instanceType": "g6e.2xlarge", "model": "Qwen/Qwen3-0.6B"}})
        steps = [s for s in build_provision_graph(plan, build_backends(REGION), default_options(None))
                 if s.id in (S_CLUSTER, S_EFS)]
        report = Runner(steps, deployment=name, ledger=Ledger(name)).run()
        after_apply = ec2.describe_security_groups(GroupIds=[foreign_sg])["SecurityGroups"][0]
        cleaned = run_cli(w, "sg-trap-cleanup", ["cleanup", "--deployment", name, "--yes"])
        left = ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": [foreign_sg]}])["SecurityGroups"]
    assert report.status(S_CLUSTER) in ("done", "skipped"), report
    assert report.status(S_EFS) == "failed", report  # refused with the group's id and what to do
    assert cleaned.code == 0, cleaned.stdout[-1500:]
    assert left, "cleanup deleted a security group that is not the wizard's"
    for field in ("IpPermissions", "Tags", "GroupName", "VpcId"):
        assert after_apply.get(field) == before.get(field), f"apply changed {field} of a foreign security group"
        assert left[0].get(field) == before.get(field), f"{field} of a foreign security group changed"
