"""Build what a deployment leaves in AWS (moto) and in its cluster (kmock), plus another team's
look-alikes without our marks, so tests can check that cleanup takes ours and only ours."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import boto3
from kubernetes import client

TAG = "dynamo-wizard/deployment"
NS = "dynamo-system"


def our_labels(deployment: str) -> dict[str, str]:
    return {"app.kubernetes.io/managed-by": "dynamo-wizard", "dynamo-wizard/deployment": deployment}


@dataclass
class AwsWorld:
    vpc_id: str
    subnet_ids: list[str]
    cluster: str
    sg_id: str
    fs_id: str
    mount_target_ids: list[str]
    access_point_ids: list[str]
    stacks: list[str]
    foreign: dict[str, str] = field(default_factory=dict)


def build_aws(session: boto3.session.Session, deployment: str = "demo", *, cluster: str | None = None,
              with_foreign: bool = True) -> AwsWorld:
    cluster = cluster or deployment
    ec2, efs, eks, cfn = (session.client(s) for s in ("ec2", "efs", "eks", "cloudformation"))
    tag = [{"Key": TAG, "Value": deployment}]
    vpc = ec2.create_vpc(CidrBlock="192.168.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"192.168.{i * 32}.0/19", AvailabilityZone=f"us-east-1{z}")
               ["Subnet"]["SubnetId"] for i, z in enumerate("ab")]
    eks.create_cluster(name=cluster, roleArn="arn:aws:iam::123456789012:role/eks",
                       resourcesVpcConfig={"subnetIds": subnets}, tags={TAG: deployment})
    stacks = []
    body = '{"Resources": {"Nothing": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}}'
    for suffix in ("cluster", "addon-aws-efs-csi-driver-podidentityrole-efs-csi-controller-sa"):
        name = f"eksctl-{cluster}-{suffix}"
        # eksctl tags its stacks with the cluster name; our tag only on the first, to check both rules.
        tags = [{"Key": "alpha.eksctl.io/cluster-name", "Value": cluster}] + (tag if suffix == "cluster" else [])
        cfn.create_stack(StackName=name, TemplateBody=body, Tags=tags)
        stacks.append(name)
    sg = ec2.create_security_group(GroupName="dynamo-efs-sg", Description="EFS from EKS", VpcId=vpc,
                                   TagSpecifications=[{"ResourceType": "security-group", "Tags": tag}])["GroupId"]
    fs = efs.create_file_system(CreationToken=f"dynamo-wizard-{deployment}", PerformanceMode="generalPurpose",
                                Encrypted=True, Tags=[*tag, {"Key": "Name", "Value": "dynamo-efs"}])["FileSystemId"]
    mts = [efs.create_mount_target(FileSystemId=fs, SubnetId=s, SecurityGroups=[sg])["MountTargetId"]
           for s in subnets]
    aps = [efs.create_access_point(FileSystemId=fs, Tags=[{"Key": "efs.csi.aws.com/cluster", "Value": "true"}])
           ["AccessPointId"]]
    world = AwsWorld(vpc, subnets, cluster, sg, fs, mts, aps, stacks)
    if with_foreign:
        other_vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        other_subnet = ec2.create_subnet(VpcId=other_vpc, CidrBlock="10.0.0.0/20",
                                         AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
        world.foreign["sg"] = ec2.create_security_group(
            GroupName="dynamo-efs-sg", Description="another team's", VpcId=other_vpc)["GroupId"]
        world.foreign["sg-other-deployment"] = ec2.create_security_group(
            GroupName="dynamo-efs-sg", Description="another deployment's",
            VpcId=ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"],
            TagSpecifications=[{"ResourceType": "security-group",
                                "Tags": [{"Key": TAG, "Value": "someone-else"}]}])["GroupId"]
        world.foreign["fs"] = efs.create_file_system(
            CreationToken="theirs", Tags=[{"Key": "Name", "Value": "dynamo-efs"}])["FileSystemId"]
        world.foreign["mt"] = efs.create_mount_target(FileSystemId=world.foreign["fs"], SubnetId=other_subnet,
                                                      SecurityGroups=[world.foreign["sg"]])["MountTargetId"]
        eks.create_cluster(name="their-cluster", roleArn="arn:aws:iam::123456789012:role/eks",
                           resourcesVpcConfig={"subnetIds": [other_subnet]}, tags={"team": "ml"})
        world.foreign["cluster"] = "their-cluster"
        cfn.create_stack(StackName="eksctl-their-cluster-cluster", TemplateBody=body,
                         Tags=[{"Key": "alpha.eksctl.io/cluster-name", "Value": "their-cluster"}])
        world.foreign["stack"] = "eksctl-their-cluster-cluster"
    return world


def build_kube(api: client.ApiClient, deployment: str = "demo", *, with_foreign: bool = True,
               finalizer: bool = True) -> None:
    core, storage, batch = client.CoreV1Api(api), client.StorageV1Api(api), client.BatchV1Api(api)
    custom = client.CustomObjectsApi(api)
    labels = our_labels(deployment)

    def meta(name: str, namespace: str | None = None, mine: bool = True, **extra: Any) -> dict[str, Any]:
        m: dict[str, Any] = {"name": name, **extra}
        if namespace:
            m["namespace"] = namespace
        if mine:
            m["labels"] = dict(labels)
        return m

    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": meta(NS)})
    for name in ("model-cache", "compilation-cache", "perf-cache"):
        core.create_namespaced_persistent_volume_claim(NS, {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta(name, NS),
            "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "efs-sc-dynamic",
                     "resources": {"requests": {"storage": "5Gi"}}}})
    # The NATS claim the chart's StatefulSet makes: helm's labels only.
    core.create_namespaced_persistent_volume_claim(NS, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "dynamo-platform-nats-js-dynamo-platform-nats-0", "namespace": NS,
                     "labels": {"app.kubernetes.io/name": "nats", "app.kubernetes.io/instance": "dynamo-platform"}},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}})
    core.create_namespaced_secret(NS, {"apiVersion": "v1", "kind": "Secret", "metadata": meta("hf-token-secret", NS),
                                       "type": "Opaque", "data": {}})
    core.create_namespaced_secret(NS, {
        "apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
        "metadata": {"name": "sh.helm.release.v1.dynamo-platform.v1", "namespace": NS,
                     "labels": {"owner": "helm", "name": "dynamo-platform", "status": "deployed"}}})
    client.AppsV1Api(api).create_namespaced_deployment(NS, {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "dynamo-platform-dynamo-operator-controller-manager", "namespace": NS},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
                 "spec": {"containers": [{"name": "m", "image": "x"}]}}}})
    client.AppsV1Api(api).create_namespaced_deployment(NS, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("dynamo-wizard-gpu-warmup", NS),
        "spec": {"selector": {"matchLabels": {"app": "w"}}, "template": {"metadata": {"labels": {"app": "w"}},
                 "spec": {"containers": [{"name": "warmup", "image": "x"}]}}}})
    storage.create_storage_class({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                                  "metadata": meta("efs-sc-dynamic"), "provisioner": "efs.csi.aws.com"})
    storage.create_storage_class({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                                  "metadata": meta("auto-ebs-sc"), "provisioner": "ebs.csi.eks.amazonaws.com"})
    batch.create_namespaced_job(NS, {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta("model-download", NS),
                                     "spec": {"template": {"spec": {"containers": [], "restartPolicy": "Never"}}}})
    dgd_meta = meta(f"{deployment}-agg", NS)
    if finalizer:
        dgd_meta["finalizers"] = ["nvidia.com/finalizer"]
    custom.create_namespaced_custom_object("nvidia.com", "v1alpha1", NS, "dynamographdeployments", {
        "apiVersion": "nvidia.com/v1alpha1", "kind": "DynamoGraphDeployment", "metadata": dgd_meta, "spec": {}})
    for name in ("gpu", "gpu-reserved"):
        custom.create_cluster_custom_object("karpenter.sh", "v1", "nodepools", {
            "apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": meta(name), "spec": {}})
    custom.create_cluster_custom_object("eks.amazonaws.com", "v1", "nodeclasses", {
        "apiVersion": "eks.amazonaws.com/v1", "kind": "NodeClass", "metadata": meta("gpu-reserved"), "spec": {}})
    core.create_node({"apiVersion": "v1", "kind": "Node", "metadata": {
        "name": "i-0123456789abcdef0", "labels": {"karpenter.sh/nodepool": "gpu",
                                                  "node.kubernetes.io/instance-type": "g6e.2xlarge"}}})
    if with_foreign:
        core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-b"}})
        core.create_namespaced_persistent_volume_claim("team-b", {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "dynamo-platform-nats-js-dynamo-platform-nats-0", "namespace": "team-b",
                         "labels": {"app.kubernetes.io/name": "nats", "app.kubernetes.io/instance": "dynamo-platform"}},
            "spec": {}})
        core.create_namespaced_secret("team-b", {
            "apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
            "metadata": {"name": "sh.helm.release.v1.dynamo-platform.v1", "namespace": "team-b",
                         "labels": {"owner": "helm", "name": "dynamo-platform"}}})
        core.create_namespaced_persistent_volume_claim("team-b", {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "model-cache", "namespace": "team-b"}, "spec": {}})
        storage.create_storage_class({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                                      "metadata": {"name": "efs-sc-dynamic-b", "labels": {"team": "b"}},
                                      "provisioner": "efs.csi.aws.com"})
        custom.create_cluster_custom_object("karpenter.sh", "v1", "nodepools", {
            "apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "gpu-team-b"}, "spec": {}})
        custom.create_cluster_custom_object("karpenter.sh", "v1", "nodepools", {
            "apiVersion": "karpenter.sh/v1", "kind": "NodePool",
            "metadata": {"name": "gpu-other", "labels": our_labels("someone-else")}, "spec": {}})
