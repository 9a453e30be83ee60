"""The pods of the deployment's namespace, live: a DataTable keyed by pod uid, updated by diff.

Changes from the watch collect in a `PodView` (core.podview, fed from the watch thread); a timer takes
them at most `RENDERS_PER_SECOND` times a second and applies them inside `batch_update()`: new pods are
added, changed cells are updated one by one, gone pods removed. Nothing is cleared and rebuilt, so 2,000
pods with 1,000 events a second cost what changed, not what exists. Column widths are fixed (long reasons
are cut), because a width that follows its content re-measures the whole column on every shrink.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from rich.style import Style
from rich.text import Text
from textual.cache import LRUCache
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowDoesNotExist

from ...core.podview import PodRow, PodView, format_age

RENDERS_PER_SECOND = 20
Clock = Callable[[], float]

# key, label, width. The reason gets what the others leave of the visible width (see on_resize); node
# and namespace, the same for many pods, come after it.
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("pod", "POD", 26),
    ("ready", "READY", 5),
    ("status", "STATUS", 17),
    ("restarts", "RST", 3),
    ("age", "AGE", 5),
    ("reason", "LAST EVENT / REASON", 48),
    ("node", "NODE", 19),
    ("namespace", "NAMESPACE", 16),
)
REASON_MIN_WIDTH = 24
_BEFORE_REASON = ("pod", "ready", "status", "restarts", "age")
_WIDTH = {key: width for key, _, width in COLUMNS}
# column -> the PodRow fields its cell shows (a cell is updated only when one of them changed)
_FIELDS: dict[str, tuple[str, ...]] = {
    "pod": ("name",),
    "ready": ("ready", "total"),
    "status": ("status", "warning", "ready", "total"),
    "restarts": ("restarts",),
    "reason": ("reason", "warning"),
    "node": ("node",),
    "namespace": ("namespace",),
}


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _fit_middle(text: str, width: int) -> str:
    """Pod names differ at the end (replica set hash, pod suffix): keep both ends."""
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head):]


class PodTable(DataTable[Text]):
    """Pods keyed by uid; `Pending` rows say why. Feed it with `attach(view)` or `apply_changes`."""

    COMPONENT_CLASSES = {"pod-table--warning", "pod-table--ok", "pod-table--muted"}

    DEFAULT_CSS = """
    PodTable {
        height: 1fr;
        border: round $panel;
        border-title-color: $primary;
        border-subtitle-color: $text-muted;
        &:focus { border: round $primary; }
        & > .pod-table--warning { color: $warning; }
        & > .pod-table--ok { color: $success; }
        & > .pod-table--muted { color: $text-muted; }
    }
    """

    def __init__(
        self,
        *,
        clock: Clock = time.time,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes, cursor_type="row", zebra_stripes=False)
        self.clock = clock
        self.view: PodView | None = None
        self.pods: dict[str, PodRow] = {}
        self._ages: dict[str, str] = {}
        self._styles: dict[str, Style] = {}
        self._value_render_cache: LRUCache[tuple[Any, ...], tuple[Any, Any]] = LRUCache(20_000)
        self._line_value_cache: LRUCache[tuple[Any, ...], tuple[tuple[Any, ...], Any]] = LRUCache(2_000)
        self.render_batches = 0
        """How many batches changed the table (for tests and benchmarks)."""
        self.border_title = "Pods"

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.add_column(label, width=width, key=key)
        self._fit_reason_column()
        early, self.pods = self.pods, {}
        self.apply_changes(early)  # rows given before the columns existed
        self._update_subtitle()
        self.set_interval(1 / RENDERS_PER_SECOND, self.refresh_from_view, name="pod-table-diff")
        self.set_interval(1.0, self.refresh_ages, name="pod-table-ages")

    def on_resize(self) -> None:
        self._fit_reason_column()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if int(old_value) != int(new_value):
            self.refresh_ages()

    def _fit_reason_column(self) -> None:
        """The reason column takes the visible width the columns before it leave."""
        column = self.columns.get(ColumnKey("reason"))
        if column is None:
            return
        padding = 2 * self.cell_padding
        before = sum(width + padding for key, _, width in COLUMNS if key in _BEFORE_REASON)
        width = max(REASON_MIN_WIDTH, self.scrollable_content_region.width - before - padding)
        if column.width != width:
            column.width = width
            self._require_update_dimensions = True
            self._update_count += 1
            self.refresh(layout=True)

    def attach(self, view: PodView) -> None:
        """Follow a view the watch feeds; what it already holds is shown at the next render."""
        self.view = view
        self.apply_changes({row.uid: row for row in view.rows()})

    # -- rendering -----------------------------------------------------------------------------------

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> Any:
        # DataTable keys its cell cache on a table-wide update counter, so one changed cell re-renders
        # every visible cell (~0.1 ms each) on the next frame; under a stream of pod events that is
        # every frame. Here a rendered cell is reused while its value is the very same object (a changed
        # cell gets a new Text), so a frame costs what changed.
        if row_index < 0 or column_index < 0:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        row_key = self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        if row_key is None or column_key is None:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        value = self._data[row_key][column_key]
        key = (row_key, column_key, row_index, base_style, width, cursor, hover, self._show_hover_cursor,
               self._pseudo_class_state)
        cached = self._value_render_cache.get(key)
        if cached is not None and cached[0] is value:
            return cached[1]
        lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        self._value_render_cache[key] = (value, lines)
        return lines

    def _render_line(self, y: int, x1: int, x2: int, base_style: Style) -> Any:
        # The same idea one level up: a line is reused while its row holds the very same cell objects.
        try:
            row_key, line_in_row = self._get_offsets(y)
        except LookupError:
            return super()._render_line(y, x1, x2, base_style)
        data = self._data.get(row_key)
        values = tuple(data.values()) if data is not None else ()
        key = (y, x1, x2, self.size.width, self.cursor_coordinate, self.hover_coordinate, base_style,
               self.cursor_type, self._show_hover_cursor, self._pseudo_class_state, row_key, line_in_row,
               tuple(column.get_render_width(self) for column in self.ordered_columns))
        cached = self._line_value_cache.get(key)
        if cached is not None and len(cached[0]) == len(values) and all(a is b for a, b in zip(cached[0], values, strict=True)):
            return cached[1]
        strip = super()._render_line(y, x1, x2, base_style)
        self._line_value_cache[key] = (values, strip)
        return strip

    # -- styles --------------------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = {}  # the theme changed: look the colours up again

    def _style(self, name: str) -> Style:
        # Looking a component style up costs ~0.2 ms; a table of 2,000 pods asks thousands of times.
        style = self._styles.get(name)
        if style is None:
            try:
                style = self.get_component_rich_style(f"pod-table--{name}", partial=True)
            except Exception:  # before the stylesheet is ready (not mounted yet)
                return Style()
            self._styles[name] = style
        return style

    def _cell(self, key: str, row: PodRow) -> Text:
        if key == "pod":
            return Text(_fit_middle(row.name, _WIDTH["pod"]))
        if key == "ready":
            return Text(row.ready_text, style=self._style("ok") if row.total and row.ready == row.total else "")
        if key == "status":
            done = row.status in ("Running", "Completed") and row.ready == row.total
            style = self._style("warning") if row.warning else self._style("ok") if done else Style()
            return Text(_fit(row.status, _WIDTH["status"]), style=style)
        if key == "restarts":
            return Text(str(row.restarts), style=self._style("warning") if row.restarts else "")
        if key == "age":
            return Text(self._age(row))
        if key == "reason":
            return Text(row.reason, style=self._style("warning" if row.warning else "muted"), no_wrap=True,
                        overflow="ellipsis")
        if key == "node":
            return Text(_fit(row.node or "—", _WIDTH["node"]), style="" if row.node else self._style("muted"))
        return Text(_fit(row.namespace, _WIDTH["namespace"]), style=self._style("muted"))

    def _age(self, row: PodRow) -> str:
        return format_age(self.clock() - row.created_at) if row.created_at is not None else ""

    # -- diff ----------------------------------------------------------------------------------------

    def refresh_from_view(self) -> None:
        if self.view is None:
            return
        changes = self.view.take_changes()
        if changes:
            self.apply_changes(changes)

    def apply_changes(self, changes: Mapping[str, PodRow | None]) -> None:
        """Apply uid -> row (None: gone) as a diff, in one batch: one render whatever the count."""
        if not changes or not self.columns:
            if changes and not self.columns:  # not mounted yet: keep them for the first render
                for uid, row in changes.items():
                    if row is None:
                        self.pods.pop(uid, None)
                    else:
                        self.pods[uid] = row
            return
        with self.app.batch_update():
            for uid, row in changes.items():
                old = self.pods.get(uid)
                if row is None:
                    if old is not None:
                        del self.pods[uid]
                        self._ages.pop(uid, None)
                        try:
                            self.remove_row(uid)
                        except RowDoesNotExist:
                            pass
                    continue
                self.pods[uid] = row
                if old is None or uid not in self.rows:
                    cells = [self._cell(key, row) for key, _, _ in COLUMNS]
                    self._ages[uid] = self._age(row)
                    self.add_row(*cells, key=uid)
                    continue
                if old == row:
                    continue
                for key, fields in _FIELDS.items():
                    if any(getattr(old, f) != getattr(row, f) for f in fields):
                        self.update_cell(uid, key, self._cell(key, row))
            self.render_batches += 1
            self._update_subtitle()

    def set_rows(self, rows: Iterable[PodRow]) -> None:
        """Show exactly these rows (a full snapshot), still applied as a diff."""
        fresh = {row.uid: row for row in rows}
        changes: dict[str, PodRow | None] = {uid: None for uid in self.pods if uid not in fresh}
        changes.update(fresh)
        self.apply_changes(changes)

    def refresh_ages(self) -> None:
        """Once a second: the ages on screen move (only cells whose text changed are touched; rows out
        of view catch up when they are scrolled to)."""
        if not self.pods or not self.columns:
            return
        first = max(0, int(self.scroll_y))
        visible = self.ordered_rows[first: first + self.scrollable_content_region.height + 1]
        with self.app.batch_update():
            for row_entry in visible:
                uid = str(row_entry.key.value)
                row = self.pods.get(uid)
                if row is None:
                    continue
                age = self._age(row)
                if self._ages.get(uid) != age:
                    self._ages[uid] = age
                    try:
                        self.update_cell(uid, "age", Text(age))
                    except Exception:  # the row is being replaced in this very tick
                        pass

    def _update_subtitle(self) -> None:
        total = len(self.pods)
        if not total:
            self.border_subtitle = "no pods yet"
            return
        ready = sum(1 for p in self.pods.values() if p.total and p.ready == p.total and p.status == "Running")
        pending = sum(1 for p in self.pods.values() if p.phase == "Pending")
        parts = [f"{total} pod{'s' if total != 1 else ''}", f"{ready} ready"]
        if pending:
            parts.append(f"{pending} pending")
        self.border_subtitle = " · ".join(parts)

    # -- queries (tests, headless) -------------------------------------------------------------------

    def row_texts(self, uid: str) -> dict[str, str]:
        return {key: self.get_cell(uid, key).plain for key, _, _ in COLUMNS}
