"""Fixtures for the sandbox's own tests.

- `offline_cluster`: one simulated cluster (fake API server + controller simulation) in a background event
  loop, no AWS (an offline bridge launches "instances"), reached through the real kubernetes client;
- `sandbox_service` / `sandbox_env` (tests/conftest.py): the whole sandbox service in a temp directory.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from dynamo_wizard.sandbox.cluster.bootstrap import ClusterInfo, Subnet
from dynamo_wizard.sandbox.cluster.bridge import OfflineBridge
from dynamo_wizard.sandbox.cluster.sim import ClusterSim
from dynamo_wizard.sandbox.faults import Faults
from dynamo_wizard.sandbox.timings import SimClock

OFFLINE_SPEED = 60.0


@dataclass
class OfflineCluster:
    sim: ClusterSim
    loop: asyncio.AbstractEventLoop
    faults: Faults
    api: Any  # kubernetes.client.ApiClient

    @property
    def url(self) -> str:
        return self.sim.server.url

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` on the simulation's event loop (the store is single-threaded by design)."""
        done = threading.Event()
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["value"] = fn()
            except BaseException as err:  # re-raised in the test's thread
                box["error"] = err
            done.set()
        self.loop.call_soon_threadsafe(run)
        assert done.wait(10)
        if "error" in box:
            raise box["error"]
        return box.get("value")


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy (the sandbox runs in other threads/processes)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


@pytest.fixture(scope="module")
def offline_cluster() -> Iterator[OfflineCluster]:
    from kubernetes import client

    info = ClusterInfo(name="offline", region="us-east-1", vpc_id="vpc-0offline", cluster_security_group="sg-0off",
                       node_role="eksctl-offline-cluster-AutoModeNodeRole-X", subnets=[
                           Subnet("subnet-0a", "us-east-1a", "use1-az6", "192.168.96.0/19", False),
                           Subnet("subnet-0b", "us-east-1b", "use1-az1", "192.168.128.0/19", False)])
    faults = Faults()
    loop = asyncio.new_event_loop()
    sim = ClusterSim(info, SimClock(OFFLINE_SPEED), faults, OfflineBridge(["us-east-1a", "us-east-1b"]))
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(sim.start())
        ready.set()
        loop.run_forever()
    thread = threading.Thread(target=run, name="offline-cluster", daemon=True)
    thread.start()
    assert ready.wait(10)
    cfg = client.Configuration(host=sim.server.url)
    cfg.api_key = {"BearerToken": "k8s-aws-v1.offline"}
    cfg.api_key_prefix = {"BearerToken": "Bearer"}
    api = client.ApiClient(cfg)
    try:
        yield OfflineCluster(sim, loop, faults, api)
    finally:
        api.close()

        async def shutdown() -> None:
            await sim.stop()
            rest = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}
            for _ in range(5):
                if not rest:
                    break
                for t in rest:
                    t.cancel()
                _, rest = await asyncio.wait(rest, timeout=1.0)
        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def watch_until(list_fn: Callable[..., Any], *args: Any, predicate: Callable[[dict[str, Any]], bool],
                timeout: int = 20, what: str = "object", **kwargs: Any) -> dict[str, Any]:
    """Watch a list call (kubernetes.watch) until an object satisfies `predicate`; returns its raw dict."""
    from kubernetes import watch

    w = watch.Watch()
    seen: dict[str, Any] | None = None
    for event in w.stream(list_fn, *args, timeout_seconds=timeout, **kwargs):
        obj = event["raw_object"]
        seen = obj
        if event["type"] != "DELETED" and predicate(obj):
            w.stop()
            return obj  # type: ignore[no-any-return]
    name = ((seen or {}).get("metadata") or {}).get("name")
    raise AssertionError(f"no {what} matched within {timeout}s (last seen: {name} {((seen or {}).get('status'))})")
