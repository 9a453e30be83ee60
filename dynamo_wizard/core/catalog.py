"""The offline catalog: GPU instance types, models and Dynamo release profiles.

Data lives in `assets/catalog.yaml` and `assets/releases.yaml`; live AWS data (cloud.aws) can replace the
instance part through `Catalog.with_instance_types`.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any

import yaml

GIB_PER_MIB = 1 / 1024


@dataclass(frozen=True)
class InstanceType:
    name: str
    family: str
    vcpus: int
    memory_mib: int
    gpu_model: str
    gpus: int
    gpu_memory_mib: int  # per GPU
    efa_supported: bool
    max_efa_interfaces: int
    on_demand_price: float | None  # USD/hour, None when unknown

    @property
    def gpu_memory_gb(self) -> float:
        return self.gpu_memory_mib * GIB_PER_MIB

    @property
    def total_gpu_memory_gb(self) -> float:
        return self.gpu_memory_gb * self.gpus

    @property
    def quota_class(self) -> str:
        """Which EC2 vCPU quota the type counts against: 'G' (G and VT) or 'P'."""
        return "P" if self.family.startswith("p") else "G"


@dataclass(frozen=True)
class Model:
    id: str
    weights_gb: float
    min_gpus: int
    min_gpu_memory_gb: float
    download_memory: str
    revision: str | None = None
    recipe: str | None = None

    @property
    def short_name(self) -> str:
        return self.id.split("/")[-1]


@dataclass(frozen=True)
class GraphProfile:
    """The shape of the DynamoGraphDeployment a release expects (service names, modules, labels, paths).

    Defaults are release 1.0.x's (the upstream EKS guide); releases.yaml's `graph:` block overrides them.
    """

    frontend_service: str = "Frontend"
    decode_service: str = "VllmDecodeWorker"
    prefill_service: str = "VllmPrefillWorker"
    frontend_module: str = "dynamo.frontend"
    worker_module: str = "dynamo.vllm"
    # The guide's EFA frontend runs the KV router; its agg/TCP frontends use the image's default command.
    frontend_router_args: tuple[str, ...] = ("--router-mode", "kv", "--router-reset-states")
    frontend_cpu: str = "8"
    frontend_working_dir: str = "/workspace"
    worker_working_dir: str = "/workspace/examples/backends/vllm"
    efa_worker_working_dir: str = "/workspace"
    efa_resource: str = "vpc.amazonaws.com/efa"
    graph_name_label: str = "nvidia.com/dynamo-graph-deployment-name"
    component_label: str = "nvidia.com/dynamo-component"
    component_type_label: str = "nvidia.com/dynamo-component-type"
    frontend_port: int = 8000

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> GraphProfile:
        names = {
            "frontendService": "frontend_service", "decodeService": "decode_service",
            "prefillService": "prefill_service", "frontendModule": "frontend_module",
            "workerModule": "worker_module", "frontendRouterArgs": "frontend_router_args",
            "frontendCpu": "frontend_cpu", "frontendWorkingDir": "frontend_working_dir",
            "workerWorkingDir": "worker_working_dir", "efaWorkerWorkingDir": "efa_worker_working_dir",
            "efaResource": "efa_resource", "graphNameLabel": "graph_name_label",
            "componentLabel": "component_label", "componentTypeLabel": "component_type_label",
            "frontendPort": "frontend_port",
        }
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in names:
                raise ValueError(f"releases.yaml: unknown graph key {key!r}")
            values[names[key]] = tuple(value) if isinstance(value, list) else value
        return cls(**values)


@dataclass(frozen=True)
class ReleaseProfile:
    """Everything that depends on the Dynamo release (design section 2, 'Releases are profiles')."""

    version: str
    chart_url: str
    chart_name: str
    release_name: str
    graph_api_version: str
    runtime_image: str
    frontend_image: str
    crds_in_chart: bool
    nats: bool
    crds: tuple[str, ...]
    operator_deployment: str
    nats_statefulset: str
    nats_pvc: str
    # Values passed to the platform chart (`helm upgrade --install ... -f values.yaml`).
    helm_values: dict[str, Any] = field(default_factory=dict)
    graph: GraphProfile = GraphProfile()


@dataclass(frozen=True)
class Catalog:
    families: dict[str, dict[str, Any]]
    guide_families: tuple[str, ...]
    instance_types: dict[str, InstanceType]
    models: dict[str, Model]
    releases: dict[str, ReleaseProfile] = field(default_factory=dict)

    def family_types(self, family: str) -> list[InstanceType]:
        return [t for t in self.instance_types.values() if t.family == family]

    def instance_type(self, name: str) -> InstanceType | None:
        return self.instance_types.get(name)

    def model(self, model_id: str) -> Model | None:
        return self.models.get(model_id)

    def release(self, version: str) -> ReleaseProfile | None:
        return self.releases.get(version)

    def with_instance_types(self, types: list[InstanceType]) -> Catalog:
        """A copy where live instance data replaces the offline part (prices kept when live has none)."""
        merged = dict(self.instance_types)
        for t in types:
            old = merged.get(t.name)
            if t.on_demand_price is None and old is not None:
                t = replace(t, on_demand_price=old.on_demand_price)
            merged[t.name] = t
        return replace(self, instance_types=merged)


def family_of(instance_type: str) -> str:
    """The Auto Mode instance family of a type name: 'p6-b200.48xlarge' -> 'p6-b200'."""
    return instance_type.split(".", 1)[0]


_SIZE_RE = re.compile(r"^(\d+)(Mi|Gi|Ti)$")


def parse_memory_gib(text: str) -> float:
    """'4Gi' -> 4.0; '512Mi' -> 0.5. Raises ValueError for anything else."""
    m = _SIZE_RE.match(text.strip())
    if not m:
        raise ValueError(f"not a Kubernetes memory quantity in Mi, Gi or Ti: {text!r}")
    n, unit = int(m.group(1)), m.group(2)
    return n / 1024 if unit == "Mi" else n * 1024 if unit == "Ti" else float(n)


def _read_asset(name: str) -> Any:
    text = resources.files("dynamo_wizard.assets").joinpath(name).read_text(encoding="utf-8")
    return yaml.safe_load(text)


@functools.lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    raw = _read_asset("catalog.yaml")
    types = {
        t["name"]: InstanceType(
            name=t["name"],
            family=t["family"],
            vcpus=int(t["vcpus"]),
            memory_mib=int(t["memoryMiB"]),
            gpu_model=t["gpuModel"],
            gpus=int(t["gpus"]),
            gpu_memory_mib=int(t["gpuMemoryMiB"]),
            efa_supported=bool(t["efaSupported"]),
            max_efa_interfaces=int(t["maxEfaInterfaces"] or 0),
            on_demand_price=t.get("onDemandPrice"),
        )
        for t in raw["instanceTypes"]
    }
    models = {
        m["id"]: Model(
            id=m["id"],
            weights_gb=float(m["weightsGB"]),
            min_gpus=int(m["minGpus"]),
            min_gpu_memory_gb=float(m["minGpuMemoryGB"]),
            download_memory=m["downloadMemory"],
            revision=m.get("revision"),
            recipe=m.get("recipe"),
        )
        for m in raw["models"]
    }
    rel_raw = _read_asset("releases.yaml")
    releases = {
        r["version"]: ReleaseProfile(
            version=r["version"],
            chart_url=r["chartUrl"],
            chart_name=r["chartName"],
            release_name=r["releaseName"],
            graph_api_version=r["graphApiVersion"],
            runtime_image=r["runtimeImage"],
            frontend_image=r["frontendImage"],
            crds_in_chart=bool(r["crdsInChart"]),
            nats=bool(r["nats"]),
            crds=tuple(r["crds"]),
            operator_deployment=r["operatorDeployment"],
            nats_statefulset=r["natsStatefulSet"],
            nats_pvc=r["natsPvc"],
            helm_values=dict(r.get("helmValues") or {}),
            graph=GraphProfile.from_dict(r.get("graph") or {}),
        )
        for r in rel_raw["releases"]
    }
    return Catalog(
        families=dict(raw["families"]),
        guide_families=tuple(raw["guideFamilies"]),
        instance_types=types,
        models=models,
        releases=releases,
    )
