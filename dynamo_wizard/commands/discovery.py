"""Headless discovery commands: `dynamo-wizard gpus`, `reservations` and `preflight`, each with --json.

They run on the same code the TUI screens use (cloud.aws.AwsDiscovery, core.preflight). Gaps are never
silent: every call that failed is printed as a note (stderr for tables, `notes` in JSON).
Exit codes: 0 all well; 1 a preflight check failed, or a listing could not be made at all; 2 a bad plan
(raised by the plan loader, reported by cli.py).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from ..cloud.aws import AwsDiscovery, CredentialsError, default_region, discovery_from_env
from ..cloud.tools import check_tools
from ..core.catalog import load_catalog
from ..core.errors import WizardError
from ..core.inventory import CapacityReservation, GpuOffering, RegionSummary, Verdict
from ..core.plan import FAMILY_RE, Plan, load_plan
from ..core.preflight import failed, format_duration, quota_class
from ..core.preflight import run_preflight as judge
from ..core.redact import redact


def _region(args: argparse.Namespace) -> str:
    return getattr(args, "region", None) or default_region()


def _families(args: argparse.Namespace) -> list[str]:
    raw = getattr(args, "families", None)
    if not raw:
        return list(load_catalog().guide_families)
    families = [f.strip() for f in str(raw).split(",") if f.strip()]
    for f in families:
        if "." in f or not FAMILY_RE.match(f):
            raise WizardError(f"{f!r} is not an instance family",
                              "give families such as g6e,p5en (not instance types like g6e.2xlarge)")
    return families


def _print_notes(notes: list[str]) -> None:
    for n in notes:
        print(f"note: {redact(n)}", file=sys.stderr)


def _table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


# gpus ---------------------------------------------------------------------------------------------


def _quota_fit(summary: RegionSummary, o: GpuOffering) -> dict[str, Any]:
    qclass = quota_class(o.instance_type)
    od, spot = summary.quota(qclass, "on-demand"), summary.quota(qclass, "spot")
    return {
        "class": qclass,
        "on_demand_code": od.code if od else None,
        "on_demand_vcpus": od.value if od else None,
        "spot_code": spot.code if spot else None,
        "spot_vcpus": spot.value if spot else None,
        "on_demand_instances": math.floor(od.value / o.vcpus) if od and o.vcpus else None,
    }


def gpus_report(summary: RegionSummary, account: str, families: list[str]) -> dict[str, Any]:
    """What `gpus --json` prints: the types offered in the region, with zones, price and quota."""
    offers_failed = any("InstanceTypeOfferings" in n for n in summary.notes)
    shown = [o for o in summary.offerings if o.zones or offers_failed]
    return {
        "region": summary.region,
        "account": account,
        "families": families,
        "offerings": [dict(asdict(o), zones=list(o.zones), quota=_quota_fit(summary, o)) for o in shown],
        "quotas": [asdict(q) for q in summary.quotas],
        "zones": [asdict(z) for z in summary.zones],
        "notes": list(summary.notes),
    }


def run_gpus(args: argparse.Namespace) -> int:
    region, families = _region(args), _families(args)
    with discovery_from_env() as discovery:
        account = discovery.identity().account
        summary = discovery.region_summary(region, families, prices=True)
    report = gpus_report(summary, account, families)
    if getattr(args, "json", False):
        print(json.dumps(report, indent=2))
        return 0
    rows = []
    for o in report["offerings"]:
        q = o["quota"]
        zones = " ".join(z.removeprefix(region) for z in o["zones"]) or "?"
        price = "?" if o["on_demand_price"] is None else f"{o['on_demand_price']:.3f}" + (
            "" if o["price_source"] == "pricing-api" else "*")
        quota = "?" if q["on_demand_vcpus"] is None else f"{q['class']} {q['on_demand_vcpus']:g} vCPU = {q['on_demand_instances']}"
        efa = f"yes ({o['max_efa_interfaces']})" if o["efa_supported"] else "no"
        rows.append([o["instance_type"], str(o["gpus"]), o["gpu_model"], f"{o['gpu_memory_mib'] / 1024:.0f} GiB",
                     str(o["vcpus"]), efa, zones, price, quota])
    print(f"GPU instance types in {region} (account {account}), families {', '.join(families)}")
    print(_table(rows, ["TYPE", "GPUS", "GPU", "MEM/GPU", "VCPU", "EFA", "ZONES", "$/H", "ON-DEMAND QUOTA = INSTANCES"]))
    if any(o["price_source"] != "pricing-api" for o in report["offerings"]):
        print("* approximate price from the offline catalog")
    if not rows:
        print(f"(no instance of {', '.join(families)} is offered in {region})")
    _print_notes(report["notes"])
    return 0


# reservations -------------------------------------------------------------------------------------


def _iso(dt: datetime | None) -> str | None:
    return dt.astimezone(UTC).isoformat() if dt else None


def reservation_json(r: CapacityReservation) -> dict[str, Any]:
    data = asdict(r)
    data["start"], data["end"] = _iso(r.start), _iso(r.end)
    return data


def run_reservations(args: argparse.Namespace) -> int:
    region = _region(args)
    with discovery_from_env() as discovery:
        discovery.identity()
        reservations, notes = discovery.reservations(region)
    now = datetime.now(UTC)
    if getattr(args, "json", False):
        print(json.dumps({"region": region, "reservations": [reservation_json(r) for r in reservations],
                          "notes": notes}, indent=2))
    else:
        rows = []
        for r in sorted(reservations, key=lambda r: (r.state != "active", r.instance_type, r.id)):
            end = "-" if r.end is None else r.end.strftime("%Y-%m-%d %H:%M") + (
                f" ({format_duration(r.end - now)} left)" if r.end > now else " (ended)")
            kind = "Capacity Block" if r.reservation_type == "capacity-block" else "ODCR"
            tags = ",".join(f"{k}={v}" for k, v in sorted(r.tags.items()))
            rows.append([r.id, r.instance_type, r.zone, f"{r.available}/{r.total}", r.state, kind,
                         r.start.strftime("%Y-%m-%d %H:%M") if r.start else "-", end, r.match_criteria, tags])
        print(f"Capacity reservations in {region} (times UTC)")
        print(_table(rows, ["ID", "TYPE", "ZONE", "FREE", "STATE", "KIND", "START", "END", "MATCH", "TAGS"]))
        if not rows and not notes:
            print("(none)")
        _print_notes(notes)
    return 1 if notes and not reservations else 0


# preflight ----------------------------------------------------------------------------------------

_MARKS = {"ok": "✓", "error": "✗", "warning": "!", "info": "·"}


def _mark(v: Verdict) -> str:
    return _MARKS["ok"] if v.ok and v.severity != "info" else _MARKS["info"] if v.severity == "info" else (
        _MARKS["warning"] if v.severity == "warning" else _MARKS["error"])


def preflight_verdicts(plan_path: str, discovery: AwsDiscovery | None = None, now: datetime | None = None) -> list[Verdict]:
    return plan_verdicts(load_plan(plan_path), discovery, now)


def plan_verdicts(plan: Plan, discovery: AwsDiscovery | None = None, now: datetime | None = None) -> list[Verdict]:
    """Every preflight verdict for `plan`, from fresh discovery (what `preflight` prints and `apply` obeys)."""
    own = discovery is None
    d = discovery or discovery_from_env(refresh=True)
    try:
        identity, identity_error = None, ""
        try:
            identity = d.identity()
        except CredentialsError as err:
            identity_error = str(err)
        tools = check_tools()
        summary: RegionSummary | None = None
        reservations: list[CapacityReservation] | None = None
        notes: list[str] = []
        if identity is not None:
            summary = d.region_summary(plan.region, list(plan.gpu.families), prices=True)
            if plan.reservation is not None:
                found, notes = d.reservations(plan.region)
                reservations = None if notes and not found else found
        return judge(plan, identity=identity, identity_error=identity_error, tools=tools, summary=summary,
                     reservations=reservations, reservation_notes=notes, now=now or datetime.now(UTC))
    finally:
        if own:
            d.close()


def run_preflight(args: argparse.Namespace) -> int:
    verdicts = preflight_verdicts(args.plan)
    bad = failed(verdicts)
    if getattr(args, "json", False):
        print(json.dumps({"ok": not bad, "verdicts": [asdict(v) for v in verdicts]}, indent=2))
    else:
        for v in verdicts:
            print(redact(f"{_mark(v)} {v.check}: {v.detail}"))
            if v.fix and not v.ok:
                print(redact(f"    fix: {v.fix}"))
        print(f"\n{len(bad)} check(s) failed" if bad else "\nall checks passed")
    return 1 if bad else 0
