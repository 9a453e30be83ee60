"""What each question offers, with the reason an option is unavailable — shared by both front ends.

Data in (discovery results, the catalog, the answers so far), data out (rows with `available` and
`reason`). Nothing is hidden: an option that cannot be used is returned with the reason, and the screens
show it. No Textual, boto3 or kubernetes here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..core.catalog import Catalog, InstanceType, Model
from ..core.inventory import CapacityReservation, GpuOffering, RegionSummary, Zone
from ..core.plan import Mode

USABLE_RESERVATION_STATES = ("active", "scheduled", "pending", "payment-pending")
# EC2 reclaims Capacity Block instances 30 min before the end (60 for UltraServers) and Karpenter drains
# 10 min before that: warn well ahead.
BLOCK_ENDING_SOON = timedelta(hours=24)


# Regions ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegionChoice:
    region: str
    wanted: tuple[str, ...]
    families_offered: tuple[str, ...]  # wanted families offered somewhere in the cluster zones
    per_zone: tuple[tuple[str, int], ...]  # (zone, wanted families offered there), cluster zones only
    cluster_zones: tuple[str, ...]
    excluded_zones: tuple[tuple[str, str], ...]  # (zone, why it is not a cluster zone)
    g_quota: float | None
    p_quota: float | None
    notes: tuple[str, ...]
    available: bool
    reason: str
    short: str = ""

    @property
    def best_zone(self) -> tuple[str, int]:
        if not self.per_zone:
            return ("", 0)
        return max(self.per_zone, key=lambda z: (z[1], -ord(z[0][-1])))

    @property
    def score(self) -> tuple[int, int, float]:
        quota = (self.g_quota or 0) + (self.p_quota or 0)
        return (self.best_zone[1], len(self.families_offered), quota)


def cluster_zones(summary: RegionSummary) -> tuple[list[str], list[tuple[str, str]]]:
    """The zones the cluster may use, and the excluded ones with the reason (the guide's AZ filter:
    opt-in zones out, zone ids without an EKS control plane out, e.g. use1-az3)."""
    keep: list[str] = []
    excluded: list[tuple[str, str]] = []
    for z in sorted(summary.zones, key=lambda z: z.name):
        if z.opt_in_required:
            excluded.append((z.name, f"{z.zone_id or z.name} is an opt-in zone (Local/Wavelength Zone)"))
        elif not z.eks_control_plane:
            excluded.append((z.name, f"{z.zone_id} has no EKS control plane"))
        else:
            keep.append(z.name)
    return keep, excluded


def region_choice(summary: RegionSummary, wanted: list[str] | tuple[str, ...]) -> RegionChoice:
    zones, excluded = cluster_zones(summary)
    zone_set = set(zones)
    per_zone: dict[str, set[str]] = {z: set() for z in zones}
    offered: set[str] = set()
    for o in summary.offerings:
        if o.family not in wanted:
            continue
        for z in o.zones:
            if z in zone_set:
                per_zone[z].add(o.family)
                offered.add(o.family)
    g = summary.quota("G")
    p = summary.quota("P")
    families_offered = tuple(f for f in wanted if f in offered)
    available, reason, short = True, "", ""
    if summary.notes and not summary.zones:
        available, reason, short = False, "could not be read: " + summary.notes[0], "not readable"
    elif len(zones) < 2:
        available, reason, short = (False, f"only {len(zones)} zone(s) with an EKS control plane; EKS needs two",
                                    "too few zones")
    elif not families_offered:
        available, reason, short = False, "offers none of " + ", ".join(wanted), "no wanted GPUs"
    elif g is not None and p is not None and g.value <= 0 and p.value <= 0:
        available, reason, short = (False, "GPU vCPU quota is 0 (G and P): request an increase in Service Quotas",
                                    "no GPU quota")
    return RegionChoice(
        region=summary.region,
        wanted=tuple(wanted),
        families_offered=families_offered,
        per_zone=tuple((z, len(per_zone[z])) for z in zones),
        cluster_zones=tuple(zones),
        excluded_zones=tuple(excluded),
        g_quota=g.value if g else None,
        p_quota=p.value if p else None,
        notes=tuple(summary.notes),
        available=available,
        reason=reason,
        short=short,
    )


def rank_regions(summaries: list[RegionSummary], wanted: list[str] | tuple[str, ...]) -> list[RegionChoice]:
    """Regions, best first: usable ones before unusable, then by the most wanted families offered in a
    single zone (what a disaggregated graph needs), then in the region, then by GPU quota."""
    choices = [region_choice(s, wanted) for s in summaries]
    return sorted(choices, key=lambda c: (not c.available, tuple(-x for x in c.score), c.region))


# Instance types --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TypeChoice:
    instance_type: str
    family: str
    gpu_model: str
    gpus: int
    gpu_memory_gb: float  # per GPU
    vcpus: int
    efa: bool
    zones: tuple[str, ...]  # cluster zones offering it
    price: float | None
    price_source: str
    quota_class: str
    available: bool
    reason: str
    short: str = ""


def _offering_type(o: GpuOffering) -> InstanceType:
    return InstanceType(
        name=o.instance_type, family=o.family, vcpus=o.vcpus, memory_mib=o.memory_mib, gpu_model=o.gpu_model,
        gpus=o.gpus, gpu_memory_mib=o.gpu_memory_mib, efa_supported=o.efa_supported,
        max_efa_interfaces=o.max_efa_interfaces, on_demand_price=o.on_demand_price,
    )


def instance_type_info(name: str, catalog: Catalog, summary: RegionSummary | None = None) -> InstanceType | None:
    """Live data for a type when discovery has it, else the catalog's."""
    if summary is not None:
        for o in summary.offerings:
            if o.instance_type == name:
                t = _offering_type(o)
                known = catalog.instance_type(name)
                if t.on_demand_price is None and known is not None:
                    t = InstanceType(**{**t.__dict__, "on_demand_price": known.on_demand_price})
                return t
    return catalog.instance_type(name)


def type_choices(summary: RegionSummary, catalog: Catalog, zones: list[str] | tuple[str, ...],
                 capacity_types: list[str] | tuple[str, ...] = ("on-demand", "spot")) -> list[TypeChoice]:
    """Every GPU type of the Auto Mode families (catalog and live), offered or not, with why not."""
    offerings = {o.instance_type: o for o in summary.offerings}
    names = list(dict.fromkeys([*catalog.instance_types, *offerings]))
    zone_set = set(zones)
    rows: list[TypeChoice] = []
    for name in names:
        o = offerings.get(name)
        t = _offering_type(o) if o is not None else catalog.instance_type(name)
        if t is None or t.family not in catalog.families:
            continue  # only the exact Auto Mode families the catalog knows
        price = o.on_demand_price if o is not None and o.on_demand_price is not None else None
        source = o.price_source if o is not None and o.on_demand_price is not None else "catalog"
        if price is None:
            known = catalog.instance_type(name)
            price = known.on_demand_price if known else None
            source = "catalog" if price is not None else "unknown"
        offered_zones = tuple(z for z in (o.zones if o else ()) if z in zone_set)
        available, reason, short = True, "", ""
        if o is None or not o.zones:
            available, reason, short = False, f"not offered in {summary.region}", "not offered"
        elif not offered_zones:
            available, reason, short = (False, "offered only in zones the cluster cannot use: " + ", ".join(o.zones),
                                        "not in cluster zones")
        else:
            quota_reason = _quota_shortfall(summary, t, capacity_types)
            if quota_reason:
                available, reason, short = False, quota_reason, "vCPU quota"
        rows.append(TypeChoice(
            instance_type=name, family=t.family, gpu_model=t.gpu_model, gpus=t.gpus,
            gpu_memory_gb=t.gpu_memory_gb, vcpus=t.vcpus, efa=t.efa_supported, zones=offered_zones,
            price=price, price_source=source, quota_class=t.quota_class, available=available, reason=reason,
            short=short,
        ))
    family_order = list(catalog.families)
    rows.sort(key=lambda r: (family_order.index(r.family) if r.family in family_order else 99, r.vcpus, r.gpus))
    return rows


def _quota_shortfall(summary: RegionSummary, t: InstanceType, capacity_types: list[str] | tuple[str, ...]) -> str:
    """Why one instance of the type cannot start under the account's vCPU quotas ('' when it can or when
    the quotas are unknown)."""
    known = [summary.quota(t.quota_class, m) for m in capacity_types]
    if not known or any(q is None for q in known):
        return ""
    if all(q is not None and q.value < t.vcpus for q in known):
        values = ", ".join(f"{q.market} {q.value:g}" for q in known if q is not None)
        return (f"{t.quota_class} vCPU quota ({values}) is below the {t.vcpus} vCPUs of one {t.name}: "
                "request an increase in Service Quotas")
    return ""


def default_type(rows: list[TypeChoice], preferred: str) -> str | None:
    """The preferred type when usable, else the cheapest usable type of the same family, else the
    cheapest usable type."""
    usable = [r for r in rows if r.available]
    if not usable:
        return None
    for r in usable:
        if r.instance_type == preferred:
            return r.instance_type
    fam = preferred.split(".", 1)[0]
    same = [r for r in usable if r.family == fam]
    pool = same or usable
    return min(pool, key=lambda r: (r.price if r.price is not None else 1e9, r.gpus)).instance_type


# Reservations ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReservationRow:
    reservation: CapacityReservation
    fits: bool
    reason: str  # why it does not fit ('' when it fits)
    warnings: tuple[str, ...]
    short: str = ""


def reservation_rows(reservations: list[CapacityReservation], families: list[str] | tuple[str, ...],
                     zones: list[str] | tuple[str, ...], instance_type: str, now: datetime) -> list[ReservationRow]:
    rows: list[ReservationRow] = []
    for r in reservations:
        fam = r.instance_type.split(".", 1)[0]
        problems: list[str] = []
        shorts: list[str] = []
        warnings: list[str] = []
        if r.state not in USABLE_RESERVATION_STATES:
            problems.append(f"state is {r.state}")
            shorts.append(r.state)
        if fam not in families:
            problems.append(f"{r.instance_type} is not in the chosen families ({', '.join(families)})")
            shorts.append(f"{fam} not chosen")
        if zones and r.zone not in zones:
            problems.append(f"{r.zone} is not a cluster zone")
            shorts.append("other zone")
        if r.end is not None and _aware(r.end) <= now:
            problems.append("has ended")
            shorts.append("ended")
        if not problems:
            if r.instance_type != instance_type:
                warnings.append(f"serves {r.instance_type}, not the workers' {instance_type}")
            if r.reservation_type == "capacity-block" and r.end is not None:
                left = _aware(r.end) - now
                if left <= BLOCK_ENDING_SOON:
                    warnings.append(f"Capacity Block ends in {format_duration(left)}; nodes drain ~40 min before")
            if r.start is not None and _aware(r.start) > now:
                warnings.append(f"starts in {format_duration(_aware(r.start) - now)}")
        rows.append(ReservationRow(r, not problems, "; ".join(problems), tuple(warnings), ", ".join(shorts)))
    rows.sort(key=lambda row: (not row.fits, row.reservation.instance_type, row.reservation.id))
    return rows


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def format_duration(d: timedelta) -> str:
    minutes = max(0, int(d.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h {minutes % 60:02d} min" if hours < 10 else f"{hours} h"
    return f"{hours // 24} days"


def parse_tags(text: str) -> dict[str, str]:
    """'team=dynamo, env=prod' -> {'team': 'dynamo', 'env': 'prod'}; ValueError says what is wrong."""
    tags: dict[str, str] = {}
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{part!r} is not key=value; write tags as key=value, separated by commas")
        tags[key.strip()] = value.strip()
    if not tags:
        raise ValueError("no tags given; write them as key=value, e.g. team=dynamo")
    return tags


# Serving mode and model ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModeChoice:
    mode: str
    title: str
    detail: str
    available: bool
    reason: str
    short: str = ""


MODE_TITLES = {
    Mode.AGG.value: "Aggregated",
    Mode.DISAGG_EFA.value: "Disaggregated over EFA",
    Mode.DISAGG_TCP.value: "Disaggregated over TCP",
}


def mode_choices(t: InstanceType | None, catalog: Catalog) -> list[ModeChoice]:
    name = t.name if t else "the chosen type"
    agg = ModeChoice(Mode.AGG.value, MODE_TITLES["agg"], "prefill and decode in one worker; the simplest",
                     True, "")
    if t is not None and t.efa_supported:
        efa = ModeChoice(Mode.DISAGG_EFA.value, MODE_TITLES["disagg-efa"],
                         "prefill and decode workers on separate nodes, KV cache over EFA (LIBFABRIC)", True, "")
    else:
        fam = t.family if t else ""
        efa_types = [x.name for x in catalog.family_types(fam) if x.efa_supported] if fam else []
        hint = f"; EFA types in {fam}: {', '.join(efa_types[:4])}" if efa_types else ""
        efa = ModeChoice(Mode.DISAGG_EFA.value, MODE_TITLES["disagg-efa"],
                         "prefill and decode workers on separate nodes, KV cache over EFA (LIBFABRIC)", False,
                         f"{name} has no EFA{hint}", "no EFA")
    tcp = ModeChoice(Mode.DISAGG_TCP.value, MODE_TITLES["disagg-tcp"],
                     "separate prefill and decode nodes, KV cache over TCP (kv_buffer_device: cpu)", True, "")
    return [agg, efa, tcp]


@dataclass(frozen=True)
class ModelChoice:
    model: Model
    gpus_needed: int  # GPUs per worker on the chosen type (= tensor parallel size)
    fits: bool
    reason: str
    short: str = ""


def gpus_for(model: Model, t: InstanceType) -> int:
    """GPUs a worker needs for the model on this type: the recipe's minimum, enough memory, a power of two
    (tensor parallel sizes that divide attention heads)."""
    by_memory = math.ceil(model.min_gpu_memory_gb / t.gpu_memory_gb) if t.gpu_memory_gb > 0 else model.min_gpus
    need = max(model.min_gpus, by_memory, 1)
    return 1 << (need - 1).bit_length()


def model_choices(catalog: Catalog, t: InstanceType | None) -> list[ModelChoice]:
    rows: list[ModelChoice] = []
    for m in catalog.models.values():
        if t is None:
            rows.append(ModelChoice(m, m.min_gpus, False, "choose an instance type first"))
            continue
        need = gpus_for(m, t)
        if need > t.gpus:
            bigger = [x for x in catalog.instance_types.values()
                      if x.gpus * x.gpu_memory_gb >= m.min_gpu_memory_gb and x.gpus >= gpus_for(m, x)]
            hint = ""
            if bigger:
                best = min(bigger, key=lambda x: (x.on_demand_price or 1e9))
                hint = f"; e.g. {best.name}"
            rows.append(ModelChoice(
                m, need, False,
                f"needs {need} × {t.gpu_memory_gb:.0f} GB GPUs ({m.min_gpu_memory_gb:g} GB); {t.name} has {t.gpus}{hint}",
                f"needs {need} GPUs",
            ))
        else:
            rows.append(ModelChoice(m, need, True, ""))
    rows.sort(key=lambda r: (not r.fits, r.model.weights_gb))
    return rows


def fit_problems(model: Model | None, t: InstanceType | None, worker_gpus: int) -> list[str]:
    """Why this model cannot run on `worker_gpus` GPUs of this type, before anything is paid for."""
    if t is None:
        return ["the instance type is not known; choose one on the Instances screen"]
    if model is None:
        return []  # a model outside the catalog: sizes unknown, rules check the rest
    problems: list[str] = []
    if worker_gpus > t.gpus:
        problems.append(f"a worker needs {worker_gpus} GPUs but {t.name} has {t.gpus}")
    if worker_gpus * t.gpu_memory_gb < model.min_gpu_memory_gb:
        problems.append(
            f"{model.id} needs {model.min_gpu_memory_gb:g} GB of GPU memory; {worker_gpus} × "
            f"{t.gpu_memory_gb:.0f} GB of {t.gpu_model} is {worker_gpus * t.gpu_memory_gb:.0f} GB"
        )
    if worker_gpus < model.min_gpus:
        problems.append(f"{model.id} needs at least {model.min_gpus} GPUs per worker")
    return problems


def zone_names(zones: list[Zone]) -> list[str]:
    return [z.name for z in zones]
