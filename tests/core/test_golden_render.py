"""Golden tests: the guide's examples render to what the facts sheet says, field by field.

Expected values are written here from ../shared/reference/dynamo-eks-facts.md (sections 3-11), not from
our own output. Where the wizard deliberately differs from the guide (unique graph names, the EFS model
cache mounted in agg/TCP graphs, an idempotent helm command, labels), the test says so and checks the
improvement instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dynamo_wizard.core import manifests as m
from dynamo_wizard.core.catalog import load_catalog
from dynamo_wizard.core.plan import Plan, load_plan
from dynamo_wizard.core.validate import render_and_check

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
OUR_LABELS = {"app.kubernetes.io/managed-by": "dynamo-wizard"}

# Facts section 9: images of release 1.0.0.
FRONTEND_IMAGE = "nvcr.io/nvidia/ai-dynamo/dynamo-frontend:1.0.0"
RUNTIME_IMAGE = "nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.0.0-efa-amd64"
HF_HOME = "/home/dynamo/.cache/huggingface"
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
# Facts 9a (EFA) and 9b (TCP) kv-transfer-config, as JSON objects.
KV_EFA = {"kv_connector": "NixlConnector", "kv_role": "kv_both",
          "kv_connector_extra_config": {"backends": ["LIBFABRIC"]}}
KV_TCP = {"kv_connector": "NixlConnector", "kv_role": "kv_both", "kv_buffer_device": "cpu",
          "kv_connector_extra_config": {"backends": ["LIBFABRIC"]}}


def _plan(name: str) -> Plan:
    return load_plan(EXAMPLES / name)


def _render(plan: Plan) -> dict[str, m.RenderedFile]:
    return {f.name: f for f in m.render_all(plan, m.RenderContext(load_catalog()))}


def _doc(files: dict[str, m.RenderedFile], name: str, index: int = 0) -> dict[str, Any]:
    return files[name].documents[index]


def _without_our_metadata(doc: dict[str, Any]) -> dict[str, Any]:
    """The object minus what the wizard adds to every object (labels), for exact comparison with the guide."""
    copy = json.loads(json.dumps(doc))
    labels = copy["metadata"].pop("labels")
    assert labels["app.kubernetes.io/managed-by"] == "dynamo-wizard"
    assert labels["dynamo-wizard/deployment"]
    copy["metadata"].pop("namespace", None)
    return copy


def _graph(plan: Plan) -> dict[str, Any]:
    return _doc(_render(plan), m.graph_file_name(plan))


def _cmdline(main: dict[str, Any]) -> list[str]:
    return list(main.get("command", [])) + list(main.get("args", []))


def _arg(args: list[str], flag: str) -> str:
    assert flag in args, f"{flag} missing from {args}"
    return args[args.index(flag) + 1]


# Section 3: eksctl ---------------------------------------------------------------------------------


@pytest.mark.parametrize("example", ["agg.yaml", "disagg-efa.yaml", "disagg-tcp.yaml"])
def test_eksctl_config_is_the_guides_plus_tag_and_version(example: str) -> None:
    plan = _plan(example)
    config = _doc(_render(plan), m.FILE_CLUSTER)
    assert config["apiVersion"] == "eksctl.io/v1alpha5"
    assert config["kind"] == "ClusterConfig"
    assert config["metadata"] == {
        "name": plan.deployment, "region": "us-east-1",
        "version": "1.34", "tags": {"dynamo-wizard/deployment": plan.deployment},
    }
    assert config["autoModeConfig"] == {"enabled": True}
    assert config["addonsConfig"] == {"disableDefaultAddons": True}
    assert config["addons"] == [
        {"name": "aws-efs-csi-driver", "version": "latest", "useDefaultPodIdentityAssociations": True},
    ]
    # "nothing else is set": no iam, withOIDC, node groups or VPC block.
    assert set(config) == {"apiVersion", "kind", "metadata", "availabilityZones", "autoModeConfig",
                           "addonsConfig", "addons"}
    # No zones in the plan: the runbook fills the guide's EKS_CP_AZS list.
    assert config["availabilityZones"] == ["${EKS_CP_AZS}"]


def test_eksctl_zones_come_from_the_plan_then_the_facts() -> None:
    p5 = _plan("disagg-p5-reserved.yaml")
    assert m.eksctl_cluster_config(p5)["availabilityZones"] == ["us-east-1a", "us-east-1b"]
    agg = _plan("agg.yaml")
    facts = m.ClusterFacts(zones=("us-east-1a", "us-east-1c", "us-east-1d"))
    assert m.eksctl_cluster_config(agg, facts)["availabilityZones"] == ["us-east-1a", "us-east-1c", "us-east-1d"]


# Section 4: GPU NodePool ---------------------------------------------------------------------------


def test_gpu_nodepool_matches_the_guide() -> None:
    plan = _plan("disagg-efa.yaml")
    pool = _without_our_metadata(_doc(_render(plan), m.FILE_GPU_NODEPOOL))
    assert pool["apiVersion"] == "karpenter.sh/v1"
    assert pool["kind"] == "NodePool"
    assert pool["metadata"] == {"name": "gpu"}
    spec = pool["spec"]
    assert spec["disruption"] == {"budgets": [{"nodes": "10%"}], "consolidateAfter": "300s",
                                  "consolidationPolicy": "WhenEmptyOrUnderutilized"}
    template = spec["template"]["spec"]
    assert template["nodeClassRef"] == {"group": "eks.amazonaws.com", "kind": "NodeClass", "name": "default"}
    requirements = {r["key"]: r for r in template["requirements"]}
    assert requirements["karpenter.sh/capacity-type"]["operator"] == "In"
    assert sorted(requirements["karpenter.sh/capacity-type"]["values"]) == ["on-demand", "spot"]
    # The guide lists its seven families; the plan chooses, here g6e and g7e.
    assert requirements["eks.amazonaws.com/instance-family"] == {
        "key": "eks.amazonaws.com/instance-family", "operator": "In", "values": ["g6e", "g7e"]}
    # The taint's value is the literal string "Exists".
    assert template["taints"] == [{"effect": "NoSchedule", "key": "nvidia.com/gpu", "value": "Exists"}]
    assert "limits" not in spec and "expireAfter" not in template


# Section 5: default StorageClass -------------------------------------------------------------------


def test_default_storage_class_is_exactly_the_guides() -> None:
    sc = _without_our_metadata(_doc(_render(_plan("agg.yaml")), m.FILE_DEFAULT_SC))
    assert sc == {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": "auto-ebs-sc",
                     "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "allowedTopologies": [{"matchLabelExpressions": [
            {"key": "eks.amazonaws.com/compute-type", "values": ["auto"]}]}],
        "provisioner": "ebs.csi.eks.amazonaws.com",
        "volumeBindingMode": "WaitForFirstConsumer",
        "parameters": {"type": "gp3", "encrypted": "true"},
    }


# Section 6: EFS ------------------------------------------------------------------------------------


def test_efs_storage_class_and_pvcs_match_the_guide() -> None:
    files = _render(_plan("disagg-efa.yaml"))
    docs = files[m.FILE_EFS].documents
    sc = _without_our_metadata(docs[0])
    assert sc == {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "efs-sc-dynamic"},
        "provisioner": "efs.csi.aws.com",
        "parameters": {"provisioningMode": "efs-ap", "fileSystemId": "${EFS_FS_ID}", "directoryPerms": "777",
                       "uid": "1000", "gid": "1000"},
    }
    pvcs = {d["metadata"]["name"]: d for d in docs[1:]}
    assert sorted(pvcs) == ["compilation-cache", "model-cache", "perf-cache"]
    for pvc in pvcs.values():
        assert pvc["kind"] == "PersistentVolumeClaim"
        assert pvc["metadata"]["namespace"] == "dynamo-system"
        assert pvc["spec"] == {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "5Gi"}},
                               "storageClassName": "efs-sc-dynamic"}


def test_efs_file_system_id_from_the_facts_replaces_the_placeholder() -> None:
    sc = m.efs_storage_class(_plan("agg.yaml"), m.ClusterFacts(efs_file_system_id="fs-0abc1234"))
    assert sc["parameters"]["fileSystemId"] == "fs-0abc1234"


# Section 7: platform -------------------------------------------------------------------------------


def test_helm_command_installs_the_pinned_chart_idempotently() -> None:
    plan = _plan("agg.yaml")
    profile = m.release_profile(plan, load_catalog())
    args = m.helm_command(plan, profile, "values.yaml")
    assert args[:5] == ["helm", "upgrade", "--install", "dynamo-platform",
                        "https://helm.ngc.nvidia.com/nvidia/ai-dynamo/charts/dynamo-platform-1.0.0.tgz"]
    assert _arg(args, "--namespace") == "dynamo-system"
    assert "--create-namespace" in args
    assert _arg(args, "-f") == "values.yaml"
    values = _doc(_render(plan), m.FILE_HELM_VALUES)
    # Belt and braces for pitfall 2: the NATS volume names the default StorageClass.
    assert values["nats"]["config"]["jetstream"]["fileStore"]["pvc"]["storageClassName"] == "auto-ebs-sc"


def test_hf_token_secret_is_built_in_memory_only() -> None:
    plan = _plan("agg.yaml")
    secret = m.hf_token_secret(plan, "hf_example_token_value_123456")
    assert secret["metadata"]["name"] == "hf-token-secret"
    assert secret["stringData"] == {"HF_TOKEN": "hf_example_token_value_123456"}
    rendered = "".join(f.text() for f in _render(plan).values())
    assert "hf_example_token_value" not in rendered and "kind: Secret" not in rendered


# Section 8: model download -------------------------------------------------------------------------


def test_model_download_job_matches_the_recipe() -> None:
    plan = _plan("disagg-efa.yaml")  # Qwen/Qwen3-32B, the guide's download
    files = _render(plan)
    job = _doc(files, m.FILE_DOWNLOAD_JOB)
    assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
    assert job["metadata"]["name"] == "model-download"
    spec = job["spec"]
    assert (spec["backoffLimit"], spec["completions"], spec["parallelism"]) == (3, 1, 1)
    pod = spec["template"]
    assert pod["metadata"]["labels"]["app"] == "model-download"
    assert pod["metadata"]["labels"]["dynamo-wizard/deployment"] == plan.deployment
    assert pod["spec"]["restartPolicy"] == "Never"
    (container,) = pod["spec"]["containers"]
    assert container["name"] == "model-download"
    assert container["image"] == "python:3.10-slim"
    assert container["command"] == ["sh", "-c"]
    assert container["envFrom"] == [{"secretRef": {"name": "hf-token-secret"}}]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == {"MODEL_NAME": "Qwen/Qwen3-32B", "HF_HOME": HF_HOME, "HF_HUB_ENABLE_HF_TRANSFER": "1",
                   "MODEL_REVISION": "9216db5781bf21249d130ec9da846c4624c16137"}
    script = container["args"][0]
    assert "pip install --no-cache-dir huggingface_hub hf_transfer" in script
    assert 'hf download "$MODEL_NAME" --revision "$MODEL_REVISION"' in script
    assert container["volumeMounts"] == [{"name": "model-cache", "mountPath": HF_HOME}]
    assert pod["spec"]["volumes"] == [{"name": "model-cache", "persistentVolumeClaim": {"claimName": "model-cache"}}]
    # The guide's 4Gi is too small for a 65 GB model (pitfall 6): sized from the catalog.
    assert container["resources"] == {"requests": {"memory": "16Gi"}}


def test_kustomization_patches_the_jobs_memory_like_the_guide() -> None:
    files = _render(_plan("agg.yaml"))  # Qwen3-0.6B: the guide's 4Gi
    kustomization = _doc(files, m.FILE_DOWNLOAD_KUSTOMIZATION)
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    assert kustomization["resources"] == ["model-download.yaml"]
    (patch,) = kustomization["patches"]
    assert patch["target"] == {"kind": "Job", "name": "model-download"}
    import yaml

    body = yaml.safe_load(patch["patch"])
    assert body["apiVersion"] == "batch/v1" and body["kind"] == "Job"
    assert body["metadata"] == {"name": "model-download"}
    assert body["spec"]["template"]["spec"]["containers"] == [
        {"name": "model-download", "resources": {"requests": {"memory": "4Gi"}}}]


# Section 9c: aggregated ----------------------------------------------------------------------------


def test_agg_graph_matches_9c() -> None:
    plan = _plan("agg.yaml")
    graph = _graph(plan)
    assert graph["apiVersion"] == "nvidia.com/v1alpha1"
    assert graph["kind"] == "DynamoGraphDeployment"
    assert graph["metadata"]["name"] == plan.graph_name == "demo-agg-agg"  # the guide: vllm-agg
    services = graph["spec"]["services"]
    assert sorted(services) == ["Frontend", "VllmDecodeWorker"]
    frontend = services["Frontend"]
    assert frontend["componentType"] == "frontend" and frontend["replicas"] == 1
    assert frontend["extraPodSpec"]["mainContainer"] == {"image": FRONTEND_IMAGE}  # default command
    worker = services["VllmDecodeWorker"]
    assert worker["componentType"] == "worker" and "subComponentType" not in worker
    assert worker["replicas"] == 1
    assert worker["envFromSecret"] == "hf-token-secret"
    assert worker["resources"] == {"requests": {"gpu": "1"}, "limits": {"gpu": "1"}}
    pod = worker["extraPodSpec"]
    assert pod["nodeSelector"] == {"node.kubernetes.io/instance-type": "g6e.2xlarge"}
    assert pod["tolerations"] == [GPU_TOLERATION]
    assert "affinity" not in pod
    main = pod["mainContainer"]
    assert main["image"] == RUNTIME_IMAGE
    assert main["workingDir"] == "/workspace/examples/backends/vllm"
    assert _cmdline(main) == ["python3", "-m", "dynamo.vllm", "--model", "Qwen/Qwen3-0.6B"]
    assert "securityContext" not in main
    # Improvement (pitfall 5): with EFS on, the weights come from the cache the download Job filled.
    assert graph["spec"]["pvcs"] == [{"create": False, "name": "model-cache"},
                                     {"create": False, "name": "compilation-cache"}]
    assert {"name": "HF_HOME", "value": HF_HOME} in main["env"]


# Section 9a: disaggregated over EFA ----------------------------------------------------------------


def test_efa_graph_matches_9a() -> None:
    plan = _plan("disagg-efa.yaml")
    graph = _graph(plan)
    name = plan.graph_name
    assert graph["metadata"]["name"] == name == "demo-efa-disagg-efa"
    assert graph["spec"]["pvcs"] == [{"create": False, "name": "model-cache"},
                                     {"create": False, "name": "compilation-cache"}]
    services = graph["spec"]["services"]
    assert sorted(services) == ["Frontend", "VllmDecodeWorker", "VllmPrefillWorker"]

    frontend = services["Frontend"]
    assert frontend["componentType"] == "frontend" and frontend["replicas"] == 1
    assert frontend["envs"] == [{"name": "HF_HOME", "value": HF_HOME}]
    assert frontend["resources"] == {"requests": {"cpu": "8"}, "limits": {"cpu": "8"}}
    assert frontend["volumeMounts"] == [{"name": "model-cache", "mountPoint": HF_HOME}]
    (term,) = frontend["extraPodSpec"]["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "topology.kubernetes.io/zone"
    assert term["labelSelector"]["matchLabels"] == {"nvidia.com/dynamo-graph-deployment-name": name,
                                                    "nvidia.com/dynamo-component-type": "worker"}
    fmain = frontend["extraPodSpec"]["mainContainer"]
    assert fmain["image"] == FRONTEND_IMAGE and fmain["workingDir"] == "/workspace"
    assert _cmdline(fmain) == ["python3", "-m", "dynamo.frontend", "--router-mode", "kv", "--router-reset-states"]

    for service, role, other in (("VllmDecodeWorker", "decode", "VllmPrefillWorker"),
                                 ("VllmPrefillWorker", "prefill", "VllmDecodeWorker")):
        worker = services[service]
        assert worker["envFromSecret"] == "hf-token-secret"
        assert worker["componentType"] == "worker" and worker["subComponentType"] == role
        assert worker["replicas"] == 1
        amounts = {"gpu": "1", "custom": {"vpc.amazonaws.com/efa": "1"}}
        assert worker["resources"] == {"requests": amounts, "limits": amounts}
        assert worker["volumeMounts"] == [
            {"name": "model-cache", "mountPoint": HF_HOME},
            {"name": "compilation-cache", "mountPoint": "/home/dynamo/.cache/vllm", "useAsCompilationCache": True},
        ]
        pod = worker["extraPodSpec"]
        assert pod["nodeSelector"] == {"node.kubernetes.io/instance-type": "g7e.12xlarge"}
        assert pod["tolerations"] == [GPU_TOLERATION]
        (zone,) = pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert zone == {"topologyKey": "topology.kubernetes.io/zone",
                        "labelSelector": {"matchLabels": {"nvidia.com/dynamo-graph-deployment-name": name}}}
        (anti,) = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert anti == {"labelSelector": {"matchLabels": {"nvidia.com/dynamo-component": other}},
                        "topologyKey": "kubernetes.io/hostname"}
        main = pod["mainContainer"]
        assert main["env"] == [{"name": "HF_HOME", "value": HF_HOME}]
        assert main["securityContext"] == {"capabilities": {"add": ["IPC_LOCK"]}}
        assert main["image"] == RUNTIME_IMAGE and main["workingDir"] == "/workspace"
        args = _cmdline(main)
        assert args[:3] == ["python3", "-m", "dynamo.vllm"]
        assert _arg(args, "--model") == "Qwen/Qwen3-32B"
        assert _arg(args, "--disaggregation-mode") == role
        assert json.loads(_arg(args, "--kv-transfer-config")) == KV_EFA
        assert "--tensor-parallel-size" not in args


def test_privileged_is_added_only_when_asked() -> None:
    plan = _plan("disagg-efa.yaml")
    privileged = plan.model_copy(update={"serving": plan.serving.model_copy(update={"privileged": True})})
    main = _graph(privileged)["spec"]["services"]["VllmPrefillWorker"]["extraPodSpec"]["mainContainer"]
    assert main["securityContext"] == {"capabilities": {"add": ["IPC_LOCK"]}, "privileged": True}


# Section 9b: disaggregated over TCP ----------------------------------------------------------------


def test_tcp_graph_matches_9b() -> None:
    plan = _plan("disagg-tcp.yaml")
    graph = _graph(plan)
    name = plan.graph_name
    assert name == "demo-tcp-disagg-tcp"  # the guide reused vllm-disagg for 9a, 9b and 9d
    services = graph["spec"]["services"]
    frontend = services["Frontend"]
    fmain = frontend["extraPodSpec"]["mainContainer"]
    assert fmain == {"image": FRONTEND_IMAGE}  # default command
    (term,) = frontend["extraPodSpec"]["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "topology.kubernetes.io/zone"
    assert term["labelSelector"]["matchLabels"]["nvidia.com/dynamo-graph-deployment-name"] == name
    for service, role in (("VllmDecodeWorker", "decode"), ("VllmPrefillWorker", "prefill")):
        worker = services[service]
        assert worker["resources"] == {"requests": {"gpu": "1"}, "limits": {"gpu": "1"}}  # no EFA
        pod = worker["extraPodSpec"]
        assert pod["nodeSelector"] == {"node.kubernetes.io/instance-type": "g6e.2xlarge"}
        assert pod["tolerations"] == [GPU_TOLERATION]
        assert pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0][
            "topologyKey"] == "topology.kubernetes.io/zone"
        anti = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
        assert anti["topologyKey"] == "kubernetes.io/hostname"
        main = pod["mainContainer"]
        assert main["securityContext"] == {"capabilities": {"add": ["IPC_LOCK"]}}
        assert main["image"] == RUNTIME_IMAGE
        assert main["workingDir"] == "/workspace/examples/backends/vllm"
        args = _cmdline(main)
        assert _arg(args, "--model") == "Qwen/Qwen3-0.6B"
        assert _arg(args, "--disaggregation-mode") == role
        assert json.loads(_arg(args, "--kv-transfer-config")) == KV_TCP


# Sections 9d and 11: reserved p5 --------------------------------------------------------------------


def test_reserved_p5_graph_matches_9d() -> None:
    plan = _plan("disagg-p5-reserved.yaml")
    services = _graph(plan)["spec"]["services"]
    for service, replicas in (("VllmDecodeWorker", 2), ("VllmPrefillWorker", 6)):
        worker = services[service]
        assert worker["replicas"] == replicas
        amounts = {"gpu": "2", "custom": {"vpc.amazonaws.com/efa": "8"}}
        assert worker["resources"] == {"requests": amounts, "limits": amounts}
        pod = worker["extraPodSpec"]
        # Fallback on-demand: not pinned to reserved capacity (the guide's file is, with no fallback).
        assert pod["nodeSelector"] == {"node.kubernetes.io/instance-type": "p5.48xlarge"}
        (anti,) = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        assert anti["weight"] == 100
        assert anti["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
        args = _cmdline(pod["mainContainer"])
        assert _arg(args, "--tensor-parallel-size") == "2"
        assert _arg(args, "--model") == "Qwen/Qwen3-32B"


def test_reserved_without_fallback_pins_workers_to_reserved_capacity() -> None:
    plan = _plan("disagg-p5-reserved.yaml")
    strict = plan.model_copy(update={"reservation": plan.reservation.model_copy(update={"fallback": "none"})})
    pod = _graph(strict)["spec"]["services"]["VllmDecodeWorker"]["extraPodSpec"]
    assert pod["nodeSelector"] == {"node.kubernetes.io/instance-type": "p5.48xlarge",
                                   "karpenter.sh/capacity-type": "reserved"}
    assert m.reserved_nodepool(strict)["spec"]["template"]["spec"]["requirements"][0]["values"] == ["reserved"]


def test_reserved_nodeclass_and_nodepool_match_section_11() -> None:
    plan = _plan("disagg-p5-reserved.yaml")
    files = _render(plan)
    nodeclass = files[m.FILE_RESERVED_NODECLASS]
    assert nodeclass.format == "json"
    doc = json.loads(nodeclass.text())
    assert doc["apiVersion"] == "eks.amazonaws.com/v1" and doc["kind"] == "NodeClass"
    assert doc["metadata"]["name"] == "gpu-reserved"
    assert doc["spec"]["role"] == "${NC_ROLE}"
    assert doc["spec"]["capacityReservationSelectorTerms"] == [{"id": "cr-0123456789abcdef0"}]
    facts = m.ClusterFacts(node_role="AmazonEKSAutoNodeRole-abc",
                           subnet_selector_terms=({"id": "subnet-0a1"}, {"id": "subnet-0b2"}),
                           security_group_selector_terms=({"id": "sg-0c3"},))
    filled = m.reserved_nodeclass(plan, facts)
    assert filled["spec"] == {
        "role": "AmazonEKSAutoNodeRole-abc",
        "subnetSelectorTerms": [{"id": "subnet-0a1"}, {"id": "subnet-0b2"}],
        "securityGroupSelectorTerms": [{"id": "sg-0c3"}],
        "capacityReservationSelectorTerms": [{"id": "cr-0123456789abcdef0"}],
    }
    assert "annotations" not in filled["metadata"]

    pool = _doc(files, m.FILE_RESERVED_NODEPOOL)
    assert pool["metadata"]["name"] == "gpu-reserved"
    spec = pool["spec"]
    assert spec["disruption"] == {"budgets": [{"nodes": "10%"}], "consolidateAfter": "300s",
                                  "consolidationPolicy": "WhenEmptyOrUnderutilized"}
    template = spec["template"]["spec"]
    assert template["nodeClassRef"] == {"group": "eks.amazonaws.com", "kind": "NodeClass", "name": "gpu-reserved"}
    requirements = {r["key"]: r["values"] for r in template["requirements"]}
    assert requirements["karpenter.sh/capacity-type"] == ["reserved", "on-demand"]  # fallback on-demand
    assert requirements["eks.amazonaws.com/instance-family"] == ["p5"]
    assert template["taints"] == [{"effect": "NoSchedule", "key": "nvidia.com/gpu", "value": "Exists"}]


# Everything validates ------------------------------------------------------------------------------


@pytest.mark.parametrize("example", ["agg.yaml", "disagg-efa.yaml", "disagg-tcp.yaml", "disagg-p5-reserved.yaml"])
def test_examples_pass_every_validator(example: str, shared_reference: Path) -> None:
    checked = render_and_check(_plan(example), load_catalog(), shared_reference)
    assert checked.problems == ()
    # All four schema families ran (none skipped for lack of a schema).
    ran = " ".join(checked.coverage.ran)
    for kind in ("eksctl ClusterConfig", "DynamoGraphDeployment", "NodePool", "NodeClass", "kubernetes-validate"):
        assert kind in ran


@pytest.mark.parametrize("example", ["agg.yaml", "disagg-efa.yaml", "disagg-tcp.yaml", "disagg-p5-reserved.yaml"])
def test_every_kubernetes_object_carries_the_wizard_labels(example: str) -> None:
    plan = _plan(example)
    for f in _render(plan).values():
        for doc in f.documents:
            if "kind" not in doc or doc["kind"] in ("ClusterConfig", "Kustomization"):
                continue
            assert doc["metadata"]["labels"] == {**OUR_LABELS, "dynamo-wizard/deployment": plan.deployment}
    services = _graph(plan)["spec"]["services"]
    for svc in services.values():  # pods of the graph can be found by label too
        assert svc["extraPodMetadata"]["labels"]["dynamo-wizard/deployment"] == plan.deployment
