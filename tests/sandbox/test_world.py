"""The sandbox service end to end: fake eksctl and helm acting on moto and the simulated cluster, seen
through plain boto3 and the real kubernetes client; faults; a restart; deletion. One service for the module;
the tests build on each other in file order (cluster, platform, …, delete)."""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from kubernetes import client

from dynamo_wizard.sandbox import client as sandbox_client
from dynamo_wizard.sandbox.testing import SandboxHandle

from .conftest import wait_for, watch_until

NAME = "world"
REGION = "us-east-1"
CLUSTER_YAML = f"""apiVersion: eksctl.io/v1alpha5
kind: ClusterConfig
metadata:
  name: {NAME}
  region: {REGION}
  version: "1.34"
  tags: {{dynamo-wizard/deployment: {NAME}}}
availabilityZones: [us-east-1a, us-east-1b, us-east-1c]
autoModeConfig: {{enabled: true}}
addonsConfig: {{disableDefaultAddons: true}}
addons:
- {{name: aws-efs-csi-driver, version: latest, useDefaultPodIdentityAssociations: true}}
"""
LINE_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[(ℹ|✔|!|✖)\]  ")
CHART = "https://helm.ngc.nvidia.com/nvidia/ai-dynamo/charts/dynamo-platform-1.0.0.tgz"


def run_tool(sb: SandboxHandle, tool: str, *argv: str, env: dict[str, str] | None = None,
             cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **sb.env, **(env or {})}
    return subprocess.run([sb.env[f"DYNAMO_WIZARD_{tool.upper()}"], *argv], capture_output=True, text=True,
                          timeout=120, env=full_env, cwd=cwd)


@pytest.fixture(scope="module")
def created(sandbox_service: SandboxHandle, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("eksctl")
    (work / "cluster.yaml").write_text(CLUSTER_YAML)
    result = run_tool(sandbox_service, "eksctl", "create", "cluster", "-f", "cluster.yaml", cwd=work)
    assert result.returncode == 0, result.stdout + result.stderr
    return {"stdout": result.stdout, "work": work}


@pytest.fixture(scope="module")
def kube(sandbox_service: SandboxHandle, created: dict[str, Any]) -> Any:
    cluster = sandbox_service.client("eks").describe_cluster(name=NAME)["cluster"]
    cfg = client.Configuration(host=cluster["endpoint"])
    cfg.api_key = {"BearerToken": "k8s-aws-v1.any-token"}
    cfg.api_key_prefix = {"BearerToken": "Bearer"}
    api = client.ApiClient(cfg)
    yield api
    api.close()


# ------------------------------------------------------------------------------------------ eksctl


def test_eksctl_create_prints_eksctls_lines_and_records_its_argv(sandbox_service: SandboxHandle,
                                                                 created: dict[str, Any]) -> None:
    lines = created["stdout"].splitlines()
    logged = [ln for ln in lines if LINE_RE.match(ln)]
    assert len(logged) > 20 and logged[0].endswith("[ℹ]  eksctl version 0.230.0")
    body = [LINE_RE.sub("", ln) for ln in logged]
    assert "subnets for us-east-1a - public:192.168.0.0/19 private:192.168.96.0/19" in body
    assert "subnets for us-east-1c - public:192.168.64.0/19 private:192.168.160.0/19" in body
    assert 'building cluster stack "eksctl-world-cluster"' in body
    assert body.count('waiting for CloudFormation stack "eksctl-world-cluster"') >= 2
    assert body.index("waiting for the control plane to become ready") < body.index(
        'all EKS cluster resources for "world" have been created')
    assert "successfully created addon: aws-efs-csi-driver" in body
    assert body[-1] == 'EKS cluster "world" in "us-east-1" region is ready'
    calls = sandbox_service.calls("eksctl")
    assert calls[0]["argv"] == ["create", "cluster", "-f", "cluster.yaml"]
    assert calls[0]["cwd"] == str(created["work"])


def test_the_cluster_is_there_for_boto3(sandbox_service: SandboxHandle, created: dict[str, Any]) -> None:
    eks, ec2 = sandbox_service.client("eks"), sandbox_service.client("ec2")
    cluster = eks.describe_cluster(name=NAME)["cluster"]
    assert cluster["status"] == "ACTIVE"
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", cluster["endpoint"])
    assert cluster["tags"]["dynamo-wizard/deployment"] == NAME
    assert cluster["tags"]["alpha.eksctl.io/cluster-name"] == NAME
    assert cluster["computeConfig"]["enabled"] is True
    assert cluster["computeConfig"]["nodePools"] == ["general-purpose", "system"]
    vpc_id = cluster["resourcesVpcConfig"]["vpcId"]
    vpc = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]
    assert vpc["CidrBlock"] == "192.168.0.0/16"
    assert {"Key": "dynamo-wizard/deployment", "Value": NAME} in vpc["Tags"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    by_cidr = {s["CidrBlock"]: s for s in subnets}
    assert sorted(by_cidr) == sorted(f"192.168.{n}.0/19" for n in (0, 32, 64, 96, 128, 160))
    assert by_cidr["192.168.0.0/19"]["AvailabilityZone"] == "us-east-1a"
    assert {"Key": "kubernetes.io/role/elb", "Value": "1"} in by_cidr["192.168.32.0/19"]["Tags"]
    assert {"Key": "kubernetes.io/role/internal-elb", "Value": "1"} in by_cidr["192.168.128.0/19"]["Tags"]
    assert sorted(cluster["resourcesVpcConfig"]["subnetIds"]) == sorted(s["SubnetId"] for s in subnets)
    stack = sandbox_service.client("cloudformation").describe_stacks(StackName="eksctl-world-cluster")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert {"Key": "dynamo-wizard/deployment", "Value": NAME} in stack["Tags"]
    addon = eks.describe_addon(clusterName=NAME, addonName="aws-efs-csi-driver")["addon"]
    assert addon["podIdentityAssociations"]
    sg = ec2.describe_security_groups(GroupIds=[cluster["resourcesVpcConfig"]["clusterSecurityGroupId"]])
    assert sg["SecurityGroups"][0]["GroupName"].startswith(f"eks-cluster-sg-{NAME}-")


def test_the_cluster_is_there_for_the_kubernetes_client(sandbox_service: SandboxHandle, kube: Any) -> None:
    cluster = sandbox_service.client("eks").describe_cluster(name=NAME)["cluster"]
    co = client.CustomObjectsApi(kube)
    nodeclass = co.get_cluster_custom_object("eks.amazonaws.com", "v1", "nodeclasses", "default")
    assert nodeclass["spec"]["role"] == cluster["computeConfig"]["nodeRoleArn"].rsplit("/", 1)[-1]
    ec2 = sandbox_service.client("ec2")
    private = [s["SubnetId"] for s in ec2.describe_subnets(SubnetIds=cluster["resourcesVpcConfig"]["subnetIds"])[
        "Subnets"] if not s["MapPublicIpOnLaunch"]]
    assert sorted(t["id"] for t in nodeclass["spec"]["subnetSelectorTerms"]) == sorted(private)
    assert nodeclass["spec"]["securityGroupSelectorTerms"] == [
        {"id": cluster["resourcesVpcConfig"]["clusterSecurityGroupId"]}]
    pools = {p["metadata"]["name"] for p in co.list_cluster_custom_object("karpenter.sh", "v1", "nodepools")["items"]}
    assert pools == {"general-purpose", "system"}
    # the EFS CSI add-on's controller runs, on an Auto Mode node that is an EC2 instance in moto
    dep = watch_until(client.AppsV1Api(kube).list_namespaced_deployment, "kube-system", what="efs-csi-controller",
                      predicate=lambda d: d["metadata"]["name"] == "efs-csi-controller"
                      and d["status"].get("readyReplicas") == 2)
    assert dep["spec"]["replicas"] == 2
    node = client.CoreV1Api(kube).list_node().items[0]
    instance = ec2.describe_instances(InstanceIds=[node.metadata.name])["Reservations"][0]["Instances"][0]
    assert instance["InstanceType"] == node.metadata.labels["node.kubernetes.io/instance-type"]
    assert {"Key": "eks:eks-cluster-name", "Value": NAME} in instance["Tags"]


def test_eksctl_create_on_an_existing_cluster_fails_like_eksctl(sandbox_service: SandboxHandle,
                                                                created: dict[str, Any]) -> None:
    again = run_tool(sandbox_service, "eksctl", "create", "cluster", "-f", "cluster.yaml", cwd=created["work"])
    assert again.returncode == 1
    assert "AlreadyExistsException: Stack [eksctl-world-cluster] already exists" in again.stdout
    assert again.stderr.strip().splitlines()[-1] == 'Error: failed to create cluster "world"'


def test_eksctl_get_cluster_json(sandbox_service: SandboxHandle, created: dict[str, Any]) -> None:
    out = run_tool(sandbox_service, "eksctl", "get", "cluster", "--name", NAME, "--region", REGION, "-o", "json")
    assert out.returncode == 0, out.stderr
    [entry] = json.loads(out.stdout)
    assert entry["Name"] == NAME and entry["Status"] == "ACTIVE"
    missing = run_tool(sandbox_service, "eksctl", "get", "cluster", "--name", "nope", "--region", REGION)
    assert missing.returncode == 1 and "ResourceNotFoundException: No cluster found for name: nope." in missing.stderr


# ------------------------------------------------------------------------------------------ helm


def test_helm_installs_the_platform_and_the_operator_and_nats_run(sandbox_service: SandboxHandle, kube: Any,
                                                                  tmp_path: Path) -> None:
    core = client.CoreV1Api(kube)
    client.StorageV1Api(kube).create_storage_class({
        "metadata": {"name": "auto-ebs-sc", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "ebs.csi.eks.amazonaws.com", "volumeBindingMode": "WaitForFirstConsumer",
        "parameters": {"type": "gp3", "encrypted": "true"}})
    kubeconfig = tmp_path / "kubeconfig"
    endpoint = sandbox_service.client("eks").describe_cluster(name=NAME)["cluster"]["endpoint"]
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": endpoint}}],
        "users": [{"name": "u", "user": {"token": "k8s-aws-v1.x"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    argv = ["upgrade", "--install", "dynamo-platform", CHART, "--namespace", "dynamo-system", "--create-namespace",
            "--wait", "--timeout", "10m", "--kubeconfig", str(kubeconfig)]
    first = run_tool(sandbox_service, "helm", *argv)
    assert first.returncode == 0, first.stdout + first.stderr
    out = first.stdout.splitlines()
    assert out[0] == 'Release "dynamo-platform" does not exist. Installing it now.'
    assert out[1:4] == ["NAME: dynamo-platform", out[2], "NAMESPACE: dynamo-system"]
    assert re.fullmatch(r"LAST DEPLOYED: \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}", out[2])
    assert out[4:7] == ["STATUS: deployed", "REVISION: 1", "TEST SUITE: None"]
    pods = {p.metadata.name: p for p in core.list_namespaced_pod("dynamo-system").items}
    operator = next(p for n, p in pods.items() if n.startswith("dynamo-platform-dynamo-operator-controller-manager-"))
    assert operator.status.phase == "Running" and pods["dynamo-platform-nats-0"].status.phase == "Running"
    assert len(pods["dynamo-platform-nats-0"].spec.containers) == 2
    pvc = core.read_namespaced_persistent_volume_claim("dynamo-platform-nats-js-dynamo-platform-nats-0",
                                                       "dynamo-system")
    assert pvc.status.phase == "Bound" and pvc.spec.storage_class_name == "auto-ebs-sc"
    secret = core.read_namespaced_secret("sh.helm.release.v1.dynamo-platform.v1", "dynamo-system")
    assert secret.type == "helm.sh/release.v1"
    assert {"owner": "helm", "name": "dynamo-platform", "status": "deployed"}.items() <= secret.metadata.labels.items()
    release = json.loads(gzip.decompress(base64.b64decode(base64.b64decode(secret.data["release"]))))
    assert release["chart"]["metadata"]["version"] == "1.0.0"
    crds = {c.metadata.name for c in client.ApiextensionsV1Api(kube).list_custom_resource_definition().items}
    assert "dynamographdeployments.nvidia.com" in crds
    status = run_tool(sandbox_service, "helm", "status", "dynamo-platform", "-n", "dynamo-system", "-o", "json",
                      env={"KUBECONFIG": str(kubeconfig)})
    assert json.loads(status.stdout)["info"]["status"] == "deployed"
    listed = run_tool(sandbox_service, "helm", "list", "-n", "dynamo-system", "-o", "json",
                      "--kubeconfig", str(kubeconfig))
    assert [(r["name"], r["chart"], r["status"]) for r in json.loads(listed.stdout)] == [
        ("dynamo-platform", "dynamo-platform-1.0.0", "deployed")]
    second = run_tool(sandbox_service, "helm", *argv)
    assert second.returncode == 0
    assert second.stdout.splitlines()[0] == 'Release "dynamo-platform" has been upgraded. Happy Helming!'
    assert "REVISION: 2" in second.stdout
    missing = run_tool(sandbox_service, "helm", "upgrade", "--install", "x", CHART.replace("1.0.0", "9.9.9"),
                       "-n", "dynamo-system", "--kubeconfig", str(kubeconfig))
    assert missing.returncode == 1 and missing.stderr.strip() == \
        f"Error: failed to fetch {CHART.replace('1.0.0', '9.9.9')} : 404 Not Found"
    assert [c["argv"][0] for c in sandbox_service.calls("helm")] == ["upgrade", "status", "list", "upgrade", "upgrade"]


# ------------------------------------------------------------------------------------------ AWS realism


def test_efs_goes_creating_then_available_and_mount_targets_wait_for_it(sandbox_service: SandboxHandle,
                                                                       created: dict[str, Any]) -> None:
    efs, ec2 = sandbox_service.client("efs"), sandbox_service.client("ec2")
    cluster = sandbox_service.client("eks").describe_cluster(name=NAME)["cluster"]
    fs = efs.create_file_system(CreationToken="world-efs", Encrypted=True, ThroughputMode="elastic",
                                Tags=[{"Key": "dynamo-wizard/deployment", "Value": NAME}])
    assert fs["LifeCycleState"] == "creating"
    sg = ec2.create_security_group(GroupName="dynamo-efs-sg", Description="efs",
                                   VpcId=cluster["resourcesVpcConfig"]["vpcId"])["GroupId"]
    subnet = cluster["resourcesVpcConfig"]["subnetIds"][0]
    with pytest.raises(ClientError) as early:
        efs.create_mount_target(FileSystemId=fs["FileSystemId"], SubnetId=subnet, SecurityGroups=[sg])
    assert early.value.response["Error"]["Code"] == "IncorrectFileSystemLifeCycleState"
    wait_for(lambda: efs.describe_file_systems(FileSystemId=fs["FileSystemId"])["FileSystems"][0][
        "LifeCycleState"] == "available", what="file system available")
    mt = efs.create_mount_target(FileSystemId=fs["FileSystemId"], SubnetId=subnet, SecurityGroups=[sg])
    assert mt["LifeCycleState"] == "creating"
    wait_for(lambda: efs.describe_mount_targets(MountTargetId=mt["MountTargetId"])["MountTargets"][0][
        "LifeCycleState"] == "available", what="mount target available")
    with pytest.raises(ClientError) as in_use:  # a mount target's interface holds the group
        ec2.delete_security_group(GroupId=sg)
    assert in_use.value.response["Error"]["Code"] == "DependencyViolation"
    efs.delete_mount_target(MountTargetId=mt["MountTargetId"])
    assert efs.describe_mount_targets(FileSystemId=fs["FileSystemId"])["MountTargets"][0]["LifeCycleState"] == \
        "deleting"
    with pytest.raises(ClientError) as busy:
        efs.delete_file_system(FileSystemId=fs["FileSystemId"])
    assert busy.value.response["Error"]["Code"] == "FileSystemInUse"
    wait_for(lambda: not efs.describe_mount_targets(FileSystemId=fs["FileSystemId"])["MountTargets"],
             what="mount target gone")
    efs.delete_file_system(FileSystemId=fs["FileSystemId"])
    ec2.delete_security_group(GroupId=sg)


def test_faults_throttle_and_fail_once(sandbox_service: SandboxHandle, kube: Any, tmp_path: Path) -> None:
    no_retry = sandbox_service.boto3_session().client("ec2", endpoint_url=sandbox_service.url,
                                                      config=Config(retries={"max_attempts": 1}))
    sandbox_service.faults("throttle=1")
    try:
        with pytest.raises(ClientError) as throttled:
            no_retry.describe_availability_zones()
        assert throttled.value.response["Error"]["Code"] == "RequestLimitExceeded"
        with pytest.raises(ClientError) as eks_throttled:
            sandbox_service.boto3_session().client("eks", endpoint_url=sandbox_service.url,
                                                   config=Config(retries={"max_attempts": 1})).list_clusters()
        assert eks_throttled.value.response["Error"]["Code"] == "ThrottlingException"
        sandbox_service.faults("throttle=0.25")
        retrying = sandbox_service.boto3_session().client("ec2", endpoint_url=sandbox_service.url,
                                                          config=Config(retries={"mode": "standard",
                                                                                 "max_attempts": 10}))
        for _ in range(3):  # boto3's own retries get through a share of throttled calls
            assert retrying.describe_availability_zones()["AvailabilityZones"]
    finally:
        sandbox_service.faults({"clear": True})
    armed = sandbox_service.faults("fail-once=CreateFileSystem")
    assert armed["fail-once"] == ["CreateFileSystem"]
    efs = sandbox_service.client("efs")
    with pytest.raises(ClientError) as failed:
        efs.create_file_system(CreationToken="fail-once")
    assert "fail-once=CreateFileSystem" in failed.value.response["Error"]["Message"]
    fs = efs.create_file_system(CreationToken="fail-once")  # only once
    efs.delete_file_system(FileSystemId=fs["FileSystemId"])
    sandbox_service.faults("fail-once=helm")
    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text(json.dumps({"apiVersion": "v1", "kind": "Config", "current-context": "c",
                                      "clusters": [{"name": "c", "cluster": {"server": kube.configuration.host}}],
                                      "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                                      "users": [{"name": "u", "user": {"token": "t"}}]}))
    result = run_tool(sandbox_service, "helm", "upgrade", "--install", "dynamo-platform", CHART, "-n",
                      "dynamo-system", "--kubeconfig", str(kubeconfig))
    assert result.returncode == 1 and "Error: Kubernetes cluster unreachable" in result.stderr
    assert sandbox_service.faults({})["fail-once"] == []


def test_listens_only_on_loopback(sandbox_service: SandboxHandle, created: dict[str, Any]) -> None:
    pid = sandbox_service.pid
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    listening: list[str] = []
    for table in ("tcp", "tcp6", "udp", "udp6"):
        path = Path(f"/proc/net/{table}")
        if not path.exists():
            continue
        for row in path.read_text().splitlines()[1:]:
            cols = row.split()
            local, state, inode = cols[1], cols[3], cols[9]
            if inode in inodes and (state == "0A" or table.startswith("udp")):
                listening.append(f"{table} {local}")
    # the AWS front and at least the cluster's API server
    assert len(listening) >= 2, listening
    assert all(entry.startswith("tcp ") and entry.split()[1].startswith("0100007F:") for entry in listening), listening
    ports = {int(entry.split(":")[-1], 16) for entry in listening}
    endpoint_port = int(sandbox_service.client("eks").describe_cluster(name=NAME)["cluster"]["endpoint"].rsplit(":", 1)[1])
    assert {int(sandbox_service.url.rsplit(":", 1)[1]), endpoint_port} <= ports


def test_a_reserved_nodeclass_reports_its_capacity_block_and_gets_reserved_nodes(sandbox_service: SandboxHandle,
                                                                                 kube: Any) -> None:
    co, core = client.CustomObjectsApi(kube), client.CoreV1Api(kube)
    ec2 = sandbox_service.client("ec2")
    block = next(r for r in ec2.describe_capacity_reservations()["CapacityReservations"]
                 if r.get("ReservationType") == "capacity-block" and r["InstanceType"] == "p5.48xlarge")
    default = co.get_cluster_custom_object("eks.amazonaws.com", "v1", "nodeclasses", "default")["spec"]
    co.create_cluster_custom_object("eks.amazonaws.com", "v1", "nodeclasses", {
        "apiVersion": "eks.amazonaws.com/v1", "kind": "NodeClass", "metadata": {"name": "gpu-reserved"},
        "spec": {"role": default["role"], "subnetSelectorTerms": default["subnetSelectorTerms"],
                 "securityGroupSelectorTerms": default["securityGroupSelectorTerms"],
                 "capacityReservationSelectorTerms": [{"id": block["CapacityReservationId"]}]}})
    nodeclass = watch_until(co.list_cluster_custom_object, "eks.amazonaws.com", "v1", "nodeclasses",
                            what="reservations in the NodeClass status",
                            predicate=lambda n: n["metadata"]["name"] == "gpu-reserved"
                            and bool((n.get("status") or {}).get("capacityReservations")))
    [reported] = nodeclass["status"]["capacityReservations"]
    assert reported["id"] == block["CapacityReservationId"] and reported["state"] == "active"
    assert reported["instanceType"] == "p5.48xlarge" and reported["reservationType"] == "capacity-block"
    assert reported["availabilityZone"] == block["AvailabilityZone"] and reported["endTime"]
    co.create_cluster_custom_object("karpenter.sh", "v1", "nodepools", {
        "apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "gpu-reserved"},
        "spec": {"disruption": {"budgets": [{"nodes": "10%"}], "consolidateAfter": "300s",
                                "consolidationPolicy": "WhenEmptyOrUnderutilized"},
                 "template": {"spec": {
                     "nodeClassRef": {"group": "eks.amazonaws.com", "kind": "NodeClass", "name": "gpu-reserved"},
                     "requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["reserved"]},
                                      {"key": "eks.amazonaws.com/instance-family", "operator": "In", "values": ["p5"]}],
                     "taints": [{"effect": "NoSchedule", "key": "nvidia.com/gpu", "value": "Exists"}]}}}})
    core.create_namespace({"metadata": {"name": "reserved"}})
    core.create_namespaced_pod("reserved", {"metadata": {"name": "p5"}, "spec": {
        "nodeSelector": {"node.kubernetes.io/instance-type": "p5.48xlarge", "karpenter.sh/capacity-type": "reserved"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "containers": [{"name": "main", "image": "busybox", "resources": {"limits": {"nvidia.com/gpu": "8",
                                                                                      "vpc.amazonaws.com/efa": "32"}}}]}})
    pod = watch_until(core.list_namespaced_pod, "reserved", what="pod on a reserved node", timeout=30,
                      predicate=lambda p: p["status"].get("phase") == "Running")
    node = core.read_node(pod["spec"]["nodeName"])
    assert node.metadata.labels["karpenter.sh/capacity-type"] == "reserved"
    assert node.metadata.labels["topology.kubernetes.io/zone"] == block["AvailabilityZone"]
    used = ec2.describe_capacity_reservations(CapacityReservationIds=[block["CapacityReservationId"]])
    assert used["CapacityReservations"][0]["AvailableInstanceCount"] == block["AvailableInstanceCount"] - 1
    instance = ec2.describe_instances(InstanceIds=[node.metadata.name])["Reservations"][0]["Instances"][0]
    assert instance["InstanceType"] == "p5.48xlarge"
    # the pool goes: its NodeClaim drains, the instance is terminated, the block is free again
    co.delete_cluster_custom_object("karpenter.sh", "v1", "nodepools", "gpu-reserved")
    wait_for(lambda: ec2.describe_instances(InstanceIds=[node.metadata.name])["Reservations"][0]["Instances"][0][
        "State"]["Name"] == "terminated", what="the reserved instance terminated")
    freed = ec2.describe_capacity_reservations(CapacityReservationIds=[block["CapacityReservationId"]])
    assert freed["CapacityReservations"][0]["AvailableInstanceCount"] == block["AvailableInstanceCount"]


# ------------------------------------------------------------------------------------------ restart, delete


def test_a_restarted_service_keeps_the_world(sandbox_service: SandboxHandle, kube: Any) -> None:
    ec2 = sandbox_service.client("ec2")
    before_vpc = sandbox_service.client("eks").describe_cluster(name=NAME)["cluster"]["resourcesVpcConfig"]["vpcId"]
    node_names = {n.metadata.name for n in client.CoreV1Api(kube).list_node().items}
    assert sandbox_client.stop(sandbox_service.directory)
    info = sandbox_client.start(directory=sandbox_service.directory)
    sandbox_service.info = info
    sandbox_service.env = sandbox_client.env(sandbox_service.directory, info)
    eks = sandbox_service.client("eks")
    cluster = wait_for(lambda: (c := eks.describe_cluster(name=NAME)["cluster"])["status"] == "ACTIVE" and c,
                       what="the cluster ACTIVE again")
    assert cluster["resourcesVpcConfig"]["vpcId"] == before_vpc
    assert sandbox_service.client("ec2").describe_vpcs(VpcIds=[before_vpc])["Vpcs"]
    assert ec2 is not None
    kube.configuration.host = cluster["endpoint"]
    core = client.CoreV1Api(kube)
    assert {n.metadata.name for n in core.list_node().items} == node_names
    pods = {p.metadata.name: p.status.phase for p in core.list_namespaced_pod("dynamo-system").items}
    assert pods["dynamo-platform-nats-0"] == "Running"
    assert core.read_namespaced_secret("sh.helm.release.v1.dynamo-platform.v2", "dynamo-system")


def test_eksctl_delete_fails_on_a_vpc_dependency_then_deletes_everything(sandbox_service: SandboxHandle,
                                                                        kube: Any) -> None:
    ec2, cfn, eks = (sandbox_service.client(s) for s in ("ec2", "cloudformation", "eks"))
    vpc_id = eks.describe_cluster(name=NAME)["cluster"]["resourcesVpcConfig"]["vpcId"]
    leftover = ec2.create_security_group(GroupName="left-behind", Description="x", VpcId=vpc_id)["GroupId"]
    result = run_tool(sandbox_service, "eksctl", "delete", "cluster", "--name", NAME, "--region", REGION, "--wait")
    assert result.returncode == 1, result.stdout
    assert result.stderr.strip() == "Error: failed to delete cluster with nodegroup(s)"
    assert cfn.describe_stacks(StackName="eksctl-world-cluster")["Stacks"][0]["StackStatus"] == "DELETE_FAILED"
    assert eks.list_clusters()["clusters"] == []
    reasons = [e.get("ResourceStatusReason", "") for e in
               cfn.describe_stack_events(StackName="eksctl-world-cluster")["StackEvents"]]
    assert any("DependencyViolation" in r or "has dependencies" in r for r in reasons)
    ec2.delete_security_group(GroupId=leftover)
    cfn.delete_stack(StackName="eksctl-world-cluster")  # what the wizard's cleanup does next
    wait_for(lambda: not [s for s in cfn.list_stacks()["StackSummaries"] if s["StackStatus"] != "DELETE_COMPLETE"],
             what="stacks deleted")
    assert ec2.describe_vpcs(Filters=[{"Name": "tag:dynamo-wizard/deployment", "Values": [NAME]}])["Vpcs"] == []
    states = {i["State"]["Name"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}
    assert states == {"terminated"}
    assert not (sandbox_service.directory / "clusters" / f"{REGION}_{NAME}").exists()
