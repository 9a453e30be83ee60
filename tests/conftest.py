"""Shared fixtures. Every test gets its own state directory; nothing touches the user's home."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "reference"
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
        pytest.fail(f"upstream reference not found at {SHARED}; tests need ../shared beside the project")
    return SHARED
