"""The rules schemas cannot see (design section 4), checked on the plan before anything is rendered or paid
for, and on the rendered objects afterwards (so a renderer change cannot silently break one).

Every rule returns `Problem`s whose message names the value and whose fix names something that works.
Warnings (severity "warning") are shown but do not stop a render:
- a model the catalog does not know is allowed (any Hugging Face id may be served), with a warning that
  its GPU memory fit and download memory cannot be checked;
- a worker that requests more GPUs than its tensor parallel uses;
- options that have no effect in the plan's mode.

Checks that need live AWS data (quotas, zones, reservations) are in `core.preflight`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

from .catalog import Catalog, InstanceType, Model, family_of, parse_memory_gib
from .errors import Problem
from .plan import GRAPH_NAME_MAX, Mode, Plan

WARNING = "warning"
# EKS Auto Mode needs Kubernetes 1.29 or later; versions above KNOWN_MAX may exist by the time a user
# runs this, so they are a warning (eksctl refuses a version EKS does not offer).
MIN_KUBERNETES = (1, 29)
KNOWN_MAX_KUBERNETES = (1, 36)
# The general-purpose pool cannot place a download pod asking for more memory than its largest types.
MAX_DOWNLOAD_MEMORY_GIB = 1024.0
XET_CAPPED_GIB = 8.0


def errors(problems: Iterable[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity != WARNING]


def warnings(problems: Iterable[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == WARNING]


def _warn(field: str, message: str, fix: str = "") -> Problem:
    return Problem(field, message, fix, severity=WARNING)


def _version(text: str) -> tuple[int, int]:
    major, minor = text.split(".")[:2]
    return int(major), int(minor)


def _gpus_word(n: int) -> str:
    return f"{n} GPU" if n == 1 else f"{n} GPUs"


def _power_of_two_at_least(n: int) -> int:
    # vLLM's tensor parallel size must divide the attention heads; powers of two always do.
    p = 1
    while p < n:
        p *= 2
    return p


def _types_by_price(catalog: Catalog, families: Sequence[str] | None, efa: bool) -> list[InstanceType]:
    types = [t for t in catalog.instance_types.values()
             if (families is None or t.family in families) and (t.efa_supported or not efa)]
    return sorted(types, key=lambda t: (t.on_demand_price if t.on_demand_price is not None else math.inf, t.name))


# Plan rules ---------------------------------------------------------------------------------------


def check_plan(plan: Plan, catalog: Catalog) -> list[Problem]:
    """All offline rules for a plan: errors stop a render, warnings are shown."""
    problems: list[Problem] = []
    problems += _check_release(plan, catalog)
    problems += _check_cluster(plan)
    problems += _check_families(plan, catalog)
    itype = catalog.instance_type(plan.serving.instance_type)
    if itype is None:
        problems.append(_unknown_type(plan, catalog))
    else:
        problems += _check_mode(plan, catalog, itype)
        problems += _check_workers(plan, catalog, itype)
    problems += _check_model_and_download(plan, catalog, itype)
    problems += _check_graph_name(plan)
    return problems


def _check_release(plan: Plan, catalog: Catalog) -> list[Problem]:
    if catalog.release(plan.dynamo.release) is not None:
        return []
    known = ", ".join(sorted(catalog.releases)) or "none"
    return [Problem("dynamo.release", f"{plan.dynamo.release!r} is not a Dynamo release this version knows",
                    f"use one of: {known}")]


def _check_cluster(plan: Plan) -> list[Problem]:
    problems: list[Problem] = []
    version = _version(plan.cluster.kubernetes_version)
    if version < MIN_KUBERNETES:
        problems.append(Problem(
            "cluster.kubernetesVersion", f"{plan.cluster.kubernetes_version} is too old for EKS Auto Mode",
            f"use {MIN_KUBERNETES[0]}.{MIN_KUBERNETES[1]} or later, e.g. \"1.34\""))
    elif version > KNOWN_MAX_KUBERNETES:
        problems.append(_warn(
            "cluster.kubernetesVersion",
            f"{plan.cluster.kubernetes_version} is newer than the versions this release knows; eksctl refuses "
            "it if EKS does not offer it yet", "use \"1.34\" unless you know EKS offers it"))
    if len(plan.zones) == 1:
        problems.append(Problem("zones", f"lists one zone ({plan.zones[0]}); an EKS cluster needs subnets in at "
                                "least two", f"list two or more zones of {plan.region}, or none to use all"))
    return problems


def _check_families(plan: Plan, catalog: Catalog) -> list[Problem]:
    problems: list[Problem] = []
    auto_mode = sorted(f for f, info in catalog.families.items() if info.get("autoMode", False))
    for i, family in enumerate(plan.gpu.families):
        info = catalog.families.get(family)
        if info is None or not info.get("autoMode", False):
            near = [f for f in auto_mode if f.startswith(family) or family.startswith(f)]
            hint = f" (did you mean {', '.join(near)}?)" if near else ""
            problems.append(Problem(
                f"gpu.families[{i}]",
                f"{family!r} is not an EKS Auto Mode GPU instance family{hint}; families are matched exactly, "
                "never as a prefix", f"use families from: {', '.join(auto_mode)}"))
    return problems


def _unknown_type(plan: Plan, catalog: Catalog) -> Problem:
    family = family_of(plan.serving.instance_type)
    same_family = sorted(t.name for t in catalog.family_types(family))
    if same_family:
        fix = f"use a {family} type the catalog lists: {', '.join(same_family)}"
    else:
        fix = "choose a GPU instance type of the plan's families (dynamo-wizard gpus lists them)"
    return Problem("serving.instanceType", f"{plan.serving.instance_type!r} is not a known GPU instance type", fix)


def _check_mode(plan: Plan, catalog: Catalog, itype: InstanceType) -> list[Problem]:
    problems: list[Problem] = []
    mode = plan.serving.mode
    if mode is Mode.DISAGG_EFA and not itype.efa_supported:
        efa_types = [t.name for t in _types_by_price(catalog, plan.gpu.families, efa=True)][:4]
        alternatives = f"an EFA type such as {', '.join(efa_types)}" if efa_types else \
            "an EFA-capable type (e.g. g7e.12xlarge, p5.48xlarge) with its family in gpu.families"
        problems.append(Problem(
            "serving.mode", f"disagg-efa needs EFA, and {itype.name} has no EFA interface",
            f"use mode disagg-tcp (KV transfer over TCP), or {alternatives}"))
    if plan.serving.privileged and mode is not Mode.DISAGG_EFA:
        problems.append(_warn("serving.privileged", f"has no effect in mode {mode.value}",
                              "remove it; it only applies to EFA memory registration (disagg-efa)"))
    return problems


def _role_field(role: str) -> str:
    return f"serving.{role}"


def _check_workers(plan: Plan, catalog: Catalog, itype: InstanceType) -> list[Problem]:
    problems: list[Problem] = []
    for role, spec in plan.serving.workers().items():
        field = _role_field(role)
        if spec.gpus > itype.gpus:
            bigger = [t.name for t in _types_by_price(catalog, [itype.family], efa=False) if t.gpus >= spec.gpus]
            alt = f", or choose {bigger[0]}" if bigger else ""
            problems.append(Problem(
                f"{field}.gpus", f"{spec.gpus} is more than the {_gpus_word(itype.gpus)} of a {itype.name}; "
                "a worker's GPUs must be on one node",
                f"set gpus to at most {itype.gpus}{alt}"))
        if spec.tensor_parallel > spec.gpus:  # the plan model rejects this too; kept for direct callers
            problems.append(Problem(f"{field}.tensorParallel",
                                    f"{spec.tensor_parallel} is more than the worker's {_gpus_word(spec.gpus)}",
                                    f"set tensorParallel to at most {spec.gpus}"))
        elif spec.tensor_parallel < spec.gpus:
            problems.append(_warn(
                f"{field}.tensorParallel",
                f"{spec.tensor_parallel} uses {_gpus_word(spec.tensor_parallel)} of the {spec.gpus} the worker "
                "requests; the rest stay idle", f"set tensorParallel to {spec.gpus}, or gpus to {spec.tensor_parallel}"))
    return problems


def _fit_fix(plan: Plan, catalog: Catalog, itype: InstanceType, model: Model) -> str:
    """A concrete change that makes the model fit: more GPUs on this type, else the cheapest type that fits."""
    per_gpu = itype.gpu_memory_gb
    needed = _power_of_two_at_least(max(1, math.ceil(model.min_gpu_memory_gb / per_gpu))) if per_gpu > 0 else 0
    if 0 < needed <= itype.gpus:
        return f"set gpus and tensorParallel to {needed} on {itype.name}"
    efa = plan.serving.mode is Mode.DISAGG_EFA
    for families in (list(plan.gpu.families), None):
        for t in _types_by_price(catalog, families, efa=efa):
            if t.gpu_memory_gb <= 0:
                continue
            k = _power_of_two_at_least(max(1, math.ceil(model.min_gpu_memory_gb / t.gpu_memory_gb)))
            if k <= t.gpus:
                add = "" if t.family in plan.gpu.families else f" (add {t.family} to gpu.families)"
                return f"use serving.instanceType {t.name} with gpus and tensorParallel {k}{add}"
    return "choose a smaller model; no catalog type holds this one on one node"


def _check_model_and_download(plan: Plan, catalog: Catalog, itype: InstanceType | None) -> list[Problem]:
    problems: list[Problem] = []
    model = catalog.model(plan.serving.model)
    storage = plan.storage
    if model is None:
        problems.append(_warn(
            "serving.model",
            f"{plan.serving.model!r} is not in the catalog, so its GPU memory fit and download memory are not "
            "checked (the download Job gets 16Gi unless storage.downloadMemory says otherwise)",
            "check the model's size against the workers' GPU memory; set storage.downloadMemory for large models"))
    elif itype is not None and itype.gpu_memory_gb > 0:
        for role, spec in plan.serving.workers().items():
            if spec.gpus > itype.gpus:
                continue  # reported already; the fit below would only repeat it
            # The weights are sharded over the tensor-parallel GPUs only.
            have = spec.tensor_parallel * itype.gpu_memory_gb
            if have < model.min_gpu_memory_gb:
                problems.append(Problem(
                    f"{_role_field(role)}.tensorParallel",
                    f"{plan.serving.model} needs about {model.min_gpu_memory_gb:g} GiB of GPU memory; "
                    f"{_gpus_word(spec.tensor_parallel)} of {itype.name} have {have:.0f} GiB",
                    _fit_fix(plan, catalog, itype, model)))
    if storage.download_memory is not None:
        given = parse_memory_gib(storage.download_memory)
        if given > MAX_DOWNLOAD_MEMORY_GIB:
            problems.append(Problem("storage.downloadMemory",
                                    f"{storage.download_memory} is more than any node of the general-purpose pool has",
                                    "use at most 1024Gi, or null to size it from the model"))
        elif model is not None and storage.efs:
            needed = parse_memory_gib(model.download_memory)
            if not storage.xet_high_performance:
                needed = min(needed, XET_CAPPED_GIB)
            if given < needed:
                need_text = f"{needed:g}Gi"
                xet = "" if not storage.xet_high_performance else \
                    ", or set storage.xetHighPerformance: false to cap hf-xet's buffers"
                problems.append(Problem(
                    "storage.downloadMemory",
                    f"{storage.download_memory} is less than the {need_text} downloading {model.id} needs "
                    "(hf-xet's buffers get the Job OOM-killed)",
                    f"raise it to {need_text}, or set it to null to size it from the model{xet}"))
    if not storage.efs:
        if storage.download_memory is not None:
            problems.append(_warn("storage.downloadMemory", "is unused: without EFS there is no download Job",
                                  "remove it, or set storage.efs: true"))
        if model is None or model.weights_gb > 10:
            problems.append(_warn(
                "storage.efs", f"is false: every worker downloads {plan.serving.model} from Hugging Face when it "
                "starts, and rate limits (429) can crash-loop large models",
                "set storage.efs: true to cache the weights on EFS before the graph starts"))
    return problems


def _check_graph_name(plan: Plan) -> list[Problem]:
    name = plan.graph_name
    if len(name) > GRAPH_NAME_MAX:
        return [Problem("serving.graphName", f"{name!r} is longer than {GRAPH_NAME_MAX} characters; the operator "
                        "derives 63-character names from it", f"set serving.graphName to at most {GRAPH_NAME_MAX}")]
    return []


def check_graph_names(plans: Sequence[Plan]) -> list[Problem]:
    """Plans sharing a cluster and namespace must not share a DynamoGraphDeployment name (the guide's
    disagg, disagg-tcp and disagg-p5 manifests all used `vllm-disagg`, so only one could exist)."""
    seen: dict[tuple[str, str, str, str], str] = {}
    problems: list[Problem] = []
    for plan in plans:
        key = (plan.region, plan.cluster_name, plan.namespace, plan.graph_name)
        if key in seen:
            problems.append(Problem(
                "serving.graphName",
                f"{plan.graph_name!r} of deployment {plan.deployment!r} is already used by {seen[key]!r} in "
                f"namespace {plan.namespace} of cluster {plan.cluster_name}",
                "give one of them another serving.graphName"))
        else:
            seen[key] = plan.deployment
    return problems


# Rendered objects ---------------------------------------------------------------------------------


def _docs(files: Iterable[Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for f in files:
        for d in f.documents:
            if isinstance(d, dict):
                out.append((f.name, d))
    return out


def _env(container: dict[str, Any], name: str) -> str | None:
    for e in container.get("env") or []:
        if isinstance(e, dict) and e.get("name") == name:
            value = e.get("value")
            return value if isinstance(value, str) else None
    return None


def _kv_config(args: list[str]) -> dict[str, Any] | None:
    if "--kv-transfer-config" not in args:
        return None
    i = args.index("--kv-transfer-config")
    try:
        value = json.loads(args[i + 1])
    except (IndexError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def check_rendered(plan: Plan, files: Sequence[Any], catalog: Catalog) -> list[Problem]:
    """Design section 4's rules on the rendered objects themselves (guards against renderer regressions)."""
    problems: list[Problem] = []
    docs = _docs(files)
    graphs = [(name, d) for name, d in docs if d.get("kind") == "DynamoGraphDeployment"]
    names = [d.get("metadata", {}).get("name") for _, d in graphs]
    if len(set(names)) != len(names):
        problems.append(Problem("graph", f"DynamoGraphDeployment names repeat: {names}", "give each graph its own name"))
    itype = catalog.instance_type(plan.serving.instance_type)
    mode = plan.serving.mode
    for file_name, graph in graphs:
        services = graph.get("spec", {}).get("services", {})
        for svc_name, svc in services.items():
            where = f"{file_name}: services.{svc_name}"
            if svc.get("componentType") != "worker":
                continue
            pod = svc.get("extraPodSpec", {})
            main = pod.get("mainContainer", {})
            args = [str(a) for a in main.get("args") or []]
            kv = _kv_config(args)
            custom = (svc.get("resources", {}).get("requests", {}) or {}).get("custom", {}) or {}
            has_efa = any("efa" in k for k in custom)
            if mode.disaggregated:
                if kv is None:
                    problems.append(Problem(where, "a disaggregated worker has no --kv-transfer-config",
                                            "render again; this is a bug in dynamo-wizard"))
                else:
                    if mode is Mode.DISAGG_TCP and kv.get("kv_buffer_device") != "cpu":
                        problems.append(Problem(where, "TCP disaggregation without kv_buffer_device cpu",
                                                "set kv_buffer_device: cpu in the kv-transfer-config"))
                    if (kv.get("kv_connector_extra_config") or {}).get("backends") != ["LIBFABRIC"]:
                        problems.append(Problem(where, "NIXL backend is not LIBFABRIC (UCX would be used silently)",
                                                "set kv_connector_extra_config.backends to [LIBFABRIC]"))
                zone_terms = ((pod.get("affinity") or {}).get("podAffinity") or {}).get(
                    "requiredDuringSchedulingIgnoredDuringExecution") or []
                if not any(t.get("topologyKey") == "topology.kubernetes.io/zone" for t in zone_terms):
                    problems.append(Problem(where, "disaggregated workers are not kept in one zone",
                                            "add a required zone podAffinity on the graph's workers"))
            if has_efa and (itype is None or not itype.efa_supported or mode is not Mode.DISAGG_EFA):
                problems.append(Problem(where, "requests EFA devices on a type or mode without EFA",
                                        "remove vpc.amazonaws.com/efa"))
            if mode is Mode.DISAGG_EFA and not has_efa:
                problems.append(Problem(where, "an EFA worker requests no EFA device", "request vpc.amazonaws.com/efa"))
            gpus = str((svc.get("resources", {}).get("requests", {}) or {}).get("gpu", "0"))
            if itype is not None and gpus.isdigit() and int(gpus) > itype.gpus:
                problems.append(Problem(where, f"requests {gpus} GPUs; a {itype.name} has {itype.gpus}",
                                        "lower the worker's gpus"))
            mounts = {m.get("name"): m.get("mountPoint") for m in svc.get("volumeMounts") or []}
            hf_home = _env(main, "HF_HOME")
            if "model-cache" in mounts and hf_home != mounts["model-cache"]:
                problems.append(Problem(where, f"HF_HOME {hf_home!r} is not the model cache's mount point "
                                        f"{mounts['model-cache']!r}; cached weights would not be found",
                                        "set HF_HOME to the mount point"))
    jobs = [(n, d) for n, d in docs if d.get("kind") == "Job"]
    for file_name, job in jobs:
        for c in job.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            mounts = {m.get("name"): m.get("mountPath") for m in c.get("volumeMounts") or []}
            if "model-cache" in mounts and _env(c, "HF_HOME") != mounts["model-cache"]:
                problems.append(Problem(f"{file_name}: {c.get('name')}", "HF_HOME is not the model cache's mount path",
                                        "set HF_HOME to the mount path"))
    return problems
