"""Events the runner emits. The TUI, the headless CLI and the tests are only listeners."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

StepStatus = Literal["pending", "running", "done", "skipped", "failed", "cancelled", "blocked"]


@dataclass(frozen=True)
class StepStarted:
    step_id: str
    title: str
    at: float = field(default_factory=time.time)
    log_path: str | None = None  # the step's full log on disk


@dataclass(frozen=True)
class StepOutput:
    """One line of a step's output, already redacted."""

    step_id: str
    line: str
    at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class StepFinished:
    step_id: str
    status: StepStatus  # done | skipped (already present) | failed | cancelled | blocked (a dependency failed)
    elapsed: float = 0.0
    error: str | None = None
    fix: str | None = None
    at: float = field(default_factory=time.time)
    summary: str = ""  # one line on what the step did or found (e.g. "adopted cluster demo (ACTIVE)")


@dataclass(frozen=True)
class ResourceRecorded:
    """A ledger entry was written: intent before a create, created/adopted after, deleted after a delete."""

    step_id: str
    action: str
    kind: str
    name: str
    resource_id: str | None = None
    at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class RunFinished:
    ok: bool
    cancelled: bool = False
    summary: str = ""
    at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class StepDescription:
    """A step as the runner will run it (sent in RunStarted, before anything runs)."""

    step_id: str
    title: str
    deps: tuple[str, ...] = ()
    timeout: float = 0.0
    optional: bool = False


@dataclass(frozen=True)
class RunStarted:
    """The run begins: every step in graph order, and the directory holding one log file per step."""

    steps: tuple[StepDescription, ...] = ()
    log_dir: str = ""
    at: float = field(default_factory=time.time)


Event = RunStarted | StepStarted | StepOutput | StepFinished | ResourceRecorded | RunFinished
Listener = Callable[[Event], None]
