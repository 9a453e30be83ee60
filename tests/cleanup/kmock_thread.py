"""A kmock API server in a background thread, for synchronous client code (tests only).

kmock 0.8 needs two workarounds (offline-test-stack §2.4): Namespace paths are parsed as
`namespaces/<ns>/<plural>`, and discovery is empty until resources are declared.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import kmock
from kmock._internal import parsing

_original_parse_path = parsing.parse_path


def _parse_path(path: str) -> Any:
    parts = path.split("?")[0].strip("/").split("/")
    if len(parts) >= 3 and parts[0] == "api" and parts[2] == "namespaces" and (
            len(parts) in (3, 4) or (len(parts) == 5 and parts[4] in ("status", "finalize"))):
        return parsing.ParsedPath("", parts[1], "namespaces", None,
                                  parts[3] if len(parts) > 3 else None, parts[4] if len(parts) > 4 else None)
    return _original_parse_path(path)


if getattr(parsing.parse_path, "__name__", "") != "_parse_path" and not getattr(parsing.parse_path, "_dw_patched", False):
    parsing.parse_path = _parse_path

CUSTOM_RESOURCES = {
    "nvidia.com/v1alpha1/dynamographdeployments": ("DynamoGraphDeployment", True),
    "karpenter.sh/v1/nodepools": ("NodePool", False),
    "eks.amazonaws.com/v1/nodeclasses": ("NodeClass", False),
}


class KmockThread:
    def __init__(self, setup: Callable[[Any], None] | None = None) -> None:
        self.setup = setup
        self.ready = threading.Event()
        self.url = ""
        self.k: Any = None

    def start(self) -> KmockThread:
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self.thread.start()
        if not self.ready.wait(15):
            raise RuntimeError("kmock did not start")
        return self

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.stop_event = asyncio.Event()
        async with kmock.KubernetesEmulator() as k, kmock.Server(k) as server:
            self.k = k
            k.resources.load_bundled()
            for path, (kind, namespaced) in CUSTOM_RESOURCES.items():
                k.resources[path] = kmock.ResourceInfo(
                    kind=kind, namespaced=namespaced,
                    verbs={"get", "list", "watch", "create", "update", "patch", "delete"}, subresources={"status"})
            if self.setup:
                self.setup(k)
            self.url = str(server.url).rstrip("/")
            self.ready.set()
            await self.stop_event.wait()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.stop_event.set)
            self.thread.join(5)
