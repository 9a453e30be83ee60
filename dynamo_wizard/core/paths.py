"""Where dynamo-wizard keeps its state: ledgers, logs, saved plans, caches.

`DYNAMO_WIZARD_HOME` overrides everything (tests and the sandbox use it); otherwise XDG_STATE_HOME
(default ~/.local/state)/dynamo-wizard.
"""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    env = os.environ.get("DYNAMO_WIZARD_HOME")
    if env:
        base = Path(env)
    else:
        xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        base = Path(xdg) / "dynamo-wizard"
    base.mkdir(parents=True, exist_ok=True)
    return base


def deployment_dir(deployment: str) -> Path:
    d = state_dir() / "deployments" / deployment
    d.mkdir(parents=True, exist_ok=True)
    return d


def logs_dir(deployment: str) -> Path:
    d = deployment_dir(deployment) / "logs"
    d.mkdir(parents=True, exist_ok=True)
    return d


def cache_dir() -> Path:
    d = state_dir() / "cache"
    d.mkdir(parents=True, exist_ok=True)
    return d


def draft_plan_path() -> Path:
    """The plan the TUI keeps as it is built, so quitting and starting again can continue."""
    return state_dir() / "draft-plan.yaml"


def known_deployments() -> list[str]:
    root = state_dir() / "deployments"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "ledger.jsonl").exists())
