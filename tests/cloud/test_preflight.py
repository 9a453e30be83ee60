"""Preflight verdicts (pure): each failure names its fix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dynamo_wizard.core.catalog import load_catalog
from dynamo_wizard.core.inventory import (
    CapacityReservation,
    GpuOffering,
    Identity,
    Quota,
    RegionSummary,
    ToolCheck,
    Verdict,
    Zone,
)
from dynamo_wizard.core.plan import Plan, plan_from_dict
from dynamo_wizard.core.preflight import block_window, failed, format_duration, run_preflight

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ZONE_IDS = {"a": "use1-az6", "b": "use1-az1", "c": "use1-az2", "d": "use1-az4", "e": "use1-az3", "f": "use1-az5"}
ME = Identity(account="123456789012", arn="arn:aws:iam::123456789012:user/dev")
TOOLS = [ToolCheck("eksctl", "/usr/local/bin/eksctl", "0.230.0", True), ToolCheck("helm", "/usr/bin/helm", "3.19.0", True),
         ToolCheck("kubectl", None, None, False, "kubectl not found on PATH")]


def plan(**over: Any) -> Plan:
    data: dict[str, Any] = {
        "apiVersion": "dynamo-wizard/v1", "kind": "Plan", "deployment": "demo", "region": "us-east-1",
        "gpu": {"families": ["g6e", "p5"], "capacityTypes": ["on-demand"]},
        "serving": {"mode": "agg", "instanceType": "g6e.2xlarge", "model": "Qwen/Qwen3-0.6B",
                    "worker": {"replicas": 2, "gpus": 1, "tensorParallel": 1}},
    }
    for key, value in over.items():
        if key == "serving":
            data["serving"] = {**data["serving"], **value}
        else:
            data[key] = value
    return plan_from_dict(data)


def summary(quotas: dict[tuple[str, str], float] | None = None) -> RegionSummary:
    catalog = load_catalog()
    zones = {"g6e.2xlarge": ("us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d"),
             "p5.48xlarge": tuple(f"us-east-1{x}" for x in "abcdef"),
             "p6e-gb200.36xlarge": ("us-east-1a",)}
    offerings = []
    for name, where in zones.items():
        t = catalog.instance_type(name)
        gpus, vcpus = (t.gpus, t.vcpus) if t else (4, 144)
        offerings.append(GpuOffering(name, name.split(".")[0], gpus, "NVIDIA", 81920, vcpus, 1, True, 1, where,
                                     t.on_demand_price if t else None, "pricing-api"))
    quota_values = quotas if quotas is not None else {("G", "on-demand"): 192, ("P", "on-demand"): 192,
                                                      ("G", "spot"): 192, ("P", "spot"): 192}
    codes = {("G", "on-demand"): "L-DB2E81BA", ("P", "on-demand"): "L-417A185B", ("G", "spot"): "L-3819A6DF",
             ("P", "spot"): "L-7212CCBC"}
    return RegionSummary(
        region="us-east-1",
        zones=[Zone(f"us-east-1{x}", zid, "us-east-1", eks_control_plane=zid != "use1-az3") for x, zid in ZONE_IDS.items()],
        offerings=offerings,
        quotas=[Quota(codes[k], "q", k[0], k[1], v, "us-east-1") for k, v in quota_values.items()],
    )


def check(verdicts: list[Verdict], name: str) -> Verdict:
    return next(v for v in verdicts if v.check == name)


def reservation(**over: Any) -> CapacityReservation:
    base: dict[str, Any] = dict(id="cr-0a1b2c3d4e5f60718", instance_type="g6e.2xlarge", zone="us-east-1a", total=2,
                                available=2, state="active", reservation_type="default", start=NOW - timedelta(days=1))
    base.update(over)
    return CapacityReservation(**base)


def test_all_well_has_no_failures_and_shows_the_cost() -> None:
    verdicts = run_preflight(plan(), identity=ME, tools=TOOLS, summary=summary(), reservations=[], now=NOW)
    assert failed(verdicts) == []
    assert check(verdicts, "quota").ok and "16 vCPUs needed (2 x 8)" in check(verdicts, "quota").detail
    assert check(verdicts, "tool:kubectl").severity == "info"  # optional
    cost = check(verdicts, "cost")
    assert cost.detail.startswith("$4.58/h (2 x g6e.2xlarge at $2.242 + EKS $0.10)")


def test_missing_credentials_and_tools_fail_with_fixes() -> None:
    tools = [ToolCheck("eksctl", "/opt/eksctl", "0.190.0", False, "eksctl 0.190.0 at /opt/eksctl is too old"),
             ToolCheck("helm", None, None, False, "helm not found on PATH")]
    verdicts = run_preflight(plan(), identity=None, identity_error="no usable AWS credentials (NoCredentialsError)",
                             tools=tools, summary=None, reservations=None, now=NOW)
    bad = {v.check: v for v in failed(verdicts)}
    assert {"credentials", "tool:eksctl", "tool:helm"} <= set(bad)
    assert "aws sso login" in bad["credentials"].fix and "--sandbox" in bad["credentials"].fix
    assert "0.200" in bad["tool:eksctl"].fix and "helm 3 or 4" in bad["tool:helm"].fix
    # Without discovery data the region checks are warnings, never silent passes.
    assert check(verdicts, "offering").severity == "warning" and not check(verdicts, "offering").ok


def test_type_not_offered_in_the_chosen_zones() -> None:
    p = plan(zones=["us-east-1e", "us-east-1f"])  # us-east-1e is use1-az3, and g6e.2xlarge is in a-d only
    verdicts = run_preflight(p, identity=ME, tools=TOOLS, summary=summary(), reservations=[], now=NOW)
    zones, offering = check(verdicts, "zones"), check(verdicts, "offering")
    assert not zones.ok and "use1-az3" in zones.detail and "remove us-east-1e" in zones.fix
    assert not offering.ok and "not offered in the plan's zones" in offering.detail
    assert offering.fix == "add us-east-1a to zones"
    one_zone = run_preflight(plan(zones=["us-east-1a"]), identity=ME, tools=TOOLS, summary=summary(),
                             reservations=[], now=NOW)
    assert "at least two zones" in check(one_zone, "zones").detail and check(one_zone, "offering").ok


def test_quota_too_low_names_the_code_and_how_much_to_raise() -> None:
    p = plan(serving={"worker": {"replicas": 30, "gpus": 1, "tensorParallel": 1}})  # 30 x 8 vCPUs = 240
    verdicts = run_preflight(p, identity=ME, tools=TOOLS, summary=summary(), reservations=[], now=NOW)
    q = check(verdicts, "quota")
    assert not q.ok and q.severity == "error"
    assert "raise L-DB2E81BA" in q.fix and "by 48 to 240 vCPUs" in q.fix
    assert "request-service-quota-increase --service-code ec2 --quota-code L-DB2E81BA --desired-value 240" in q.fix
    # Spot allowed too and its quota is large enough: the plan can run.
    both = plan(serving={"worker": {"replicas": 30, "gpus": 1, "tensorParallel": 1}},
                gpu={"families": ["g6e"], "capacityTypes": ["on-demand", "spot"]})
    quotas = {("G", "on-demand"): 192, ("G", "spot"): 256, ("P", "on-demand"): 0, ("P", "spot"): 0}
    assert check(run_preflight(both, identity=ME, tools=TOOLS, summary=summary(quotas), reservations=[], now=NOW),
                 "quota").ok
    unknown = run_preflight(p, identity=ME, tools=TOOLS, summary=summary({}), reservations=[], now=NOW)
    assert check(unknown, "quota").severity == "warning" and "get-service-quota" in check(unknown, "quota").fix


def _p5_plan(fallback: str = "on-demand", ids: tuple[str, ...] = ("cr-0c3d4e5f60718293a",)) -> Plan:
    return plan(zones=["us-east-1a", "us-east-1b"], gpu={"families": ["p5"], "capacityTypes": ["on-demand"]},
                reservation={"ids": list(ids), "fallback": fallback},
                serving={"mode": "disagg-efa", "instanceType": "p5.48xlarge", "model": "Qwen/Qwen3-32B", "worker": None,
                         "prefill": {"replicas": 6, "gpus": 2, "tensorParallel": 2},
                         "decode": {"replicas": 2, "gpus": 2, "tensorParallel": 2}})


def test_capacity_block_ending_soon_is_flagged_with_the_time_left() -> None:
    block = reservation(id="cr-0c3d4e5f60718293a", instance_type="p5.48xlarge", total=1, available=1,
                        reservation_type="capacity-block", end=NOW + timedelta(hours=3))
    verdicts = run_preflight(_p5_plan(), identity=ME, tools=TOOLS, summary=summary(), reservations=[block], now=NOW)
    ending = check(verdicts, "capacity-block:cr-0c3d4e5f60718293a")
    # Ends 15:00; EC2 terminates from 14:30; nodes drain from 14:20: 2 h 20 min from 12:00.
    assert ending.severity == "warning" and "2 h 20 min left" in ending.detail and "14:30" in ending.detail
    capacity = check(verdicts, "reservation:capacity")
    assert "need 3" in capacity.detail and "1 free" in capacity.detail and capacity.severity == "warning"
    # The block's instance needs no quota; the other two run on-demand: 2 x 192 vCPUs against 192.
    q = check(verdicts, "quota")
    assert not q.ok and "raise L-417A185B" in q.fix and "by 192 to 384" in q.fix
    late = run_preflight(_p5_plan(), identity=ME, tools=TOOLS, summary=summary(), reservations=[block],
                         now=NOW + timedelta(hours=2, minutes=25))
    assert not check(late, "reservation:cr-0c3d4e5f60718293a").ok and "already begun" in check(
        late, "reservation:cr-0c3d4e5f60718293a").detail


def test_ultraserver_blocks_terminate_an_hour_before_the_end() -> None:
    end = NOW + timedelta(hours=5)
    normal = block_window(reservation(instance_type="p5.48xlarge", reservation_type="capacity-block", end=end))
    ultra = block_window(reservation(instance_type="p6e-gb200.36xlarge", reservation_type="capacity-block", end=end))
    assert normal is not None and ultra is not None
    assert (normal.terminate_at, normal.drain_at) == (end - timedelta(minutes=30), end - timedelta(minutes=40))
    assert (ultra.terminate_at, ultra.drain_at) == (end - timedelta(minutes=60), end - timedelta(minutes=70))
    assert block_window(reservation()) is None  # an ODCR has no block window
    assert format_duration(timedelta(hours=50)) == "2 d 2 h" and format_duration(timedelta(minutes=-5)) == "0 min"


@pytest.mark.parametrize(("res", "words", "fix"), [
    (reservation(instance_type="g7e.12xlarge"), "is for g7e.12xlarge", "set serving.instanceType to g7e.12xlarge"),
    (reservation(zone="us-east-1c"), "not in the plan's zones", "add us-east-1c to zones"),
    (reservation(state="expired"), "is expired", "choose an active or scheduled reservation"),
    (reservation(state="scheduled", start=NOW + timedelta(hours=2)), "starts 2026-11-28 14:00", "once it is active"),
])
def test_reservation_that_does_not_fit(res: CapacityReservation, words: str, fix: str) -> None:
    p = plan(zones=["us-east-1a", "us-east-1b"], reservation={"ids": [res.id], "fallback": "none"})
    verdicts = run_preflight(p, identity=ME, tools=TOOLS, summary=summary(), reservations=[res], now=NOW)
    v = check(verdicts, f"reservation:{res.id}")
    assert not v.ok and words in v.detail and fix in v.fix
    assert not check(verdicts, "reservation:capacity").ok  # nothing usable and no fallback


def test_reservations_that_fit_or_start_in_time() -> None:
    soon = reservation(state="scheduled", start=NOW + timedelta(minutes=10), available=0)
    p = plan(zones=["us-east-1a", "us-east-1b"], reservation={"ids": [soon.id], "fallback": "none"})
    verdicts = run_preflight(p, identity=ME, tools=TOOLS, summary=summary(), reservations=[soon], now=NOW)
    assert check(verdicts, f"reservation:{soon.id}").ok and check(verdicts, "reservation:capacity").ok
    assert failed(verdicts) == []
    tagged = plan(zones=["us-east-1a", "us-east-1b"], reservation={"tags": {"team": "ml"}, "fallback": "none"})
    found = run_preflight(tagged, identity=ME, tools=TOOLS, summary=summary(),
                          reservations=[reservation(tags={"team": "ml"})], now=NOW)
    assert failed(found) == []
    missing = run_preflight(tagged, identity=ME, tools=TOOLS, summary=summary(), reservations=[reservation()], now=NOW)
    assert not check(missing, "reservation:tags").ok and "no other reservation" in check(missing, "reservation:tags").detail
    unknown_id = run_preflight(_p5_plan(ids=("cr-0123456789abcdef0",)), identity=ME, tools=TOOLS, summary=summary(),
                               reservations=[], now=NOW)
    assert "was not found in us-east-1" in check(unknown_id, "reservation:cr-0123456789abcdef0").detail
    listing_failed = run_preflight(_p5_plan(), identity=ME, tools=TOOLS, summary=summary(), reservations=None,
                                   reservation_notes=["us-east-1: ec2.DescribeCapacityReservations was denied"], now=NOW)
    assert not check(listing_failed, "reservations").ok and "denied" in check(listing_failed, "reservations").detail
    # What discovery returns when the listing fails: an empty list with a note. Not "not found".
    empty_with_note = run_preflight(_p5_plan(), identity=ME, tools=TOOLS, summary=summary(), reservations=[],
                                    reservation_notes=["us-east-1: ec2.DescribeCapacityReservations was denied"],
                                    now=NOW)
    assert not check(empty_with_note, "reservations").ok
    assert not any(v.check.startswith("reservation:cr-") for v in empty_with_note)


def test_discovery_notes_become_visible_warnings() -> None:
    s = summary()
    s.notes.append("us-east-1: pricing.GetProducts(g6e.2xlarge) was throttled")
    verdicts = run_preflight(plan(), identity=ME, tools=TOOLS, summary=s, reservations=[], now=NOW)
    notes = [v for v in verdicts if v.check == "discovery"]
    assert len(notes) == 1 and notes[0].severity == "warning" and "throttled" in notes[0].detail
    assert failed(verdicts) == []


def test_a_reservation_past_its_end_is_refused_even_when_ec2_still_says_active() -> None:
    ended = reservation(end=NOW - timedelta(minutes=1))
    p = plan(zones=["us-east-1a", "us-east-1b"], reservation={"ids": [ended.id], "fallback": "none"})
    v = check(run_preflight(p, identity=ME, tools=TOOLS, summary=summary(), reservations=[ended], now=NOW),
              f"reservation:{ended.id}")
    assert not v.ok and v.severity == "error" and "ended 2026-11-28 11:59" in v.detail


def test_a_misfit_picked_only_by_tags_is_a_warning_when_another_one_fits() -> None:
    good = reservation(tags={"team": "ml"})
    other = reservation(id="cr-0ffffffffffffffff", instance_type="g7e.12xlarge", tags={"team": "ml"})
    p = plan(zones=["us-east-1a", "us-east-1b"], reservation={"tags": {"team": "ml"}, "fallback": "none"})
    verdicts = run_preflight(p, identity=ME, tools=TOOLS, summary=summary(), reservations=[good, other], now=NOW)
    misfit = check(verdicts, "reservation:cr-0ffffffffffffffff")
    assert not misfit.ok and misfit.severity == "warning" and "is for g7e.12xlarge" in misfit.detail
    assert failed(verdicts) == [] and check(verdicts, "reservation:capacity").ok
    # Named by id, the same misfit is an error.
    named = plan(zones=["us-east-1a", "us-east-1b"],
                 reservation={"ids": [other.id], "tags": {"team": "ml"}, "fallback": "none"})
    verdicts = run_preflight(named, identity=ME, tools=TOOLS, summary=summary(), reservations=[good, other], now=NOW)
    assert check(verdicts, "reservation:cr-0ffffffffffffffff").severity == "error"
