"""The sandbox's scaled clock and the real-world durations it scales.

Durations are the typical values of tool-output-and-timings.md §3 (real seconds). The sandbox runs them
`BASE_SCALE / speed` times as fast: at speed 1 a minute of real AWS becomes one second, so a whole
deployment (eksctl ~11 min, image pull ~7 min, download ~8 min …) takes about half a minute.
"""

from __future__ import annotations

import asyncio
import time

BASE_SCALE = 1 / 60

# Typical real-world durations, in seconds.
REAL = {
    "eks_control_plane": 480.0,      # cluster stack incl. the EKS control plane
    "eksctl_cp_ready_wait": 120.0,   # eksctl's /version polling after the stack (6 successes × 20 s)
    "stack_poll_first": 30.0,
    "stack_poll_next": 60.0,
    "podidentity_stack": 31.0,
    "addon_create": 2.0,
    "eksctl_delete": 30.0,
    "cluster_stack_delete": 720.0,   # CloudFormation keeps deleting after eksctl returns (no --wait)
    "helm_install": 10.0,
    "cpu_node": 45.0,
    "gpu_node": 60.0,
    "gpu_node_large": 420.0,         # p-types
    "nodeclaim_registered": 22.0,    # fraction of the node time spent before registration (CPU example)
    "scheduled_to_pulling": 5.0,
    "pull_small": 12.0,
    "pull_frontend": 60.0,
    "pull_runtime": 420.0,
    "container_start": 2.0,
    "generic_ready": 5.0,
    "operator_ready": 15.0,
    "nats_ready": 10.0,
    "frontend_ready": 10.0,
    "pip_install": 20.0,
    "download_gb_per_s": 0.15,       # HF -> EFS; Qwen3-32B (65 GB) ≈ 7–8 min
    "vllm_load_small": 40.0,
    "vllm_load_large": 150.0,
    "pod_termination": 5.0,
    "efs_fs_available": 15.0,
    "efs_mt_available": 90.0,
    "efs_mt_delete": 60.0,
    "pvc_bind_efs": 5.0,
    "pvc_bind_ebs": 8.0,
    "consolidation_check": 30.0,
    "capacity_retry": 180.0,         # an offering that failed with insufficient capacity is skipped 3 min
}


class SimClock:
    def __init__(self, speed: float = 1.0) -> None:
        self.speed = speed if speed and speed > 0 else 1.0

    def set_speed(self, speed: float) -> None:
        if speed and speed > 0:
            self.speed = speed

    def scaled(self, real_seconds: float) -> float:
        """Sandbox seconds for `real_seconds` of real-world time."""
        return max(0.0, real_seconds * BASE_SCALE / self.speed)

    def real(self, name: str) -> float:
        return REAL[name]

    def duration(self, name: str, floor: float = 0.0) -> float:
        """Sandbox seconds for a named real-world duration; `floor` keeps a state observable at high speeds."""
        return max(self.scaled(REAL[name]), floor)

    async def sleep(self, real_seconds: float) -> None:
        await asyncio.sleep(self.scaled(real_seconds))

    async def sleep_for(self, name: str) -> None:
        await asyncio.sleep(self.duration(name))

    def timeout(self, real_seconds: float, floor: float = 5.0) -> float:
        """A deadline a tool was given in real-world terms (helm --timeout 15m), in sandbox seconds. The
        floor covers the fixed latencies of the simulation's own loops, which do not scale."""
        return max(self.scaled(real_seconds), floor)

    def blocking_sleep(self, real_seconds: float) -> None:
        time.sleep(self.scaled(real_seconds))
