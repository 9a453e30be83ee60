"""What moto lacks, answered from a small state object: pure request -> response functions.

moto 5.2.5 has no capacity reservations or Capacity Blocks, no EC2 service quotas, no Pricing API and no
EKS add-ons (see ../shared/reference/offline-test-stack.md). This module answers exactly those operations,
with bodies shaped like the AWS API reference, so the wizard's real boto3 code parses them unchanged:

- EC2 (query protocol, XML): DescribeCapacityReservations, DescribeCapacityBlockOfferings,
  CreateCapacityReservation, CancelCapacityReservation;
- Service Quotas (JSON 1.1): GetServiceQuota, ListServiceQuotas (ServiceCode ec2 only; others fall through);
- Pricing (JSON 1.1): GetProducts (ServiceCode AmazonEC2), PriceList entries as JSON strings;
- EKS (REST JSON): CreateAddon, DescribeAddon, ListAddons, DeleteAddon, DescribeAddonVersions.

Two entry points, neither tied to botocore objects:
- `handle(state, service, operation, params, region)` for a call already parsed;
- `handle_http(state, method, url, headers, body)` for a raw signed HTTP request (what the sandbox's front
  proxy sees), which also applies the state's fault injection (latency, AccessDenied per region,
  throttling of a share of calls) to every call, including those that fall through to moto.
Both return `(status, headers, body_bytes)` or None ("not mine: pass it to moto").

`install_botocore_fills(session_or_client, state)` wires `handle_http` into botocore's `before-send` event
for tests; the sandbox serves the same function over HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit
from xml.etree import ElementTree as ET

from ..core.catalog import load_catalog

Response = tuple[int, dict[str, str], bytes]

EC2_XMLNS = "http://ec2.amazonaws.com/doc/2016-11-15/"
DEFAULT_ACCOUNT = "123456789012"
CR_ID_RE = re.compile(r"^cr-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
ZONE_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d[a-z]$")

# The EC2 vCPU quotas the wizard reads (codes checked against public uses of the Service Quotas API).
EC2_QUOTA_NAMES: dict[str, tuple[str, str]] = {
    "L-DB2E81BA": ("Running On-Demand G and VT instances", "G/OnDemand"),
    "L-417A185B": ("Running On-Demand P instances", "P/OnDemand"),
    "L-3819A6DF": ("All G and VT Spot Instance Requests", "G/Spot"),
    "L-7212CCBC": ("All P Spot Instance Requests", "P/Spot"),
}

# Pricing API location names for the regions the sandbox prices (the API also carries regionCode).
PRICING_LOCATIONS: dict[str, str] = {
    "us-east-1": "US East (N. Virginia)",
    "us-east-2": "US East (Ohio)",
    "us-west-2": "US West (Oregon)",
    "eu-west-1": "EU (Ireland)",
}
# Usage-type prefixes of the Pricing API for the same regions.
USAGE_PREFIX: dict[str, str] = {"us-east-1": "USE1", "us-east-2": "USE2", "us-west-2": "USW2", "eu-west-1": "EU"}

# Zone name -> zone id as moto (and the account moto models) maps them; used for availabilityZoneId.
SANDBOX_ZONE_IDS: dict[str, str] = {
    "us-east-1a": "use1-az6", "us-east-1b": "use1-az1", "us-east-1c": "use1-az2",
    "us-east-1d": "use1-az4", "us-east-1e": "use1-az3", "us-east-1f": "use1-az5",
    "us-west-2a": "usw2-az2", "us-west-2b": "usw2-az1", "us-west-2c": "usw2-az3", "us-west-2d": "usw2-az4",
}


# State --------------------------------------------------------------------------------------------


@dataclass
class Reservation:
    """One capacity reservation (an ODCR, reservation_type 'default', or a Capacity Block)."""

    id: str
    instance_type: str
    zone: str
    total: int
    available: int
    state: str = "active"
    reservation_type: str = "default"  # default | capacity-block
    start: datetime | None = None
    end: datetime | None = None
    end_date_type: str = "unlimited"  # unlimited | limited
    match_criteria: str = "targeted"  # open | targeted
    tags: dict[str, str] = field(default_factory=dict)
    platform: str = "Linux/UNIX"
    tenancy: str = "default"
    created: datetime | None = None
    zone_id: str | None = None
    capacity_block_id: str | None = None


@dataclass
class Addon:
    name: str
    cluster: str
    version: str
    created: datetime
    status: str = "CREATING"
    service_account_role_arn: str | None = None
    configuration_values: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    pod_identity_associations: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AddonVersion:
    addon: str
    addon_type: str
    version: str
    cluster_versions: tuple[str, ...]
    default: bool = False


@dataclass
class Faults:
    """Faults injected into every call that passes through `handle_http` (gaps and moto alike)."""

    throttle_share: float = 0.0  # 0.2 = one call in five gets a throttling error (retryable)
    deny_regions: set[str] = field(default_factory=set)  # every call signed for these regions: AccessDenied
    latency_s: float = 0.0  # added before each call is answered or passed on
    calls: int = 0
    throttled: int = 0
    denied: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def next_is_throttled(self) -> bool:
        """Deterministic: exactly `throttle_share` of calls, spread evenly (no randomness in tests)."""
        with self._lock:
            n = self.calls
            self.calls += 1
            hit = int((n + 1) * self.throttle_share) > int(n * self.throttle_share)
            if hit:
                self.throttled += 1
            return hit


@dataclass
class SandboxState:
    account: str = DEFAULT_ACCOUNT
    quotas: dict[str, float] = field(default_factory=dict)  # quota code -> vCPUs, every region
    region_quotas: dict[tuple[str, str], float] = field(default_factory=dict)  # (region, code) overrides
    reservations: dict[str, list[Reservation]] = field(default_factory=dict)  # region -> reservations
    prices: dict[tuple[str, str], float] = field(default_factory=dict)  # (region, type) -> USD/h on-demand
    block_zones: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (region, type) -> zones
    block_hourly: dict[str, float] = field(default_factory=dict)  # type -> Capacity Block USD/instance-hour
    addons: dict[tuple[str, str], dict[str, Addon]] = field(default_factory=dict)  # (region, cluster) -> addons
    addon_versions: list[AddonVersion] = field(default_factory=list)
    addon_ready_after_s: float = 0.0  # CREATING -> ACTIVE after this long
    cluster_exists: Callable[[str, str], bool] | None = None  # (region, name); None: every cluster exists
    faults: Faults = field(default_factory=Faults)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def quota_value(self, region: str, code: str) -> float | None:
        return self.region_quotas.get((region, code), self.quotas.get(code))


def default_sandbox_state(now: datetime | None = None) -> SandboxState:
    """A realistic account: GPU quotas, two ODCRs and one Capacity Block ending in a few hours.

    Reservation zones really offer the type in moto's data (g6e.2xlarge in us-east-1a-d, g7e.12xlarge in
    us-east-1a/c, p5.48xlarge in us-east-1a-f), so the wizard's offering checks agree with them.
    """
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    state = SandboxState(clock=lambda: datetime.now(UTC))
    state.quotas = {"L-DB2E81BA": 192.0, "L-417A185B": 192.0, "L-3819A6DF": 192.0, "L-7212CCBC": 192.0}
    team = {"team": "ml-platform", "dynamo-wizard/purpose": "inference"}
    state.reservations["us-east-1"] = [
        Reservation(
            id="cr-0a1b2c3d4e5f60718", instance_type="g6e.2xlarge", zone="us-east-1a", total=2, available=2,
            start=now - timedelta(days=3), tags=dict(team), created=now - timedelta(days=3),
        ),
        Reservation(
            id="cr-0b2c3d4e5f6071829", instance_type="g7e.12xlarge", zone="us-east-1c", total=2, available=1,
            start=now - timedelta(days=1), end=now + timedelta(days=6), end_date_type="limited",
            tags={"team": "ml-platform"}, created=now - timedelta(days=1),
        ),
        Reservation(
            id="cr-0c3d4e5f60718293a", instance_type="p5.48xlarge", zone="us-east-1a", total=1, available=1,
            reservation_type="capacity-block", start=now - timedelta(hours=21), end=now + timedelta(hours=3),
            end_date_type="limited", tags={"team": "ml-platform", "block": "eval"},
            created=now - timedelta(days=2), capacity_block_id="cb-0c3d4e5f60718293a",
        ),
    ]
    catalog = load_catalog()
    for region in ("us-east-1", "us-east-2", "us-west-2"):
        for t in catalog.instance_types.values():
            if t.on_demand_price is not None:
                state.prices[(region, t.name)] = float(t.on_demand_price)
    # Capacity Blocks are sold for the large P types; the upfront fee is an hourly rate x hours x count.
    state.block_zones = {
        ("us-east-1", "p5.48xlarge"): ["us-east-1a", "us-east-1b"],
        ("us-east-1", "p5en.48xlarge"): ["us-east-1a"],
        ("us-west-2", "p5.48xlarge"): ["us-west-2a"],
    }
    state.block_hourly = {"p5.48xlarge": 31.464, "p5e.48xlarge": 34.608, "p5en.48xlarge": 36.184}
    k8s = ("1.31", "1.32", "1.33", "1.34")
    state.addon_versions = [
        AddonVersion("aws-efs-csi-driver", "storage", "v2.1.4-eksbuild.1", k8s, default=True),
        AddonVersion("aws-efs-csi-driver", "storage", "v2.1.3-eksbuild.1", k8s),
        AddonVersion("eks-pod-identity-agent", "security", "v1.3.5-eksbuild.2", k8s, default=True),
        AddonVersion("metrics-server", "observability", "v0.7.2-eksbuild.3", k8s, default=True),
    ]
    return state


# Errors and helpers -------------------------------------------------------------------------------


class ApiError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def _request_id() -> str:
    return str(uuid.uuid4())


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            value = datetime.fromtimestamp(float(text), UTC)
        except ValueError:
            raise ApiError("InvalidParameterValue", f"Invalid date value: {text}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _ec2_error(err: ApiError) -> Response:
    root = ET.Element("Response")
    errors = ET.SubElement(ET.SubElement(root, "Errors"), "Error")
    ET.SubElement(errors, "Code").text = err.code
    ET.SubElement(errors, "Message").text = err.message
    ET.SubElement(root, "RequestID").text = _request_id()
    return err.status, {"Content-Type": "text/xml;charset=UTF-8"}, _xml(root)


def _json_error(err: ApiError) -> Response:
    body = {"__type": err.code, "Message": err.message, "message": err.message}
    return err.status, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": _request_id()}, \
        json.dumps(body).encode()


def _rest_error(err: ApiError) -> Response:
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": err.code, "x-amzn-RequestId": _request_id()}
    return err.status, headers, json.dumps({"message": err.message}).encode()


def _xml(root: ET.Element) -> bytes:
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8")


def _sub(parent: ET.Element, tag: str, value: Any) -> ET.Element:
    el = ET.SubElement(parent, tag)
    if value is not None:
        el.text = str(value).lower() if isinstance(value, bool) else str(value)
    return el


def _ec2_ok(action: str, fill: Callable[[ET.Element], object]) -> Response:
    root = ET.Element(f"{action}Response", xmlns=EC2_XMLNS)
    _sub(root, "requestId", _request_id())
    fill(root)
    return 200, {"Content-Type": "text/xml;charset=UTF-8"}, _xml(root)


def _json_ok(body: dict[str, Any]) -> Response:
    return 200, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": _request_id()}, \
        json.dumps(body).encode()


def _rest_ok(body: dict[str, Any]) -> Response:
    return 200, {"Content-Type": "application/json", "x-amzn-RequestId": _request_id()}, json.dumps(body).encode()


def _page(items: list[Any], params: dict[str, Any], limit_key: str, token_key: str,
          default: int, low: int = 1, high: int = 1000) -> tuple[list[Any], str | None]:
    """Real pagination, so the wizard's paginator code paths run (moto ignores MaxResults)."""
    raw_limit = params.get(limit_key)
    limit = default
    if raw_limit is not None:
        try:
            limit = int(raw_limit)
        except (TypeError, ValueError):
            raise ApiError("InvalidParameterValue", f"{limit_key} must be a number") from None
        if not low <= limit <= high:
            raise ApiError("InvalidParameterValue", f"{limit_key} must be between {low} and {high}")
    start = 0
    token = params.get(token_key)
    if token:
        try:
            start = int(base64.urlsafe_b64decode(str(token).encode()).decode())
        except (ValueError, UnicodeDecodeError):
            raise ApiError("InvalidNextToken" if token_key == "NextToken" else "InvalidParameterException",
                           "The specified token is invalid") from None
    end = start + limit
    nxt = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else None
    return items[start:end], nxt


def unflatten_query(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """EC2 query parameters ('Filter.1.Value.2=x') -> nested data ({'Filter': [{'Value': [.., 'x']}]})."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.split(".")
        node: dict[str, Any] = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
                if not isinstance(node, dict):  # a scalar and a structure under one name: keep the scalar
                    break

    def listify(value: Any) -> Any:
        if isinstance(value, dict):
            if value and all(k.isdigit() for k in value):
                return [listify(value[k]) for k in sorted(value, key=int)]
            return {k: listify(v) for k, v in value.items()}
        return value

    return listify(root)  # type: ignore[no-any-return]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


# EC2 ----------------------------------------------------------------------------------------------


def _reservation_xml(parent: ET.Element, r: Reservation, state: SandboxState, region: str) -> None:
    _sub(parent, "capacityReservationId", r.id)
    _sub(parent, "ownerId", state.account)
    _sub(parent, "capacityReservationArn",
         f"arn:aws:ec2:{region}:{state.account}:capacity-reservation/{r.id}")
    _sub(parent, "availabilityZoneId", r.zone_id or SANDBOX_ZONE_IDS.get(r.zone, ""))
    _sub(parent, "instanceType", r.instance_type)
    _sub(parent, "instancePlatform", r.platform)
    _sub(parent, "availabilityZone", r.zone)
    _sub(parent, "tenancy", r.tenancy)
    _sub(parent, "totalInstanceCount", r.total)
    _sub(parent, "availableInstanceCount", r.available)
    _sub(parent, "ebsOptimized", True)
    _sub(parent, "ephemeralStorage", False)
    _sub(parent, "state", r.state)
    if r.start is not None:
        _sub(parent, "startDate", _iso(r.start))
    if r.end is not None:
        _sub(parent, "endDate", _iso(r.end))
    _sub(parent, "endDateType", r.end_date_type)
    _sub(parent, "instanceMatchCriteria", r.match_criteria)
    _sub(parent, "createDate", _iso(r.created or r.start or state.clock()))
    tag_set = _sub(parent, "tagSet", None)
    for k, v in r.tags.items():
        item = _sub(tag_set, "item", None)
        _sub(item, "key", k)
        _sub(item, "value", v)
    _sub(parent, "reservationType", r.reservation_type)
    if r.capacity_block_id:
        _sub(parent, "capacityBlockId", r.capacity_block_id)


_CR_FILTERS: dict[str, Callable[[Reservation], str]] = {
    "instance-type": lambda r: r.instance_type,
    "availability-zone": lambda r: r.zone,
    "state": lambda r: r.state,
    "reservation-type": lambda r: r.reservation_type,
    "instance-match-criteria": lambda r: r.match_criteria,
    "instance-platform": lambda r: r.platform,
    "tenancy": lambda r: r.tenancy,
    "end-date-type": lambda r: r.end_date_type,
}


def _glob(pattern: str, value: str) -> bool:
    rx = "^" + re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".") + "$"
    return re.match(rx, value) is not None


def _filter_reservation(r: Reservation, filters: list[dict[str, Any]], owner: str) -> bool:
    for f in filters:
        name = str(f.get("Name", ""))
        values = [str(v) for v in _as_list(f.get("Value"))]
        if name.startswith("tag:"):
            key = name[4:]
            if key not in r.tags or not any(_glob(v, r.tags[key]) for v in values):
                return False
        elif name == "tag-key":
            if not any(_glob(v, k) for v in values for k in r.tags):
                return False
        elif name == "owner-id":
            if owner not in values:
                return False
        elif name in _CR_FILTERS:
            if not any(_glob(v, _CR_FILTERS[name](r)) for v in values):
                return False
        else:
            raise ApiError("InvalidParameterValue", f"The filter '{name}' is invalid")
    return True


def _describe_capacity_reservations(state: SandboxState, params: dict[str, Any], region: str) -> Response:
    ids = [str(i) for i in _as_list(params.get("CapacityReservationId"))]
    filters = _as_list(params.get("Filter"))
    with state.lock:
        pool = list(state.reservations.get(region, []))
    for i in ids:
        if not CR_ID_RE.match(i):
            raise ApiError("InvalidCapacityReservationId.Malformed",
                           f"Invalid id: \"{i}\" (expecting \"cr-...\")")
    if ids:
        known = {r.id for r in pool}
        missing = [i for i in ids if i not in known]
        if missing:
            raise ApiError("InvalidCapacityReservationId.NotFound",
                           f"The capacity reservation ID '{missing[0]}' does not exist")
        pool = [r for r in pool if r.id in ids]
    pool = [r for r in pool if _filter_reservation(r, filters, state.account)]
    items, token = _page(pool, params, "MaxResults", "NextToken", default=1000, low=1, high=1000)

    def fill(root: ET.Element) -> None:
        cr_set = _sub(root, "capacityReservationSet", None)
        for r in items:
            _reservation_xml(_sub(cr_set, "item", None), r, state, region)
        if token:
            _sub(root, "nextToken", token)

    return _ec2_ok("DescribeCapacityReservations", fill)


def _describe_capacity_block_offerings(state: SandboxState, params: dict[str, Any], region: str) -> Response:
    instance_type = params.get("InstanceType")
    try:
        count = int(params.get("InstanceCount", 0))
        hours = int(params.get("CapacityDurationHours", 0))
    except (TypeError, ValueError):
        raise ApiError("InvalidParameterValue", "InstanceCount and CapacityDurationHours must be numbers") from None
    if not instance_type:
        raise ApiError("MissingParameter", "The request must contain the parameter InstanceType")
    if hours <= 0:
        raise ApiError("MissingParameter", "The request must contain the parameter CapacityDurationHours")
    # Durations: whole days up to 14 days, then whole weeks up to 182 days.
    if hours % 24 or (hours > 14 * 24 and hours % (7 * 24)) or hours > 182 * 24:
        raise ApiError("InvalidParameterValue",
                       f"CapacityDurationHours {hours} is not supported: use 1-14 days in 1-day steps, "
                       "or up to 182 days in 7-day steps")
    if not 1 <= count <= 64:
        raise ApiError("InvalidParameterValue", "InstanceCount must be between 1 and 64")
    now = state.clock()
    start_range = _parse_time(str(params["StartDateRange"])) if params.get("StartDateRange") else now
    end_range = _parse_time(str(params["EndDateRange"])) if params.get("EndDateRange") else now + timedelta(weeks=8)
    zones = state.block_zones.get((region, str(instance_type)), [])
    hourly = state.block_hourly.get(str(instance_type))
    offers: list[dict[str, Any]] = []
    if zones and hourly is not None:
        # Blocks start at 11:30 UTC; offer the first three days in the window, rotating zones.
        day = start_range.astimezone(UTC).replace(hour=11, minute=30, second=0, microsecond=0)
        if day < start_range:
            day += timedelta(days=1)
        for i in range(3):
            start = day + timedelta(days=i)
            end = start + timedelta(hours=hours)
            if end > end_range:
                break
            zone = zones[i % len(zones)]
            digest = hashlib.sha256(f"{region}{instance_type}{zone}{start.isoformat()}{count}{hours}".encode())
            offers.append({
                "id": "cb-" + digest.hexdigest()[:17], "zone": zone, "start": start, "end": end,
                "fee": round(hourly * hours * count, 2),
            })
    items, token = _page(offers, params, "MaxResults", "NextToken", default=1000, low=1, high=1000)

    def fill(root: ET.Element) -> None:
        offer_set = _sub(root, "capacityBlockOfferingSet", None)
        for o in items:
            item = _sub(offer_set, "item", None)
            _sub(item, "capacityBlockOfferingId", o["id"])
            _sub(item, "instanceType", instance_type)
            _sub(item, "availabilityZone", o["zone"])
            _sub(item, "instanceCount", count)
            _sub(item, "startDate", _iso(o["start"]))
            _sub(item, "endDate", _iso(o["end"]))
            _sub(item, "capacityBlockDurationHours", hours)
            _sub(item, "upfrontFee", f"{o['fee']:.2f}")
            _sub(item, "currencyCode", "USD")
            _sub(item, "tenancy", "default")
            _sub(item, "capacityBlockDurationMinutes", 0)
        if token:
            _sub(root, "nextToken", token)

    return _ec2_ok("DescribeCapacityBlockOfferings", fill)


def _create_capacity_reservation(state: SandboxState, params: dict[str, Any], region: str) -> Response:
    for key in ("InstanceType", "InstancePlatform", "InstanceCount"):
        if not params.get(key):
            raise ApiError("MissingParameter", f"The request must contain the parameter {key}")
    zone = str(params.get("AvailabilityZone") or "")
    if not zone and params.get("AvailabilityZoneId"):
        zone = next((z for z, zid in SANDBOX_ZONE_IDS.items() if zid == params["AvailabilityZoneId"]), "")
    if not zone or not ZONE_RE.match(zone) or not zone.startswith(region):
        raise ApiError("InvalidParameterValue", f"Invalid availability zone: [{zone or '<none>'}]")
    try:
        count = int(params["InstanceCount"])
    except (TypeError, ValueError):
        raise ApiError("InvalidParameterValue", "InstanceCount must be a number") from None
    if count < 1:
        raise ApiError("InvalidParameterValue", "InstanceCount must be at least 1")
    tags: dict[str, str] = {}
    for spec in _as_list(params.get("TagSpecifications")):
        for tag in _as_list(spec.get("Tag") if isinstance(spec, dict) else None):
            tags[str(tag.get("Key"))] = str(tag.get("Value", ""))
    now = state.clock().replace(microsecond=0)
    end_type = str(params.get("EndDateType", "unlimited"))
    end = _parse_time(str(params["EndDate"])) if params.get("EndDate") else None
    if end_type == "limited" and end is None:
        raise ApiError("InvalidParameterValue", "EndDate is required when EndDateType is limited")
    digest = hashlib.sha256(f"{region}{params.get('ClientToken') or uuid.uuid4()}".encode()).hexdigest()
    r = Reservation(
        id="cr-" + digest[:17], instance_type=str(params["InstanceType"]), zone=zone, total=count, available=count,
        start=now, end=end, end_date_type=end_type,
        match_criteria=str(params.get("InstanceMatchCriteria", "open")), tags=tags,
        platform=str(params["InstancePlatform"]), tenancy=str(params.get("Tenancy", "default")), created=now,
    )
    with state.lock:
        existing = next((x for x in state.reservations.get(region, []) if x.id == r.id), None)
        if existing is None:
            state.reservations.setdefault(region, []).append(r)
        else:  # same ClientToken: idempotent, like EC2
            r = existing
    return _ec2_ok("CreateCapacityReservation",
                   lambda root: _reservation_xml(_sub(root, "capacityReservation", None), r, state, region))


def _cancel_capacity_reservation(state: SandboxState, params: dict[str, Any], region: str) -> Response:
    cr_id = str(params.get("CapacityReservationId", ""))
    if not CR_ID_RE.match(cr_id):
        raise ApiError("InvalidCapacityReservationId.Malformed", f"Invalid id: \"{cr_id}\" (expecting \"cr-...\")")
    with state.lock:
        r = next((x for x in state.reservations.get(region, []) if x.id == cr_id), None)
        if r is None:
            raise ApiError("InvalidCapacityReservationId.NotFound",
                           f"The capacity reservation ID '{cr_id}' does not exist")
        if r.reservation_type == "capacity-block":
            raise ApiError("InvalidParameterValue", "Capacity Blocks cannot be cancelled")
        if r.state not in ("active", "pending", "scheduled"):
            raise ApiError("IncorrectState", f"The capacity reservation '{cr_id}' is in state {r.state}")
        r.state = "cancelled"
        r.available = 0
    return _ec2_ok("CancelCapacityReservation", lambda root: _sub(root, "return", True))


_EC2_OPS: dict[str, Callable[[SandboxState, dict[str, Any], str], Response]] = {
    "DescribeCapacityReservations": _describe_capacity_reservations,
    "DescribeCapacityBlockOfferings": _describe_capacity_block_offerings,
    "CreateCapacityReservation": _create_capacity_reservation,
    "CancelCapacityReservation": _cancel_capacity_reservation,
}


# Service Quotas ------------------------------------------------------------------------------------


def _quota_body(state: SandboxState, region: str, code: str, value: float) -> dict[str, Any]:
    name, metric_class = EC2_QUOTA_NAMES[code]
    return {
        "ServiceCode": "ec2",
        "ServiceName": "Amazon Elastic Compute Cloud (Amazon EC2)",
        "QuotaArn": f"arn:aws:servicequotas:{region}:{state.account}:ec2/{code}",
        "QuotaCode": code,
        "QuotaName": name,
        "Value": float(value),
        "Unit": "None",
        "Adjustable": True,
        "GlobalQuota": False,
        "UsageMetric": {
            "MetricNamespace": "AWS/Usage",
            "MetricName": "ResourceCount",
            "MetricDimensions": {"Class": metric_class, "Resource": "vCPU", "Service": "EC2", "Type": "Resource"},
            "MetricStatisticRecommendation": "Maximum",
        },
        "QuotaAppliedAtLevel": "ACCOUNT",
        "Description": f"Maximum number of vCPUs assigned to the {name}",
    }


def _get_service_quota(state: SandboxState, params: dict[str, Any], region: str) -> Response | None:
    if params.get("ServiceCode") != "ec2":
        return None  # moto answers the services it knows (vpc)
    code = str(params.get("QuotaCode", ""))
    value = state.quota_value(region, code) if code in EC2_QUOTA_NAMES else None
    if value is None:
        raise ApiError("NoSuchResourceException", f"The request failed because the specified quota {code} "
                       "does not exist for service ec2.")
    return _json_ok({"Quota": _quota_body(state, region, code, value)})


def _list_service_quotas(state: SandboxState, params: dict[str, Any], region: str) -> Response | None:
    if params.get("ServiceCode") != "ec2":
        return None
    quotas = []
    for code in EC2_QUOTA_NAMES:
        value = state.quota_value(region, code)
        if value is not None and params.get("QuotaCode") in (None, code):
            quotas.append(_quota_body(state, region, code, value))
    items, token = _page(quotas, params, "MaxResults", "NextToken", default=100, high=100)
    body: dict[str, Any] = {"Quotas": items}
    if token:
        body["NextToken"] = token
    return _json_ok(body)


# Pricing ------------------------------------------------------------------------------------------


def _sku(*parts: str) -> str:
    digest = hashlib.sha256("|".join(parts).encode()).digest()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    return "".join(alphabet[b % 32] for b in digest[:16])


def _price_products(state: SandboxState) -> list[dict[str, Any]]:
    """Products as the EC2 offer file has them: the shared Linux on-demand one and two that filters must skip."""
    catalog = load_catalog()
    products: list[dict[str, Any]] = []
    for (region, type_name), price in sorted(state.prices.items()):
        t = catalog.instance_type(type_name)
        prefix = USAGE_PREFIX.get(region, region.upper().replace("-", ""))
        variants = [
            ("Used", "Shared", f"{prefix}-BoxUsage:{type_name}", price),
            ("UnusedCapacityReservation", "Shared", f"{prefix}-UnusedBox:{type_name}", price),
            ("Used", "Dedicated", f"{prefix}-DedicatedUsage:{type_name}", round(price * 1.1, 4)),
        ]
        for capacity_status, tenancy, usage, amount in variants:
            sku = _sku(region, type_name, capacity_status, tenancy)
            attrs = {
                "servicecode": "AmazonEC2", "servicename": "Amazon Elastic Compute Cloud",
                "productFamily": "Compute Instance", "location": PRICING_LOCATIONS.get(region, region),
                "locationType": "AWS Region", "regionCode": region, "instanceType": type_name,
                "instanceFamily": "GPU instance", "operatingSystem": "Linux", "tenancy": tenancy,
                "preInstalledSw": "NA", "licenseModel": "No License required", "capacitystatus": capacity_status,
                "marketoption": "OnDemand", "usagetype": usage, "operation": "RunInstances",
                "vcpu": str(t.vcpus) if t else "NA", "gpu": str(t.gpus) if t else "NA",
                "memory": f"{t.memory_mib // 1024} GiB" if t else "NA",
            }
            term_code, rate_code = "JRTCKXETXF", "6YS6EN2CT7"
            products.append({
                "product": {"productFamily": "Compute Instance", "attributes": attrs, "sku": sku},
                "serviceCode": "AmazonEC2",
                "terms": {"OnDemand": {f"{sku}.{term_code}": {
                    "priceDimensions": {f"{sku}.{term_code}.{rate_code}": {
                        "unit": "Hrs", "endRange": "Inf", "beginRange": "0", "appliesTo": [],
                        "description": f"${amount:.3f} per On Demand Linux {type_name} Instance Hour",
                        "rateCode": f"{sku}.{term_code}.{rate_code}",
                        "pricePerUnit": {"USD": f"{amount:.10f}"},
                    }},
                    "sku": sku, "effectiveDate": "2026-11-01T00:00:00Z", "offerTermCode": term_code,
                    "termAttributes": {},
                }}},
                "version": "20261101000000",
                "publicationDate": "2026-11-01T00:00:00Z",
            })
    return products


def _product_matches(product: dict[str, Any], filters: list[dict[str, Any]]) -> bool:
    attrs = {k.lower(): str(v).lower() for k, v in product["product"]["attributes"].items()}
    for f in filters:
        kind = str(f.get("Type", "TERM_MATCH"))
        field_name = str(f.get("Field", "")).lower()
        wanted = str(f.get("Value", "")).lower()
        have = attrs.get(field_name)
        if kind in ("TERM_MATCH", "EQUALS"):
            ok = have == wanted
        elif kind == "CONTAINS":
            ok = have is not None and wanted in have
        elif kind == "ANY_OF":
            ok = have in [v.strip() for v in wanted.split(",")]
        elif kind == "NONE_OF":
            ok = have not in [v.strip() for v in wanted.split(",")]
        else:
            raise ApiError("InvalidParameterException", f"Unsupported filter type {kind}")
        if not ok:
            return False
    return True


def _get_products(state: SandboxState, params: dict[str, Any], region: str) -> Response:
    if region not in ("us-east-1", "ap-south-1", "eu-central-1"):
        raise ApiError("InvalidParameterException", "The Price List API is served from us-east-1, eu-central-1 "
                       "and ap-south-1 only")
    service = params.get("ServiceCode")
    if not service:
        raise ApiError("InvalidParameterException", "ServiceCode is required")
    with state.lock:
        products = _price_products(state) if service == "AmazonEC2" else []
    filters = _as_list(params.get("Filters"))
    matched = [json.dumps(p) for p in products if _product_matches(p, filters)]
    items, token = _page(matched, params, "MaxResults", "NextToken", default=100, high=100)
    body: dict[str, Any] = {"FormatVersion": str(params.get("FormatVersion", "aws_v1")), "PriceList": items}
    if token:
        body["NextToken"] = token
    return _json_ok(body)


# EKS add-ons --------------------------------------------------------------------------------------


def _addon_json(state: SandboxState, region: str, a: Addon) -> dict[str, Any]:
    arn_id = hashlib.sha256(f"{region}{a.cluster}{a.name}{a.created.isoformat()}".encode()).hexdigest()
    body: dict[str, Any] = {
        "addonName": a.name, "clusterName": a.cluster, "status": a.status, "addonVersion": a.version,
        "health": {"issues": []},
        "addonArn": f"arn:aws:eks:{region}:{state.account}:addon/{a.cluster}/{a.name}/"
                    f"{arn_id[:8]}-{arn_id[8:12]}-{arn_id[12:16]}-{arn_id[16:20]}-{arn_id[20:32]}",
        "createdAt": a.created.timestamp(), "modifiedAt": a.created.timestamp(), "tags": dict(a.tags),
    }
    if a.service_account_role_arn:
        body["serviceAccountRoleArn"] = a.service_account_role_arn
    if a.configuration_values:
        body["configurationValues"] = a.configuration_values
    if a.pod_identity_associations:
        body["podIdentityAssociations"] = list(a.pod_identity_associations)
    return body


def _check_cluster(state: SandboxState, region: str, cluster: str) -> None:
    if state.cluster_exists is not None and not state.cluster_exists(region, cluster):
        raise ApiError("ResourceNotFoundException", f"No cluster found for name: {cluster}.", 404)


def _refresh_addon(state: SandboxState, a: Addon) -> None:
    if a.status == "CREATING" and (state.clock() - a.created).total_seconds() >= state.addon_ready_after_s:
        a.status = "ACTIVE"


def _create_addon(state: SandboxState, params: dict[str, Any], region: str) -> Response:
    cluster, name = str(params.get("clusterName", "")), str(params.get("addonName", ""))
    _check_cluster(state, region, cluster)
    known = [v for v in state.addon_versions if v.addon == name]
    if not known:
        raise ApiError("InvalidParameterException", f"Addon {name} specified is not supported")
    version = params.get("addonVersion")
    if version in (None, "", "latest"):
        version = next((v.version for v in known if v.default), known[0].version)
    elif version not in {v.version for v in known}:
        raise ApiError("InvalidParameterException", f"Addon version specified {version} is not supported")
    associations = [
        f"arn:aws:eks:{region}:{state.account}:podidentityassociation/{cluster}/a-"
        + hashlib.sha256(f"{cluster}{name}{p.get('serviceAccount')}".encode()).hexdigest()[:17]
        for p in _as_list(params.get("podIdentityAssociations")) if isinstance(p, dict)
    ]
    with state.lock:
        addons = state.addons.setdefault((region, cluster), {})
        if name in addons:
            raise ApiError("ResourceInUseException", f"Addon already exists: {name}", 409)
        addon = Addon(
            name=name, cluster=cluster, version=str(version), created=state.clock(),
            service_account_role_arn=params.get("serviceAccountRoleArn"),
            configuration_values=params.get("configurationValues"),
            tags=dict(params.get("tags") or {}), pod_identity_associations=associations,
        )
        addons[name] = addon
        return _rest_ok({"addon": _addon_json(state, region, addon)})


def _find_addon(state: SandboxState, region: str, cluster: str, name: str) -> Addon:
    addon = state.addons.get((region, cluster), {}).get(name)
    if addon is None:
        raise ApiError("ResourceNotFoundException",
                       f"No addon: {name} found in cluster: {cluster}", 404)
    return addon


def _describe_addon(state: SandboxState, params: dict[str, Any], region: str) -> Response:
    cluster, name = str(params.get("clusterName", "")), str(params.get("addonName", ""))
    _check_cluster(state, region, cluster)
    with state.lock:
        addon = _find_addon(state, region, cluster, name)
        _refresh_addon(state, addon)
        return _rest_ok({"addon": _addon_json(state, region, addon)})


def _delete_addon(state: SandboxState, params: dict[str, Any], region: str) -> Response:
    cluster, name = str(params.get("clusterName", "")), str(params.get("addonName", ""))
    _check_cluster(state, region, cluster)
    with state.lock:
        addon = _find_addon(state, region, cluster, name)
        addon.status = "DELETING"
        body = {"addon": _addon_json(state, region, addon)}
        del state.addons[(region, cluster)][name]
    return _rest_ok(body)


def _list_addons(state: SandboxState, params: dict[str, Any], region: str) -> Response:
    cluster = str(params.get("clusterName", ""))
    _check_cluster(state, region, cluster)
    with state.lock:
        names = sorted(state.addons.get((region, cluster), {}))
    items, token = _page(names, params, "maxResults", "nextToken", default=100, high=100)
    body: dict[str, Any] = {"addons": items}
    if token:
        body["nextToken"] = token
    return _rest_ok(body)


def _describe_addon_versions(state: SandboxState, params: dict[str, Any], region: str) -> Response:
    wanted_name = params.get("addonName")
    k8s = params.get("kubernetesVersion")
    grouped: dict[str, list[AddonVersion]] = {}
    for v in state.addon_versions:
        if wanted_name and v.addon != wanted_name:
            continue
        if k8s and k8s not in v.cluster_versions:
            continue
        grouped.setdefault(v.addon, []).append(v)
    addons = []
    for name, versions in sorted(grouped.items()):
        addons.append({
            "addonName": name, "type": versions[0].addon_type, "publisher": "eks", "owner": "aws",
            "addonVersions": [{
                "addonVersion": v.version, "architecture": ["amd64", "arm64"],
                "computeTypes": ["ec2", "auto"],
                "compatibilities": [{"clusterVersion": cv, "platformVersions": ["*"], "defaultVersion": v.default}
                                    for cv in v.cluster_versions],
                "requiresConfiguration": False, "requiresIamPermissions": name == "aws-efs-csi-driver",
            } for v in versions],
        })
    items, token = _page(addons, params, "maxResults", "nextToken", default=100, high=100)
    body: dict[str, Any] = {"addons": items}
    if token:
        body["nextToken"] = token
    return _rest_ok(body)


_EKS_OPS: dict[str, Callable[[SandboxState, dict[str, Any], str], Response]] = {
    "CreateAddon": _create_addon,
    "DescribeAddon": _describe_addon,
    "DeleteAddon": _delete_addon,
    "ListAddons": _list_addons,
    "DescribeAddonVersions": _describe_addon_versions,
}

_JSON_OPS: dict[tuple[str, str], Callable[[SandboxState, dict[str, Any], str], Response | None]] = {
    ("service-quotas", "GetServiceQuota"): _get_service_quota,
    ("service-quotas", "ListServiceQuotas"): _list_service_quotas,
    ("pricing", "GetProducts"): _get_products,
}

# Which operations this module answers (everything else falls through to moto).
GAP_OPERATIONS: dict[str, frozenset[str]] = {
    "ec2": frozenset(_EC2_OPS),
    "service-quotas": frozenset(op for svc, op in _JSON_OPS if svc == "service-quotas"),
    "pricing": frozenset(op for svc, op in _JSON_OPS if svc == "pricing"),
    "eks": frozenset(_EKS_OPS),
}


def handle(state: SandboxState, service: str, operation: str, params: dict[str, Any], region: str) -> Response | None:
    """Answer one parsed call, or None when moto should answer it.

    `service` is the boto3 service name (ec2, service-quotas, pricing, eks); `params` are the operation's
    parameters (EC2: as `unflatten_query` gives them, e.g. {'Filter': [{'Name': .., 'Value': [..]}]}).
    """
    try:
        if service == "ec2" and operation in _EC2_OPS:
            return _EC2_OPS[operation](state, params, region)
        if (service, operation) in _JSON_OPS:
            return _JSON_OPS[(service, operation)](state, params, region)
        if service == "eks" and operation in _EKS_OPS:
            return _EKS_OPS[operation](state, params, region)
    except ApiError as err:
        if service == "ec2":
            return _ec2_error(err)
        if service == "eks":
            return _rest_error(err)
        return _json_error(err)
    return None


# Raw HTTP requests -------------------------------------------------------------------------------

# SigV4 signing name -> boto3 service name (they differ for Service Quotas).
_SIGNING_NAMES = {"servicequotas": "service-quotas"}
_CREDENTIAL_SCOPE_RE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")
_EKS_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(r"^/addons/supported-versions$"), "DescribeAddonVersions"),
    ("POST", re.compile(r"^/clusters/(?P<clusterName>[^/]+)/addons$"), "CreateAddon"),
    ("GET", re.compile(r"^/clusters/(?P<clusterName>[^/]+)/addons$"), "ListAddons"),
    ("GET", re.compile(r"^/clusters/(?P<clusterName>[^/]+)/addons/(?P<addonName>[^/]+)$"), "DescribeAddon"),
    ("DELETE", re.compile(r"^/clusters/(?P<clusterName>[^/]+)/addons/(?P<addonName>[^/]+)$"), "DeleteAddon"),
]


@dataclass(frozen=True)
class ApiCall:
    service: str
    operation: str | None  # None: an operation this module cannot name (faults still apply)
    params: dict[str, Any]
    region: str


def _header(headers: dict[str, str] | Any, name: str) -> str | None:
    lowered = name.lower()
    for k, v in headers.items():
        if str(k).lower() == lowered:
            return v.decode() if isinstance(v, bytes) else str(v)
    return None


def parse_http_request(method: str, url: str, headers: dict[str, str] | Any, body: bytes | str | None) -> ApiCall | None:
    """Name the service, operation, parameters and region of a signed AWS request (None if unsigned)."""
    auth = _header(headers, "Authorization") or ""
    scope = _CREDENTIAL_SCOPE_RE.search(auth)
    if not scope:
        return None
    region, signing_name = scope.group(1), scope.group(2)
    service = _SIGNING_NAMES.get(signing_name, signing_name)
    raw = body.encode() if isinstance(body, str) else (body or b"")
    split = urlsplit(url)
    target = _header(headers, "X-Amz-Target")
    if target:  # JSON 1.0/1.1 protocols: "ServiceQuotasV20190624.GetServiceQuota"
        try:
            params = json.loads(raw.decode() or "{}")
        except (ValueError, UnicodeDecodeError):
            params = {}
        return ApiCall(service, target.rsplit(".", 1)[-1], params if isinstance(params, dict) else {}, region)
    content_type = (_header(headers, "Content-Type") or "").lower()
    if "x-www-form-urlencoded" in content_type or (method.upper() == "POST" and raw.startswith(b"Action=")):
        pairs = parse_qsl(raw.decode(errors="replace"), keep_blank_values=True)
        params = unflatten_query(pairs)
        operation = params.pop("Action", None)
        params.pop("Version", None)
        return ApiCall(service, operation if isinstance(operation, str) else None, params, region)
    if service == "eks":
        path = split.path
        for route_method, pattern, operation in _EKS_ROUTES:
            m = pattern.match(path)
            if m and method.upper() == route_method:
                params = {k: unquote(v) for k, v in m.groupdict().items()}
                params.update(dict(parse_qsl(split.query)))
                if raw:
                    try:
                        data = json.loads(raw.decode())
                        if isinstance(data, dict):
                            params.update(data)
                    except (ValueError, UnicodeDecodeError):
                        pass
                return ApiCall(service, operation, params, region)
    return ApiCall(service, None, {}, region)


def _throttle_response(call: ApiCall) -> Response:
    if call.service == "ec2":
        return _ec2_error(ApiError("RequestLimitExceeded", "Request limit exceeded.", 503))
    if call.service == "eks":
        return _rest_error(ApiError("ThrottlingException", "Rate exceeded", 429))
    code = "TooManyRequestsException" if call.service == "service-quotas" else "ThrottlingException"
    return _json_error(ApiError(code, "Rate exceeded", 400))


def _denied_response(call: ApiCall) -> Response:
    action = f"{call.service}:{call.operation or '*'}"
    message = (f"You are not authorized to perform this operation. User: arn:aws:iam::{DEFAULT_ACCOUNT}:user/moto "
               f"is not authorized to perform: {action} in region {call.region}")
    if call.service == "ec2":
        return _ec2_error(ApiError("UnauthorizedOperation", message, 403))
    if call.service == "eks":
        return _rest_error(ApiError("AccessDeniedException", message, 403))
    return _json_error(ApiError("AccessDeniedException", message, 400))


def handle_http(state: SandboxState, method: str, url: str, headers: dict[str, str] | Any,
                body: bytes | str | None) -> Response | None:
    """Faults first (latency, AccessDenied per region, throttling), then the gaps; None -> pass to moto."""
    call = parse_http_request(method, url, headers, body)
    if call is None:
        return None
    faults = state.faults
    if faults.latency_s > 0:
        time.sleep(faults.latency_s)  # simulated network latency, not a wait for a worker
    if call.region in faults.deny_regions and call.service not in ("sts", "iam"):
        with faults._lock:
            faults.denied += 1
        return _denied_response(call)
    if faults.throttle_share > 0 and faults.next_is_throttled():
        return _throttle_response(call)
    if call.operation is None:
        return None
    return handle(state, call.service, call.operation, call.params, call.region)


# botocore wiring (tests) --------------------------------------------------------------------------


class _RawBody:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterable[bytes]:
        yield self._data


@dataclass
class FillHandle:
    """What `install_botocore_fills` registered; `answered` counts calls served here (by operation)."""

    state: SandboxState
    answered: dict[str, int] = field(default_factory=dict)
    _events: Any = None
    _handler: Any = None

    def uninstall(self) -> None:
        if self._events is not None:
            self._events.unregister("before-send", self._handler, unique_id=f"dynamo-wizard-gaps-{id(self)}")
            self._events = None


def install_botocore_fills(target: Any, state: SandboxState) -> FillHandle:
    """Answer moto's gaps (and inject `state.faults`) for a boto3/botocore session or one client.

    On a session, clients created *after* this call get the handler (botocore copies the session's event
    hooks into each new client).
    """
    from botocore.awsrequest import AWSResponse  # the only botocore use: building the response object

    if hasattr(target, "meta") and hasattr(target.meta, "events"):
        events = target.meta.events
    elif hasattr(target, "events") and hasattr(target, "client"):  # boto3.Session
        events = target.events
    else:  # botocore.session.Session
        events = target.get_component("event_emitter")
    handle_ = FillHandle(state)

    def before_send(request: Any, **_: Any) -> Any:
        answer = handle_http(state, request.method, request.url, request.headers, request.body)
        if answer is None:
            return None
        status, headers, body = answer
        call = parse_http_request(request.method, request.url, request.headers, request.body)
        key = f"{call.service}.{call.operation}" if call else "?"
        with state.lock:
            handle_.answered[key] = handle_.answered.get(key, 0) + 1
        return AWSResponse(request.url, status, headers, _RawBody(body))

    handle_._events, handle_._handler = events, before_send
    events.register("before-send", before_send, unique_id=f"dynamo-wizard-gaps-{id(handle_)}")
    return handle_
