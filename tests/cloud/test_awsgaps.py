"""The gap fills answer like AWS: real boto3 clients over HTTP parse every body (moto serves the rest)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.exceptions import ClientError

from dynamo_wizard.cloud.aws import parse_on_demand_price
from dynamo_wizard.sandbox.awsgaps import (
    SandboxState,
    handle,
    handle_http,
    parse_http_request,
    unflatten_query,
)


def test_unflatten_query_builds_lists_and_structures() -> None:
    params = unflatten_query([
        ("Filter.1.Name", "instance-type"), ("Filter.1.Value.1", "p5.48xlarge"), ("Filter.1.Value.2", "g6e.*"),
        ("Filter.2.Name", "tag:team"), ("Filter.2.Value.1", "ml"), ("CapacityReservationId.1", "cr-0123456789abcdef0"),
        ("MaxResults", "5"),
    ])
    assert params == {
        "Filter": [{"Name": "instance-type", "Value": ["p5.48xlarge", "g6e.*"]}, {"Name": "tag:team", "Value": ["ml"]}],
        "CapacityReservationId": ["cr-0123456789abcdef0"],
        "MaxResults": "5",
    }


def test_describe_capacity_reservations_parses_with_every_field(aws_session: boto3.Session, gap_state: SandboxState) -> None:
    ec2 = aws_session.client("ec2", region_name="us-east-1")
    got = {r["CapacityReservationId"]: r for r in ec2.describe_capacity_reservations()["CapacityReservations"]}
    want = {r.id: r for r in gap_state.reservations["us-east-1"]}
    assert set(got) == set(want)
    block = got["cr-0c3d4e5f60718293a"]
    source = want["cr-0c3d4e5f60718293a"]
    assert block["ReservationType"] == "capacity-block"
    assert block["InstanceType"] == "p5.48xlarge" and block["AvailabilityZone"] == "us-east-1a"
    assert block["AvailabilityZoneId"] == "use1-az6"
    assert (block["TotalInstanceCount"], block["AvailableInstanceCount"]) == (1, 1)
    assert block["EndDate"] == source.end and block["StartDate"] == source.start
    assert {t["Key"]: t["Value"] for t in block["Tags"]} == {"team": "ml-platform", "block": "eval"}
    assert block["State"] == "active" and block["InstanceMatchCriteria"] == "targeted"
    assert block["OwnerId"] == gap_state.account


def test_reservation_filters_and_real_pagination(aws_session: boto3.Session, request_log: list[str]) -> None:
    ec2 = aws_session.client("ec2", region_name="us-east-1")
    blocks = ec2.describe_capacity_reservations(Filters=[{"Name": "reservation-type", "Values": ["capacity-block"]}])
    assert [r["CapacityReservationId"] for r in blocks["CapacityReservations"]] == ["cr-0c3d4e5f60718293a"]
    tagged = ec2.describe_capacity_reservations(Filters=[{"Name": "tag:team", "Values": ["ml-*"]},
                                                         {"Name": "instance-type", "Values": ["g7e.12xlarge"]}])
    assert [r["CapacityReservationId"] for r in tagged["CapacityReservations"]] == ["cr-0b2c3d4e5f6071829"]
    request_log.clear()
    pages = list(ec2.get_paginator("describe_capacity_reservations").paginate(PaginationConfig={"PageSize": 1}))
    assert len(pages) == 3 and request_log.count("ec2.DescribeCapacityReservations") == 3
    assert sum(len(p["CapacityReservations"]) for p in pages) == 3
    with pytest.raises(ClientError) as bad_filter:
        ec2.describe_capacity_reservations(Filters=[{"Name": "no-such-filter", "Values": ["x"]}])
    assert bad_filter.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_reservation_id_errors_are_aws_errors(aws_session: boto3.Session) -> None:
    ec2 = aws_session.client("ec2", region_name="us-east-1")
    with pytest.raises(ClientError) as malformed:
        ec2.describe_capacity_reservations(CapacityReservationIds=["cr-xyz"])
    assert malformed.value.response["Error"]["Code"] == "InvalidCapacityReservationId.Malformed"
    with pytest.raises(ClientError) as missing:
        ec2.describe_capacity_reservations(CapacityReservationIds=["cr-0123456789abcdef0"])
    assert missing.value.response["Error"]["Code"] == "InvalidCapacityReservationId.NotFound"
    # Reservations are regional: the us-east-1 block does not exist in us-west-2.
    west = aws_session.client("ec2", region_name="us-west-2")
    assert west.describe_capacity_reservations()["CapacityReservations"] == []


def test_create_and_cancel_a_reservation(aws_session: boto3.Session, gap_state: SandboxState) -> None:
    ec2 = aws_session.client("ec2", region_name="us-east-1")
    args = dict(InstanceType="g6e.2xlarge", InstancePlatform="Linux/UNIX", AvailabilityZone="us-east-1b",
                InstanceCount=3, ClientToken="token-1",
                TagSpecifications=[{"ResourceType": "capacity-reservation",
                                    "Tags": [{"Key": "dynamo-wizard/deployment", "Value": "demo"}]}])
    created = ec2.create_capacity_reservation(**args)["CapacityReservation"]
    again = ec2.create_capacity_reservation(**args)["CapacityReservation"]  # same ClientToken: same reservation
    assert again["CapacityReservationId"] == created["CapacityReservationId"]
    assert created["State"] == "active" and created["TotalInstanceCount"] == 3
    assert {t["Key"]: t["Value"] for t in created["Tags"]} == {"dynamo-wizard/deployment": "demo"}
    assert len(gap_state.reservations["us-east-1"]) == 4
    assert ec2.cancel_capacity_reservation(CapacityReservationId=created["CapacityReservationId"])["Return"] is True
    found = ec2.describe_capacity_reservations(CapacityReservationIds=[created["CapacityReservationId"]])
    assert found["CapacityReservations"][0]["State"] == "cancelled"
    with pytest.raises(ClientError) as block:
        ec2.cancel_capacity_reservation(CapacityReservationId="cr-0c3d4e5f60718293a")
    assert block.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_capacity_block_offerings_have_an_upfront_fee(aws_session: boto3.Session) -> None:
    ec2 = aws_session.client("ec2", region_name="us-east-1")
    start = datetime.now(UTC)
    offers = ec2.describe_capacity_block_offerings(
        InstanceType="p5.48xlarge", InstanceCount=2, CapacityDurationHours=48,
        StartDateRange=start, EndDateRange=start + timedelta(days=10))["CapacityBlockOfferings"]
    assert len(offers) == 3
    for o in offers:
        assert o["InstanceType"] == "p5.48xlarge" and o["InstanceCount"] == 2
        assert o["AvailabilityZone"] in ("us-east-1a", "us-east-1b")
        assert o["EndDate"] - o["StartDate"] == timedelta(hours=48)
        assert (o["StartDate"].astimezone(UTC).hour, o["StartDate"].minute) == (11, 30)
        assert float(o["UpfrontFee"]) == round(31.464 * 48 * 2, 2)
        assert o["CapacityBlockOfferingId"].startswith("cb-")
    with pytest.raises(ClientError) as odd:
        ec2.describe_capacity_block_offerings(InstanceType="p5.48xlarge", InstanceCount=1, CapacityDurationHours=30)
    assert odd.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_service_quotas_for_ec2_and_fall_through_for_others(aws_session: boto3.Session, gap_state: SandboxState) -> None:
    gap_state.region_quotas[("us-east-1", "L-417A185B")] = 96.0
    sq = aws_session.client("service-quotas", region_name="us-east-1")
    quota = sq.get_service_quota(ServiceCode="ec2", QuotaCode="L-417A185B")["Quota"]
    assert quota["Value"] == 96.0 and quota["QuotaName"] == "Running On-Demand P instances"
    assert quota["QuotaArn"].endswith(":ec2/L-417A185B") and quota["UsageMetric"]["MetricDimensions"]["Class"] == "P/OnDemand"
    pages = list(sq.get_paginator("list_service_quotas").paginate(ServiceCode="ec2", PaginationConfig={"PageSize": 3}))
    codes = [q["QuotaCode"] for p in pages for q in p["Quotas"]]
    assert len(pages) == 2 and sorted(codes) == ["L-3819A6DF", "L-417A185B", "L-7212CCBC", "L-DB2E81BA"]
    with pytest.raises(ClientError) as unknown:
        sq.get_service_quota(ServiceCode="ec2", QuotaCode="L-00000000")
    assert unknown.value.response["Error"]["Code"] == "NoSuchResourceException"
    # ServiceCode vpc is moto's own: the fill lets it through and moto answers.
    vpc = sq.get_service_quota(ServiceCode="vpc", QuotaCode="L-7E9ECCDB")["Quota"]
    assert vpc["ServiceCode"] == "vpc" and vpc["QuotaCode"] == "L-7E9ECCDB"


def test_pricing_filters_pick_the_shared_linux_on_demand_product(aws_session: boto3.Session, gap_state: SandboxState) -> None:
    gap_state.prices[("us-east-1", "g6e.2xlarge")] = 2.5
    pricing = aws_session.client("pricing", region_name="us-east-1")
    base = [{"Type": "TERM_MATCH", "Field": "instanceType", "Value": "g6e.2xlarge"},
            {"Type": "TERM_MATCH", "Field": "regionCode", "Value": "us-east-1"},
            {"Type": "TERM_MATCH", "Field": "operatingSystem", "Value": "Linux"}]
    loose = pricing.get_products(ServiceCode="AmazonEC2", Filters=base)["PriceList"]
    assert len(loose) == 3  # used, unused-reservation and dedicated variants
    exact = pricing.get_products(ServiceCode="AmazonEC2", Filters=base + [
        {"Type": "TERM_MATCH", "Field": "tenancy", "Value": "Shared"},
        {"Type": "TERM_MATCH", "Field": "preInstalledSw", "Value": "NA"},
        {"Type": "TERM_MATCH", "Field": "capacitystatus", "Value": "Used"}])["PriceList"]
    assert len(exact) == 1 and isinstance(exact[0], str)
    attrs = json.loads(exact[0])["product"]["attributes"]
    assert attrs["location"] == "US East (N. Virginia)" and attrs["usagetype"] == "USE1-BoxUsage:g6e.2xlarge"
    assert parse_on_demand_price(exact, "g6e.2xlarge") == 2.5
    by_location = pricing.get_products(ServiceCode="AmazonEC2", Filters=[
        {"Type": "TERM_MATCH", "Field": "location", "Value": "US East (N. Virginia)"},
        {"Type": "TERM_MATCH", "Field": "instanceType", "Value": "g6e.2xlarge"}])["PriceList"]
    assert len(by_location) == 3
    with pytest.raises(ClientError) as wrong_endpoint:
        aws_session.client("pricing", region_name="us-west-2").get_products(ServiceCode="AmazonEC2")
    assert wrong_endpoint.value.response["Error"]["Code"] == "InvalidParameterException"


def test_eks_addon_lifecycle(aws_session: boto3.Session, gap_state: SandboxState) -> None:
    gap_state.cluster_exists = lambda region, name: name == "demo"
    eks = aws_session.client("eks", region_name="us-east-1")
    versions = eks.describe_addon_versions(addonName="aws-efs-csi-driver", kubernetesVersion="1.34")["addons"]
    assert versions[0]["addonName"] == "aws-efs-csi-driver"
    defaults = [v["addonVersion"] for v in versions[0]["addonVersions"]
                if any(c["defaultVersion"] for c in v["compatibilities"])]
    assert defaults == ["v2.1.4-eksbuild.1"]
    assert eks.describe_addon_versions(kubernetesVersion="1.20")["addons"] == []
    created = eks.create_addon(clusterName="demo", addonName="aws-efs-csi-driver", addonVersion="latest",
                               podIdentityAssociations=[{"serviceAccount": "efs-csi-controller-sa",
                                                         "roleArn": "arn:aws:iam::123456789012:role/efs"}],
                               tags={"dynamo-wizard/deployment": "demo"})["addon"]
    assert created["status"] == "CREATING" and created["addonVersion"] == "v2.1.4-eksbuild.1"
    assert isinstance(created["createdAt"], datetime) and created["podIdentityAssociations"][0].startswith("arn:aws:eks:")
    assert eks.describe_addon(clusterName="demo", addonName="aws-efs-csi-driver")["addon"]["status"] == "ACTIVE"
    assert eks.list_addons(clusterName="demo")["addons"] == ["aws-efs-csi-driver"]
    with pytest.raises(ClientError) as dup:
        eks.create_addon(clusterName="demo", addonName="aws-efs-csi-driver")
    assert dup.value.response["Error"]["Code"] == "ResourceInUseException"
    with pytest.raises(ClientError) as no_cluster:
        eks.list_addons(clusterName="other")
    assert no_cluster.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert eks.delete_addon(clusterName="demo", addonName="aws-efs-csi-driver")["addon"]["status"] == "DELETING"
    with pytest.raises(ClientError) as gone:
        eks.describe_addon(clusterName="demo", addonName="aws-efs-csi-driver")
    assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"


def _signed(service: str, region: str) -> dict[str, str]:
    return {"Authorization": f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261128/{region}/{service}/aws4_request, "
                             "SignedHeaders=host;x-amz-date, Signature=00"}


def test_raw_http_requests_as_the_sandbox_proxy_sees_them(gap_state: SandboxState) -> None:
    """handle_http works on plain method/url/headers/body, without botocore."""
    body = "Action=DescribeCapacityReservations&Version=2016-11-15&Filter.1.Name=instance-type&Filter.1.Value.1=g6e.2xlarge"
    headers = dict(_signed("ec2", "us-east-1"), **{"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    status, out_headers, xml = handle_http(gap_state, "POST", "http://127.0.0.1:5000/", headers, body)  # type: ignore[misc]
    assert status == 200 and out_headers["Content-Type"].startswith("text/xml")
    assert b"<capacityReservationId>cr-0a1b2c3d4e5f60718</capacityReservationId>" in xml
    assert b"cr-0b2c3d4e5f6071829" not in xml
    # moto's own operations pass through untouched.
    assert handle_http(gap_state, "POST", "http://127.0.0.1:5000/", headers,
                       "Action=DescribeAvailabilityZones&Version=2016-11-15") is None
    json_headers = dict(_signed("servicequotas", "eu-west-1"), **{"X-Amz-Target": "ServiceQuotasV20190624.GetServiceQuota",
                                                                  "Content-Type": "application/x-amz-json-1.1"})
    call = parse_http_request("POST", "http://x/", json_headers, b'{"ServiceCode": "ec2", "QuotaCode": "L-DB2E81BA"}')
    assert call is not None and (call.service, call.operation, call.region) == ("service-quotas", "GetServiceQuota", "eu-west-1")
    eks_call = parse_http_request("GET", "http://x/clusters/demo/addons/aws-efs-csi-driver", _signed("eks", "us-west-2"), b"")
    assert eks_call is not None and eks_call.operation == "DescribeAddon"
    assert eks_call.params == {"clusterName": "demo", "addonName": "aws-efs-csi-driver"}
    assert parse_http_request("GET", "http://x/", {}, b"") is None  # unsigned: not an AWS call
    assert handle(gap_state, "ec2", "RunInstances", {}, "us-east-1") is None


def test_faults_throttle_an_exact_share_and_deny_one_region(gap_state: SandboxState) -> None:
    gap_state.faults.throttle_share = 0.2
    gap_state.faults.deny_regions = {"us-west-2"}
    headers = dict(_signed("ec2", "us-east-1"), **{"Content-Type": "application/x-www-form-urlencoded"})
    answers = [handle_http(gap_state, "POST", "http://x/", headers, "Action=DescribeAvailabilityZones") for _ in range(50)]
    throttled = [a for a in answers if a is not None]
    assert len(throttled) == 10 and gap_state.faults.throttled == 10
    assert all(a[0] == 503 and b"<Code>RequestLimitExceeded</Code>" in a[2] for a in throttled)
    denied = handle_http(gap_state, "POST", "http://x/", dict(headers, **_signed("ec2", "us-west-2")),
                         "Action=DescribeAvailabilityZones")
    assert denied is not None and denied[0] == 403 and b"UnauthorizedOperation" in denied[2]
