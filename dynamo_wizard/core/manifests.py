"""Every object the deployment applies, built as Python data from a plan.

One public function per object, so the provisioning steps can build and apply them one at a time, and
`render_all` for the `render` command and the review screen. Nothing here produces YAML by string
substitution: objects are dicts, written with `yaml.safe_dump` (or `json.dumps`) by `RenderedFile.text`.

Values that only exist once the cluster does (the EFS file system id, the `default` NodeClass's role and
selector terms, the zones) come in a `ClusterFacts`. When a fact is missing, the object carries a clear
placeholder (`${EFS_FS_ID}`, `${NC_ROLE}`, `${EKS_CP_AZS}`) that `runbook.sh` fills at apply time; every
placeholder keeps the object valid against its schema.

Everything that depends on the Dynamo release (images, chart, graph API version and shape, service
names, frontend flags, helm values) comes from the plan's `ReleaseProfile`.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from .catalog import Catalog, InstanceType, ReleaseProfile, parse_memory_gib
from .errors import PlanError, Problem
from .plan import Mode, Plan, WorkerSpec

_SafeDumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

# Labels every Kubernetes object carries (design section 2), so cleanup and the pod table can find them.
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "dynamo-wizard"
LABEL_DEPLOYMENT = "dynamo-wizard/deployment"
TAG_DEPLOYMENT = "dynamo-wizard/deployment"  # AWS tag key

GPU_NODEPOOL = "gpu"
RESERVED_NODECLASS = "gpu-reserved"
RESERVED_NODEPOOL = "gpu-reserved"
DEFAULT_NODECLASS = "default"
DEFAULT_STORAGE_CLASS = "auto-ebs-sc"
EFS_STORAGE_CLASS = "efs-sc-dynamic"
MODEL_CACHE_PVC = "model-cache"
COMPILATION_CACHE_PVC = "compilation-cache"
PERF_CACHE_PVC = "perf-cache"
CACHE_PVCS = (MODEL_CACHE_PVC, COMPILATION_CACHE_PVC, PERF_CACHE_PVC)
CACHE_PVC_SIZE = "5Gi"  # nominal: EFS is elastic
HF_SECRET_NAME = "hf-token-secret"
HF_SECRET_KEY = "HF_TOKEN"
MODEL_CACHE_PATH = "/home/dynamo/.cache/huggingface"  # HF_HOME == mount path, in the Job and the graph
COMPILATION_CACHE_PATH = "/home/dynamo/.cache/vllm"
DOWNLOAD_JOB = "model-download"
DOWNLOAD_IMAGE = "python:3.10-slim"
GPU_TAINT_KEY = "nvidia.com/gpu"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
CAPACITY_TYPE_LABEL = "karpenter.sh/capacity-type"
INSTANCE_FAMILY_LABEL = "eks.amazonaws.com/instance-family"
ZONE_TOPOLOGY = "topology.kubernetes.io/zone"
HOSTNAME_TOPOLOGY = "kubernetes.io/hostname"
EFS_ADDON = "aws-efs-csi-driver"
# Download memory for a model the catalog does not know: enough for hf-xet's buffers on most shards.
UNKNOWN_MODEL_DOWNLOAD_MEMORY = "16Gi"
# With HF_XET_HIGH_PERFORMANCE=0, hf-xet caps its buffers (upstream: "8 GB cap").
XET_CAPPED_DOWNLOAD_GIB = 8.0

# Placeholders the runbook fills at apply time (never left in anything the wizard applies itself).
EFS_FS_ID_PLACEHOLDER = "${EFS_FS_ID}"
NC_ROLE_PLACEHOLDER = "${NC_ROLE}"
EKS_CP_AZS_PLACEHOLDER = "${EKS_CP_AZS}"
# A schema-valid selector term that selects nothing real; the runbook replaces it with the default
# NodeClass's terms (jq), exactly as the guide copies them.
PLACEHOLDER_TAG_KEY = "dynamo-wizard/placeholder"
NC_SUBNETS_PLACEHOLDER_TERM = {"tags": {PLACEHOLDER_TAG_KEY: "copy-subnetSelectorTerms-of-NodeClass-default"}}
NC_SG_PLACEHOLDER_TERM = {"tags": {PLACEHOLDER_TAG_KEY: "copy-securityGroupSelectorTerms-of-NodeClass-default"}}
FILL_ANNOTATION = "dynamo-wizard/fill-at-apply"

# EFS names (the runbook and the provisioning steps look the file system up by creation token first).
EFS_SECURITY_GROUP_NAME = "dynamo-efs-sg"


def efs_creation_token(plan: Plan) -> str:
    return f"dynamo-wizard-{plan.deployment}"


def efs_name_tag(plan: Plan) -> str:
    return f"dynamo-efs-{plan.deployment}"


# Zone ids where EKS has no control plane (AWS EKS user guide); names differ per account, ids do not.
EKS_UNSUPPORTED_ZONE_IDS = frozenset({"use1-az3", "usw1-az2", "cac1-az3"})


@dataclass(frozen=True)
class ClusterFacts:
    """Values known only at apply time. Any of them may be missing; `render` then writes placeholders."""

    efs_file_system_id: str | None = None
    node_role: str | None = None  # the `default` NodeClass's spec.role (an IAM role name)
    subnet_selector_terms: tuple[dict[str, Any], ...] | None = None
    security_group_selector_terms: tuple[dict[str, Any], ...] | None = None
    zones: tuple[str, ...] | None = None  # zone names with an EKS control plane, in the plan's region


@dataclass(frozen=True)
class RenderContext:
    catalog: Catalog
    facts: ClusterFacts = field(default_factory=ClusterFacts)


@dataclass(frozen=True)
class RenderedFile:
    """One file of `render`'s output: a relative path, its documents and what it is for."""

    name: str
    documents: tuple[dict[str, Any], ...]
    description: str
    format: Literal["yaml", "json"] = "yaml"
    placeholders: tuple[str, ...] = ()  # placeholders the runbook fills before applying

    def text(self) -> str:
        if self.format == "json":
            if len(self.documents) != 1:
                raise ValueError(f"{self.name}: a JSON file holds exactly one document")
            return json.dumps(self.documents[0], indent=2, ensure_ascii=False) + "\n"
        # yaml.safe_dump_all, with libyaml's emitter when present (same safe representer, ~10x faster).
        return yaml.dump_all(list(self.documents), Dumper=_SafeDumper, sort_keys=False, allow_unicode=True,
                             width=120)


# Helpers ------------------------------------------------------------------------------------------


def labels(plan: Plan, extra: dict[str, str] | None = None) -> dict[str, str]:
    out = {LABEL_MANAGED_BY: MANAGED_BY, LABEL_DEPLOYMENT: plan.deployment}
    if extra:
        out.update(extra)
    return out


def _meta(plan: Plan, name: str, namespaced: bool = False, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespaced:
        meta["namespace"] = plan.namespace
    meta["labels"] = labels(plan)
    meta.update(extra)
    return meta


def release_profile(plan: Plan, catalog: Catalog) -> ReleaseProfile:
    profile = catalog.release(plan.dynamo.release)
    if profile is None:
        known = ", ".join(sorted(catalog.releases)) or "none"
        raise PlanError([Problem("dynamo.release", f"{plan.dynamo.release!r} is not a known Dynamo release",
                                 f"use one of: {known}")])
    return profile


def instance_type(plan: Plan, catalog: Catalog) -> InstanceType:
    itype = catalog.instance_type(plan.serving.instance_type)
    if itype is None:
        raise PlanError([Problem("serving.instanceType", f"{plan.serving.instance_type!r} is not in the catalog",
                                 "choose a GPU instance type the catalog lists (dynamo-wizard gpus)")])
    return itype


def eks_control_plane_zones(zones: list[Any]) -> tuple[str, ...]:
    """Zone names (from core.inventory.Zone objects) where EKS can run a control plane."""
    return tuple(
        z.name for z in zones
        if getattr(z, "eks_control_plane", True) and z.zone_id not in EKS_UNSUPPORTED_ZONE_IDS
        and not getattr(z, "opt_in_required", False)
    )


def download_memory(plan: Plan, catalog: Catalog) -> str:
    """The download Job's memory request: the plan's, else the catalog's for the model (pitfall 6)."""
    if plan.storage.download_memory:
        return plan.storage.download_memory
    model = catalog.model(plan.serving.model)
    wanted = model.download_memory if model is not None else UNKNOWN_MODEL_DOWNLOAD_MEMORY
    if not plan.storage.xet_high_performance and parse_memory_gib(wanted) > XET_CAPPED_DOWNLOAD_GIB:
        # hf-xet's buffers are capped; request what the cap needs rather than the high-performance size.
        wanted = f"{int(XET_CAPPED_DOWNLOAD_GIB)}Gi"
    return wanted


def efa_interfaces_per_worker(itype: InstanceType, gpus: int) -> int:
    """EFA devices for a worker using `gpus` of the instance's GPUs: its share of the interfaces, at least one.

    g7e.12xlarge (1 EFA, 2 GPUs) -> 1 per 1-GPU worker; p5.48xlarge (32 EFA, 8 GPUs) -> 8 per 2-GPU worker,
    as in the guide's disagg.yaml and disagg-p5.yaml.
    """
    if not itype.efa_supported or itype.max_efa_interfaces <= 0 or itype.gpus <= 0:
        return 0
    return max(1, (itype.max_efa_interfaces * gpus) // itype.gpus)


def _workers_fit_one_node_each(plan: Plan, itype: InstanceType) -> bool:
    """Whether each worker role fits on one node, so prefill and decode can be kept apart strictly."""
    return all(spec.replicas * spec.gpus <= itype.gpus for spec in plan.serving.workers().values())


def reserved_only(plan: Plan) -> bool:
    """Workers are pinned to reserved capacity only when the reservation has no fallback."""
    return plan.reservation is not None and plan.reservation.fallback == "none"


# eksctl -------------------------------------------------------------------------------------------


def eksctl_cluster_stack_name(plan: Plan) -> str:
    """The CloudFormation stack eksctl creates the cluster with (eksctl names it so)."""
    return f"eksctl-{plan.cluster_name}-cluster"


def eksctl_cluster_config(plan: Plan, facts: ClusterFacts | None = None) -> dict[str, Any]:
    """The eksctl ClusterConfig of the guide (facts section 3), plus the wizard's tag and the plan's version."""
    facts = facts or ClusterFacts()
    if plan.zones:
        zones: list[str] = list(plan.zones)
    elif facts.zones:
        zones = list(facts.zones)
    else:
        # Filled by the runbook with the region's zones minus EKS-unsupported zone ids, one per line.
        zones = [EKS_CP_AZS_PLACEHOLDER]
    config: dict[str, Any] = {
        "apiVersion": "eksctl.io/v1alpha5",
        "kind": "ClusterConfig",
        "metadata": {
            "name": plan.cluster_name,
            "region": plan.region,
            "version": plan.cluster.kubernetes_version,
            "tags": {TAG_DEPLOYMENT: plan.deployment},
        },
        "availabilityZones": zones,
        "autoModeConfig": {"enabled": True},
        # Auto Mode brings VPC CNI, kube-proxy, CoreDNS and the EBS CSI driver itself.
        "addonsConfig": {"disableDefaultAddons": True},
    }
    if plan.storage.efs:
        config["addons"] = [
            {"name": EFS_ADDON, "version": "latest", "useDefaultPodIdentityAssociations": True},
        ]
    return config


# Karpenter / Auto Mode ----------------------------------------------------------------------------


_DISRUPTION = {
    "budgets": [{"nodes": "10%"}],
    "consolidateAfter": "300s",
    "consolidationPolicy": "WhenEmptyOrUnderutilized",
}
_GPU_TAINT = {"effect": "NoSchedule", "key": GPU_TAINT_KEY, "value": "Exists"}


def _nodepool(plan: Plan, name: str, nodeclass: str, capacity_types: list[str],
              weight: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "disruption": copy.deepcopy(_DISRUPTION),
        "template": {
            # Nodes carry the deployment label too, so cleanup and the pod table can find them.
            "metadata": {"labels": {LABEL_DEPLOYMENT: plan.deployment}},
            "spec": {
                "nodeClassRef": {"group": "eks.amazonaws.com", "kind": "NodeClass", "name": nodeclass},
                "requirements": [
                    {"key": CAPACITY_TYPE_LABEL, "operator": "In", "values": capacity_types},
                    {"key": INSTANCE_FAMILY_LABEL, "operator": "In", "values": list(plan.gpu.families)},
                ],
                "taints": [dict(_GPU_TAINT)],
            },
        },
    }
    if weight is not None:
        spec["weight"] = weight
    return {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": _meta(plan, name), "spec": spec}


def gpu_nodepool(plan: Plan) -> dict[str, Any]:
    """The GPU NodePool `gpu` (facts section 4) with the plan's families and capacity types."""
    return _nodepool(plan, GPU_NODEPOOL, DEFAULT_NODECLASS, list(plan.gpu.capacity_types))


def reserved_capacity_types(plan: Plan) -> list[str]:
    fallback = plan.reservation.fallback if plan.reservation else "none"
    return {"none": ["reserved"], "on-demand": ["reserved", "on-demand"],
            "on-demand-and-spot": ["reserved", "on-demand", "spot"]}[fallback]


def reserved_nodepool(plan: Plan) -> dict[str, Any]:
    """NodePool `gpu-reserved` (facts section 11): reserved capacity first, then the plan's fallback.

    A weight above the `gpu` pool's (none) makes Karpenter try this pool first.
    """
    if plan.reservation is None:
        raise ValueError("the plan has no reservation")
    return _nodepool(plan, RESERVED_NODEPOOL, RESERVED_NODECLASS, reserved_capacity_types(plan), weight=50)


def reserved_nodeclass(plan: Plan, facts: ClusterFacts | None = None) -> dict[str, Any]:
    """NodeClass `gpu-reserved` (facts section 11): the default NodeClass's role and selector terms, plus the
    plan's capacity reservation terms. Reusing the default role keeps Auto Mode's access entry valid (pitfall 9).
    """
    if plan.reservation is None:
        raise ValueError("the plan has no reservation")
    facts = facts or ClusterFacts()
    missing = []
    if facts.node_role is None:
        missing.append("spec.role")
    if facts.subnet_selector_terms is None:
        missing.append("spec.subnetSelectorTerms")
    if facts.security_group_selector_terms is None:
        missing.append("spec.securityGroupSelectorTerms")
    meta = _meta(plan, RESERVED_NODECLASS)
    if missing:
        meta["annotations"] = {FILL_ANNOTATION: f"{', '.join(missing)} from NodeClass {DEFAULT_NODECLASS}"}
    return {
        "apiVersion": "eks.amazonaws.com/v1",
        "kind": "NodeClass",
        "metadata": meta,
        "spec": {
            "role": facts.node_role if facts.node_role is not None else NC_ROLE_PLACEHOLDER,
            "subnetSelectorTerms": copy.deepcopy(list(facts.subnet_selector_terms))
            if facts.subnet_selector_terms is not None else [copy.deepcopy(NC_SUBNETS_PLACEHOLDER_TERM)],
            "securityGroupSelectorTerms": copy.deepcopy(list(facts.security_group_selector_terms))
            if facts.security_group_selector_terms is not None else [copy.deepcopy(NC_SG_PLACEHOLDER_TERM)],
            "capacityReservationSelectorTerms": plan.reservation.selector_terms(),
        },
    }


# Storage ------------------------------------------------------------------------------------------


def default_storage_class(plan: Plan) -> dict[str, Any]:
    """`auto-ebs-sc`, the default StorageClass (facts section 5); must exist before the platform install."""
    meta = _meta(plan, DEFAULT_STORAGE_CLASS)
    meta["annotations"] = {"storageclass.kubernetes.io/is-default-class": "true"}
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": meta,
        "allowedTopologies": [
            {"matchLabelExpressions": [{"key": "eks.amazonaws.com/compute-type", "values": ["auto"]}]},
        ],
        "provisioner": "ebs.csi.eks.amazonaws.com",
        "volumeBindingMode": "WaitForFirstConsumer",
        "parameters": {"type": "gp3", "encrypted": "true"},
    }


def efs_storage_class(plan: Plan, facts: ClusterFacts | None = None) -> dict[str, Any]:
    """`efs-sc-dynamic` (facts section 6): one EFS access point per PVC."""
    facts = facts or ClusterFacts()
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": _meta(plan, EFS_STORAGE_CLASS),
        "provisioner": "efs.csi.aws.com",
        "parameters": {
            "provisioningMode": "efs-ap",
            "fileSystemId": facts.efs_file_system_id or EFS_FS_ID_PLACEHOLDER,
            "directoryPerms": "777",
            "uid": "1000",
            "gid": "1000",
        },
    }


def cache_pvc(plan: Plan, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(plan, name, namespaced=True),
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "resources": {"requests": {"storage": CACHE_PVC_SIZE}},
            "storageClassName": EFS_STORAGE_CLASS,
        },
    }


def cache_pvcs(plan: Plan) -> list[dict[str, Any]]:
    """The three EFS PVCs: model weights, compilation cache, benchmark output (facts section 6)."""
    return [cache_pvc(plan, name) for name in CACHE_PVCS]


# Namespace, secret, platform ----------------------------------------------------------------------


def namespace(plan: Plan) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(plan, plan.namespace)}


def hf_token_secret(plan: Plan, token: str) -> dict[str, Any]:
    """The HF token Secret, in memory only: never rendered to disk (the runbook builds it from $HF_TOKEN)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(plan, HF_SECRET_NAME, namespaced=True),
        "type": "Opaque",
        "stringData": {HF_SECRET_KEY: token},
    }


def helm_values(plan: Plan, profile: ReleaseProfile) -> dict[str, Any]:
    """Values for the dynamo-platform chart, from the release profile."""
    return copy.deepcopy(profile.helm_values)


def helm_command(plan: Plan, profile: ReleaseProfile, values_file: str) -> list[str]:
    """`helm upgrade --install` of the platform (idempotent, unlike the guide's `helm install`).

    The chart reference is the release's pinned .tgz URL (pitfall 1: chart and images of one release);
    `--wait` so the operator's admission webhook is serving before any graph is applied.
    """
    return [
        "helm", "upgrade", "--install", profile.release_name, profile.chart_url,
        "--namespace", plan.namespace, "--create-namespace",
        "-f", values_file,
        "--wait", "--timeout", "15m",
    ]


# Model download -----------------------------------------------------------------------------------


def _download_script(revision: str | None) -> str:
    # Values reach the script through environment variables, never by pasting them into the command.
    download = 'hf download "$MODEL_NAME"' + (' --revision "$MODEL_REVISION"' if revision else "")
    return f"set -eux; pip install --no-cache-dir huggingface_hub hf_transfer; {download}"


def model_download_job(plan: Plan, catalog: Catalog) -> dict[str, Any]:
    """The Job that fills the model-cache PVC before the graph starts (facts section 8, pitfalls 5-7)."""
    model = catalog.model(plan.serving.model)
    revision = model.revision if model is not None else None
    env: list[dict[str, str]] = [
        {"name": "MODEL_NAME", "value": plan.serving.model},
        {"name": "HF_HOME", "value": MODEL_CACHE_PATH},
        {"name": "HF_HUB_ENABLE_HF_TRANSFER", "value": "1"},
    ]
    if revision:
        env.append({"name": "MODEL_REVISION", "value": revision})
    if not plan.storage.xet_high_performance:
        env.append({"name": "HF_XET_HIGH_PERFORMANCE", "value": "0"})
    pod_labels = labels(plan, {"app": DOWNLOAD_JOB})
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta(plan, DOWNLOAD_JOB, namespaced=True),
        "spec": {
            "backoffLimit": 3,
            "completions": 1,
            "parallelism": 1,
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{
                        "name": DOWNLOAD_JOB,
                        "image": DOWNLOAD_IMAGE,
                        "command": ["sh", "-c"],
                        "args": [_download_script(revision)],
                        "envFrom": [{"secretRef": {"name": HF_SECRET_NAME}}],
                        "env": env,
                        "resources": {"requests": {"memory": download_memory(plan, catalog)}},
                        "volumeMounts": [{"name": MODEL_CACHE_PVC, "mountPath": MODEL_CACHE_PATH}],
                    }],
                    "volumes": [{"name": MODEL_CACHE_PVC,
                                 "persistentVolumeClaim": {"claimName": MODEL_CACHE_PVC}}],
                },
            },
        },
    }


def model_download_kustomization(plan: Plan, catalog: Catalog, job_file: str = "model-download.yaml") -> dict[str, Any]:
    """The guide's kustomization: the Job plus a patch setting its memory request (sized from the model)."""
    patch = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": DOWNLOAD_JOB},
        "spec": {"template": {"spec": {"containers": [
            {"name": DOWNLOAD_JOB, "resources": {"requests": {"memory": download_memory(plan, catalog)}}},
        ]}}},
    }
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [job_file],
        "patches": [{
            "target": {"kind": "Job", "name": DOWNLOAD_JOB},
            "patch": yaml.safe_dump(patch, sort_keys=False),
        }],
    }


# The graph ----------------------------------------------------------------------------------------


def kv_transfer_config(mode: Mode) -> dict[str, Any]:
    """NIXL over LIBFABRIC always (pitfall 3: NixlConnector otherwise picks UCX and silently goes slow);
    without EFA libfabric falls back to TCP and KV buffers must live in host memory."""
    config: dict[str, Any] = {"kv_connector": "NixlConnector", "kv_role": "kv_both"}
    if mode is Mode.DISAGG_TCP:
        config["kv_buffer_device"] = "cpu"
    config["kv_connector_extra_config"] = {"backends": ["LIBFABRIC"]}
    return config


def _gpu_toleration() -> dict[str, str]:
    return {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}


def _service_names(profile: ReleaseProfile) -> dict[str, str]:
    g = profile.graph
    return {"worker": g.decode_service, "decode": g.decode_service, "prefill": g.prefill_service}


def worker_args(plan: Plan, role: str, spec: WorkerSpec, profile: ReleaseProfile) -> list[str]:
    args = ["--model", plan.serving.model]
    if plan.serving.mode.disaggregated:
        args += ["--disaggregation-mode", role,
                 "--kv-transfer-config", json.dumps(kv_transfer_config(plan.serving.mode), separators=(",", ":"))]
    if spec.tensor_parallel > 1:
        args += ["--tensor-parallel-size", str(spec.tensor_parallel)]
    return args


def _frontend(plan: Plan, profile: ReleaseProfile) -> dict[str, Any]:
    g = profile.graph
    mode = plan.serving.mode
    service: dict[str, Any] = {"componentType": "frontend", "replicas": 1}
    if plan.storage.efs:
        service["envs"] = [{"name": "HF_HOME", "value": MODEL_CACHE_PATH}]
    main: dict[str, Any] = {"image": profile.frontend_image}
    if mode is Mode.DISAGG_EFA:
        # The guide's EFA graph runs the KV router on 8 CPUs; its agg/TCP graphs keep the image defaults.
        service["resources"] = {"requests": {"cpu": g.frontend_cpu}, "limits": {"cpu": g.frontend_cpu}}
        main["workingDir"] = g.frontend_working_dir
        main["command"] = ["python3", "-m", g.frontend_module]
        main["args"] = list(g.frontend_router_args)
    if plan.storage.efs:
        service["volumeMounts"] = [{"name": MODEL_CACHE_PVC, "mountPoint": MODEL_CACHE_PATH}]
    pod_spec: dict[str, Any] = {}
    if mode.disaggregated:
        # The frontend follows the workers into their zone (cross-zone KV traffic is slow and costs).
        pod_spec["affinity"] = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
            "topologyKey": ZONE_TOPOLOGY,
            "labelSelector": {"matchLabels": {g.graph_name_label: plan.graph_name,
                                              g.component_type_label: "worker"}},
        }]}}
    pod_spec["mainContainer"] = main
    service["extraPodSpec"] = pod_spec
    service["extraPodMetadata"] = {"labels": labels(plan)}
    service["labels"] = labels(plan)
    return service


def _worker(plan: Plan, role: str, spec: WorkerSpec, itype: InstanceType, profile: ReleaseProfile) -> dict[str, Any]:
    g = profile.graph
    mode = plan.serving.mode
    service: dict[str, Any] = {"envFromSecret": HF_SECRET_NAME, "componentType": "worker"}
    if mode.disaggregated:
        service["subComponentType"] = role
    service["replicas"] = spec.replicas
    amounts: dict[str, Any] = {"gpu": str(spec.gpus)}
    if mode is Mode.DISAGG_EFA:
        amounts["custom"] = {g.efa_resource: str(efa_interfaces_per_worker(itype, spec.gpus))}
    service["resources"] = {"requests": copy.deepcopy(amounts), "limits": copy.deepcopy(amounts)}
    if plan.storage.efs:
        # Weights come from the EFS cache filled by the download Job (pitfall 5); compiled kernels persist
        # across restarts (pitfall 8).
        service["volumeMounts"] = [
            {"name": MODEL_CACHE_PVC, "mountPoint": MODEL_CACHE_PATH},
            {"name": COMPILATION_CACHE_PVC, "mountPoint": COMPILATION_CACHE_PATH, "useAsCompilationCache": True},
        ]
    node_selector = {INSTANCE_TYPE_LABEL: plan.serving.instance_type}
    if reserved_only(plan):
        node_selector[CAPACITY_TYPE_LABEL] = "reserved"
    pod_spec: dict[str, Any] = {"nodeSelector": node_selector, "tolerations": [_gpu_toleration()]}
    if mode.disaggregated:
        names = _service_names(profile)
        other = names["decode" if role == "prefill" else "prefill"]
        anti_term: dict[str, Any] = {"labelSelector": {"matchLabels": {g.component_label: other}},
                                     "topologyKey": HOSTNAME_TOPOLOGY}
        anti: dict[str, Any]
        if _workers_fit_one_node_each(plan, itype):
            anti = {"requiredDuringSchedulingIgnoredDuringExecution": [anti_term]}
        else:
            # Roles that span several nodes each would need extra nodes if kept strictly apart (disagg-p5.yaml).
            anti = {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": anti_term}]}
        pod_spec["affinity"] = {
            # All workers in one zone: EFA does not cross zones, and TCP KV transfer should not either.
            "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
                "topologyKey": ZONE_TOPOLOGY,
                "labelSelector": {"matchLabels": {g.graph_name_label: plan.graph_name}},
            }]},
            "podAntiAffinity": anti,
        }
    main: dict[str, Any] = {}
    if plan.storage.efs:
        main["env"] = [{"name": "HF_HOME", "value": MODEL_CACHE_PATH}]
    if mode.disaggregated:
        security: dict[str, Any] = {"capabilities": {"add": ["IPC_LOCK"]}}
        if mode is Mode.DISAGG_EFA and plan.serving.privileged:
            # Registering CUDA memory with EFA may need more than IPC_LOCK (pitfall 4); the user opted in.
            security["privileged"] = True
        main["securityContext"] = security
    main["image"] = profile.runtime_image
    main["workingDir"] = g.efa_worker_working_dir if mode is Mode.DISAGG_EFA else g.worker_working_dir
    main["command"] = ["python3", "-m", g.worker_module]
    main["args"] = worker_args(plan, role, spec, profile)
    pod_spec["mainContainer"] = main
    service["extraPodSpec"] = pod_spec
    service["extraPodMetadata"] = {"labels": labels(plan)}
    service["labels"] = labels(plan)
    return service


def dynamo_graph(plan: Plan, catalog: Catalog, profile: ReleaseProfile | None = None) -> dict[str, Any]:
    """The DynamoGraphDeployment for the plan's mode (facts 9a EFA, 9b TCP, 9c agg, 9d reserved p5)."""
    profile = profile or release_profile(plan, catalog)
    itype = instance_type(plan, catalog)
    g = profile.graph
    services: dict[str, Any] = {g.frontend_service: _frontend(plan, profile)}
    names = _service_names(profile)
    # Decode before prefill, as in the guide's files.
    workers = plan.serving.workers()
    for role in ("worker", "decode", "prefill"):
        if role in workers:
            services[names[role]] = _worker(plan, role, workers[role], itype, profile)
    spec: dict[str, Any] = {}
    if plan.storage.efs:
        spec["pvcs"] = [{"create": False, "name": MODEL_CACHE_PVC}, {"create": False, "name": COMPILATION_CACHE_PVC}]
    spec["services"] = services
    return {
        "apiVersion": profile.graph_api_version,
        "kind": "DynamoGraphDeployment",
        "metadata": _meta(plan, plan.graph_name, namespaced=True),
        "spec": spec,
    }


def frontend_service_name(plan: Plan, profile: ReleaseProfile) -> str:
    """The Kubernetes Service the operator creates for the frontend (port-forward / proxy target)."""
    return f"{plan.graph_name}-{profile.graph.frontend_service.lower()}"


def nodes_needed(plan: Plan, itype: InstanceType) -> int:
    """GPU nodes the workers need at the least: each role on its own nodes when the graph keeps prefill and
    decode apart strictly, else all workers packed together (first fit, largest first)."""
    workers = plan.serving.workers()
    if plan.serving.mode.disaggregated and _workers_fit_one_node_each(plan, itype):
        return sum(math.ceil(spec.replicas / max(1, itype.gpus // spec.gpus)) for spec in workers.values())
    free: list[int] = []  # free GPUs per node
    sizes = sorted((min(spec.gpus, itype.gpus) for spec in workers.values() for _ in range(spec.replicas)),
                   reverse=True)
    for size in sizes:
        for i, left in enumerate(free):
            if left >= size:
                free[i] -= size
                break
        else:
            free.append(max(0, itype.gpus - size))
    return len(free)


# Everything ---------------------------------------------------------------------------------------

FILE_CLUSTER = "00-eksctl-cluster.yaml"
FILE_DEFAULT_SC = "10-storageclass-auto-ebs-sc.yaml"
FILE_GPU_NODEPOOL = "11-nodepool-gpu.yaml"
FILE_RESERVED_NODECLASS = "12-nodeclass-gpu-reserved.json"
FILE_RESERVED_NODEPOOL = "13-nodepool-gpu-reserved.yaml"
FILE_NAMESPACE = "20-namespace.yaml"
FILE_EFS = "21-efs-storage.yaml"
FILE_HELM_VALUES = "30-dynamo-platform-values.yaml"
DIR_DOWNLOAD = "40-model-download"
FILE_DOWNLOAD_JOB = f"{DIR_DOWNLOAD}/model-download.yaml"
FILE_DOWNLOAD_KUSTOMIZATION = f"{DIR_DOWNLOAD}/kustomization.yaml"


def graph_file_name(plan: Plan) -> str:
    return f"50-graph-{plan.graph_name}.yaml"


def render_all(plan: Plan, ctx: RenderContext) -> list[RenderedFile]:
    """Every file `render` writes except plan.yaml and runbook.sh, in apply order."""
    catalog, facts = ctx.catalog, ctx.facts
    profile = release_profile(plan, catalog)
    instance_type(plan, catalog)  # fail early with a clear problem
    files: list[RenderedFile] = []
    cluster = eksctl_cluster_config(plan, facts)
    files.append(RenderedFile(
        FILE_CLUSTER, (cluster,),
        "eksctl ClusterConfig: EKS Auto Mode cluster with the EFS CSI add-on (eksctl create cluster -f)",
        placeholders=(EKS_CP_AZS_PLACEHOLDER,) if cluster["availabilityZones"] == [EKS_CP_AZS_PLACEHOLDER] else (),
    ))
    files.append(RenderedFile(FILE_DEFAULT_SC, (default_storage_class(plan),),
                              "default StorageClass auto-ebs-sc (before the platform, for the NATS volume)"))
    files.append(RenderedFile(FILE_GPU_NODEPOOL, (gpu_nodepool(plan),),
                              "Karpenter NodePool gpu: the plan's GPU families and capacity types"))
    if plan.reservation is not None:
        nodeclass = reserved_nodeclass(plan, facts)
        files.append(RenderedFile(
            FILE_RESERVED_NODECLASS, (nodeclass,),
            "NodeClass gpu-reserved: the default NodeClass's role and selectors plus the capacity reservation",
            format="json",
            placeholders=(NC_ROLE_PLACEHOLDER,) if FILL_ANNOTATION in nodeclass["metadata"].get("annotations", {})
            else (),
        ))
        files.append(RenderedFile(FILE_RESERVED_NODEPOOL, (reserved_nodepool(plan),),
                                  "Karpenter NodePool gpu-reserved: reserved capacity, then the plan's fallback"))
    files.append(RenderedFile(FILE_NAMESPACE, (namespace(plan),), f"namespace {plan.namespace}"))
    if plan.storage.efs:
        efs_sc = efs_storage_class(plan, facts)
        files.append(RenderedFile(
            FILE_EFS, (efs_sc, *cache_pvcs(plan)),
            "EFS StorageClass efs-sc-dynamic and the model-cache, compilation-cache and perf-cache PVCs",
            placeholders=(EFS_FS_ID_PLACEHOLDER,) if efs_sc["parameters"]["fileSystemId"] == EFS_FS_ID_PLACEHOLDER
            else (),
        ))
    files.append(RenderedFile(FILE_HELM_VALUES, (helm_values(plan, profile),),
                              f"helm values for {profile.chart_name} {profile.version}"))
    if plan.storage.efs:
        files.append(RenderedFile(FILE_DOWNLOAD_JOB, (model_download_job(plan, catalog),),
                                  f"Job that downloads {plan.serving.model} into the model-cache PVC"))
        files.append(RenderedFile(FILE_DOWNLOAD_KUSTOMIZATION, (model_download_kustomization(plan, catalog),),
                                  "kustomization: the download Job with its memory request (kubectl kustomize)"))
    files.append(RenderedFile(graph_file_name(plan), (dynamo_graph(plan, catalog, profile),),
                              f"DynamoGraphDeployment {plan.graph_name} ({plan.serving.mode.value})"))
    return files
