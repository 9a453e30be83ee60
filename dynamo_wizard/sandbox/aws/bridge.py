"""The controller simulation's way into AWS: boto3 against the sandbox's own front (so moto and the gap
fills answer exactly as they answer the wizard), marked internal so injected faults do not hit the
simulated AWS control plane itself."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..cluster.bridge import LaunchError
from .front import INTERNAL_HEADER

if TYPE_CHECKING:
    from ..hub import Hub

AMI = "ami-0a1b2c3d4e5f60718"
QUOTA_CODES = {("G", "on-demand"): "L-DB2E81BA", ("P", "on-demand"): "L-417A185B", ("G", "spot"): "L-3819A6DF",
               ("P", "spot"): "L-7212CCBC"}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class Clients:
    """boto3 clients for the front, one set per region, shared by threads (boto3 clients are thread-safe)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str], Any] = {}
        self._session: Any = None

    def get(self, service: str, region: str) -> Any:
        with self._lock:
            key = (service, region)
            if key not in self._clients:
                import boto3
                from botocore.config import Config

                if self._session is None:
                    self._session = boto3.session.Session(aws_access_key_id="sandbox-internal",
                                                          aws_secret_access_key="sandbox-internal")
                c = self._session.client(service, region_name=region, endpoint_url=self.endpoint,
                                         config=Config(retries={"mode": "standard", "max_attempts": 3},
                                                       connect_timeout=2, read_timeout=60))

                def mark(request: Any, **_: Any) -> None:
                    request.headers[INTERNAL_HEADER] = "1"
                c.meta.events.register("before-send", mark)
                self._clients[key] = c
            return self._clients[key]


class ServiceBridge:
    """cluster.bridge.AwsBridge for one cluster's region."""

    def __init__(self, hub: Hub, region: str) -> None:
        self.hub = hub
        self.region = region
        self._offered: dict[str, list[str]] = {}

    def _c(self, service: str) -> Any:
        return self.hub.clients.get(service, self.region)

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kwargs)

    # -- instances -------------------------------------------------------------------------------

    def _launch(self, instance_type: str, zone: str, subnet_id: str, security_group_ids: list[str],
                tags: dict[str, str], capacity_type: str, reservation_id: str | None) -> str:
        from ..cluster.capacity import shape

        s = shape(instance_type)
        gaps = self.hub.gaps
        if s is not None and s.gpus:
            cls = "P" if s.category == "p" else "G"
            market = "spot" if capacity_type == "spot" else "on-demand"
            code = QUOTA_CODES[(cls, market)]
            limit = gaps.quota_value(self.region, code)
            if limit is not None and capacity_type != "reserved":
                used = self._running_vcpus(cls, market)
                if used + s.vcpus > limit:
                    if market == "spot":
                        raise LaunchError("MaxSpotInstanceCountExceeded", "Max spot instance count exceeded")
                    raise LaunchError("VcpuLimitExceeded", f"You have requested more vCPU capacity than your current "
                                      f"vCPU limit of {int(limit)} allows for the instance bucket that the specified "
                                      "instance type belongs to. Please visit http://aws.amazon.com/contact-us/"
                                      "ec2-request to request an adjustment to this limit.")
        if reservation_id:
            with gaps.lock:
                res = next((r for r in gaps.reservations.get(self.region, []) if r.id == reservation_id), None)
                if res is None or res.available < 1 or res.state != "active":
                    raise LaunchError("ReservationCapacityExceeded", f"The requested capacity reservation "
                                      f"{reservation_id} has no available capacity")
                res.available -= 1
        kwargs: dict[str, Any] = {
            "ImageId": AMI, "InstanceType": instance_type, "MinCount": 1, "MaxCount": 1,
            "SubnetId": subnet_id, "SecurityGroupIds": security_group_ids,
            "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v}
                                                                       for k, v in tags.items()]}],
        }
        if not subnet_id:
            kwargs.pop("SubnetId")
            kwargs["Placement"] = {"AvailabilityZone": zone}
        if capacity_type == "spot":
            kwargs["InstanceMarketOptions"] = {"MarketType": "spot"}
        if reservation_id:
            kwargs["CapacityReservationSpecification"] = {
                "CapacityReservationTarget": {"CapacityReservationId": reservation_id}}
        try:
            out = self._c("ec2").run_instances(**kwargs)
        except Exception as err:
            if reservation_id:
                self._release(reservation_id)
            raise LaunchError("LaunchFailed", str(err)) from None
        instance_id = str(out["Instances"][0]["InstanceId"])
        if reservation_id:
            self.hub.instance_reservations[instance_id] = reservation_id
        return instance_id

    def _running_vcpus(self, cls: str, market: str) -> int:
        from ..cluster.capacity import shape

        total = 0
        pages = self._c("ec2").get_paginator("describe_instances").paginate(
            Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}])
        for page in pages:
            for r in page["Reservations"]:
                for i in r["Instances"]:
                    s = shape(i["InstanceType"])
                    if s is None or not s.gpus:
                        continue
                    if ("P" if s.category == "p" else "G") != cls:
                        continue
                    spot = i.get("InstanceLifecycle") == "spot"
                    if (market == "spot") != spot or i["InstanceId"] in self.hub.instance_reservations:
                        continue
                    total += s.vcpus
        return total

    def _release(self, reservation_id: str) -> None:
        gaps = self.hub.gaps
        with gaps.lock:
            res = next((r for r in gaps.reservations.get(self.region, []) if r.id == reservation_id), None)
            if res is not None and res.available < res.total:
                res.available += 1

    async def launch_instance(self, *, instance_type: str, zone: str, subnet_id: str, security_group_ids: list[str],
                              tags: dict[str, str], capacity_type: str, reservation_id: str | None) -> str:
        result = await self._run(self._launch, instance_type, zone, subnet_id, security_group_ids, tags,
                                 capacity_type, reservation_id)
        self.hub.mark_dirty()
        return str(result)

    async def terminate_instances(self, instance_ids: list[str]) -> None:
        if not instance_ids:
            return

        def terminate() -> None:
            try:
                self._c("ec2").terminate_instances(InstanceIds=instance_ids)
            except Exception:
                pass
            for i in instance_ids:
                rid = self.hub.instance_reservations.pop(i, None)
                if rid:
                    self._release(rid)
        await self._run(terminate)
        self.hub.mark_dirty()

    async def offered_zones(self, instance_type: str) -> list[str]:
        if instance_type not in self._offered:
            def fetch() -> list[str]:
                out = self._c("ec2").describe_instance_type_offerings(
                    LocationType="availability-zone", Filters=[{"Name": "instance-type", "Values": [instance_type]}])
                return sorted({o["Location"] for o in out["InstanceTypeOfferings"]})
            self._offered[instance_type] = await self._run(fetch)
        return list(self._offered[instance_type])

    async def reservations(self, terms: list[dict[str, Any]]) -> list[dict[str, Any]]:
        def fetch() -> list[dict[str, Any]]:
            out = self._c("ec2").describe_capacity_reservations()
            found = []
            for r in out.get("CapacityReservations") or []:
                tags = {t["Key"]: t["Value"] for t in r.get("Tags") or []}
                for term in terms:
                    if term.get("id") and term["id"] == r["CapacityReservationId"]:
                        found.append(r)
                        break
                    if term.get("tags") and all(tags.get(k) == v for k, v in term["tags"].items()) and \
                            (not term.get("ownerID") or term["ownerID"] == r.get("OwnerId")):
                        found.append(r)
                        break
            return [_plain(r) for r in found]
        try:
            return list(await self._run(fetch))
        except Exception:
            return []

    # -- storage ---------------------------------------------------------------------------------

    async def mount_target_zones(self, file_system_id: str) -> list[str] | None:
        def fetch() -> list[str] | None:
            try:
                out = self._c("efs").describe_mount_targets(FileSystemId=file_system_id)
            except Exception as err:
                return [] if "NotFound" in str(err) else None
            return sorted({m["AvailabilityZoneName"] for m in out["MountTargets"]
                           if m.get("LifeCycleState") == "available"})
        return await self._run(fetch)  # type: ignore[no-any-return]

    async def create_access_point(self, file_system_id: str, pvc: str, namespace: str) -> str | None:
        def create() -> str | None:
            try:
                out = self._c("efs").create_access_point(
                    FileSystemId=file_system_id, PosixUser={"Uid": 1000, "Gid": 1000},
                    RootDirectory={"Path": f"/dynamic_provisioning/{pvc}",
                                   "CreationInfo": {"OwnerUid": 1000, "OwnerGid": 1000, "Permissions": "777"}},
                    Tags=[{"Key": "efs.csi.aws.com/cluster", "Value": "true"}])
            except Exception:
                return None
            return str(out["AccessPointId"])
        return await self._run(create)  # type: ignore[no-any-return]

    async def delete_access_point(self, access_point_id: str) -> None:
        def delete() -> None:
            try:
                self._c("efs").delete_access_point(AccessPointId=access_point_id)
            except Exception:
                pass
        await self._run(delete)

    async def create_volume(self, zone: str, size_gib: int, tags: dict[str, str]) -> str | None:
        def create() -> str | None:
            try:
                out = self._c("ec2").create_volume(
                    AvailabilityZone=zone, Size=size_gib, VolumeType="gp3", Encrypted=True,
                    TagSpecifications=[{"ResourceType": "volume",
                                        "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}])
            except Exception:
                return None
            return str(out["VolumeId"])
        return await self._run(create)  # type: ignore[no-any-return]

    async def delete_volume(self, volume_id: str) -> None:
        def delete() -> None:
            try:
                self._c("ec2").delete_volume(VolumeId=volume_id)
            except Exception:
                pass
        await self._run(delete)
