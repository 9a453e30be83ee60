"""What a plan costs per hour, and how many GPU instances (and vCPUs) it needs: pure functions.

Hourly cost = GPU instances x on-demand price + the EKS cluster fee ($0.10/h) + the EKS Auto Mode
management fee when the caller knows it.

The Auto Mode fee is charged per instance-hour and differs per instance type; the Pricing API calls the
wizard makes (AmazonEC2) do not return it and the offline catalog does not carry it, so by default it is
left out and the estimate says so in its `notes` (public write-ups put it at roughly 12% of the EC2
on-demand price). Pass `auto_mode_fee_per_instance` to include it. Also left out, and noted: the
general-purpose nodes Auto Mode starts for the platform (operator, NATS, etcd, frontend), EBS and EFS
storage, NAT gateways and data transfer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

from .plan import Plan

EKS_CLUSTER_FEE_PER_HOUR = 0.10  # USD, standard Kubernetes version support
HOURS_PER_MONTH = 730


class GpuInstanceSpec(Protocol):
    """What the sizing needs of an instance type (catalog.InstanceType and inventory.GpuOffering both fit)."""

    @property
    def gpus(self) -> int: ...

    @property
    def vcpus(self) -> int: ...


@dataclass(frozen=True)
class CapacityNeed:
    """GPU instances a plan runs at the least, and the vCPUs they count against the EC2 quota."""

    instance_type: str
    instances: int
    vcpus: int
    gpus_requested: int
    unplaceable: tuple[str, ...] = ()  # roles whose workers want more GPUs than one instance has


def instances_needed(plan: Plan, spec: GpuInstanceSpec) -> CapacityNeed:
    """Workers of one role are packed onto their own nodes: floor(GPUs per node / GPUs per worker) each.

    Roles are kept apart (prefill and decode do not share a node), as the rendered NodePool and graph
    place them. A worker asking for more GPUs than a node has cannot be placed at all; it is reported in
    `unplaceable` and counted as one node so the quota check still sees the attempt.
    """
    instances = 0
    requested = 0
    unplaceable: list[str] = []
    for role, worker in plan.serving.workers().items():
        requested += worker.gpus * worker.replicas
        if spec.gpus <= 0 or worker.gpus > spec.gpus:
            unplaceable.append(role)
            instances += worker.replicas
            continue
        per_node = max(1, spec.gpus // worker.gpus)
        instances += math.ceil(worker.replicas / per_node)
    return CapacityNeed(instance_type=plan.serving.instance_type, instances=instances,
                        vcpus=instances * spec.vcpus, gpus_requested=requested, unplaceable=tuple(unplaceable))


@dataclass(frozen=True)
class CostEstimate:
    instance_type: str
    instances: int
    price_per_instance: float | None  # USD/h, None when unknown
    price_source: str  # pricing-api | catalog | unknown
    instances_per_hour: float | None
    cluster_fee_per_hour: float
    auto_mode_fee_per_hour: float | None  # None: not included (see notes)
    total_per_hour: float | None  # None when the instance price is unknown
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def per_month(self) -> float | None:
        return None if self.total_per_hour is None else round(self.total_per_hour * HOURS_PER_MONTH, 2)


def hourly_cost(plan: Plan, spec: GpuInstanceSpec, price_per_instance: float | None, price_source: str = "catalog",
                *, auto_mode_fee_per_instance: float | None = None,
                cluster_fee: float = EKS_CLUSTER_FEE_PER_HOUR) -> CostEstimate:
    """The plan's hourly cost at on-demand prices (a reservation bills the same rate; a Capacity Block is prepaid)."""
    need = instances_needed(plan, spec)
    notes: list[str] = []
    instances_cost = None if price_per_instance is None else round(need.instances * price_per_instance, 4)
    if price_per_instance is None:
        notes.append(f"no price known for {plan.serving.instance_type}; the GPU instance cost is left out")
    elif price_source == "catalog":
        notes.append("instance price from the offline catalog (approximate us-east-1 list price)")
    auto_fee = None
    if auto_mode_fee_per_instance is not None:
        auto_fee = round(need.instances * auto_mode_fee_per_instance, 4)
    else:
        notes.append("excludes the EKS Auto Mode management fee (per instance-hour, roughly 12% of the "
                     "EC2 price; not available from the Pricing data the wizard reads)")
    notes.append("excludes the platform's general-purpose nodes, EBS/EFS storage, NAT gateway and data transfer")
    if plan.reservation is not None:
        notes.append("reserved capacity: an ODCR bills its on-demand rate whether used or not; "
                     "a Capacity Block was paid upfront")
    total = None
    if instances_cost is not None:
        total = round(instances_cost + cluster_fee + (auto_fee or 0.0), 4)
    return CostEstimate(
        instance_type=plan.serving.instance_type, instances=need.instances, price_per_instance=price_per_instance,
        price_source=price_source if price_per_instance is not None else "unknown",
        instances_per_hour=instances_cost, cluster_fee_per_hour=cluster_fee, auto_mode_fee_per_hour=auto_fee,
        total_per_hour=total, notes=tuple(notes),
    )


def format_cost(estimate: CostEstimate) -> str:
    """'$4.58/h (2 x g6e.2xlarge at $2.242 + EKS $0.10)' for the review and provision screens."""
    if estimate.total_per_hour is None:
        return f"unknown ({estimate.instances} x {estimate.instance_type}, no price) + EKS ${estimate.cluster_fee_per_hour:.2f}/h"
    parts = [f"{estimate.instances} x {estimate.instance_type} at ${estimate.price_per_instance:,.3f}",
             f"EKS ${estimate.cluster_fee_per_hour:.2f}"]
    if estimate.auto_mode_fee_per_hour is not None:
        parts.append(f"Auto Mode ${estimate.auto_mode_fee_per_hour:,.3f}")
    return f"${estimate.total_per_hour:,.2f}/h ({' + '.join(parts)})"
