"""AwsDiscovery against moto over HTTP (gaps filled): what it returns equals what boto3 says directly."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from dynamo_wizard.cloud.aws import EKS_UNSUPPORTED_ZONE_IDS, AwsDiscovery, CredentialsError, discovery_from_env
from dynamo_wizard.core.errors import WizardError
from dynamo_wizard.sandbox.awsgaps import SandboxState

FAMILIES = ["g6e", "g7e", "p5"]


def test_identity_and_partition(discovery: AwsDiscovery) -> None:
    who = discovery.identity()
    assert who.account == "123456789012" and who.arn.startswith("arn:aws:") and who.partition == "aws"


def test_regions_are_the_enabled_ones(discovery: AwsDiscovery, aws_session: boto3.Session) -> None:
    direct = aws_session.client("ec2", region_name="us-east-1").describe_regions(AllRegions=True)["Regions"]
    enabled = sorted(r["RegionName"] for r in direct if r["OptInStatus"] != "not-opted-in")
    assert discovery.regions() == enabled and "us-east-1" in enabled
    # A region the account has not opted into is listed nowhere, and asking for it gives a note, not a crash.
    opt_in = next(r["RegionName"] for r in direct if r["OptInStatus"] == "not-opted-in")
    summary = discovery.region_summary(opt_in, FAMILIES)
    assert summary.offerings == [] and len(summary.notes) == 1
    assert summary.notes[0].startswith(f"{opt_in}: the region is not enabled")


def test_region_summary_matches_direct_boto3_calls(discovery: AwsDiscovery, aws_session: boto3.Session,
                                                   gap_state: SandboxState) -> None:
    gap_state.prices[("us-east-1", "g7e.12xlarge")] = 8.75  # differs from the catalog: proves the API is read
    gap_state.region_quotas[("us-east-1", "L-417A185B")] = 96.0
    summary = discovery.region_summary("us-east-1", FAMILIES)
    assert summary.notes == []

    ec2 = aws_session.client("ec2", region_name="us-east-1")
    zones = ec2.describe_availability_zones()["AvailabilityZones"]
    assert [(z.name, z.zone_id) for z in summary.zones] == sorted((z["ZoneName"], z["ZoneId"]) for z in zones)
    no_control_plane = [z.name for z in summary.zones if not z.eks_control_plane]
    assert no_control_plane == ["us-east-1e"] and "use1-az3" in EKS_UNSUPPORTED_ZONE_IDS
    assert "us-east-1e" not in [z.name for z in discovery.cluster_zones("us-east-1")]

    types = ec2.describe_instance_types(Filters=[{"Name": "instance-type", "Values": [f"{f}.*" for f in FAMILIES]}])
    direct_types = {t["InstanceType"]: t for t in types["InstanceTypes"] if t.get("GpuInfo")}
    assert {o.instance_type for o in summary.offerings} == set(direct_types)
    offers = ec2.describe_instance_type_offerings(
        LocationType="availability-zone", Filters=[{"Name": "instance-type", "Values": list(direct_types)}])
    direct_zones: dict[str, set[str]] = {}
    for o in offers["InstanceTypeOfferings"]:
        direct_zones.setdefault(o["InstanceType"], set()).add(o["Location"])
    for o in summary.offerings:
        t = direct_types[o.instance_type]
        gpu = t["GpuInfo"]["Gpus"][0]
        assert o.gpus == gpu["Count"] and o.gpu_memory_mib == gpu["MemoryInfo"]["SizeInMiB"]
        assert o.gpu_model == f"{gpu['Manufacturer']} {gpu['Name']}"
        assert o.vcpus == t["VCpuInfo"]["DefaultVCpus"] and o.efa_supported == t["NetworkInfo"]["EfaSupported"]
        assert set(o.zones) == direct_zones.get(o.instance_type, set())
        assert o.price_source == "pricing-api"
        assert o.on_demand_price == gap_state.prices[("us-east-1", o.instance_type)]
    g7e = next(o for o in summary.offerings if o.instance_type == "g7e.12xlarge")
    assert g7e.on_demand_price == 8.75 and g7e.zones == ("us-east-1a", "us-east-1c") and g7e.max_efa_interfaces == 1
    assert summary.quota("P", "on-demand").value == 96.0  # type: ignore[union-attr]
    assert summary.quota("G", "spot").code == "L-3819A6DF"  # type: ignore[union-attr]
    assert summary.families_offered(FAMILIES) == FAMILIES


def test_many_regions_fan_out_and_report_as_they_finish(discovery: AwsDiscovery, request_log: list[str]) -> None:
    seen: list[str] = []
    regions = ["us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1"]
    summaries = discovery.region_summaries(regions, ["g6e", "p5en"], on_summary=lambda s: seen.append(s.region))
    assert [s.region for s in summaries] == regions and sorted(seen) == sorted(regions)
    west = summaries[1]
    p5en = next(o for o in west.offerings if o.instance_type == "p5en.48xlarge")
    assert p5en.zones == ("us-west-2a", "us-west-2c", "us-west-2d")
    assert all(o.price_source == "catalog" for s in summaries for o in s.offerings)  # prices=False by default
    assert all(s.notes == [] for s in summaries)
    # Specs are the same everywhere: asked once; zones are asked per region; the regions listed once.
    assert request_log.count("ec2.DescribeInstanceTypes") == 1
    assert request_log.count("ec2.DescribeInstanceTypeOfferings") == len(regions)
    assert request_log.count("ec2.DescribeRegions") == 1


def test_disk_cache_is_reused_by_account_and_region_until_the_ttl(aws_session: boto3.Session,
                                                                  request_log: list[str]) -> None:
    clock = [1_000_000.0]
    first = AwsDiscovery(aws_session, max_workers=4, clock=lambda: clock[0])
    first.region_summary("us-west-2", ["g6e"])
    first.close()
    cold = len(request_log)
    assert request_log.count("ec2.DescribeInstanceTypes") == 1
    request_log.clear()
    second = AwsDiscovery(aws_session, max_workers=4, clock=lambda: clock[0] + 60)
    again = second.region_summary("us-west-2", ["g6e"])
    second.close()
    assert request_log == ["sts.GetCallerIdentity"] and again.offerings and cold > 5
    request_log.clear()
    expired = AwsDiscovery(aws_session, max_workers=4, clock=lambda: clock[0] + 601)
    expired.region_summary("us-west-2", ["g6e"])
    expired.close()
    assert "ec2.DescribeInstanceTypes" in request_log
    request_log.clear()
    refreshed = AwsDiscovery(aws_session, max_workers=4, refresh=True, clock=lambda: clock[0] + 602)
    refreshed.region_summary("us-west-2", ["g6e"])
    refreshed.close()
    assert "ec2.DescribeInstanceTypes" in request_log


def test_reservations_and_their_errors(discovery: AwsDiscovery, gap_state: SandboxState,
                                       request_log: list[str]) -> None:
    found, notes = discovery.reservations("us-east-1")
    assert notes == [] and {r.id for r in found} == {r.id for r in gap_state.reservations["us-east-1"]}
    block = next(r for r in found if r.reservation_type == "capacity-block")
    assert block.end is not None and block.end.tzinfo is not None
    assert timedelta(hours=2) < block.end - datetime.now(UTC) <= timedelta(hours=3)
    only, _ = discovery.reservations("us-east-1", ids=["cr-0b2c3d4e5f6071829"])
    assert [r.instance_type for r in only] == ["g7e.12xlarge"] and only[0].available == 1
    request_log.clear()
    with pytest.raises(WizardError) as malformed:
        discovery.reservations("us-east-1", ids=["cr-12345"])
    assert "not a capacity reservation id" in str(malformed.value) and "cr-" in malformed.value.fix
    assert request_log == []  # rejected before any call
    both = discovery.reservations_by_region(["us-east-1", "us-west-2"])
    assert len(both["us-east-1"][0]) == 3 and both["us-west-2"] == ([], [])
    with pytest.raises(WizardError) as missing:
        discovery.reservations("us-east-1", ids=["cr-0123456789abcdef0"])
    assert "cr-0123456789abcdef0" in str(missing.value) and "reservations --region us-east-1" in missing.value.fix


def test_unknown_region_is_a_clear_error(discovery: AwsDiscovery) -> None:
    with pytest.raises(WizardError) as unknown:
        discovery.region_summary("us-east-9", FAMILIES)
    assert "unknown region 'us-east-9'" in str(unknown.value) and "us-east-1" in unknown.value.fix
    with pytest.raises(WizardError) as garbage:
        discovery.reservations("virginia")
    assert "not an AWS region name" in str(garbage.value)


def test_capacity_block_offerings(discovery: AwsDiscovery) -> None:
    start = datetime.now(UTC)
    offers = discovery.capacity_block_offerings("us-east-1", "p5.48xlarge", 1, start, start + timedelta(days=7), 24)
    assert offers and all(o.upfront_fee == round(31.464 * 24, 2) and o.duration_hours == 24 for o in offers)
    assert discovery.capacity_block_offerings("us-east-1", "g6e.2xlarge", 1, start, start + timedelta(days=7), 24) == []
    with pytest.raises(WizardError) as bad:
        discovery.capacity_block_offerings("us-east-1", "p5.48xlarge", 1, start, start + timedelta(days=7), 5)
    assert "InvalidParameterValue" in str(bad.value)


def test_without_gap_fills_quotas_and_prices_degrade_with_notes(aws_env: dict[str, str]) -> None:
    """Plain moto: no EC2 quotas, no Pricing API. The summary stays useful and says what is missing."""
    with discovery_from_env() as d:
        summary = d.region_summary("us-east-1", ["g6e"])
    assert summary.offerings and summary.quotas == []
    assert all(o.price_source == "catalog" and o.on_demand_price for o in summary.offerings)
    assert any("GetServiceQuota" in n and "us-east-1" in n for n in summary.notes)
    assert any("pricing.GetProducts" in n and "catalog" in n for n in summary.notes)


def test_missing_credentials_raise_a_credentials_error(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with AwsDiscovery() as d, pytest.raises(CredentialsError) as err:
        d.region_summary("us-east-1", FAMILIES)
    assert "credentials" in str(err.value) and "--sandbox" in err.value.fix
    assert os.environ["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1")
