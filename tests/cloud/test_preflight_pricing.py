"""Cost math and sizing (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dynamo_wizard.core.catalog import load_catalog
from dynamo_wizard.core.plan import load_plan, plan_from_dict
from dynamo_wizard.core.pricing import EKS_CLUSTER_FEE_PER_HOUR, format_cost, hourly_cost, instances_needed

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize(("example", "instances", "vcpus"), [
    ("agg.yaml", 1, 8),  # 1 worker x 1 GPU on g6e.2xlarge (1 GPU)
    ("disagg-tcp.yaml", 2, 16),  # prefill and decode each on their own node
    ("disagg-efa.yaml", 2, 96),  # g7e.12xlarge has 2 GPUs, but roles do not share nodes
    ("disagg-p5-reserved.yaml", 3, 576),  # 6 prefill x 2 GPUs = 2 nodes of 8 GPUs; 2 decode x 2 = 1 node
])
def test_instances_needed_for_the_examples(example: str, instances: int, vcpus: int) -> None:
    plan = load_plan(EXAMPLES / example)
    spec = load_catalog().instance_type(plan.serving.instance_type)
    assert spec is not None
    need = instances_needed(plan, spec)
    assert (need.instances, need.vcpus, need.unplaceable) == (instances, vcpus, ())


def test_hourly_cost_adds_the_cluster_fee_and_says_what_is_left_out() -> None:
    plan = load_plan(EXAMPLES / "disagg-p5-reserved.yaml")
    spec = load_catalog().instance_type("p5.48xlarge")
    assert spec is not None
    estimate = hourly_cost(plan, spec, 55.04, "pricing-api")
    assert estimate.total_per_hour == pytest.approx(3 * 55.04 + EKS_CLUSTER_FEE_PER_HOUR)
    assert estimate.per_month == round(estimate.total_per_hour * 730, 2)  # type: ignore[operator]
    assert estimate.auto_mode_fee_per_hour is None and any("Auto Mode" in n for n in estimate.notes)
    assert any("Capacity Block" in n for n in estimate.notes)  # the plan holds a reservation
    with_fee = hourly_cost(plan, spec, 55.04, "pricing-api", auto_mode_fee_per_instance=6.6)
    assert with_fee.total_per_hour == pytest.approx(3 * (55.04 + 6.6) + 0.10)
    assert "Auto Mode $19.800" in format_cost(with_fee)
    unknown = hourly_cost(plan, spec, None)
    assert unknown.total_per_hour is None and unknown.price_source == "unknown" and format_cost(unknown).startswith("unknown")


def test_a_worker_larger_than_the_node_is_unplaceable() -> None:
    data = load_plan(EXAMPLES / "agg.yaml").to_dict()
    data["serving"]["worker"] = {"replicas": 2, "gpus": 4, "tensorParallel": 4}
    big = plan_from_dict(data)
    spec = load_catalog().instance_type("g6e.2xlarge")
    assert spec is not None
    need = instances_needed(big, spec)
    assert need.unplaceable == ("worker",) and need.instances == 2
