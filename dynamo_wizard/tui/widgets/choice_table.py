"""ChoiceTable: a keyboard list of options where the highlighted row is the choice.

- Typing filters the rows (every word must match); Backspace edits the filter, Escape clears it.
- Enter on an available row posts `Chosen`; on an unavailable one, `Refused` with the reason — options
  that cannot be used stay visible, dimmed, with the reason in the last column and in full below.
- With `multi=True`, Space marks rows (posts `MarksChanged`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual import events, on
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.coordinate import Coordinate
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable, Static

MAX_REASON_CELL = 26
FILTER_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_/:")


@dataclass(frozen=True)
class ChoiceRow:
    key: str
    cells: tuple[str | Text, ...]
    available: bool = True
    reason: str = ""
    short: str = ""  # the reason cell's text (default: the reason, cut to fit); the full reason shows below
    detail: str = ""  # shown below the table while the row is highlighted
    search: str = ""  # what the filter matches (default: the cells' text)
    extra: dict[str, object] = field(default_factory=dict, compare=False)

    def haystack(self) -> str:
        text = self.search or " ".join(c.plain if isinstance(c, Text) else str(c) for c in self.cells)
        return f"{text} {self.reason}".lower()


class ChoiceGrid(DataTable[Text]):
    """The DataTable inside a ChoiceTable (its own class so the stylesheet can address it)."""

    BINDINGS = [Binding("enter", "select_cursor", "Next", key_display="⏎")]


class ChoiceTable(Vertical, can_focus=False):
    DEFAULT_CSS = """
    ChoiceTable {
        height: 1fr;
        min-height: 5;
    }
    ChoiceTable > .choice-filter {
        height: 1;
        display: none;
        color: $text-accent;
        padding: 0 1;
    }
    ChoiceTable > .choice-filter.-active {
        display: block;
    }
    ChoiceTable > ChoiceGrid {
        height: 1fr;
    }
    ChoiceTable > .choice-detail {
        height: auto;
        max-height: 3;
        padding: 0 1;
        color: $text-muted;
    }
    ChoiceTable > .choice-detail.-unavailable {
        color: $text-warning;
    }
    """

    BINDINGS = [
        Binding("space", "toggle_mark", "Mark"),
        Binding("escape", "clear_filter", "Clear filter"),
        Binding("backspace", "filter_backspace", "", show=False),
    ]

    filter_text: reactive[str] = reactive("", init=False)

    class Chosen(Message):
        def __init__(self, table: ChoiceTable, key: str) -> None:
            super().__init__()
            self.table = table
            self.key = key

        @property
        def control(self) -> ChoiceTable:
            return self.table

    class Refused(Message):
        def __init__(self, table: ChoiceTable, key: str, reason: str) -> None:
            super().__init__()
            self.table = table
            self.key = key
            self.reason = reason

        @property
        def control(self) -> ChoiceTable:
            return self.table

    class Highlighted(Message):
        def __init__(self, table: ChoiceTable, key: str | None) -> None:
            super().__init__()
            self.table = table
            self.key = key

        @property
        def control(self) -> ChoiceTable:
            return self.table

    class MarksChanged(Message):
        def __init__(self, table: ChoiceTable, marked: frozenset[str]) -> None:
            super().__init__()
            self.table = table
            self.marked = marked

        @property
        def control(self) -> ChoiceTable:
            return self.table

    def __init__(self, columns: list[str], *, reason_column: str = "Usable", multi: bool = False,
                 mark_label: str = "", group_of: Callable[[ChoiceRow], str] | None = None,
                 reason_width: int = MAX_REASON_CELL,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.reason_width = reason_width
        self.group_of = group_of  # Space marks a whole group (e.g. every type of a family) when given
        self.columns = list(columns)
        self.reason_column = reason_column
        self.multi = multi
        self.mark_label = mark_label
        self.rows: list[ChoiceRow] = []
        self.marked: set[str] = set()
        self._wanted_key: str | None = None
        self.empty_text = ""  # shown below the table when there are no rows

    def compose(self) -> ComposeResult:
        yield Static("", classes="choice-filter")
        yield ChoiceGrid(cursor_type="row", zebra_stripes=True)
        yield Static("", classes="choice-detail")

    @property
    def grid(self) -> ChoiceGrid:
        return self.query_one(ChoiceGrid)

    def on_mount(self) -> None:
        self._add_columns()

    def _add_columns(self) -> None:
        grid = self.grid
        if self.multi:
            grid.add_column(self.mark_label or " ", key="__mark")
        for label in self.columns:
            grid.add_column(label, key=label)
        grid.add_column(self.reason_column, key="__reason")

    def focus(self, scroll_visible: bool = True) -> ChoiceTable:
        self.grid.focus(scroll_visible)
        return self

    # Data ------------------------------------------------------------------------------------------

    def set_rows(self, rows: list[ChoiceRow], highlight: str | None = None,
                 marked: set[str] | frozenset[str] | None = None) -> None:
        self.rows = list(rows)
        if marked is not None:
            self.marked = set(marked)
        self._wanted_key = highlight if highlight is not None else self.highlighted_key
        self._refresh_rows()

    def row(self, key: str | None) -> ChoiceRow | None:
        for r in self.rows:
            if r.key == key:
                return r
        return None

    @property
    def visible_rows(self) -> list[ChoiceRow]:
        terms = self.filter_text.lower().split()
        if not terms:
            return list(self.rows)
        return [r for r in self.rows if all(t in r.haystack() for t in terms)]

    @property
    def highlighted_key(self) -> str | None:
        grid = self.grid if self.is_mounted else None
        if grid is None or grid.row_count == 0:
            return self._wanted_key
        try:
            row_key = grid.coordinate_to_cell_key(Coordinate(grid.cursor_row, 0)).row_key
        except Exception:  # noqa: BLE001 - an empty or rebuilding table has no cursor cell
            return None
        return str(row_key.value) if row_key.value is not None else None

    @property
    def highlighted_row(self) -> ChoiceRow | None:
        return self.row(self.highlighted_key)

    def highlight(self, key: str) -> bool:
        grid = self.grid
        try:
            index = grid.get_row_index(key)
        except Exception:  # noqa: BLE001 - key not shown (filtered out or unknown)
            return False
        grid.move_cursor(row=index, animate=False)
        return True

    def _styles(self) -> tuple[Style, Style, Style]:
        v = self.app.theme_variables
        ok = Style(color=v.get("success"))
        bad = Style(color=v.get("warning"))
        mark = Style(color=v.get("accent"), bold=True)
        return ok, bad, mark

    def _reason_limit(self, rows: list[ChoiceRow]) -> int:
        """How wide the reason cell may be so that the table fits the screen without scrolling sideways
        (the full reason is always in the detail line)."""
        width = self.size.width
        if width <= 0:
            return self.reason_width
        used = 2 + 4  # the vertical scrollbar and a margin
        if self.multi:
            used += max(cell_len(self.mark_label or " "), 1) + 2
        for i, label in enumerate(self.columns):
            cells = [r.cells[i] for r in rows if i < len(r.cells)]
            widest = max([cell_len(c.plain if isinstance(c, Text) else str(c)) for c in cells] + [cell_len(label)])
            used += widest + 2
        return max(8, min(self.reason_width + 24, width - used - 2))

    def on_resize(self, event: events.Resize) -> None:
        if self.rows and event.size.width != getattr(self, "_laid_out_width", None):
            self._laid_out_width = event.size.width
            self._wanted_key = self.highlighted_key
            self._refresh_rows()

    def _refresh_rows(self) -> None:
        if not self.is_mounted:
            return
        grid = self.grid
        want = self._wanted_key
        ok, bad, mark_style = self._styles()
        visible = self.visible_rows
        limit = self._reason_limit(visible)
        with self.app.batch_update():
            grid.clear(columns=True)  # columns only ever grow: start afresh so widths fit these rows
            self._add_columns()
            for r in visible:
                cells: list[Text] = []
                if self.multi:
                    cells.append(Text("●" if r.key in self.marked else "○", style=mark_style if r.key in self.marked else ""))
                for c in r.cells:
                    t = c.copy() if isinstance(c, Text) else Text(str(c))
                    if not r.available:
                        t.stylize("dim")
                    cells.append(t)
                if r.available:
                    cells.append(Text("✓", style=ok))
                else:
                    short = r.short or r.reason
                    if len(short) > limit:
                        short = short[: limit - 1] + "…"
                    cells.append(Text("✗ " + short, style=bad))
                grid.add_row(*cells, key=r.key)
            if want is not None:
                self.highlight(want)
        self._wanted_key = None
        self._show_detail()

    def _show_detail(self) -> None:
        detail = self.query_one(".choice-detail", Static)
        r = self.highlighted_row
        if r is None:
            text = "No option matches the filter." if self.filter_text and self.rows else self.empty_text
            detail.update(text)
            detail.set_class(bool(text), "-unavailable")
            return
        parts = [] if r.available else [f"Unavailable: {r.reason}"]
        if r.detail:
            parts.append(r.detail)
        detail.update(Text(" · ".join(parts)))
        detail.set_class(not r.available, "-unavailable")

    # Filter ----------------------------------------------------------------------------------------

    def watch_filter_text(self, text: str) -> None:
        label = self.query_one(".choice-filter", Static)
        label.update(Text(f"Filter: {text}▏  (Backspace edits, Esc clears)"))
        label.set_class(bool(text), "-active")
        self.refresh_bindings()
        self._wanted_key = self.highlighted_key
        self._refresh_rows()

    def on_key(self, event: events.Key) -> None:
        if event.character and event.character in FILTER_CHARS and len(event.character) == 1:
            self.filter_text += event.character
            event.stop()
            event.prevent_default()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Escape and Backspace belong to the filter only while there is one; otherwise Escape is Back.
        if action in ("clear_filter", "filter_backspace"):
            return bool(self.filter_text)
        if action == "toggle_mark":
            return self.multi
        return True

    def action_filter_backspace(self) -> None:
        if not self.filter_text:
            raise SkipAction()
        self.filter_text = self.filter_text[:-1]

    def action_clear_filter(self) -> None:
        if not self.filter_text:
            raise SkipAction()  # let Escape mean Back
        self.filter_text = ""

    # Choosing --------------------------------------------------------------------------------------

    def action_toggle_mark(self) -> None:
        if not self.multi:
            raise SkipAction()
        r = self.highlighted_row
        if r is None:
            return
        group = [r]
        if self.group_of is not None:
            name = self.group_of(r)
            group = [row for row in self.rows if self.group_of(row) == name]
        keys = {row.key for row in group}
        if r.key in self.marked:
            self.marked -= keys
        elif not any(row.available for row in group):
            self.post_message(self.Refused(self, r.key, r.reason))
            return
        else:
            self.marked |= keys
        self._wanted_key = r.key
        self._refresh_rows()
        self.post_message(self.MarksChanged(self, frozenset(self.marked)))

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        key = str(event.row_key.value)
        r = self.row(key)
        if r is None:
            return
        if r.available:
            self.post_message(self.Chosen(self, key))
        else:
            self.post_message(self.Refused(self, key, r.reason))

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_detail()
        self.post_message(self.Highlighted(self, self.highlighted_key))
