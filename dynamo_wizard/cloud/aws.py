"""AWS discovery over boto3: identity, regions, zones, GPU offerings, reservations, quotas and prices.

Everything leaves this module as the dataclasses of `core.inventory`. The standard credential chain is
used (environment, profiles, SSO; `AWS_PROFILE` and `--profile` honoured) and `AWS_ENDPOINT_URL` is left
to boto3, which is how tests (moto) and the sandbox redirect every call.

Speed: calls fan out over a bounded thread pool (regions x calls). boto3 clients are thread-safe but
sessions are not, so clients are created under a lock, one per (service, region), and shared. Results are
cached in memory for the life of the object and on disk under `core.paths.cache_dir()` for
`cache_ttl_s` (keyed by endpoint, account and region); `refresh=True` bypasses both. Reservations and
Capacity Block offerings change minute to minute and are never cached on disk.

Failure: a call that fails in one region (AccessDenied, throttling after retries, a region not enabled,
an unreachable endpoint) leaves a partial `RegionSummary` whose `notes` name the region, the call and
the reason. Only problems the user must fix first raise `WizardError`: no usable credentials, a
malformed reservation id, an unknown region.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    SSOTokenLoadError,
    TokenRetrievalError,
    UnauthorizedSSOTokenError,
)

from ..core.catalog import Catalog, family_of, load_catalog
from ..core.errors import WizardError
from ..core.inventory import (
    CapacityBlockOffering,
    CapacityReservation,
    GpuOffering,
    Identity,
    Quota,
    RegionSummary,
    Zone,
)
from ..core.paths import cache_dir
from ..core.preflight import QUOTA_CODES  # (quota class, market) -> (code, name); values are vCPUs
from .aws_ops import BOTO_FAILURES as _BOTO_FAILURES

T = TypeVar("T")

# Zone IDs where EKS cannot place a cluster's control plane (EKS user guide, "Subnet requirements for
# clusters"; the upstream Dynamo guide excludes use1-az3). They stay listed for GPU capacity: nodes may
# run there, only the cluster's subnets must avoid them.
EKS_UNSUPPORTED_ZONE_IDS: frozenset[str] = frozenset({"use1-az3", "usw1-az2", "cac1-az3"})

PRICING_REGION = "us-east-1"  # the Price List API endpoint the wizard uses (also eu-central-1, ap-south-1)
DEFAULT_REGION = "us-east-1"
CACHE_TTL_S = 600.0
REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
CR_ID_RE = re.compile(r"^cr-(?:[0-9a-f]{8}|[0-9a-f]{17})$")

_ACCESS_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedAccess"}
_THROTTLE_CODES = {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException",
                   "RequestThrottled", "RequestThrottledException", "EC2ThrottledException"}
_OPT_IN_CODES = {"OptInRequired", "AuthFailure", "InvalidClientTokenId", "UnrecognizedClientException"}
_CREDENTIAL_EXCEPTIONS = (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError,
                          UnauthorizedSSOTokenError, SSOTokenLoadError, TokenRetrievalError)
_CREDENTIALS_FIX = ("configure AWS credentials (`aws configure`, `aws sso login --profile NAME`, or "
                    "AWS_PROFILE / --profile), or try `dynamo-wizard --sandbox` to run without an account")


class CredentialsError(WizardError):
    """No usable AWS credentials: nothing else can work until this is fixed."""


def default_region() -> str:
    """--region's default: AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", "Unknown"))


def _action(call: str) -> str:
    """'ec2.DescribeInstanceTypes' -> 'ec2:DescribeInstanceTypes' (the IAM action to grant)."""
    service, _, op = call.partition(".")
    return f"{'servicequotas' if service == 'service-quotas' else service}:{op}"


def describe_failure(region: str, call: str, err: BaseException) -> str:
    """One human sentence: where, which call, why, and what to do."""
    where = f"{region}: {call}"
    if isinstance(err, ClientError):
        code = _code(err)
        if code in _ACCESS_CODES:
            return f"{where} was denied ({code}); grant {_action(call)} to this identity to see it"
        if code in _THROTTLE_CODES:
            return f"{where} was throttled ({code}) after retries; try again in a minute"
        if code in _OPT_IN_CODES:
            return f"{where} failed ({code}): the region is probably not enabled for this account"
        message = str(err.response.get("Error", {}).get("Message", ""))[:160]
        return f"{where} failed ({code}): {message}".rstrip(": ")
    if isinstance(err, (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError)):
        return f"{where} could not reach the endpoint ({type(err).__name__}); check the network or proxy"
    return f"{where} failed ({type(err).__name__}): {str(err)[:160]}"


def _is_credentials_problem(err: BaseException) -> bool:
    return isinstance(err, (*_CREDENTIAL_EXCEPTIONS, ProfileNotFound))


class AwsDiscovery:
    """`core.inventory.Discovery` over boto3. Thread-safe; one instance per run (its cache is per run)."""

    def __init__(self, session: boto3.Session | None = None, max_workers: int = 16, *,
                 catalog: Catalog | None = None, refresh: bool = False, cache_ttl_s: float = CACHE_TTL_S,
                 clock: Callable[[], float] = time.time) -> None:
        try:
            self._session = session or boto3.Session()
        except ProfileNotFound as err:
            raise CredentialsError(f"AWS profile not found: {err}", _CREDENTIALS_FIX) from None
        self._max_workers = max(1, max_workers)
        self._pool = ThreadPoolExecutor(self._max_workers, thread_name_prefix="aws-discovery")
        self._catalog = catalog or load_catalog()
        self._refresh = refresh
        self._ttl = cache_ttl_s
        self._clock = clock
        self._clients: dict[tuple[str, str], Any] = {}
        self._client_lock = threading.Lock()
        self._memo: dict[tuple[Any, ...], Any] = {}
        self._memo_lock = threading.Lock()
        self._identity: Identity | None = None
        self._identity_lock = threading.Lock()
        endpoint = os.environ.get("AWS_ENDPOINT_URL", "aws")
        self._endpoint_key = hashlib.sha256(endpoint.encode()).hexdigest()[:12]
        self._config = Config(retries={"mode": "adaptive", "max_attempts": 8}, connect_timeout=5, read_timeout=30,
                              max_pool_connections=max(10, self._max_workers), user_agent_appid="dynamo-wizard")
        # Pricing: one us-east-1 client serves every region's price lookups, dozens of calls in one burst.
        # Adaptive mode's client-side limiter starts from a measured rate of zero, so one early throttle
        # drops that client to ~0.5 requests/s (measured: 30 s instead of 3 s for three regions at 20%
        # throttling). Standard mode still backs off per call. Prices are optional (the catalog stands
        # in), so few attempts and a short timeout.
        self._pricing_config = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=3,
                                      read_timeout=10, max_pool_connections=max(10, self._max_workers),
                                      user_agent_appid="dynamo-wizard")

    # Plumbing ------------------------------------------------------------------------------------

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> AwsDiscovery:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def session(self) -> boto3.Session:
        return self._session

    def client(self, service: str, region: str) -> Any:
        """A shared client per (service, region); creation is serialised because sessions are not thread-safe."""
        key = (service, region)
        with self._client_lock:
            found = self._clients.get(key)
            if found is None:
                config = self._pricing_config if service == "pricing" else self._config
                try:
                    found = self._session.client(service, region_name=region, config=config)
                except NoRegionError:
                    raise WizardError(f"no region for {service}", "pass --region or set AWS_REGION") from None
                self._clients[key] = found
            return found

    def _memo_get(self, key: tuple[Any, ...]) -> tuple[bool, Any]:
        with self._memo_lock:
            if key in self._memo:
                return True, self._memo[key]
        return False, None

    def _memo_put(self, key: tuple[Any, ...], value: Any) -> None:
        with self._memo_lock:
            self._memo[key] = value

    def _disk_path(self, region: str, name: str) -> Path | None:
        account = self._identity.account if self._identity else None
        if not account:
            return None
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        if len(safe) > 80:
            safe = safe[:40] + "-" + hashlib.sha256(name.encode()).hexdigest()[:16]
        return cache_dir() / "aws" / self._endpoint_key / account / region / f"{safe}.json"

    def _cached(self, region: str, name: str, fetch: Callable[[], T], *, disk: bool = True) -> T:
        """Memory (what this instance fetched), then disk (younger than the TTL; not with refresh), then
        `fetch`; only successes are stored."""
        key = (region, name)
        hit, value = self._memo_get(key)
        if hit:
            return value  # type: ignore[no-any-return]
        if not self._refresh:
            path = self._disk_path(region, name) if disk else None
            if path is not None and path.is_file():
                try:
                    stored = json.loads(path.read_text(encoding="utf-8"))
                    if self._clock() - float(stored["stored"]) < self._ttl:
                        self._memo_put(key, stored["value"])
                        return stored["value"]  # type: ignore[no-any-return]
                except (OSError, ValueError, KeyError, TypeError):
                    pass  # a damaged cache entry is refetched
        value = fetch()
        self._memo_put(key, value)
        path = self._disk_path(region, name) if disk else None
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
                tmp.write_text(json.dumps({"stored": self._clock(), "value": value}), encoding="utf-8")
                tmp.replace(path)
            except OSError:
                pass  # the cache is an optimisation; a read-only home must not break discovery
        return value

    @staticmethod
    def _paginate(client: Any, operation: str, result_key: str, **kwargs: Any) -> list[Any]:
        items: list[Any] = []
        for page in client.get_paginator(operation).paginate(**kwargs):
            items.extend(page.get(result_key, []))
        return items

    # Identity and regions ----------------------------------------------------------------------

    def identity(self) -> Identity:
        with self._identity_lock:
            if self._identity is not None:
                return self._identity
            region = self._session.region_name or default_region()
            try:
                answer = self.client("sts", region).get_caller_identity()
            except _CREDENTIAL_EXCEPTIONS as err:
                raise CredentialsError(f"no usable AWS credentials ({type(err).__name__})", _CREDENTIALS_FIX) from None
            except ClientError as err:
                raise CredentialsError(f"AWS rejected the credentials ({_code(err)})", _CREDENTIALS_FIX) from None
            except _BOTO_FAILURES as err:
                raise CredentialsError(f"could not check the AWS credentials: {describe_failure(region, 'sts.GetCallerIdentity', err)}",
                                       "check the network, or run `dynamo-wizard --sandbox`") from None
            arn = str(answer.get("Arn", ""))
            parts = arn.split(":")
            profile = os.environ.get("AWS_PROFILE") or (
                self._session.profile_name if self._session.profile_name not in (None, "default") else None)
            self._identity = Identity(account=str(answer.get("Account", "")), arn=arn,
                                      partition=parts[1] if len(parts) > 1 and parts[1] else "aws", profile=profile)
            return self._identity

    def _region_table(self) -> dict[str, str]:
        """Every region the partition has -> its opt-in status (one describe_regions call, cached)."""
        home = self._session.region_name or default_region()
        if not REGION_RE.match(home):
            home = DEFAULT_REGION

        def fetch() -> dict[str, str]:
            answer = self.client("ec2", home).describe_regions(AllRegions=True)
            return {r["RegionName"]: str(r.get("OptInStatus", "opt-in-not-required")) for r in answer["Regions"]}

        self.identity()
        return self._cached("global", "describe-regions", fetch)

    def regions(self) -> list[str]:
        """Regions this account has enabled (opt-in-not-required or opted-in), sorted."""
        try:
            table = self._region_table()
        except (ClientError, *_BOTO_FAILURES) as err:
            if _is_credentials_problem(err):
                raise CredentialsError(f"no usable AWS credentials ({type(err).__name__})", _CREDENTIALS_FIX) from None
            raise WizardError(describe_failure(self._session.region_name or default_region(),
                                               "ec2.DescribeRegions", err),
                              "pass --region explicitly, or grant ec2:DescribeRegions") from None
        return sorted(r for r, status in table.items() if status != "not-opted-in")

    def check_region(self, region: str) -> str | None:
        """Raise WizardError for a name that is no region; return a note for one not enabled, else None."""
        if not REGION_RE.match(region or ""):
            raise WizardError(f"{region!r} is not an AWS region name", "use a region such as us-east-1")
        try:
            table = self._region_table()
        except CredentialsError:
            raise
        except (ClientError, *_BOTO_FAILURES):
            return None  # cannot list regions (e.g. denied): let the real calls speak for themselves
        if region not in table:
            near = sorted(r for r in table if r.split("-")[0] == region.split("-")[0])[:6] or sorted(table)[:6]
            raise WizardError(f"unknown region {region!r} for this account's partition",
                              f"choose one of {', '.join(near)} (`dynamo-wizard gpus --region R`)")
        if table[region] == "not-opted-in":
            return (f"{region}: the region is not enabled for this account; enable it under Account > "
                    "AWS Regions, or choose another region")
        return None

    # Zones -------------------------------------------------------------------------------------

    def _zones_raw(self, region: str) -> list[dict[str, Any]]:
        def fetch() -> list[dict[str, Any]]:
            answer = self.client("ec2", region).describe_availability_zones()
            return [
                {"name": z["ZoneName"], "zone_id": z.get("ZoneId", ""),
                 "opt_in_required": z.get("OptInStatus", "opt-in-not-required") != "opt-in-not-required"}
                for z in answer.get("AvailabilityZones", [])
                if z.get("ZoneType", "availability-zone") == "availability-zone"
            ]

        return self._cached(region, "zones", fetch)

    @staticmethod
    def _zone(region: str, raw: dict[str, Any]) -> Zone:
        return Zone(name=raw["name"], zone_id=raw["zone_id"], region=region,
                    opt_in_required=bool(raw["opt_in_required"]),
                    eks_control_plane=raw["zone_id"] not in EKS_UNSUPPORTED_ZONE_IDS)

    def zones(self, region: str) -> list[Zone]:
        return sorted((self._zone(region, z) for z in self._zones_raw(region)), key=lambda z: z.name)

    def cluster_zones(self, region: str) -> list[Zone]:
        """Zones a cluster may use: EKS has a control plane there and no opt-in is needed."""
        return [z for z in self.zones(region) if z.eks_control_plane and not z.opt_in_required]

    # GPU types, offerings, prices --------------------------------------------------------------

    @staticmethod
    def _spec(item: dict[str, Any]) -> dict[str, Any] | None:
        gpus = (item.get("GpuInfo") or {}).get("Gpus") or []
        if not gpus:
            return None  # not a GPU type (trn/inf accelerators are listed under other keys)
        first = gpus[0]
        network = item.get("NetworkInfo") or {}
        return {
            "instance_type": item["InstanceType"],
            "family": family_of(item["InstanceType"]),
            "gpus": int(sum(int(g.get("Count", 0)) for g in gpus)),
            "gpu_model": f"{first.get('Manufacturer', '')} {first.get('Name', '')}".strip(),
            "gpu_memory_mib": int((first.get("MemoryInfo") or {}).get("SizeInMiB", 0)),
            "vcpus": int((item.get("VCpuInfo") or {}).get("DefaultVCpus", 0)),
            "memory_mib": int((item.get("MemoryInfo") or {}).get("SizeInMiB", 0)),
            "efa_supported": bool(network.get("EfaSupported", False)),
            "max_efa_interfaces": int((network.get("EfaInfo") or {}).get("MaximumEfaInterfaces", 0)),
        }

    def _catalog_specs(self, families: Iterable[str]) -> list[dict[str, Any]]:
        wanted = set(families)
        return [
            {"instance_type": t.name, "family": t.family, "gpus": t.gpus, "gpu_model": t.gpu_model,
             "gpu_memory_mib": t.gpu_memory_mib, "vcpus": t.vcpus, "memory_mib": t.memory_mib,
             "efa_supported": t.efa_supported, "max_efa_interfaces": t.max_efa_interfaces}
            for t in self._catalog.instance_types.values() if t.family in wanted
        ]

    def _gpu_specs(self, region: str, families: tuple[str, ...]) -> list[dict[str, Any]]:
        """describe_instance_types for the families (its filters accept wildcards: 'g6e.*')."""
        def fetch() -> list[dict[str, Any]]:
            items = self._paginate(self.client("ec2", region), "describe_instance_types", "InstanceTypes",
                                   Filters=[{"Name": "instance-type", "Values": [f"{f}.*" for f in families]}])
            specs = [s for s in (self._spec(i) for i in items) if s is not None and s["family"] in families]
            return sorted(specs, key=lambda s: (s["family"], s["vcpus"], s["instance_type"]))

        return self._cached(region, "types-" + ",".join(families), fetch)

    def _offered_zones(self, region: str, type_names: list[str]) -> dict[str, list[str]]:
        """describe_instance_type_offerings with exact names (offerings filters take no wildcards in moto)."""
        def fetch() -> dict[str, list[str]]:
            found: dict[str, set[str]] = {t: set() for t in type_names}
            client = self.client("ec2", region)
            for start in range(0, len(type_names), 100):  # filter values are limited per request
                chunk = type_names[start:start + 100]
                for o in self._paginate(client, "describe_instance_type_offerings", "InstanceTypeOfferings",
                                        LocationType="availability-zone",
                                        Filters=[{"Name": "instance-type", "Values": chunk}]):
                    found.setdefault(o["InstanceType"], set()).add(o["Location"])
            return {t: sorted(z) for t, z in found.items()}

        names_key = hashlib.sha256(",".join(sorted(type_names)).encode()).hexdigest()[:16]
        return self._cached(region, f"offerings-{names_key}", fetch)

    def _price(self, region: str, instance_type: str) -> float | None:
        """On-demand Linux shared-tenancy price from the Pricing API (None: no such product)."""
        def fetch() -> float | None:
            filters = [
                {"Type": "TERM_MATCH", "Field": "instanceType", "Value": instance_type},
                # regionCode rather than location: location names differ from region names ("EU (Ireland)").
                {"Type": "TERM_MATCH", "Field": "regionCode", "Value": region},
                {"Type": "TERM_MATCH", "Field": "operatingSystem", "Value": "Linux"},
                {"Type": "TERM_MATCH", "Field": "tenancy", "Value": "Shared"},
                {"Type": "TERM_MATCH", "Field": "preInstalledSw", "Value": "NA"},
                {"Type": "TERM_MATCH", "Field": "capacitystatus", "Value": "Used"},
            ]
            products = self._paginate(self.client("pricing", PRICING_REGION), "get_products", "PriceList",
                                      ServiceCode="AmazonEC2", Filters=filters)
            return parse_on_demand_price(products, instance_type)

        return self._cached(region, f"price-{instance_type}", fetch)

    def _quota(self, region: str, code: str) -> float:
        def fetch() -> float:
            answer = self.client("service-quotas", region).get_service_quota(ServiceCode="ec2", QuotaCode=code)
            return float(answer["Quota"]["Value"])

        return self._cached(region, f"quota-{code}", fetch)

    # Region summaries ----------------------------------------------------------------------------

    def region_summary(self, region: str, families: list[str], *, prices: bool = True) -> RegionSummary:
        return self.region_summaries([region], families, prices=prices)[0]

    def region_summaries(self, regions: list[str], families: list[str], *, prices: bool = False,
                         on_summary: Callable[[RegionSummary], None] | None = None) -> list[RegionSummary]:
        """Summaries for many regions, fanned out over the pool; `on_summary` is called as each completes.

        prices=False (the region screen) shows catalog prices; True asks the Pricing API per type.
        """
        self.identity()  # credentials first: without them every call would fail the same way
        fams = tuple(dict.fromkeys(families or self._catalog.guide_families))
        regions = list(dict.fromkeys(regions))
        opt_in_notes = {r: self.check_region(r) for r in regions}
        asked = [r for r in regions if opt_in_notes[r] is None]
        # A type's specs (GPUs, memory, EFA) are the same in every region: ask one region, once (the home
        # region when it is among them). Which zones offer each type is asked per region; an offered type
        # that region did not describe takes its specs from the catalog.
        home = self._session.region_name or default_region()
        specs_region = home if home in asked else (asked[0] if asked else home)
        jobs: dict[str, _RegionJob] = {}
        if asked:
            specs_f = self._submit(specs_region, "ec2.DescribeInstanceTypes", lambda: self._gpu_specs(specs_region, fams))
            jobs = {r: _RegionJob(self, r, fams, prices, specs_f) for r in asked}
        for job in jobs.values():
            job.start()
        results: list[RegionSummary] = []
        for r in regions:
            note = opt_in_notes[r]
            summary = RegionSummary(region=r, notes=[note]) if note else jobs[r].finish()
            if on_summary is not None:
                on_summary(summary)
            results.append(summary)
        return results

    def _submit(self, region: str, call: str, fn: Callable[[], Any]) -> Future[tuple[Any, str | None]]:
        """Run one call in the pool: (value, None) or (None, a note naming region, call and reason)."""
        def run() -> tuple[Any, str | None]:
            try:
                return fn(), None
            except _CREDENTIAL_EXCEPTIONS as err:
                raise CredentialsError(f"no usable AWS credentials ({type(err).__name__})", _CREDENTIALS_FIX) from None
            except (ClientError, *_BOTO_FAILURES) as err:
                return None, describe_failure(region, call, err)

        return self._pool.submit(run)

    # Reservations --------------------------------------------------------------------------------

    def reservations(self, region: str, ids: list[str] | None = None) -> tuple[list[CapacityReservation], list[str]]:
        """On-Demand Capacity Reservations and Capacity Blocks in a region, with notes for what failed."""
        bad = [i for i in ids or [] if not CR_ID_RE.match(i)]
        if bad:
            raise WizardError(f"{bad[0]!r} is not a capacity reservation id",
                              "ids look like cr-0123456789abcdef0 (cr- and 17 hex digits); "
                              f"`dynamo-wizard reservations --region {region}` lists yours")
        self.identity()
        note = self.check_region(region)
        if note:
            return [], [note]
        kwargs: dict[str, Any] = {"CapacityReservationIds": list(ids)} if ids else {}
        try:
            items = self._paginate(self.client("ec2", region), "describe_capacity_reservations",
                                   "CapacityReservations", **kwargs)
        except ClientError as err:
            code = _code(err)
            if code.startswith("InvalidCapacityReservationId"):
                message = err.response.get("Error", {}).get("Message", code)
                raise WizardError(f"{region}: {message}",
                                  f"check the id and the region; `dynamo-wizard reservations --region {region}` "
                                  "lists this account's reservations") from None
            return [], [describe_failure(region, "ec2.DescribeCapacityReservations", err)]
        except _CREDENTIAL_EXCEPTIONS as err:
            raise CredentialsError(f"no usable AWS credentials ({type(err).__name__})", _CREDENTIALS_FIX) from None
        except _BOTO_FAILURES as err:
            return [], [describe_failure(region, "ec2.DescribeCapacityReservations", err)]
        return [reservation_from_api(i) for i in items], []

    def reservations_by_region(self, regions: list[str]) -> dict[str, tuple[list[CapacityReservation], list[str]]]:
        """`reservations` for many regions at once, over the pool (each call is synchronous, so no nesting)."""
        self.identity()
        futures = {r: self._pool.submit(self.reservations, r) for r in dict.fromkeys(regions)}
        return {r: f.result() for r, f in futures.items()}

    def capacity_block_offerings(self, region: str, instance_type: str, count: int, start: datetime,
                                 end: datetime, hours: int) -> list[CapacityBlockOffering]:
        """What Capacity Blocks EC2 would sell (shown with their upfront fee; the wizard never buys one)."""
        self.identity()
        note = self.check_region(region)
        if note:
            raise WizardError(note)
        try:
            items = self._paginate(self.client("ec2", region), "describe_capacity_block_offerings",
                                   "CapacityBlockOfferings", InstanceType=instance_type, InstanceCount=count,
                                   StartDateRange=start, EndDateRange=end, CapacityDurationHours=hours)
        except (ClientError, *_BOTO_FAILURES) as err:
            raise WizardError(describe_failure(region, "ec2.DescribeCapacityBlockOfferings", err),
                              "Capacity Blocks come in whole days (1-14) or weeks, for 1-64 instances") from None
        return [block_offering_from_api(i) for i in items]


def _relay(inner: Future[Any], outer: Future[Any]) -> None:
    err = inner.exception()
    if err is not None:
        outer.set_exception(err)
    else:
        outer.set_result(inner.result())


class _RegionJob:
    """The calls of one region, submitted to the shared pool; `finish` assembles the summary."""

    def __init__(self, discovery: AwsDiscovery, region: str, families: tuple[str, ...], prices: bool,
                 specs_f: Future[tuple[Any, str | None]]) -> None:
        self.d, self.region, self.families, self.prices = discovery, region, families, prices
        self.specs_f = specs_f  # the specs, asked once for all the regions (see region_summaries)
        self.notes: list[str] = []

    def start(self) -> None:
        d, r = self.d, self.region
        self.zones_f = d._submit(r, "ec2.DescribeAvailabilityZones", lambda: d._zones_raw(r))
        self.quota_f = {
            key: d._submit(r, f"service-quotas.GetServiceQuota({code})", functools.partial(d._quota, r, code))
            for key, (code, _) in QUOTA_CODES.items()
        }
        # Offerings and prices need the type names, so they chain on the specs (in the pool, not here).
        self.offers_f: Future[tuple[dict[str, list[str]] | None, str | None]] = Future()
        self.prices_f: Future[dict[str, tuple[float | None, str | None]]] = Future()
        self.specs_f.add_done_callback(lambda _: self._after_specs())

    def _specs(self) -> list[dict[str, Any]]:
        specs, _ = self.specs_f.result()
        return specs if specs is not None else self.d._catalog_specs(self.families)

    def _names(self) -> list[str]:
        """The types to ask offerings and prices for: those described, and the catalog's of the families."""
        names = [s["instance_type"] for s in self._specs()]
        known = set(names)
        return names + [s["instance_type"] for s in self.d._catalog_specs(self.families)
                        if s["instance_type"] not in known]

    def _after_specs(self) -> None:
        d, r = self.d, self.region
        try:
            names = self._names()
        except BaseException as err:  # noqa: BLE001 - hand any failure to finish(), never lose it in a callback
            self.offers_f.set_exception(err)
            self.prices_f.set_exception(err)
            return
        inner = d._submit(r, "ec2.DescribeInstanceTypeOfferings", lambda: d._offered_zones(r, names))
        inner.add_done_callback(lambda f: _relay(f, self.offers_f))
        if self.prices and names:
            # One price first: if Pricing is unreachable or denied, the same failure is not sent per type.
            first = d._submit(r, f"pricing.GetProducts({names[0]})", lambda: d._price(r, names[0]))
            first.add_done_callback(lambda f: self._after_first_price(f, names))
        else:
            self.prices_f.set_result({})

    def _after_first_price(self, first: Future[tuple[float | None, str | None]], names: list[str]) -> None:
        d, r = self.d, self.region
        try:
            results = {names[0]: first.result()}
        except BaseException as err:  # noqa: BLE001
            self.prices_f.set_exception(err)
            return
        note = results[names[0]][1]
        if note or len(names) == 1:
            results.update({n: (None, note) for n in names[1:]})
            self.prices_f.set_result(results)
            return
        rest: dict[str, Future[tuple[float | None, str | None]]] = {
            n: d._submit(r, f"pricing.GetProducts({n})", functools.partial(d._price, r, n)) for n in names[1:]}
        remaining = [len(rest)]
        lock = threading.Lock()

        def one_done(_: object) -> None:
            with lock:
                remaining[0] -= 1
                last = remaining[0] == 0
            if last:
                try:
                    results.update({n: f.result() for n, f in rest.items()})
                    self.prices_f.set_result(results)
                except BaseException as err:  # noqa: BLE001
                    self.prices_f.set_exception(err)

        for f in rest.values():
            f.add_done_callback(one_done)

    def finish(self) -> RegionSummary:
        d, r = self.d, self.region
        summary = RegionSummary(region=r)
        zones_raw, note = self.zones_f.result()
        if note:
            self.notes.append(note)
        summary.zones = sorted((d._zone(r, z) for z in zones_raw or []), key=lambda z: z.name)
        live, note = self.specs_f.result()
        if note:
            self.notes.append(note + "; GPU specs shown from the offline catalog")
        offered, offers_note = self.offers_f.result()
        if offers_note:
            self.notes.append(offers_note + "; zones offering each type are unknown")
        if live is None:
            specs = d._catalog_specs(self.families)
        else:
            described = {s["instance_type"] for s in live}
            specs = sorted(list(live) + [s for s in d._catalog_specs(self.families) if s["instance_type"] not in
                                         described and (offered or {}).get(s["instance_type"])],
                           key=lambda s: (s["family"], s["vcpus"], s["instance_type"]))
        priced = self.prices_f.result()
        catalog_priced: list[str] = []
        price_failure: str | None = None
        for s in specs:
            name = s["instance_type"]
            price: float | None = None
            source = "unknown"
            value, note = priced.get(name, (None, None))
            if note and price_failure is None:
                price_failure = note
            if value is not None:
                price, source = value, "pricing-api"
            else:
                cat = d._catalog.instance_type(name)
                if cat is not None and cat.on_demand_price is not None:
                    price, source = float(cat.on_demand_price), "catalog"
                    if self.prices and not note:
                        catalog_priced.append(name)
            summary.offerings.append(GpuOffering(
                zones=tuple((offered or {}).get(name, ())), on_demand_price=price, price_source=source, **s))
        if price_failure:
            self.notes.append(price_failure + "; prices shown from the offline catalog (approximate)")
        if catalog_priced:
            self.notes.append(f"{r}: the Pricing API has no on-demand Linux price for "
                              f"{', '.join(catalog_priced)}; catalog prices shown (approximate)")
        quota_failures: list[str] = []
        for (quota_class, market), (code, name) in QUOTA_CODES.items():
            value, note = self.quota_f[(quota_class, market)].result()
            if note:
                quota_failures.append(note)
            elif value is not None:
                summary.quotas.append(Quota(code=code, name=name, quota_class=quota_class, market=market,
                                            value=value, region=r))
        if quota_failures:
            more = f" (and {len(quota_failures) - 1} more quota codes)" if len(quota_failures) > 1 else ""
            self.notes.append(quota_failures[0] + more + "; check the GPU vCPU quotas in the Service Quotas console")
        summary.notes = self.notes
        return summary


# Parsing helpers (public: the sandbox and tests use them) -----------------------------------------


def parse_on_demand_price(price_list: list[str | dict[str, Any]], instance_type: str) -> float | None:
    """The hourly USD on-demand price in a GetProducts PriceList (entries are JSON strings)."""
    for entry in price_list:
        try:
            product = json.loads(entry) if isinstance(entry, str) else entry
        except ValueError:
            continue
        attrs = product.get("product", {}).get("attributes", {})
        if attrs.get("instanceType") not in (None, instance_type):
            continue
        for term in (product.get("terms", {}).get("OnDemand") or {}).values():
            for dim in (term.get("priceDimensions") or {}).values():
                if str(dim.get("unit", "")).lower() not in ("hrs", "hours"):
                    continue
                try:
                    usd = float((dim.get("pricePerUnit") or {}).get("USD", "0"))
                except ValueError:
                    continue
                if usd > 0:
                    return usd
    return None


def _aware(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def reservation_from_api(item: dict[str, Any]) -> CapacityReservation:
    return CapacityReservation(
        id=item["CapacityReservationId"],
        instance_type=item.get("InstanceType", ""),
        zone=item.get("AvailabilityZone", ""),
        total=int(item.get("TotalInstanceCount", 0)),
        available=int(item.get("AvailableInstanceCount", 0)),
        state=item.get("State", "unknown"),
        reservation_type=item.get("ReservationType", "default"),
        start=_aware(item.get("StartDate")),
        end=_aware(item.get("EndDate")),
        tags={t["Key"]: t.get("Value", "") for t in item.get("Tags", [])},
        match_criteria=item.get("InstanceMatchCriteria", "targeted"),
        owner_id=item.get("OwnerId"),
    )


def block_offering_from_api(item: dict[str, Any]) -> CapacityBlockOffering:
    start, end = _aware(item.get("StartDate")), _aware(item.get("EndDate"))
    return CapacityBlockOffering(
        offering_id=item["CapacityBlockOfferingId"],
        instance_type=item.get("InstanceType", ""),
        zone=item.get("AvailabilityZone", ""),
        count=int(item.get("InstanceCount", 0)),
        start=start or datetime.fromtimestamp(0, UTC),
        end=end or datetime.fromtimestamp(0, UTC),
        duration_hours=int(item.get("CapacityBlockDurationHours", 0)),
        upfront_fee=float(item.get("UpfrontFee", 0) or 0),
        currency=item.get("CurrencyCode", "USD"),
    )


def summary_to_dict(summary: RegionSummary) -> dict[str, Any]:
    """JSON-ready form of a RegionSummary (for `--json` output and caches)."""
    data = asdict(summary)
    for o in data["offerings"]:
        o["zones"] = list(o["zones"])
    return data


def discovery_from_env(*, refresh: bool = False, max_workers: int = 16) -> AwsDiscovery:
    """The discovery the TUI and commands use: the standard chain, AWS_PROFILE and AWS_ENDPOINT_URL honoured."""
    return AwsDiscovery(max_workers=max_workers, refresh=refresh)
