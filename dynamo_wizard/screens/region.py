"""Screen 2 — region: ranked by how many wanted GPU families one zone offers, with the GPU quota beside
each; the cluster's zones exclude zone ids where EKS has no control plane."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding

from ..core.inventory import RegionSummary
from ..core.redact import redact
from ..tui.choices import RegionChoice, rank_regions
from ..tui.messages import LoadFailed, RegionLoaded, RegionsListed, RegionsLoaded
from ..tui.offline import PLAN_ONLY_NOTE
from ..tui.widgets.choice_table import ChoiceRow, ChoiceTable
from .base import WizardScreen


def _quota(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"


class RegionScreen(WizardScreen):
    step = "region"
    heading = "Where should the cluster run? Regions ranked by the GPU families one zone offers."

    BINDINGS = [Binding("ctrl+r", "reload", "Reload", show=False)]

    def __init__(self) -> None:
        super().__init__()
        self.choices: dict[str, RegionChoice] = {}
        self.summaries: dict[str, RegionSummary] = {}
        self.expected: list[str] = []
        self.complete = False

    def compose_body(self) -> ComposeResult:
        yield ChoiceTable(["Region", "In one zone", "In region", "Best zone", "G vCPU", "P vCPU", "Zones"],
                          id="regions")

    def on_mount(self) -> None:
        table = self.query_one("#regions", ChoiceTable)
        table.focus()
        table.loading = True
        self.set_status("Reading regions, zones, GPU offerings and quotas…", "loading")
        self._load_worker()

    @work(thread=True, exclusive=True, group="region-load", name="region-load")
    def _load_worker(self) -> None:
        try:
            summaries, notes = self.wizard.load_region_summaries(
                on_summary=lambda s: self.post_message(RegionLoaded(s)),
                on_regions=lambda regions: self.post_message(RegionsListed(regions)))
        except Exception as err:  # noqa: BLE001 - show it; Back and retry stay possible
            self.post_message(LoadFailed("the regions", redact(f"{type(err).__name__}: {err}"),
                                         "check your network and credentials, then press Ctrl+R to retry"))
            return
        self.post_message(RegionsLoaded(summaries, notes))

    def action_reload(self) -> None:
        self.wizard.region_summaries = None
        self.summaries.clear()
        self.complete = False
        self.on_mount()

    def loading_done(self) -> None:
        self.query_one("#regions", ChoiceTable).loading = False

    def on_regions_listed(self, message: RegionsListed) -> None:
        self.expected = list(message.regions)
        self.set_status(f"Reading {len(self.expected)} regions: zones, GPU offerings and quotas…", "loading")

    def on_region_loaded(self, message: RegionLoaded) -> None:
        """One region finished: show what is known so far (a region may be chosen before all are read)."""
        if self.complete:
            return
        self.summaries[message.summary.region] = message.summary
        self.loading_done()
        self._show(list(self.summaries.values()))
        total = len(self.expected) or len(self.summaries)
        self.set_status(f"Read {len(self.summaries)} of {total} regions…", "loading")

    def _show(self, summaries: list[RegionSummary]) -> list[RegionChoice]:
        wanted = self.wizard.wanted_families()
        ranked = rank_regions(summaries, wanted)
        self.choices = {c.region: c for c in ranked}
        rows = [self._row(c) for c in ranked]
        table = self.query_one("#regions", ChoiceTable)
        current = self.wizard.answers.region
        highlight = current if current in self.choices and self.choices[current].available else None
        if highlight is None:
            highlight = next((c.region for c in ranked if c.available), None)
        if table.rows and table.highlighted_key is not None and table.grid.has_focus:
            moved = table.highlighted_key != (self._last_default or table.highlighted_key)
            if moved:  # the user moved the cursor while regions were arriving: keep it there
                highlight = table.highlighted_key
        self._last_default = highlight
        table.set_rows(rows, highlight=highlight)
        return ranked

    _last_default: str | None = None

    def on_regions_loaded(self, message: RegionsLoaded) -> None:
        self.complete = True
        self.loading_done()
        wanted = self.wizard.wanted_families()
        ranked = self._show(message.summaries)
        usable = sum(1 for c in ranked if c.available)
        status = f"{usable} of {len(ranked)} regions can run the wanted families ({', '.join(wanted)})."
        failures = [n for n in message.notes if n != PLAN_ONLY_NOTE]
        if self.wizard.mode == "plan-only":
            self.set_status(status + " Plan-only: offerings and quotas are not checked.", "info")
        elif failures:
            status += f" {len(failures)} lookups failed: {redact(failures[0])}"
            self.set_status(status, "warning")
        else:
            self.set_status(status + " Enter picks the highlighted region.", "ok")

    def _row(self, c: RegionChoice) -> ChoiceRow:
        best_zone, best_count = c.best_zone
        zones = "".join(z[len(c.region):] for z in c.cluster_zones)
        detail = f"Cluster zones: {', '.join(c.cluster_zones) or 'none'}"
        if c.excluded_zones:
            detail += " · excluded: " + "; ".join(f"{z} ({why})" for z, why in c.excluded_zones)
        if c.families_offered:
            detail += " · families: " + ", ".join(c.families_offered)
        if c.notes:
            detail += " · " + "; ".join(c.notes)
        return ChoiceRow(
            key=c.region,
            cells=(
                Text(c.region, style="bold"),
                f"{best_count}/{len(c.wanted)}",
                f"{len(c.families_offered)}/{len(c.wanted)}",
                best_zone or "—",
                _quota(c.g_quota),
                _quota(c.p_quota),
                zones or "—",
            ),
            available=c.available,
            reason=c.reason,
            short=c.short,
            detail=detail,
        )

    @on(ChoiceTable.Chosen, "#regions")
    def _chosen(self, event: ChoiceTable.Chosen) -> None:
        choice = self.choices[event.key]
        answers = self.wizard.answers
        answers.region = choice.region
        answers.zones = list(choice.cluster_zones)
        self.wizard.advance(self.step)

    @on(ChoiceTable.Refused, "#regions")
    def _refused(self, event: ChoiceTable.Refused) -> None:
        self.refuse(f"{event.key} cannot be used: {event.reason}")
