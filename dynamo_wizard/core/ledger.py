"""The ledger: what a deployment created, written before and after each create, so nothing is ever lost.

One JSON-lines file per deployment (`<state>/deployments/<name>/ledger.jsonl`), appended and fsynced
line by line. A line is never rewritten, so a crash at any point leaves a readable file (a torn last
line is ignored). Actions:

- `intent`   written *before* a create: the resource may or may not exist (cleanup must look for it);
- `created`  written after a create, with the real id;
- `adopted`  the resource already existed (a resumed run) and this run uses it;
- `deleted`  written after a delete is confirmed (the resource is gone).

`resources()` folds the lines into the current view: one `LedgerResource` per (kind, name).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .paths import deployment_dir
from .redact import redact

ACTIONS = ("intent", "created", "adopted", "deleted")


@dataclass
class LedgerResource:
    kind: str
    name: str
    resource_id: str | None = None
    state: str = "intent"  # intent | created | adopted | deleted
    step: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    first_seen: float = 0.0
    order: int = 0  # order of first appearance, for reverse-order deletion

    @property
    def live(self) -> bool:
        return self.state != "deleted"

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.name)


class Ledger:
    def __init__(self, deployment: str, path: Path | None = None) -> None:
        self.deployment = deployment
        self.path = path or (deployment_dir(deployment) / "ledger.jsonl")
        self._lock = threading.Lock()

    def _append(self, entry: dict[str, Any]) -> None:
        line = redact(json.dumps(entry, sort_keys=True, default=str)) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)

    def record(self, action: str, kind: str, name: str, resource_id: str | None = None,
               step: str | None = None, **extra: Any) -> None:
        if action not in ACTIONS:
            raise ValueError(f"unknown ledger action {action!r}")
        entry = {"ts": time.time(), "deployment": self.deployment, "action": action, "kind": kind,
                 "name": name, "id": resource_id, "step": step}
        if extra:
            entry["extra"] = extra
        self._append(entry)

    def intent(self, kind: str, name: str, step: str | None = None, **extra: Any) -> None:
        self.record("intent", kind, name, None, step, **extra)

    def created(self, kind: str, name: str, resource_id: str | None = None, step: str | None = None,
                **extra: Any) -> None:
        self.record("created", kind, name, resource_id, step, **extra)

    def adopted(self, kind: str, name: str, resource_id: str | None = None, step: str | None = None,
                **extra: Any) -> None:
        self.record("adopted", kind, name, resource_id, step, **extra)

    def deleted(self, kind: str, name: str, resource_id: str | None = None, step: str | None = None) -> None:
        self.record("deleted", kind, name, resource_id, step)

    def entries(self) -> Iterator[dict[str, Any]]:
        try:
            with open(self.path, encoding="utf-8") as f:
                for raw in f:
                    raw = raw.strip()
                    if not raw:
                        continue
                    try:
                        entry = json.loads(raw)
                    except json.JSONDecodeError:
                        continue  # a torn last line after a crash
                    if isinstance(entry, dict) and entry.get("action") in ACTIONS:
                        yield entry
        except FileNotFoundError:
            return

    def resources(self) -> list[LedgerResource]:
        view: dict[tuple[str, str], LedgerResource] = {}
        for entry in self.entries():
            key = (str(entry.get("kind")), str(entry.get("name")))
            res = view.get(key)
            if res is None:
                res = LedgerResource(kind=key[0], name=key[1], first_seen=float(entry.get("ts", 0)),
                                     order=len(view))
                view[key] = res
            action = entry["action"]
            if action == "intent" and res.state == "deleted":
                res.state = "intent"  # created again after a delete
            elif action != "intent":
                res.state = action
            if entry.get("id"):
                res.resource_id = entry["id"]
            if entry.get("step"):
                res.step = entry["step"]
            if isinstance(entry.get("extra"), dict):
                res.extra.update(entry["extra"])
        return sorted(view.values(), key=lambda r: r.order)

    def live_resources(self) -> list[LedgerResource]:
        return [r for r in self.resources() if r.live]

    def find(self, kind: str, name: str) -> LedgerResource | None:
        for r in self.resources():
            if r.kind == kind and r.name == name:
                return r
        return None

    def exists(self) -> bool:
        return self.path.exists()
