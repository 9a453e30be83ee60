"""Instance shapes and resource quantities for scheduling and Auto Mode provisioning."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ...core.catalog import load_catalog


@dataclass(frozen=True)
class Shape:
    name: str
    family: str
    category: str
    generation: int
    vcpus: int
    memory_mib: int
    gpus: int = 0
    gpu_model: str = ""
    gpu_memory_mib: int = 0
    efa: int = 0

    @property
    def large(self) -> bool:
        """Types that take minutes to boot (p-types, per tool-output-and-timings §3)."""
        return self.category == "p"

    def allocatable(self) -> Res:
        # kube-reserved/system-reserved as Auto Mode leaves them, roughly
        return Res(cpu=self.vcpus - 0.08 - 0.01 * self.vcpus, mem=int(self.memory_mib * 0.9), gpu=self.gpus,
                   efa=self.efa, pods=110 if self.vcpus < 64 else 250)


def _family_parts(family: str) -> tuple[str, int]:
    m = re.match(r"^([a-z]+)(\d+)", family)
    if not m:
        return family[:1], 0
    return m.group(1), int(m.group(2))


# General-purpose Auto Mode capacity (c/m/r, generation > 4), amd64, the sizes the sandbox picks from.
_CPU = [
    ("c6a.large", 2, 4096), ("c6a.xlarge", 4, 8192), ("c6a.2xlarge", 8, 16384), ("c6a.4xlarge", 16, 32768),
    ("c6a.8xlarge", 32, 65536), ("m6a.large", 2, 8192), ("m6a.xlarge", 4, 16384), ("m6a.2xlarge", 8, 32768),
    ("m6a.4xlarge", 16, 65536), ("r6a.large", 2, 16384), ("r6a.xlarge", 4, 32768), ("r6a.2xlarge", 8, 65536),
    ("c7a.large", 2, 4096), ("m7a.large", 2, 8192),
]


def _shapes() -> dict[str, Shape]:
    out: dict[str, Shape] = {}
    for name, vcpus, mem in _CPU:
        fam = name.split(".")[0]
        cat, gen = _family_parts(fam)
        out[name] = Shape(name, fam, cat, gen, vcpus, mem)
    for t in load_catalog().instance_types.values():
        cat, gen = _family_parts(t.family)
        out[t.name] = Shape(t.name, t.family, cat, gen, t.vcpus, t.memory_mib, t.gpus, t.gpu_model,
                            t.gpu_memory_mib, t.max_efa_interfaces if t.efa_supported else 0)
    return out


_SHAPES: dict[str, Shape] | None = None


def shapes() -> dict[str, Shape]:
    global _SHAPES
    if _SHAPES is None:
        _SHAPES = _shapes()
    return _SHAPES


def shape(name: str) -> Shape | None:
    return shapes().get(name)


@dataclass
class Res:
    cpu: float = 0.0
    mem: int = 0  # MiB
    gpu: int = 0
    efa: int = 0
    pods: int = 0

    def __add__(self, o: Res) -> Res:
        return Res(self.cpu + o.cpu, self.mem + o.mem, self.gpu + o.gpu, self.efa + o.efa, self.pods + o.pods)

    def fits_in(self, cap: Res) -> bool:
        return (self.cpu <= cap.cpu + 1e-9 and self.mem <= cap.mem and self.gpu <= cap.gpu and self.efa <= cap.efa
                and self.pods <= cap.pods)

    def describe(self) -> str:
        parts = {"cpu": f"{int(self.cpu * 1000)}m", "memory": f"{self.mem}Mi", "pods": str(self.pods)}
        if self.gpu:
            parts["nvidia.com/gpu"] = str(self.gpu)
        if self.efa:
            parts["vpc.amazonaws.com/efa"] = str(self.efa)
        return "{" + ", ".join(f'"{k}":"{v}"' for k, v in parts.items()) + "}"


def parse_cpu(value: Any) -> float:
    s = str(value).strip()
    if s.endswith("m"):
        return float(s[:-1]) / 1000
    return float(s)


_MEM_UNITS = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "Ti": 1024 * 1024, "K": 1000 / 1048576, "M": 1000000 / 1048576,
              "G": 1e9 / 1048576, "T": 1e12 / 1048576}


def parse_mem_mib(value: Any) -> int:
    s = str(value).strip()
    for unit in ("Ki", "Mi", "Gi", "Ti", "K", "M", "G", "T"):
        if s.endswith(unit):
            return int(float(s[: -len(unit)]) * _MEM_UNITS[unit])
    return int(float(s) / 1048576)


def pod_requests(pod: dict[str, Any]) -> Res:
    total = Res(pods=1)
    for c in (pod.get("spec") or {}).get("containers") or []:
        res = c.get("resources") or {}
        req = dict(res.get("limits") or {})
        req.update(res.get("requests") or {})
        total = total + Res(
            cpu=parse_cpu(req["cpu"]) if "cpu" in req else 0.0,
            mem=parse_mem_mib(req["memory"]) if "memory" in req else 0,
            gpu=int(str(req.get("nvidia.com/gpu", 0))),
            efa=int(str(req.get("vpc.amazonaws.com/efa", 0))),
        )
    return total


def node_allocatable(node: dict[str, Any]) -> Res:
    a = (node.get("status") or {}).get("allocatable") or {}
    return Res(cpu=parse_cpu(a.get("cpu", "0")), mem=parse_mem_mib(a.get("memory", "0")),
               gpu=int(str(a.get("nvidia.com/gpu", 0))), efa=int(str(a.get("vpc.amazonaws.com/efa", 0))),
               pods=int(str(a.get("pods", 110))))


def quantity_mem(mib: int) -> str:
    return f"{mib * 1024}Ki"
