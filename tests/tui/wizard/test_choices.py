"""The questions' options and reasons (tui.choices) and the answers -> plan mapping (tui.answers), shared by
the TUI and `dynamo-wizard plan`: pure functions on our own dataclasses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dynamo_wizard.core.catalog import load_catalog
from dynamo_wizard.core.errors import PlanError
from dynamo_wizard.core.inventory import CapacityReservation, GpuOffering, Quota, RegionSummary, Zone
from dynamo_wizard.core.paths import draft_plan_path
from dynamo_wizard.core.plan import load_plan
from dynamo_wizard.tui.answers import Answers, discard_draft, load_draft, save_draft
from dynamo_wizard.tui.choices import (
    cluster_zones,
    default_type,
    gpus_for,
    mode_choices,
    model_choices,
    parse_tags,
    rank_regions,
    reservation_rows,
    type_choices,
)

ROOT = Path(__file__).resolve().parents[3]
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
CATALOG = load_catalog()


def offering(name: str, zones: tuple[str, ...], price: float | None = None) -> GpuOffering:
    t = CATALOG.instance_types[name]
    return GpuOffering(name, t.family, t.gpus, t.gpu_model, t.gpu_memory_mib, t.vcpus, t.memory_mib,
                       t.efa_supported, t.max_efa_interfaces, zones, price, "pricing-api" if price else "catalog")


def summary(region: str, offerings: list[GpuOffering], quotas: tuple[float, float] = (64, 192),
            zones: str = "abc") -> RegionSummary:
    return RegionSummary(
        region=region,
        zones=[Zone(f"{region}{z}", f"{region[:2]}-az{i}", region) for i, z in enumerate(zones)],
        offerings=offerings,
        quotas=[Quota("L-DB2E81BA", "G", "G", "on-demand", quotas[0], region),
                Quota("L-417A185B", "P", "P", "on-demand", quotas[1], region),
                Quota("L-3819A6DF", "G spot", "G", "spot", quotas[0], region),
                Quota("L-7212CCBC", "P spot", "P", "spot", quotas[1], region)],
    )


def test_zones_without_an_eks_control_plane_are_not_cluster_zones() -> None:
    s = RegionSummary("us-east-1", zones=[
        Zone("us-east-1a", "use1-az6", "us-east-1"),
        Zone("us-east-1e", "use1-az3", "us-east-1", eks_control_plane=False),
        Zone("us-east-1-bos-1a", "use1-bos1-az1", "us-east-1", opt_in_required=True),
    ])
    keep, excluded = cluster_zones(s)
    assert keep == ["us-east-1a"]
    assert dict(excluded) == {"us-east-1e": "use1-az3 has no EKS control plane",
                              "us-east-1-bos-1a": "use1-bos1-az1 is an opt-in zone (Local/Wavelength Zone)"}


def test_regions_rank_by_families_in_one_zone_and_keep_unusable_ones_with_a_reason() -> None:
    wanted = ["g6e", "g7e", "p5"]
    spread = summary("eu-west-1", [offering("g6e.2xlarge", ("eu-west-1a",)), offering("g7e.2xlarge", ("eu-west-1b",)),
                                   offering("p5.48xlarge", ("eu-west-1c",))])
    together = summary("us-west-2", [offering("g6e.2xlarge", ("us-west-2a",)), offering("g7e.2xlarge", ("us-west-2a",))])
    nothing = summary("af-south-1", [offering("g5.xlarge", ("af-south-1a",))])
    no_quota = summary("us-east-2", [offering("g6e.2xlarge", ("us-east-2a",))], quotas=(0, 0))
    one_zone = summary("ap-east-9", [offering("g6e.2xlarge", ("ap-east-9a",))], zones="a")
    ranked = rank_regions([spread, nothing, together, no_quota, one_zone], wanted)
    assert [c.region for c in ranked][:2] == ["us-west-2", "eu-west-1"]  # 2 in one zone beats 1 (of 3 spread)
    by_region = {c.region: c for c in ranked}
    assert by_region["us-west-2"].best_zone == ("us-west-2a", 2)
    assert by_region["eu-west-1"].families_offered == ("g6e", "g7e", "p5")
    assert not by_region["af-south-1"].available and "offers none of g6e, g7e, p5" in by_region["af-south-1"].reason
    assert not by_region["us-east-2"].available and "quota is 0" in by_region["us-east-2"].reason
    assert not by_region["ap-east-9"].available and "EKS needs two" in by_region["ap-east-9"].reason
    assert all(not c.available for c in ranked[2:])


def test_types_say_why_they_cannot_be_used() -> None:
    s = summary("us-east-1", [offering("g6e.2xlarge", ("us-east-1a", "us-east-1b"), 2.0),
                              offering("g7e.12xlarge", ("us-east-1e",)),
                              offering("p5.48xlarge", ("us-east-1a",))], quotas=(64, 96))
    rows = {r.instance_type: r for r in type_choices(s, CATALOG, ["us-east-1a", "us-east-1b"])}
    assert rows["g6e.2xlarge"].available and rows["g6e.2xlarge"].price == 2.0
    assert rows["g6e.2xlarge"].price_source == "pricing-api"
    assert rows["g6e.4xlarge"].reason == "not offered in us-east-1"
    assert rows["g7e.12xlarge"].reason.startswith("offered only in zones the cluster cannot use: us-east-1e")
    assert not rows["p5.48xlarge"].available
    assert "P vCPU quota (on-demand 96, spot 96) is below the 192 vCPUs of one p5.48xlarge" in rows["p5.48xlarge"].reason
    assert set(CATALOG.families) == {r.family for r in rows.values()}  # every exact family, none hidden
    assert default_type(list(rows.values()), "g6e.2xlarge") == "g6e.2xlarge"
    assert default_type(list(rows.values()), "g6e.48xlarge") == "g6e.2xlarge"  # same family, cheapest usable
    assert default_type(list(rows.values()), "p5.48xlarge") == "g6e.2xlarge"


def test_reservations_fit_the_chosen_families_zones_and_time() -> None:
    def cr(i: str, t: str, zone: str, **kw: object) -> CapacityReservation:
        return CapacityReservation(id=i, instance_type=t, zone=zone, total=2, available=2,
                                   state=str(kw.pop("state", "active")),
                                   reservation_type=str(kw.pop("kind", "default")), **kw)  # type: ignore[arg-type]

    rows = {r.reservation.id: r for r in reservation_rows([
        cr("cr-1", "g6e.2xlarge", "us-east-1a"),
        cr("cr-2", "p5.48xlarge", "us-east-1a"),
        cr("cr-3", "g6e.2xlarge", "us-east-1e"),
        cr("cr-4", "g6e.2xlarge", "us-east-1a", state="expired"),
        cr("cr-5", "g6e.12xlarge", "us-east-1b", kind="capacity-block", end=NOW + timedelta(hours=3),
           start=NOW - timedelta(hours=1)),
        cr("cr-6", "g6e.2xlarge", "us-east-1a", end=NOW - timedelta(minutes=1)),
    ], ["g6e"], ["us-east-1a", "us-east-1b"], "g6e.2xlarge", NOW)}
    assert rows["cr-1"].fits and not rows["cr-1"].warnings
    assert rows["cr-2"].reason == "p5.48xlarge is not in the chosen families (g6e)"
    assert rows["cr-3"].reason == "us-east-1e is not a cluster zone"
    assert rows["cr-4"].reason == "state is expired"
    assert rows["cr-6"].reason == "has ended"
    assert rows["cr-5"].fits
    assert "Capacity Block ends in 3 h 00 min" in rows["cr-5"].warnings[1]
    assert "serves g6e.12xlarge, not the workers' g6e.2xlarge" in rows["cr-5"].warnings[0]


def test_modes_and_models_say_why_not() -> None:
    small = CATALOG.instance_types["g6e.2xlarge"]
    big = CATALOG.instance_types["p5.48xlarge"]
    modes = {m.mode: m for m in mode_choices(small, CATALOG)}
    assert modes["agg"].available and modes["disagg-tcp"].available
    assert not modes["disagg-efa"].available and "g6e.2xlarge has no EFA" in modes["disagg-efa"].reason
    assert all(m.available for m in mode_choices(big, CATALOG))
    on_small = {c.model.id: c for c in model_choices(CATALOG, small)}
    assert on_small["Qwen/Qwen3-0.6B"].fits and on_small["Qwen/Qwen3-0.6B"].gpus_needed == 1
    assert not on_small["Qwen/Qwen3-32B"].fits and "g6e.2xlarge has 1" in on_small["Qwen/Qwen3-32B"].reason
    on_big = {c.model.id: c for c in model_choices(CATALOG, big)}
    assert on_big["Qwen/Qwen3-32B"].fits and on_big["Qwen/Qwen3-32B"].gpus_needed == 1  # 72 GB on an 80 GB H100
    # Tensor parallel sizes are powers of two that hold the model.
    assert gpus_for(CATALOG.models["deepseek-ai/DeepSeek-R1"], big) == 16
    assert gpus_for(CATALOG.models["nvidia/NVIDIA-Nemotron-3-Super-120B-A12B-FP8"], big) == 2


def test_tags_parse_or_say_what_is_wrong() -> None:
    assert parse_tags("team=dynamo, env = prod") == {"team": "dynamo", "env": "prod"}
    with pytest.raises(ValueError, match="is not key=value"):
        parse_tags("team")
    with pytest.raises(ValueError, match="no tags given"):
        parse_tags(" , ")


@pytest.mark.parametrize("example", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.stem)
def test_answers_round_trip_every_example_plan(example: Path) -> None:
    plan = load_plan(example)
    assert Answers.from_plan(plan).to_plan() == plan


def test_defaults_make_the_guides_agg_plan() -> None:
    plan = Answers(zones=["us-east-1a", "us-east-1b"]).to_plan()
    assert (plan.region, plan.gpu.families, plan.serving.instance_type, plan.serving.mode.value,
            plan.serving.model) == ("us-east-1", ("g6e",), "g6e.2xlarge", "agg", "Qwen/Qwen3-0.6B")


def test_invalid_answers_are_refused_with_the_plans_own_message() -> None:
    with pytest.raises(PlanError) as err:
        Answers(deployment="Bad Name").to_plan()
    assert any(line.startswith("deployment:") for line in err.value.lines())
    with pytest.raises(PlanError, match="give reservation ids, tags, or both"):
        Answers(capacity="ids").to_plan()


def test_the_draft_is_kept_and_a_damaged_one_is_reported() -> None:
    assert load_draft() is None
    answers = Answers(deployment="kept", instance_type="g6e.4xlarge", mode="disagg-tcp", decode_replicas=2)
    save_draft(answers, "serving")
    draft = load_draft()
    assert draft is not None and draft.next_screen == "serving"
    assert draft.answers.to_plan() == answers.to_plan()
    draft_plan_path().write_text("apiVersion: dynamo-wizard/v1\nkind: Plan\ndeployment: [\n")
    with pytest.raises(PlanError, match="not valid YAML"):
        load_draft()
    discard_draft()
    assert load_draft() is None
