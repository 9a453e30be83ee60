"""Screen 4 — capacity: On-Demand Capacity Reservations and Capacity Blocks in the region (id, type, AZ,
count, state, start/end, fit); use none, some by id, or all with given tags; on-demand fallback."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Input, Label, Select, Static

from ..core.redact import redact
from ..tui.choices import ReservationRow, format_duration, parse_tags, reservation_rows
from ..tui.messages import LoadFailed, ReservationsLoaded
from ..tui.widgets.choice_table import ChoiceRow, ChoiceTable
from .base import WizardScreen

SELECTOR_WARNING = ("Selecting reservations adds capacityReservationSelectorTerms to a NodeClass: from then on "
                    "Auto Mode stops using open ODCRs for EVERY NodeClass in the cluster.")
CAPACITY_TYPES = {
    "on-demand,spot": ["on-demand", "spot"],
    "on-demand": ["on-demand"],
    "spot": ["spot"],
}
FALLBACKS = [("none: reserved only", "none"),
             ("on-demand", "on-demand"),
             ("on-demand, then spot", "on-demand-and-spot")]


def _when(t: datetime | None, short: bool = False) -> str:
    if t is None:
        return "—"
    return t.strftime("%m-%d %H:%M" if short else "%Y-%m-%d %H:%M UTC")


class CapacityScreen(WizardScreen):
    step = "capacity"
    heading = "Reserved capacity for the GPU nodes? (ODCRs and Capacity Blocks)"
    BINDINGS = [Binding("ctrl+r", "reload", "Reload", show=False)]

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, ReservationRow] = {}

    def compose_body(self) -> ComposeResult:
        yield ChoiceTable(["Use", "What it means"], reason_column="", id="capacity-choice", classes="short-list")
        yield ChoiceTable(["Id", "Type", "Kind", "AZ", "Free", "State", "Ends (UTC)"],
                          multi=True, mark_label="Use", reason_column="Fits", reason_width=18, id="reservations")
        with Horizontal(id="capacity-options"):
            yield Label("Tags ", classes="field-label")
            yield Input(placeholder="team=dynamo", id="tags")
            yield Label(" Fallback ", classes="field-label")
            yield Select(FALLBACKS, value=self.wizard.answers.fallback, allow_blank=False, id="fallback")
        with Horizontal(id="capacity-types-row"):
            yield Label("Without a reservation, GPU nodes use ", classes="field-label")
            yield Select([("on-demand and spot", "on-demand,spot"), ("on-demand only", "on-demand"),
                          ("spot only", "spot")], value=",".join(self.wizard.answers.capacity_types),
                         allow_blank=False, id="capacity-types")
        yield Static(SELECTOR_WARNING, id="selector-warning")

    def on_mount(self) -> None:
        answers = self.wizard.answers
        if answers.reservation_tags:
            self.query_one("#tags", Input).value = ", ".join(f"{k}={v}" for k, v in answers.reservation_tags.items())
        self._set_choice_rows(None)
        choice = self.query_one("#capacity-choice", ChoiceTable)
        choice.focus()
        self.query_one("#reservations", ChoiceTable).loading = True
        self.set_status(f"Reading capacity reservations and Capacity Blocks in {answers.region}…", "loading")
        self._load_worker(answers.region)

    def action_reload(self) -> None:
        self.on_mount()

    @work(thread=True, exclusive=True, group="capacity-load", name="capacity-load")
    def _load_worker(self, region: str) -> None:
        try:
            reservations, notes = self.wizard.load_reservations(region)
        except Exception as err:  # noqa: BLE001
            self.post_message(LoadFailed(f"the reservations in {region}", redact(f"{type(err).__name__}: {err}"),
                                         "press Ctrl+R to retry; Enter on 'None' goes on without reserved capacity"))
            return
        self.post_message(ReservationsLoaded(reservations, notes))

    def loading_done(self) -> None:
        self.query_one("#reservations", ChoiceTable).loading = False

    # Showing ---------------------------------------------------------------------------------------

    def on_reservations_loaded(self, message: ReservationsLoaded) -> None:
        self.loading_done()
        answers = self.wizard.answers
        now = self.wizard.now()
        rows = reservation_rows(message.reservations, answers.families, answers.zones, answers.instance_type, now)
        self.rows = {r.reservation.id: r for r in rows}
        marked = {i for i in answers.reservation_ids if i in self.rows}
        table = self.query_one("#reservations", ChoiceTable)
        table.empty_text = f"No capacity reservations or Capacity Blocks in {answers.region}."
        table.set_rows([self._row(r, now) for r in rows], marked=marked)
        self._set_choice_rows(rows)
        fits = sum(1 for r in rows if r.fits)
        text = f"{len(rows)} reservations in {answers.region}, {fits} fit {', '.join(answers.families)}."
        if self.wizard.mode == "plan-only":
            table.empty_text = "Plan-only mode: reservations are not read; By tags still works."
            table.set_rows([])
            self.set_status("Plan-only: reservations are not read. Enter accepts the highlighted choice.", "info")
        elif message.notes:
            self.set_status(text + " Not all could be read: " + redact(message.notes[0]), "warning")
        else:
            self.set_status(text + " Enter accepts the highlighted choice.", "ok")

    def _row(self, r: ReservationRow, now: datetime) -> ChoiceRow:
        c = r.reservation
        kind = "block" if c.reservation_type == "capacity-block" else "ODCR"
        detail_parts = [f"{c.id}: {c.total} × {c.instance_type} in {c.zone} ({c.match_criteria} matching), "
                        f"from {_when(c.start)}"]
        if c.end is not None:
            left = c.end - now if c.end.tzinfo else c.end - now.replace(tzinfo=None)
            detail_parts.append(f"ends in {format_duration(left)}" if left.total_seconds() > 0 else "ended")
        if c.tags:
            detail_parts.append("tags " + ", ".join(f"{k}={v}" for k, v in c.tags.items()))
        detail_parts.extend(r.warnings)
        return ChoiceRow(
            key=c.id,
            cells=(Text(c.id), c.instance_type, kind, c.zone, f"{c.available}/{c.total}", c.state,
                   _when(c.end, short=True)),
            available=r.fits,
            reason=r.reason,
            short=r.short,
            detail=" · ".join(detail_parts),
        )

    def _set_choice_rows(self, rows: list[ReservationRow] | None) -> None:
        answers = self.wizard.answers
        if rows is None:
            ids_ok, ids_reason = False, "still reading reservations…"
        elif not rows:
            ids_ok, ids_reason = False, f"no reservations in {answers.region}"
        elif not any(r.fits for r in rows):
            ids_ok, ids_reason = False, f"none of the {len(rows)} reservations fits {', '.join(answers.families)}"
        else:
            ids_ok, ids_reason = True, ""
        choice_rows = [
            ChoiceRow("none", ("None", "on-demand / spot capacity (the default)")),
            ChoiceRow("ids", ("By id", "the reservations marked with Space below"),
                      available=ids_ok, reason=ids_reason, short="none fits" if rows else "none found"),
            ChoiceRow("tags", ("By tags", "every reservation with the tags typed below")),
        ]
        table = self.query_one("#capacity-choice", ChoiceTable)
        current = table.highlighted_key or answers.capacity
        table.set_rows(choice_rows, highlight=current)
        self._show_warning(current)

    def _show_warning(self, choice: str | None) -> None:
        self.query_one("#selector-warning", Static).set_class(choice in ("ids", "tags"), "-shown")

    @on(ChoiceTable.Highlighted, "#capacity-choice")
    def _choice_highlighted(self, event: ChoiceTable.Highlighted) -> None:
        self._show_warning(event.key)

    # Accepting -------------------------------------------------------------------------------------

    def _common(self) -> None:
        answers = self.wizard.answers
        types = self.query_one("#capacity-types", Select).value
        answers.capacity_types = list(CAPACITY_TYPES.get(str(types), ["on-demand", "spot"]))
        fallback = self.query_one("#fallback", Select).value
        answers.fallback = str(fallback) if isinstance(fallback, str) else "none"

    def _accept_none(self) -> None:
        self._common()
        answers = self.wizard.answers
        answers.capacity = "none"
        answers.reservation_ids = []
        answers.reservation_tags = {}
        self.wizard.advance(self.step)

    def _accept_ids(self) -> None:
        table = self.query_one("#reservations", ChoiceTable)
        ids = [k for k in (r.key for r in table.rows) if k in table.marked]
        if not ids:
            self.refuse("Mark the reservations to use with Space in the reservations table (Tab moves there).")
            table.focus()
            return
        self._common()
        answers = self.wizard.answers
        answers.capacity = "ids"
        answers.reservation_ids = ids
        answers.reservation_tags = {}
        self.wizard.advance(self.step)

    def _accept_tags(self) -> None:
        tags_input = self.query_one("#tags", Input)
        try:
            tags = parse_tags(tags_input.value)
        except ValueError as err:
            self.refuse(f"Tags: {err}")
            tags_input.focus()
            return
        self._common()
        answers = self.wizard.answers
        answers.capacity = "tags"
        answers.reservation_tags = tags
        answers.reservation_ids = []
        try:
            answers.to_plan()
        except Exception as err:  # noqa: BLE001 - a PlanError: show its lines, keep the input
            answers.capacity = "none"
            self.refuse(f"Tags: {getattr(err, 'message', err)}")
            tags_input.focus()
            return
        self.wizard.advance(self.step)

    @on(ChoiceTable.Chosen, "#capacity-choice")
    def _choice_chosen(self, event: ChoiceTable.Chosen) -> None:
        {"none": self._accept_none, "ids": self._accept_ids, "tags": self._accept_tags}[event.key]()

    @on(ChoiceTable.Refused, "#capacity-choice")
    def _choice_refused(self, event: ChoiceTable.Refused) -> None:
        self.refuse(f"By id is not possible: {event.reason}")

    @on(ChoiceTable.Chosen, "#reservations")
    def _reservation_chosen(self, event: ChoiceTable.Chosen) -> None:
        table = self.query_one("#reservations", ChoiceTable)
        if not table.marked:
            table.marked.add(event.key)
        self._accept_ids()

    @on(ChoiceTable.Refused, "#reservations")
    def _reservation_refused(self, event: ChoiceTable.Refused) -> None:
        self.refuse(f"{event.key} does not fit: {event.reason}")

    @on(ChoiceTable.MarksChanged, "#reservations")
    def _marks(self, event: ChoiceTable.MarksChanged) -> None:
        if event.marked:
            self.query_one("#capacity-choice", ChoiceTable).highlight("ids")

    @on(Input.Submitted, "#tags")
    def _tags_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one("#capacity-choice", ChoiceTable).highlight("tags")
        self._accept_tags()
