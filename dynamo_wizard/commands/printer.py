"""The headless commands' runner listener: every event as a line prefixed by its step (apply, cleanup)."""

from __future__ import annotations

import threading
from typing import TextIO

from ..core.events import Event, ResourceRecorded, RunFinished, StepFinished, StepOutput, StepStarted
from ..core.redact import redact

MARKS = {"done": "✔", "skipped": "✔", "failed": "✖", "cancelled": "■", "blocked": "·"}


class StepPrinter:
    """A runner listener (thread-safe): `[step] line`, ledger records (not intents), each step's end with
    its error and what to do. `skipped` names a skipped step's status (apply: the thing was already there)."""

    def __init__(self, out: TextIO, *, skipped: str = "skipped") -> None:
        self.out = out
        self.skipped = skipped
        self.lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self.lock:
            if isinstance(event, StepStarted):
                print(f"[{event.step_id}] ▶ {event.title}", file=self.out)
            elif isinstance(event, StepOutput):
                print(f"[{event.step_id}] {event.line}", file=self.out)
            elif isinstance(event, ResourceRecorded):
                if event.action != "intent":
                    what = f"{event.kind} {event.name}" + (f" ({event.resource_id})" if event.resource_id else "")
                    print(f"[{event.step_id}] ledger: {event.action} {what}", file=self.out)
            elif isinstance(event, StepFinished):
                status = self.skipped if event.status == "skipped" else event.status
                line = f"[{event.step_id}] {MARKS.get(event.status, '?')} {status} ({event.elapsed:.1f}s)"
                if event.error:
                    line += f": {event.error}"
                elif event.summary:
                    line += f": {event.summary}"
                print(redact(line), file=self.out)
                if event.fix:
                    print(redact(f"[{event.step_id}]   what to do: {event.fix}"), file=self.out)
            elif isinstance(event, RunFinished):
                print(redact(event.summary), file=self.out)
            self.out.flush()
