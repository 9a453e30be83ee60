"""Shared fixtures. Every test gets its own state directory; nothing touches the user's home."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .reference import SHARED  # ../shared/reference, or beside the clone's origin

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("wizard-home")
    monkeypatch.setenv("DYNAMO_WIZARD_HOME", str(home))
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def shared_reference() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"upstream reference not found at {SHARED}; tests need ../shared beside the project "
                    "(or DYNAMO_WIZARD_SHARED_DIR)")
    return SHARED


@pytest.fixture(scope="module")
def sandbox_service(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A fresh sandbox service (its own process, 127.0.0.1 only) shared by the tests of one module, stopped at
    the module's end. Speed: $DYNAMO_WIZARD_TEST_SANDBOX_SPEED (default 20: a deployment in a few seconds)."""
    from dynamo_wizard.sandbox.testing import running_sandbox

    speed = float(os.environ.get("DYNAMO_WIZARD_TEST_SANDBOX_SPEED", "20"))
    with running_sandbox(tmp_path_factory.mktemp("sandbox"), speed=speed) as handle:
        yield handle


@pytest.fixture
def sandbox_env(sandbox_service, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """This test's process pointed at the module's sandbox, as `dynamo-wizard --sandbox` does (AWS endpoint,
    dummy credentials, region, KUBECONFIG, fake eksctl/helm, DYNAMO_WIZARD_HOME inside the sandbox)."""
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    for key, value in sandbox_service.env.items():
        monkeypatch.setenv(key, value)
    Path(sandbox_service.env["DYNAMO_WIZARD_HOME"]).mkdir(parents=True, exist_ok=True)
    return sandbox_service
