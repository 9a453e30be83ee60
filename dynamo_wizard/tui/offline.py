"""Plan-only mode: a Discovery that asks no one, for users with no AWS account at hand.

It answers from the catalog and says so in every result's notes: offerings, quotas and reservations are
NOT checked. The plan it helps write is still validated by core; preflight against a real account happens
when the plan is applied.
"""

from __future__ import annotations

from datetime import datetime

from ..core.catalog import Catalog, load_catalog
from ..core.inventory import CapacityBlockOffering, CapacityReservation, GpuOffering, Identity, RegionSummary, Zone

PLAN_ONLY_NOTE = "plan-only mode: offerings, quotas and reservations are not checked against AWS"
# Regions where the catalog's GPU families are commonly offered; plan-only mode cannot know better.
PLAN_ONLY_REGIONS = ("us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "eu-north-1",
                     "ap-northeast-1", "ap-south-1", "ap-southeast-2")


class PlanOnlyDiscovery:
    """Satisfies core.inventory.Discovery without any network call."""

    def __init__(self, catalog: Catalog | None = None) -> None:
        self.catalog = catalog or load_catalog()

    def identity(self) -> Identity:
        raise LookupError("plan-only mode has no AWS identity")

    def regions(self) -> list[str]:
        return list(PLAN_ONLY_REGIONS)

    def region_summary(self, region: str, families: list[str]) -> RegionSummary:
        zones = [Zone(name=f"{region}{s}", zone_id="", region=region) for s in "abc"]
        offerings = [
            GpuOffering(
                instance_type=t.name, family=t.family, gpus=t.gpus, gpu_model=t.gpu_model,
                gpu_memory_mib=t.gpu_memory_mib, vcpus=t.vcpus, memory_mib=t.memory_mib,
                efa_supported=t.efa_supported, max_efa_interfaces=t.max_efa_interfaces,
                zones=tuple(z.name for z in zones), on_demand_price=t.on_demand_price, price_source="catalog",
            )
            for t in self.catalog.instance_types.values()
        ]
        return RegionSummary(region=region, zones=zones, offerings=offerings, quotas=[], notes=[PLAN_ONLY_NOTE])

    def region_summaries(self, regions: list[str], families: list[str]) -> list[RegionSummary]:
        return [self.region_summary(r, families) for r in regions]

    def reservations(self, region: str) -> tuple[list[CapacityReservation], list[str]]:
        return [], [PLAN_ONLY_NOTE]

    def capacity_block_offerings(self, region: str, instance_type: str, count: int,
                                 start: datetime, end: datetime, hours: int) -> list[CapacityBlockOffering]:
        return []
