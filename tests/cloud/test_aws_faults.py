"""Faults: throttling on a share of calls still completes; AccessDenied in one region gives a partial result."""

from __future__ import annotations

import boto3

from dynamo_wizard.cloud.aws import AwsDiscovery
from dynamo_wizard.sandbox.awsgaps import SandboxState

REGIONS = ["us-east-1", "us-west-2"]
FAMILIES = ["g6e", "g7e", "p5"]


def _view(summaries: list) -> list:  # type: ignore[type-arg]
    return [(s.region, [(o.instance_type, o.zones, o.on_demand_price, o.price_source) for o in s.offerings],
             sorted((q.code, q.value) for q in s.quotas), [z.name for z in s.zones]) for s in summaries]


def test_twenty_percent_throttling_still_completes_with_the_same_answer(
        aws_session: boto3.Session, gap_state: SandboxState, request_log: list[str]) -> None:
    with AwsDiscovery(aws_session, max_workers=8) as calm:
        expected = calm.region_summaries(REGIONS, FAMILIES, prices=True)
    calls_without_faults = len(request_log)
    gap_state.faults.throttle_share = 0.2
    with AwsDiscovery(aws_session, max_workers=8, refresh=True) as throttled:
        got = throttled.region_summaries(REGIONS, FAMILIES, prices=True)
    assert all(s.notes == [] for s in got), [s.notes for s in got]
    assert _view(got) == _view(expected)
    assert gap_state.faults.throttled >= 0.15 * (len(request_log) - calls_without_faults)
    assert gap_state.faults.throttled > 5  # retried, not skipped


def test_access_denied_in_one_region_gives_a_partial_result_and_notes(
        aws_session: boto3.Session, gap_state: SandboxState) -> None:
    gap_state.faults.deny_regions = {"us-west-2"}
    with AwsDiscovery(aws_session, max_workers=8) as d:
        east, west = d.region_summaries(["us-east-1", "us-west-2"], FAMILIES, prices=True)
        reservations, notes = d.reservations("us-west-2")
    assert east.notes == [] and east.offerings and east.quotas
    assert west.zones == [] and west.quotas == []
    # The specs (asked once, of the home region) still describe west's types; where they are offered is
    # unknown. A note for each of west's calls that was denied: region, call and reason.
    assert {o.family for o in west.offerings} == set(FAMILIES)
    assert all(o.zones == () for o in west.offerings)
    for call in ("ec2.DescribeAvailabilityZones", "ec2.DescribeInstanceTypeOfferings",
                 "service-quotas.GetServiceQuota"):
        assert any(n.startswith(f"us-west-2: {call}") and "denied (UnauthorizedOperation" in n or
                   n.startswith(f"us-west-2: {call}") and "denied (AccessDeniedException" in n
                   for n in west.notes), (call, west.notes)
    assert any("grant ec2:DescribeInstanceTypeOfferings" in n for n in west.notes)
    assert reservations == [] and len(notes) == 1 and "us-west-2: ec2.DescribeCapacityReservations" in notes[0]
    assert gap_state.faults.denied >= 5


def test_specs_denied_in_the_home_region_fall_back_to_the_catalog_everywhere(
        aws_session: boto3.Session, gap_state: SandboxState) -> None:
    gap_state.faults.deny_regions = {"us-east-1"}
    with AwsDiscovery(aws_session, max_workers=8) as d:
        east, west = d.region_summaries(["us-east-1", "us-west-2"], FAMILIES)
    assert any(n.startswith("us-east-1: ec2.DescribeInstanceTypes") for n in east.notes), east.notes
    # west's own calls worked: its offerings have zones, with the catalog's specs and a note saying so.
    assert any(o.zones for o in west.offerings)
    assert any("GPU specs shown from the offline catalog" in n for n in west.notes), west.notes
