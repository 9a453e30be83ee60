"""Preflight: everything that must hold in the account before a plan is applied, as verdicts with fixes.

Pure: the caller gathers the facts (identity, tool checks, the region's discovery summary, its
reservations) and this module judges them. The review screen, `dynamo-wizard preflight` and `apply` use
the same verdicts.

Rules behind the judgements:
- The cluster and its GPU nodes live in the plan's zones (eksctl creates subnets there only); without
  zones, eksctl picks among the region's zones where EKS has a control plane. So the instance type must be
  offered in at least one of those zones.
- vCPU quotas: G and VT types count against L-DB2E81BA (on-demand) / L-3819A6DF (spot), P types against
  L-417A185B / L-7212CCBC. The need is instances x vCPUs per instance. Instances in an On-Demand Capacity
  Reservation count against the on-demand quota; instances in a Capacity Block do not. A plan allowed
  both on-demand and spot passes when either quota covers it.
- Capacity Blocks: EC2 terminates instances 30 minutes before the block ends (60 for UltraServer types);
  Auto Mode (Karpenter) starts draining the nodes 10 minutes before that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from .catalog import Catalog, family_of, load_catalog
from .inventory import CapacityReservation, GpuOffering, Identity, RegionSummary, ToolCheck, Verdict
from .plan import Plan
from .pricing import GpuInstanceSpec, format_cost, hourly_cost, instances_needed

OK_STATES = frozenset({"active"})
STARTING_STATES = frozenset({"scheduled", "pending", "payment-pending"})
BLOCK_TERMINATION_LEAD = timedelta(minutes=30)
ULTRASERVER_TERMINATION_LEAD = timedelta(minutes=60)
DRAIN_BEFORE_TERMINATION = timedelta(minutes=10)
BLOCK_ENDING_SOON = timedelta(hours=24)
# GPU nodes are requested once the cluster exists (eksctl takes about 11 minutes), so a reservation that
# starts within this long of "now" is ready in time.
DEFAULT_START_GRACE = timedelta(minutes=15)
# Families sold as UltraServers (the catalog's `ultraServer` flag wins when present).
ULTRASERVER_FAMILIES = frozenset({"p6e-gb200", "p6e-gb300", "trn2u"})

QUOTA_CODES: dict[tuple[str, str], tuple[str, str]] = {
    ("G", "on-demand"): ("L-DB2E81BA", "Running On-Demand G and VT instances"),
    ("P", "on-demand"): ("L-417A185B", "Running On-Demand P instances"),
    ("G", "spot"): ("L-3819A6DF", "All G and VT Spot Instance Requests"),
    ("P", "spot"): ("L-7212CCBC", "All P Spot Instance Requests"),
}

EKSCTL_INSTALL = ("install eksctl 0.200 or later (https://eksctl.io/installation/) or point DYNAMO_WIZARD_EKSCTL "
                  "at it")
HELM_INSTALL = "install helm 3 or 4 (https://helm.sh/docs/intro/install/) or point DYNAMO_WIZARD_HELM at it"


def quota_class(instance_type: str) -> str:
    """'P' for P types, 'G' for G and VT types: the EC2 vCPU quota the type counts against."""
    return "P" if family_of(instance_type).startswith("p") else "G"


def is_ultraserver(instance_type: str, catalog: Catalog | None = None) -> bool:
    family = family_of(instance_type)
    info = (catalog or load_catalog()).families.get(family) or {}
    return bool(info.get("ultraServer", False)) or family in ULTRASERVER_FAMILIES


def format_duration(delta: timedelta) -> str:
    """'2 d 3 h', '4 h 05 min', '12 min' (negative durations read as '0 min')."""
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {mins:02d} min"
    return f"{mins} min"


@dataclass(frozen=True)
class BlockWindow:
    """When a Capacity Block's nodes stop being usable."""

    end: datetime
    terminate_at: datetime  # EC2 starts terminating instances
    drain_at: datetime  # Auto Mode starts draining the nodes


def block_window(reservation: CapacityReservation, catalog: Catalog | None = None) -> BlockWindow | None:
    if reservation.reservation_type != "capacity-block" or reservation.end is None:
        return None
    lead = ULTRASERVER_TERMINATION_LEAD if is_ultraserver(reservation.instance_type, catalog) else BLOCK_TERMINATION_LEAD
    terminate_at = reservation.end - lead
    return BlockWindow(end=reservation.end, terminate_at=terminate_at, drain_at=terminate_at - DRAIN_BEFORE_TERMINATION)


def _t(dt: datetime | None) -> str:
    return dt.strftime("%Y-%m-%d %H:%M %Z").strip() if dt else "?"


def _markets(plan: Plan) -> tuple[str, ...]:
    if plan.reservation is None:
        return tuple(plan.gpu.capacity_types)
    return {"none": (), "on-demand": ("on-demand",), "on-demand-and-spot": ("on-demand", "spot")}[
        plan.reservation.fallback]


def _chosen_reservations(plan: Plan, reservations: Sequence[CapacityReservation]) -> list[CapacityReservation]:
    if plan.reservation is None:
        return []
    by_id = {r.id: r for r in reservations}
    chosen = [by_id[i] for i in plan.reservation.ids if i in by_id]
    tags = dict(plan.reservation.tags)
    if tags:
        chosen += [r for r in reservations
                   if r.id not in plan.reservation.ids and all(r.tags.get(k) == v for k, v in tags.items())]
    return chosen


def _credentials(identity: Identity | None, identity_error: str) -> Verdict:
    if identity is not None:
        who = f"account {identity.account} as {identity.arn}" + (f" (profile {identity.profile})" if identity.profile else "")
        return Verdict("credentials", True, who)
    return Verdict("credentials", False, identity_error or "no usable AWS credentials",
                   "configure credentials (`aws configure`, `aws sso login --profile NAME`, AWS_PROFILE or "
                   "--profile), or run `dynamo-wizard --sandbox`")


def _tools(tools: Sequence[ToolCheck]) -> list[Verdict]:
    verdicts: list[Verdict] = []
    by_name = {t.name: t for t in tools}
    for name, fix, required in (("eksctl", EKSCTL_INSTALL, True), ("helm", HELM_INSTALL, True),
                                ("kubectl", "optional: install kubectl to inspect the cluster by hand", False)):
        t = by_name.get(name)
        if t is None:
            if required:
                verdicts.append(Verdict(f"tool:{name}", False, f"{name} was not checked", fix))
            continue
        detail = t.message or (f"{name} {t.version} at {t.path}" if t.path else f"{name} not found")
        if t.ok:
            verdicts.append(Verdict(f"tool:{name}", True, detail, severity="error" if required else "info"))
        else:
            verdicts.append(Verdict(f"tool:{name}", False, detail, fix, severity="error" if required else "info"))
    return verdicts


def _spec(plan: Plan, summary: RegionSummary | None, catalog: Catalog) -> tuple[GpuInstanceSpec | None, GpuOffering | None]:
    offering = next((o for o in (summary.offerings if summary else []) if o.instance_type == plan.serving.instance_type),
                    None)
    if offering is not None:
        return offering, offering
    return catalog.instance_type(plan.serving.instance_type), None


def _zones(plan: Plan, summary: RegionSummary | None) -> list[Verdict]:
    if summary is None or not summary.zones:
        return [Verdict("zones", False, f"the zones of {plan.region} could not be listed",
                        "check the discovery notes above", severity="warning")]
    by_name = {z.name: z for z in summary.zones}
    cluster_zones = [z.name for z in summary.zones if z.eks_control_plane and not z.opt_in_required]
    if not plan.zones:
        return [Verdict("zones", True, f"eksctl will choose among {', '.join(cluster_zones)} (zones with an EKS "
                        "control plane)", severity="info")]
    problems: list[str] = []
    fixes: list[str] = []
    for z in plan.zones:
        zone = by_name.get(z)
        if zone is None:
            problems.append(f"{z} does not exist in {plan.region}")
            fixes.append(f"remove {z}; zones here are {', '.join(sorted(by_name))}")
        elif not zone.eks_control_plane:
            problems.append(f"{z} ({zone.zone_id}) is a zone where EKS has no control plane")
            fixes.append(f"remove {z} from zones")
    if len(plan.zones) < 2:
        problems.append("EKS needs subnets in at least two zones")
        others = [z for z in cluster_zones if z not in plan.zones]
        fixes.append(f"add another zone{', e.g. ' + others[0] if others else ''}")
    if problems:
        return [Verdict("zones", False, "; ".join(problems), "; ".join(fixes))]
    return [Verdict("zones", True, f"{', '.join(plan.zones)} all have an EKS control plane")]


def _offering(plan: Plan, summary: RegionSummary | None, offering: GpuOffering | None) -> Verdict:
    itype = plan.serving.instance_type
    if summary is None or offering is None:
        return Verdict("offering", False, f"could not check where {itype} is offered in {plan.region}",
                       f"`dynamo-wizard gpus --region {plan.region}` shows the offerings", severity="warning")
    if not offering.zones:
        return Verdict("offering", False, f"{itype} is not offered in any zone of {plan.region}",
                       "choose another region (`dynamo-wizard gpus --region R`) or another instance type")
    cluster_zones = {z.name for z in summary.zones if z.eks_control_plane and not z.opt_in_required}
    wanted = list(plan.zones) if plan.zones else sorted(cluster_zones) or sorted(offering.zones)
    offered = [z for z in wanted if z in offering.zones]
    if not offered:
        usable = sorted(z for z in offering.zones if z in cluster_zones) or sorted(offering.zones)
        where = "the plan's zones" if plan.zones else "any zone with an EKS control plane"
        return Verdict("offering", False, f"{itype} is not offered in {where} ({', '.join(wanted)}); "
                       f"it is offered in {', '.join(sorted(offering.zones))}",
                       f"add {usable[0]} to zones" if plan.zones else "choose another instance type or region")
    missing = [z for z in wanted if z not in offering.zones]
    detail = f"{itype} is offered in {', '.join(offered)}"
    if missing and plan.zones:
        detail += f" (not in {', '.join(missing)}: GPU nodes start only in the zones listed first)"
    return Verdict("offering", True, detail)


def _quota(plan: Plan, summary: RegionSummary | None, spec: GpuInstanceSpec | None,
           chosen: Sequence[CapacityReservation]) -> list[Verdict]:
    if spec is None:
        return [Verdict("quota", False, f"{plan.serving.instance_type} is unknown, so its vCPU need is unknown",
                        "choose an instance type listed by `dynamo-wizard gpus`")]
    need = instances_needed(plan, spec)
    verdicts: list[Verdict] = []
    if need.unplaceable:
        verdicts.append(Verdict("workers", False, f"{', '.join(need.unplaceable)} workers ask for more GPUs than a "
                                f"{plan.serving.instance_type} has ({spec.gpus})",
                                "lower the workers' gpus or choose a larger instance type"))
    markets = list(_markets(plan))
    odcr = [r for r in chosen if r.reservation_type != "capacity-block"]
    block_instances = sum(r.total for r in chosen if r.reservation_type == "capacity-block")
    if odcr and "on-demand" not in markets:
        markets.insert(0, "on-demand")  # ODCR instances count against the on-demand quota
    if not markets:
        return verdicts + [Verdict("quota", True, "reserved capacity only (a Capacity Block needs no vCPU quota)",
                                   severity="info")]
    qclass = quota_class(plan.serving.instance_type)
    results: list[tuple[str, float, float | None, str, str]] = []  # market, need, value, code, name
    for market in markets:
        instances = need.instances if market != "on-demand" else max(0, need.instances - block_instances)
        vcpus = float(instances * spec.vcpus)
        code, name = QUOTA_CODES[(qclass, market)]
        q = summary.quota(qclass, market) if summary else None
        results.append((market, vcpus, q.value if q else None, code, name))
    enough = [r for r in results if r[2] is not None and r[2] >= r[1]]
    unknown = [r for r in results if r[2] is None]
    described = "; ".join(
        f"{m}: {n:g} vCPUs needed ({need.instances} x {spec.vcpus}), quota {code} is "
        + (f"{v:g}" if v is not None else "unknown") for m, n, v, code, _ in results)
    if enough:
        return verdicts + [Verdict("quota", True, described + " (running instances of the same class also count)")]
    if unknown and len(unknown) == len(results):
        m, n, _, code, name = unknown[0]
        return verdicts + [Verdict("quota", False, described,
                                   f"check {code} ({name}) is at least {n:g}: aws service-quotas get-service-quota "
                                   f"--service-code ec2 --quota-code {code} --region {plan.region}",
                                   severity="warning")]
    m, n, v, code, name = next(r for r in results if r[2] is not None)
    raise_by = n - (v or 0.0)
    return verdicts + [Verdict(
        "quota", False, described,
        f"raise {code} ({name}) in {plan.region} by {raise_by:g} to {n:g} vCPUs: aws service-quotas "
        f"request-service-quota-increase --service-code ec2 --quota-code {code} --desired-value {n:g} "
        f"--region {plan.region} (or the Service Quotas console)")]


def _reservations(plan: Plan, summary: RegionSummary | None, reservations: Sequence[CapacityReservation] | None,
                  reservation_notes: Sequence[str], spec: GpuInstanceSpec | None, now: datetime,
                  start_by: datetime, catalog: Catalog) -> list[Verdict]:
    res = plan.reservation
    if res is None:
        return []
    if reservations is None:
        return [Verdict("reservations", False, "; ".join(reservation_notes) or
                        f"the reservations of {plan.region} could not be listed",
                        "grant ec2:DescribeCapacityReservations, then run preflight again")]
    verdicts: list[Verdict] = []
    known = {r.id for r in reservations}
    for rid in res.ids:
        if rid not in known:
            verdicts.append(Verdict(f"reservation:{rid}", False, f"{rid} was not found in {plan.region}",
                                    f"check the id and the region (`dynamo-wizard reservations --region {plan.region}`)"))
    chosen = _chosen_reservations(plan, reservations)
    if res.tags and not any(r.id not in res.ids for r in chosen):
        verdicts.append(Verdict("reservation:tags", False, f"no other reservation in {plan.region} has the tags "
                                f"{dict(res.tags)}", "check the tags, or name the reservation by id",
                                severity="error" if not res.ids else "warning"))
    cluster_zones = {z.name for z in summary.zones if z.eks_control_plane} if summary and summary.zones else None
    usable = 0
    for r in chosen:
        check = f"reservation:{r.id}"
        wrong: list[tuple[str, str]] = []
        if r.instance_type != plan.serving.instance_type:
            wrong.append((f"is for {r.instance_type}, but the workers run on {plan.serving.instance_type}",
                          f"set serving.instanceType to {r.instance_type}, or choose a {plan.serving.instance_type} "
                          "reservation"))
        if plan.zones and r.zone not in plan.zones:
            wrong.append((f"is in {r.zone}, not in the plan's zones ({', '.join(plan.zones)})", f"add {r.zone} to zones"))
        elif not plan.zones and cluster_zones is not None and r.zone not in cluster_zones:
            wrong.append((f"is in {r.zone}, where EKS cannot place the cluster's subnets",
                          "choose a reservation in another zone"))
        state = r.state.lower()
        if r.end is not None and r.end <= now:
            wrong.append((f"ended {_t(r.end)}", "choose an active or scheduled reservation"))
        elif state in OK_STATES:
            pass
        elif state in STARTING_STATES:
            if r.start is None or r.start > start_by:
                wrong.append((f"is {r.state} and starts {_t(r.start)}, after {_t(start_by)}",
                              "apply once it is active, or set reservation.fallback: on-demand"))
        else:
            wrong.append((f"is {r.state}", "choose an active or scheduled reservation"))
        window = block_window(r, catalog)
        if window is not None and window.drain_at <= now < window.end:
            wrong.append((f"is a Capacity Block ending {_t(window.end)}; its nodes drain from {_t(window.drain_at)} "
                          "(already begun)", "choose another reservation, or set reservation.fallback: on-demand"))
        if wrong:
            # One the plan names is an error; one only its tags pick up is left out by Karpenter as well,
            # so it is a warning (the capacity check below says whether what is left is enough).
            verdicts.append(Verdict(check, False, f"{r.id} " + "; ".join(w for w, _ in wrong),
                                    "; ".join(dict.fromkeys(f for _, f in wrong)),
                                    severity="error" if r.id in res.ids else "warning"))
            continue
        usable += r.available if state in OK_STATES else r.total
        kind = "Capacity Block" if r.reservation_type == "capacity-block" else "On-Demand Capacity Reservation"
        detail = (f"{r.id} ({kind}) {r.instance_type} in {r.zone}, {r.state}, "
                  f"{r.available}/{r.total} free")
        verdicts.append(Verdict(check, True, detail))
        if window is not None:
            left = window.drain_at - now
            ending = (f"{r.id} ends {_t(window.end)}: EC2 terminates its instances from {_t(window.terminate_at)}, "
                      f"nodes drain from {_t(window.drain_at)} — {format_duration(left)} left")
            if left < BLOCK_ENDING_SOON:
                verdicts.append(Verdict(f"capacity-block:{r.id}", False, ending,
                                        "extend the block (aws ec2 purchase-capacity-block-extension), plan to be "
                                        "done by then, or set reservation.fallback: on-demand", severity="warning"))
            else:
                verdicts.append(Verdict(f"capacity-block:{r.id}", True, ending, severity="info"))
    if spec is not None and chosen:
        needed = instances_needed(plan, spec).instances
        message = f"the workers need {needed} {plan.serving.instance_type} instance(s); usable reservations have {usable} free"
        if usable >= needed:
            verdicts.append(Verdict("reservation:capacity", True, message))
        elif res.fallback == "none":
            verdicts.append(Verdict("reservation:capacity", False, message,
                                    "set reservation.fallback: on-demand, reserve more, or lower the replicas"))
        else:
            verdicts.append(Verdict("reservation:capacity", False, message + f"; the rest come from {res.fallback}",
                                    severity="warning"))
    return verdicts


def run_preflight(plan: Plan, *, identity: Identity | None, tools: Sequence[ToolCheck],
                  summary: RegionSummary | None, reservations: Sequence[CapacityReservation] | None,
                  now: datetime, identity_error: str = "", reservation_notes: Sequence[str] = (),
                  start_by: datetime | None = None, catalog: Catalog | None = None) -> list[Verdict]:
    """Every check, in the order the review screen shows them. `now` must be timezone-aware.

    start_by: a scheduled reservation passes when it starts by then (default: now + 15 minutes, about
    when the cluster exists and GPU nodes are first requested).
    """
    catalog = catalog or load_catalog()
    start_by = start_by or now + DEFAULT_START_GRACE
    if not reservations and reservation_notes:
        reservations = None  # an empty list that comes with failure notes is "could not list", not "none"
    verdicts = [_credentials(identity, identity_error)]
    verdicts += _tools(tools)
    for note in (summary.notes if summary else []):
        verdicts.append(Verdict("discovery", False, note, "the checks that need this data are marked below",
                                severity="warning"))
    spec, offering = _spec(plan, summary, catalog)
    verdicts += _zones(plan, summary)
    verdicts.append(_offering(plan, summary, offering))
    chosen = _chosen_reservations(plan, reservations or [])
    verdicts += _quota(plan, summary, spec, chosen)
    verdicts += _reservations(plan, summary, reservations, reservation_notes, spec, now, start_by, catalog)
    if spec is not None:
        price = offering.on_demand_price if offering else getattr(spec, "on_demand_price", None)
        source = offering.price_source if offering else "catalog"
        estimate = hourly_cost(plan, spec, price, source)
        verdicts.append(Verdict("cost", True, format_cost(estimate), severity="info"))
    return verdicts


def failed(verdicts: Sequence[Verdict]) -> list[Verdict]:
    """The verdicts that stop an apply (errors); warnings and info never do."""
    return [v for v in verdicts if not v.ok and v.severity == "error"]
