"""What a fake tool run sees inside the service: its argv, environment, output streams and the world."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..hub import Hub


class ToolExit(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class ToolContext:
    hub: Hub
    argv: list[str]
    cwd: str
    env: dict[str, str]
    queue: asyncio.Queue[tuple[str, Any]] = field(default_factory=asyncio.Queue)

    def out(self, line: str = "") -> None:
        self.queue.put_nowait(("o", line))

    def err(self, line: str = "") -> None:
        self.queue.put_nowait(("e", line))

    def path(self, p: str) -> Path:
        path = Path(os.path.expanduser(p))
        return path if path.is_absolute() else Path(self.cwd) / path

    @property
    def clock(self) -> Any:
        return self.hub.clock

    async def sleep(self, real_seconds: float) -> None:
        await self.hub.clock.sleep(real_seconds)

    async def aws(self, service: str, region: str, method: str, **kwargs: Any) -> Any:
        """A boto3 call against the sandbox's AWS (marked internal: injected faults do not apply)."""
        client = self.hub.clients.get(service, region)
        return await asyncio.to_thread(getattr(client, method), **kwargs)


def eksctl_line(icon: str, message: str) -> str:
    """eksctl's logger format: '<YYYY-MM-DD HH:MM:SS> [<icon>]  <message>'."""
    return f"{datetime.now().strftime('%Y-%m-%d %H:%M:%S')} [{icon}]  {message}"
