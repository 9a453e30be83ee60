"""Messages that workers post to screens. Worker code never touches widgets: it computes, then posts one
of these; the screen's handler (on the UI thread) updates the widgets."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from ..core.inventory import CapacityReservation, Identity, RegionSummary, ToolCheck, Verdict


@dataclass(frozen=True)
class DeploymentInfo:
    """A deployment the ledger knows, for the welcome screen."""

    name: str
    live_resources: int
    kinds: tuple[str, ...]
    plan_path: Path | None


class LoadFailed(Message):
    """A lookup failed; `message` says what, `fix` what to do. The screen stays usable."""

    def __init__(self, what: str, message: str, fix: str = "") -> None:
        super().__init__()
        self.what = what
        self.message = message
        self.fix = fix


class WelcomeLoaded(Message):
    def __init__(self, identity: Identity | None, identity_error: str, identity_fix: str,
                 tools: list[ToolCheck], deployments: list[DeploymentInfo]) -> None:
        super().__init__()
        self.identity = identity
        self.identity_error = identity_error
        self.identity_fix = identity_fix
        self.tools = tools
        self.deployments = deployments


class SandboxReady(Message):
    def __init__(self, endpoint: str) -> None:
        super().__init__()
        self.endpoint = endpoint


class RegionsLoaded(Message):
    def __init__(self, summaries: list[RegionSummary], notes: list[str]) -> None:
        super().__init__()
        self.summaries = summaries
        self.notes = notes


class RegionsListed(Message):
    """The regions that will be read (the region screen shows progress against this)."""

    def __init__(self, regions: list[str]) -> None:
        super().__init__()
        self.regions = regions


class RegionLoaded(Message):
    def __init__(self, summary: RegionSummary) -> None:
        super().__init__()
        self.summary = summary


class ReservationsLoaded(Message):
    def __init__(self, reservations: list[CapacityReservation], notes: list[str]) -> None:
        super().__init__()
        self.reservations = reservations
        self.notes = notes


@dataclass
class ReviewData:
    """Everything the review screen shows, computed off the UI thread."""

    plan_yaml: str
    files: list[tuple[str, str]] = field(default_factory=list)  # (relative path, text)
    problems: list[str] = field(default_factory=list)  # rule violations: the plan cannot be applied
    warnings: list[str] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    cost_lines: list[tuple[str, str]] = field(default_factory=list)  # (what, $/h text)
    hourly_cost: float | None = None
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


class ReviewLoaded(Message):
    def __init__(self, review: ReviewData) -> None:
        super().__init__()
        self.review = review


class Exported(Message):
    def __init__(self, directory: Path, files: list[Path]) -> None:
        super().__init__()
        self.directory = directory
        self.files = files
