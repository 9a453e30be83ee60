"""What the controller simulation asks of AWS (the sandbox's moto, through its own front): EC2 instances
for Auto Mode nodes, capacity reservations for reserved NodeClasses, EFS mount targets and access points for
the EFS CSI driver, EBS volumes for the EBS CSI driver."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass
class LaunchError(Exception):
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class AwsBridge(Protocol):
    async def launch_instance(self, *, instance_type: str, zone: str, subnet_id: str, security_group_ids: list[str],
                              tags: dict[str, str], capacity_type: str,
                              reservation_id: str | None) -> str: ...

    async def terminate_instances(self, instance_ids: list[str]) -> None: ...

    async def offered_zones(self, instance_type: str) -> list[str]: ...

    async def reservations(self, terms: list[dict[str, Any]]) -> list[dict[str, Any]]: ...

    async def mount_target_zones(self, file_system_id: str) -> list[str] | None: ...

    async def create_access_point(self, file_system_id: str, pvc: str, namespace: str) -> str | None: ...

    async def delete_access_point(self, access_point_id: str) -> None: ...

    async def create_volume(self, zone: str, size_gib: int, tags: dict[str, str]) -> str | None: ...

    async def delete_volume(self, volume_id: str) -> None: ...


class OfflineBridge:
    """A bridge for simulations without AWS (unit tests of the controller): everything succeeds."""

    def __init__(self, zones: list[str] | None = None) -> None:
        self.zones = zones or ["us-east-1a", "us-east-1b", "us-east-1c"]
        self.counter = 0

    async def launch_instance(self, **kwargs: Any) -> str:
        self.counter += 1
        return f"i-{self.counter:017x}"

    async def terminate_instances(self, instance_ids: list[str]) -> None:
        return None

    async def offered_zones(self, instance_type: str) -> list[str]:
        return list(self.zones)

    async def reservations(self, terms: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return []

    async def mount_target_zones(self, file_system_id: str) -> list[str] | None:
        return list(self.zones)

    async def create_access_point(self, file_system_id: str, pvc: str, namespace: str) -> str | None:
        return "fsap-0123456789abcdef0"

    async def delete_access_point(self, access_point_id: str) -> None:
        return None

    async def create_volume(self, zone: str, size_gib: int, tags: dict[str, str]) -> str | None:
        self.counter += 1
        return f"vol-{self.counter:017x}"

    async def delete_volume(self, volume_id: str) -> None:
        return None
