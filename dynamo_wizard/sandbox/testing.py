"""A sandbox for tests: start a fresh service in a directory, hand out its environment, stop it afterwards.

Used by the `sandbox_service` / `sandbox_env` fixtures in tests/conftest.py; importable by any test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import client
from .layout import Layout


@dataclass
class SandboxHandle:
    directory: Path
    info: dict[str, Any]
    env: dict[str, str]

    @property
    def url(self) -> str:
        return str(self.info["url"])

    @property
    def pid(self) -> int:
        return int(self.info["pid"])

    @property
    def layout(self) -> Layout:
        return Layout(self.directory)

    def faults(self, spec: str | dict[str, Any]) -> dict[str, Any]:
        """Arm faults (`"throttle=0.2,oom-download"`, or a dict; `{"clear": True}` disarms them all)."""
        return client.set_faults(spec, self.directory)

    def calls(self, tool: str | None = None) -> list[dict[str, Any]]:
        """What the fake eksctl/helm were run with (calls.jsonl), oldest first."""
        path = self.layout.calls
        if not path.exists():
            return []
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [r for r in rows if tool is None or r.get("tool") == tool]

    def status(self) -> dict[str, Any]:
        st = client.status(self.directory)
        assert st is not None, "the sandbox service is not running"
        return st

    def boto3_session(self) -> Any:
        import boto3

        return boto3.session.Session(aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
                                     aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
                                     region_name=self.env["AWS_DEFAULT_REGION"])

    def client(self, service: str, region: str | None = None) -> Any:
        return self.boto3_session().client(service, region_name=region or self.env["AWS_DEFAULT_REGION"],
                                           endpoint_url=self.url)


@contextmanager
def running_sandbox(directory: str | Path, speed: float = 20.0, faults: str | None = None) -> Iterator[SandboxHandle]:
    """A fresh sandbox service for the duration of the block (stopped afterwards, even on failure)."""
    root = Path(directory).resolve()
    info = client.start(speed=speed, faults=faults, directory=root)
    try:
        yield SandboxHandle(root, info, client.env(root, info))
    finally:
        client.stop(root)
