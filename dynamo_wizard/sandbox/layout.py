"""Where a sandbox keeps its files. Standard library only: the fake tools import it on every run."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

ENV_DIR = "DYNAMO_WIZARD_SANDBOX_DIR"


def default_dir() -> Path:
    """$DYNAMO_WIZARD_SANDBOX_DIR, else <state dir>/sandbox (the state dir as it is before the sandbox moves
    DYNAMO_WIZARD_HOME into itself)."""
    env = os.environ.get(ENV_DIR)
    if env:
        return Path(env).expanduser().resolve()
    from ..core.paths import state_dir

    return state_dir() / "sandbox"


class Layout:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def service_json(self) -> Path:
        return self.root / "service.json"

    @property
    def service_lock(self) -> Path:
        return self.root / "service.lock"

    @property
    def start_lock(self) -> Path:
        return self.root / "start.lock"

    @property
    def log(self) -> Path:
        return self.root / "service.log"

    @property
    def calls(self) -> Path:
        return self.root / "calls.jsonl"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def wizard_home(self) -> Path:
        return self.root / "wizard-home"

    @property
    def aws_config(self) -> Path:
        return self.root / "aws-config"

    @property
    def aws_snapshot(self) -> Path:
        return self.root / "aws-state.pickle"

    def tool(self, name: str) -> Path:
        return self.bin / name

    def read_service(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.service_json.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None


def code_fingerprint() -> str:
    """Which code a sandbox service runs: the product's Python files (path, size, modification time). A
    running service with another fingerprint was started before an upgrade or an edit; the client restarts
    it (its world is saved and reloaded) rather than let new tools talk to old code."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha1()
    for path in sorted(root.rglob("*.py")):
        try:
            st = path.stat()
        except OSError:
            continue
        digest.update(f"{path.relative_to(root)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]
