"""What discovery finds, as our own small dataclasses (the boundary between cloud/ and everything else).

cloud.aws turns boto3 answers into these; screens, preflight and the CLI only ever see these. Every
result that may be partial carries `notes`: one human sentence per call that failed (region, call, why),
so a gap is never silent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class Identity:
    account: str
    arn: str
    partition: str = "aws"
    profile: str | None = None


@dataclass(frozen=True)
class Zone:
    name: str  # us-east-1a
    zone_id: str  # use1-az6
    region: str
    opt_in_required: bool = False
    eks_control_plane: bool = True  # False for zone ids where EKS has no control plane (use1-az3)


@dataclass(frozen=True)
class GpuOffering:
    """One GPU instance type in one region, with the zones that offer it."""

    instance_type: str
    family: str
    gpus: int
    gpu_model: str
    gpu_memory_mib: int  # per GPU
    vcpus: int
    memory_mib: int
    efa_supported: bool
    max_efa_interfaces: int
    zones: tuple[str, ...]  # zone names offering it
    on_demand_price: float | None = None  # USD/hour
    price_source: str = "catalog"  # "pricing-api" | "catalog" | "unknown"


@dataclass(frozen=True)
class CapacityReservation:
    id: str
    instance_type: str
    zone: str
    total: int
    available: int
    state: str  # active | pending | scheduled | payment-pending | expired | cancelled | failed ...
    reservation_type: str  # "default" (ODCR) | "capacity-block"
    start: datetime | None = None
    end: datetime | None = None
    tags: dict[str, str] = field(default_factory=dict)
    match_criteria: str = "targeted"  # open | targeted
    owner_id: str | None = None


@dataclass(frozen=True)
class CapacityBlockOffering:
    offering_id: str
    instance_type: str
    zone: str
    count: int
    start: datetime
    end: datetime
    duration_hours: int
    upfront_fee: float
    currency: str = "USD"


@dataclass(frozen=True)
class Quota:
    """An EC2 vCPU quota (G/VT or P, on-demand or spot) in a region."""

    code: str  # L-DB2E81BA ...
    name: str
    quota_class: str  # "G" | "P"
    market: str  # "on-demand" | "spot"
    value: float  # vCPUs
    region: str


@dataclass
class RegionSummary:
    """A region as the region screen shows it."""

    region: str
    zones: list[Zone] = field(default_factory=list)
    offerings: list[GpuOffering] = field(default_factory=list)
    quotas: list[Quota] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def families_offered(self, families: list[str] | tuple[str, ...]) -> list[str]:
        offered = {o.family for o in self.offerings if o.zones}
        return [f for f in families if f in offered]

    def quota(self, quota_class: str, market: str = "on-demand") -> Quota | None:
        for q in self.quotas:
            if q.quota_class == quota_class and q.market == market:
                return q
        return None


@dataclass(frozen=True)
class ToolCheck:
    name: str  # eksctl | helm | kubectl
    path: str | None
    version: str | None
    ok: bool
    message: str = ""


@dataclass(frozen=True)
class Verdict:
    """One preflight check: ok or not, what was found, and how to fix it."""

    check: str
    ok: bool
    detail: str
    fix: str = ""
    severity: str = "error"  # error | warning | info


class Discovery(Protocol):
    """What the screens and commands need from discovery (implemented by cloud.aws.AwsDiscovery)."""

    def identity(self) -> Identity: ...

    def regions(self) -> list[str]: ...

    def region_summaries(self, regions: list[str], families: list[str]) -> list[RegionSummary]: ...

    def region_summary(self, region: str, families: list[str]) -> RegionSummary: ...

    def reservations(self, region: str) -> tuple[list[CapacityReservation], list[str]]: ...

    def capacity_block_offerings(self, region: str, instance_type: str, count: int,
                                 start: datetime, end: datetime, hours: int) -> list[CapacityBlockOffering]: ...
