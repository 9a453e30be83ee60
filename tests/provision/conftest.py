"""Fixtures for the provisioning tests: the real sandbox (AWS front over moto, fake API servers with the
Auto Mode and operator simulation, fake eksctl/helm that record their argv), one per test module.

The sandbox runs at DYNAMO_WIZARD_TEST_PROVISION_SPEED (default 50: a full deployment in ~8 s here).
Each test deploys under its own deployment name (its own cluster), so tests in a module do not meet.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dynamo_wizard.core.events import Event, StepFinished
from dynamo_wizard.core.plan import Plan, load_plan, plan_from_dict
from dynamo_wizard.core.redact import clear_secrets

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TOKEN = "hf_provisionTestTokenAbcdefghij0123"


@pytest.fixture(scope="module")
def sandbox_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from dynamo_wizard.sandbox.testing import running_sandbox

    speed = float(os.environ.get("DYNAMO_WIZARD_TEST_PROVISION_SPEED", "50"))
    with running_sandbox(tmp_path_factory.mktemp("sandbox"), speed=speed) as handle:
        yield handle


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    yield
    clear_secrets()


def plan_named(example: str, deployment: str, **changes: Any) -> Plan:
    """An example plan under another deployment name (and so its own cluster)."""
    data = load_plan(EXAMPLES / f"{example}.yaml").to_dict()
    data["deployment"] = deployment
    data.update(changes)
    return plan_from_dict(data)


class Events:
    """A runner listener that keeps everything (thread-safe)."""

    def __init__(self) -> None:
        self.items: list[Event] = []
        self.lock = threading.Lock()
        self.hooks: list[Any] = []

    def __call__(self, event: Event) -> None:
        with self.lock:
            self.items.append(event)
        for hook in self.hooks:
            hook(event)

    def statuses(self) -> dict[str, str]:
        return {e.step_id: e.status for e in self.items if isinstance(e, StepFinished)}

    def finished(self, step: str) -> StepFinished:
        return next(e for e in self.items if isinstance(e, StepFinished) and e.step_id == step)
