"""The pods of the deployment's namespace, live: a DataTable keyed by pod uid, updated by diff.

Changes from the watch collect in a `PodView` (core.podview, fed from the watch thread); a timer takes
them at most `RENDERS_PER_SECOND` times a second and applies them inside `batch_update()`: new pods are
added, changed cells are updated one by one, gone pods removed. Nothing is cleared and rebuilt, so 2,000
pods with 1,000 events a second cost what changed, not what exists.

What keeps a frame short (bench/pod_table.py: 2,000 pods, 1,000 events/s, frames ≤ 50 ms):
- Work between two frames is bounded: at most `FRAME_BUDGET` seconds of changes are applied at once (at
  least `MIN_CHUNK` of them); the rest follow once the frame is painted, a newer change to a pod replacing
  its waiting one. The first listing of thousands of pods fills in over a few frames instead of one long
  one, and the scroll range is set once it is all in (a new range is a layout and a full repaint).
- Column widths are fixed (long reasons are cut), so no cell is ever measured: DataTable measures every
  added cell (a terminal-size syscall each) to fit auto-width columns.
- A changed cell repaints its row's line only (DataTable repaints the whole table for one cell); the
  border's counts are set only when they change, and then repaint the border line only (setting a border
  title repaints everything); the row order and line offsets are kept until rows are added or removed.
- Body lines are drawn by a lean renderer of the same segments and styles DataTable would draw
  (`_render_row_segments`; tests compare the two), cached per row while its cell objects are the same;
  the header is cached until the columns change; the widget's style is looked up once a frame.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from itertools import chain
from typing import Any

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual._segment_tools import line_crop
from textual._two_way_dict import TwoWayDict
from textual.coordinate import Coordinate
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, CellKey, ColumnKey, DuplicateKey, Row, RowDoesNotExist, RowKey

from ...core.podview import PodRow, PodView, format_age

RENDERS_PER_SECOND = 20
FRAME_BUDGET = 0.012
"""Seconds of table updates applied in one go; the rest follows once the frame is painted."""
MIN_CHUNK = 64
"""Changes always applied at once, however slow the machine (a handful of pods appears in one batch)."""
MAX_SIZE_DEFERRAL = 1.0
"""Seconds the scroll range may lag behind rows still arriving in chunks."""
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


@dataclass(frozen=True)
class _Drawing:
    """What every line of one frame shares."""

    base_style: Style
    lean: bool
    """One-line rows, a row cursor, no fixed rows or columns, no labels: the lean renderer draws."""
    first_row_line: int
    width: int
    widths: tuple[int, ...]
    cursor: Coordinate
    hover: Coordinate
    looks: tuple[Any, ...]


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
        # Row order and line offsets, kept while no row is added, removed or moved (DataTable recomputes
        # them, 2,000 rows, after every cell update).
        self._rows_version = 0
        self._ordered_rows_cache: tuple[tuple[int, int], list[Row]] | None = None
        self._y_offsets_cache: tuple[tuple[int, int], list[tuple[RowKey, int]]] | None = None
        self._all_rows_one_line = True
        # row -> (how it was drawn, its cells, the line): one entry a row (textual's LRUCache keeps the
        # first value set for a key, so it cannot hold a line that changes)
        self._row_lines: dict[RowKey, tuple[tuple[Any, ...], tuple[Any, ...], Strip]] = {}
        self._frame: _Drawing | None = None
        self._header_lines: dict[tuple[Any, ...], Strip] = {}
        self._cell_styles: dict[tuple[Any, ...], tuple[Style, Style]] = {}
        self._rows_to_repaint: set[int] | None = None
        """While a batch is applied: the rows whose lines to repaint at its end (None: repaint at once)."""
        self._quiet = False
        self._continuing = False
        self._dimensions_deferred = False
        self._deferred_since: float | None = None
        self._removing = False
        self._removed_rows: set[RowKey] = set()
        # (set before DataTable's __init__, which already asks for them)
        super().__init__(name=name, id=id, classes=classes, cursor_type="row", zebra_stripes=False)
        self.clock = clock
        self.view: PodView | None = None
        self.pods: dict[str, PodRow] = {}
        """The rows on the table, by uid (changes still waiting for a frame are not in it)."""
        self._waiting: dict[str, PodRow | None] = {}
        self._ages: dict[str, str] = {}
        self._styles: dict[str, Style] = {}
        self._ready = 0
        self._pending = 0
        self._subtitle = ""
        self.render_batches = 0
        """How many batches of changes were taken for the table (for tests and benchmarks)."""
        self.border_title = "Pods"

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.add_column(label, width=width, key=key)
        self._fit_reason_column()
        early, self.pods = self.pods, {}
        self._ready = self._pending = 0
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

    # -- DataTable, made cheap for a table of fixed-width, one-line rows -----------------------------

    def add_row(
        self,
        *cells: Text,
        height: int | None = 1,
        key: str | None = None,
        label: Text | str | None = None,
    ) -> RowKey:
        self._renumber_rows()  # rows removed earlier in this batch: the new row's index is the count
        self._rows_version += 1
        if height != 1 or label is not None:
            self._all_rows_one_line = False
        if height != 1 or label is not None or key is None or not self.rows or len(cells) != len(self.columns):
            return super().add_row(*cells, height=height, key=key, label=label)
        # DataTable's add_row, less what a one-line row with a key at the end of a non-empty table does
        # not need (the cursor is re-validated, the column order looked up twice): 2,000 rows come at once.
        row_key = RowKey(key)
        if row_key in self._row_locations:
            raise DuplicateKey(f"The row key {row_key!r} already exists.")
        column_keys = [column.key for column in self.ordered_columns]
        self._row_locations[row_key] = len(self.rows)
        self._data[row_key] = dict(zip(column_keys, cells, strict=True))
        self.rows[row_key] = Row(row_key, 1, None, False)
        self._new_rows.add(row_key)
        self._require_update_dimensions = True
        self._update_count += 1
        self.check_idle()
        return row_key

    def remove_row(self, row_key: RowKey | str) -> None:
        row_key = RowKey(row_key) if isinstance(row_key, str) else row_key
        self._rows_version += 1
        self._row_lines.pop(row_key, None)
        if not self._all_rows_one_line or row_key not in self._row_locations:
            super().remove_row(row_key)  # (raises RowDoesNotExist for an unknown row)
            return
        # DataTable renumbers every row after the removed one, a Python loop over the whole table, for
        # each removal: 2,000 pods going at once (a deleted deployment) cost seconds. The rows of a batch
        # are renumbered once, at its end.
        for column_key in self._data[row_key]:
            self._updated_cells.discard(CellKey(row_key, column_key))
        del self.rows[row_key]
        del self._data[row_key]
        self._removed_rows.add(row_key)
        if not self._removing:
            self._renumber_rows()

    def _renumber_rows(self) -> None:
        removed, self._removed_rows = self._removed_rows, set()
        if not removed:
            return
        locations = self._row_locations
        order = (locations.get_key(index) for index in range(len(locations)))
        self._row_locations = TwoWayDict({key: index for index, key in enumerate(
            key for key in order if key is not None and key not in removed)})
        self.cursor_coordinate = self.cursor_coordinate  # clamped to the rows left
        self.hover_coordinate = self.hover_coordinate
        self._update_count += 1
        self._require_update_dimensions = True
        self.check_idle()
        self.refresh()  # the rows below moved up; the size follows on idle (see _update_dimensions)

    def clear(self, columns: bool = False) -> PodTable:
        self._rows_version += 1
        self._all_rows_one_line = True
        self._row_lines.clear()
        self._header_lines.clear()
        self._cell_styles.clear()
        super().clear(columns)
        return self

    def sort(self, *columns: ColumnKey | str, key: Callable[[Any], Any] | None = None,
             reverse: bool = False) -> PodTable:
        self._rows_version += 1
        super().sort(*columns, key=key, reverse=reverse)
        return self

    @property
    def ordered_rows(self) -> list[Row]:
        version = (self._rows_version, len(self.rows))
        cached = self._ordered_rows_cache
        if cached is None or cached[0] != version:
            get_key, rows = self._row_locations.get_key, self.rows
            cached = self._ordered_rows_cache = (
                version, [rows[get_key(i)] for i in range(len(rows))]  # type: ignore[index]
            )
        return cached[1]

    @property
    def _y_offsets(self) -> list[tuple[RowKey, int]]:
        version = (self._rows_version, len(self.rows))
        cached = self._y_offsets_cache
        if cached is None or cached[0] != version:
            offsets = [(row.key, y) for row in self.ordered_rows for y in range(row.height)]
            cached = self._y_offsets_cache = (version, offsets)
        return cached[1]

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        # DataTable measures every cell of every new row to size auto-width columns; ours have fixed
        # widths, so only the virtual size changes.
        if not self._all_rows_one_line or any(column.auto_width for column in self.columns.values()):
            self._rows_version += 1  # auto-height rows get their height here
            super()._update_dimensions(new_rows)
            return
        now = time.monotonic()
        if self._waiting and now - (self._deferred_since or now) < MAX_SIZE_DEFERRAL:
            # A long listing is still coming in, chunk by chunk: a new size is a new layout and a
            # repaint of every line, so the size is set once, when it is all in (rows added in view are
            # painted as they come, see `_apply_one`), or at the latest after MAX_SIZE_DEFERRAL.
            self._dimensions_deferred = True
            self._deferred_since = self._deferred_since or now
            return
        self._deferred_since = None
        header_height = self.header_height if self.show_header else 0
        width = sum(column.get_render_width(self) for column in self.columns.values())
        self.virtual_size = Size(width + self._row_label_column_width, len(self.rows) + header_height)

    def update_cell(
        self,
        row_key: RowKey | str,
        column_key: ColumnKey | str,
        value: Text,
        *,
        update_width: bool = False,
    ) -> None:
        """As DataTable's, but only the cell's row is repainted (DataTable repaints the whole table)."""
        if update_width or not self._all_rows_one_line:
            super().update_cell(row_key, column_key, value, update_width=update_width)
            return
        row_key = RowKey(row_key) if isinstance(row_key, str) else row_key
        column_key = ColumnKey(column_key) if isinstance(column_key, str) else column_key
        if row_key not in self._row_locations or column_key not in self._column_locations:
            raise CellDoesNotExist(f"No cell exists for row_key={row_key!r}, column_key={column_key!r}.")
        self._data[row_key][column_key] = value
        self._update_count += 1  # DataTable's own caches (header, fallback rendering) key on it
        row_index: int = self._row_locations.get(row_key)  # type: ignore[assignment]  # checked above
        if self._rows_to_repaint is not None:
            self._rows_to_repaint.add(row_index)
        else:
            self._repaint_rows((row_index,))

    def _repaint_rows(self, row_indices: Iterable[int]) -> None:
        """Repaint the lines of these rows that are in view."""
        top = int(self.scroll_y)
        first_line = self.header_height if self.show_header else 0
        height = self.scrollable_content_region.height
        width = max(self.size.width, self.virtual_size.width)
        regions = [Region(0, first_line + index - top, width, 1) for index in sorted(row_indices)
                   if 0 <= first_line + index - top and first_line <= first_line + index - top < height]
        if regions:
            self.refresh(*regions)

    def refresh(self, *regions: Region, repaint: bool = True, layout: bool = False,
                recompose: bool = False) -> PodTable:
        if self._quiet and not (regions or layout or recompose):
            return self  # the border subtitle changed: `_update_subtitle` repaints the border only
        super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)
        return self

    # -- rendering -----------------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = {}  # the theme changed: look the colours up again
        self._row_lines.clear()
        self._header_lines.clear()
        self._cell_styles.clear()

    def render_lines(self, crop: Region) -> list[Strip]:
        # What every line of a frame shares is looked up once a frame, not once a line (the widget's
        # style alone walks every ancestor's CSS, ~0.2 ms).
        self._pseudo_class_state = self.get_pseudo_class_state()
        self._frame = self._drawing(self.rich_style)
        try:
            return super().render_lines(crop)
        finally:
            self._frame = None

    def render_line(self, y: int) -> Strip:
        if self.fixed_rows:
            return super().render_line(y)
        scroll_x, scroll_y = self.scroll_offset
        if y >= (self.header_height if self.show_header else 0):
            y += scroll_y
        frame = self._frame
        base_style = frame.base_style if frame is not None else self.rich_style
        return self._render_line(y, scroll_x, scroll_x + self.size.width, base_style)

    def _drawing(self, base_style: Style) -> _Drawing:
        lean = (self._all_rows_one_line and not self.fixed_rows and not self.fixed_columns
                and self.cursor_type == "row" and not self._should_render_row_labels)
        return _Drawing(
            base_style=base_style,
            lean=lean,
            first_row_line=self.header_height if self.show_header else 0,
            width=self.size.width,
            widths=tuple(column.get_render_width(self) for column in self.ordered_columns),
            cursor=self.cursor_coordinate,
            hover=self.hover_coordinate,
            looks=(base_style, self.show_cursor, self._show_hover_cursor, self.cursor_foreground_priority,
                   self.cursor_background_priority, self.zebra_stripes, self._pseudo_class_state,
                   self.cell_padding),
        )

    def _render_line(self, y: int, x1: int, x2: int, base_style: Style) -> Strip:
        frame = self._frame
        if frame is None or frame.base_style is not base_style:
            frame = self._drawing(base_style)
        if not frame.lean:
            return super()._render_line(y, x1, x2, base_style)
        row_index = y - frame.first_row_line
        if row_index < 0:
            return self._render_header_line(y, x1, x2, frame)
        row_key = self._row_locations.get_key(row_index)
        if row_key is None:
            return Strip.blank(frame.width, base_style)
        values = tuple(self._data[row_key].values())
        on_cursor = frame.cursor.row == row_index
        on_hover = frame.hover.row == row_index
        drawn = (row_index, x1, x2, frame.width, frame.widths, on_cursor, on_hover, frame.looks)
        cached = self._row_lines.get(row_key)
        if cached is not None and cached[0] == drawn and len(cached[1]) == len(values) and all(
            a is b for a, b in zip(cached[1], values, strict=True)
        ):
            return cached[2]
        segments = self._render_row_segments(row_index, values, frame.widths, base_style, on_cursor, on_hover)
        if segments is None:  # a cell this renderer does not draw: DataTable's own way
            strip = super()._render_line(y, x1, x2, base_style)
        else:
            strip = Strip(line_crop(segments, x1, x2, frame.width)).adjust_cell_length(frame.width, base_style)
            strip = strip.simplify()
        self._row_lines[row_key] = (drawn, values, strip)
        return strip

    def _render_header_line(self, y: int, x1: int, x2: int, frame: _Drawing) -> Strip:
        # DataTable redraws the header after every cell update (its caches key on an update counter),
        # and finds it through a list of every row's lines; it changes only with the columns.
        drawn = (y, x1, x2, frame.width, frame.widths, frame.cursor, frame.hover, frame.looks,
                 tuple(column.label.plain for column in self.ordered_columns))
        cached = self._header_lines.get(drawn)
        if cached is None:
            _, scrollable = self._render_line_in_row(
                self._header_row_key, y, frame.base_style, cursor_location=frame.cursor, hover_location=frame.hover
            )
            segments = list(chain.from_iterable(scrollable))
            cached = Strip(line_crop(segments, x1, x2, frame.width)).adjust_cell_length(frame.width, frame.base_style)
            cached = cached.simplify()
            if len(self._header_lines) > 16:
                self._header_lines.clear()
            self._header_lines[drawn] = cached
        return cached

    def _render_row_segments(
        self,
        row_index: int,
        values: tuple[Any, ...],
        widths: tuple[int, ...],
        base_style: Style,
        on_cursor: bool,
        on_hover: bool,
    ) -> list[Segment] | None:
        """A body row as DataTable draws it (each cell `Styled(Padding(text), pre, post)`, then the space
        to the right edge), for one-line plain `Text` cells; None for anything else."""
        if len(values) != len(widths):
            return None
        row_style = self._get_row_style(row_index, base_style)
        component_style, post_style = self._get_styles_to_render_cell(
            False, False, False, on_hover, on_cursor, self.show_cursor, self._show_hover_cursor,
            self.cursor_foreground_priority == "css", self.cursor_background_priority == "css",
        )
        get_style = self.app.console.get_style
        pad = self.cell_padding
        padding = " " * pad
        styles = self._cell_styles
        if len(styles) > 20_000:
            styles.clear()
        segments: list[Segment] = []
        for column_index, (value, width) in enumerate(zip(values, widths, strict=True)):
            if (not isinstance(value, Text) or value.spans or value.overflow == "ignore"
                    or not value.plain.isprintable()):
                return None
            text_style = value.style
            if isinstance(text_style, str):
                text_style = get_style(text_style) if text_style else Style.null()
            # (the cell's styles: DataTable's pre style with the cell's coordinates as meta, for the mouse)
            key = (row_index, column_index, row_style, component_style, post_style, text_style)
            looks = styles.get(key)
            if looks is None:
                pre = row_style + Style.from_meta({"row": row_index, "column": column_index}) + component_style
                styled = pre + text_style
                looks = styles[key] = (pre + post_style if post_style else pre,
                                       styled + post_style if post_style else styled)
            outer, styled = looks
            inner = max(0, width - 2 * pad)
            shown = value.plain
            shown_width = len(shown) if shown.isascii() else cell_len(shown)
            if shown_width > inner:
                if value.overflow == "ellipsis":
                    shown = set_cell_size(shown, inner - 1) + "…" if inner else ""
                else:
                    shown = set_cell_size(shown, inner)
                shown_width = cell_len(shown)
            if pad:
                segments.append(Segment(padding, outer))
            if shown:
                segments.append(Segment(shown, styled))
            if inner > shown_width:
                segments.append(Segment(" " * (inner - shown_width), outer))
            if pad:
                segments.append(Segment(padding, outer))
        remaining = max(0, self.size.width - sum(widths) - self._row_label_column_width)
        if self.cursor_type == "row":
            extend_style, _ = self._get_styles_to_render_cell(
                False, False, False, on_hover, on_cursor, self.show_cursor, self._show_hover_cursor, False, False
            )
            extend_style = row_style + extend_style
        else:
            extend_style = Style.from_color(row_style.color, row_style.bgcolor)
        extend_style += Style.from_meta({"row": row_index, "column": 0, "out_of_bounds": True})
        segments.append(Segment(" " * remaining, extend_style))
        return segments

    # -- styles --------------------------------------------------------------------------------------

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
        """The timer's tick: take what changed in the view, and go on with what earlier ticks left."""
        changes = self.view.take_changes() if self.view is not None else {}
        if changes:
            self.apply_changes(changes)
        elif self._waiting:
            self._apply_waiting()

    def apply_changes(self, changes: Mapping[str, PodRow | None]) -> None:
        """Apply uid -> row (None: gone) as a diff, in one batch: one render whatever the count.

        At most `FRAME_BUDGET` of work is done now (at least `MIN_CHUNK` changes); the rest is applied at
        the next ticks, in order, a newer change to a pod replacing its older one."""
        if not changes:
            return
        if not self.columns:  # not mounted yet: keep them for the first render
            for uid, row in changes.items():
                if row is None:
                    self.pods.pop(uid, None)
                else:
                    self.pods[uid] = row
            return
        self._waiting.update(changes)
        self.render_batches += 1
        self._apply_waiting()

    def _apply_waiting(self) -> None:
        waiting = self._waiting
        deadline = time.perf_counter() + FRAME_BUDGET
        applied = 0
        self._rows_to_repaint = set()
        try:
            with self.app.batch_update():
                self._removing = True  # the rows after removed ones are renumbered once, at the end
                try:
                    for uid in list(waiting):
                        self._apply_one(uid, waiting.pop(uid))
                        applied += 1
                        if applied >= MIN_CHUNK and time.perf_counter() >= deadline:
                            break
                finally:
                    self._removing = False
                    self._renumber_rows()
                self._update_subtitle()
                self._repaint_rows(self._rows_to_repaint)
        finally:
            self._rows_to_repaint = None
        if not waiting and self._dimensions_deferred:
            self._dimensions_deferred = False
            self._require_update_dimensions = True
            self.check_idle()
        if waiting and not self._continuing:
            # What is left goes on right after this frame is painted, not a whole tick later.
            self._continuing = True
            self.call_after_refresh(self._continue_waiting)

    def _continue_waiting(self) -> None:
        self._continuing = False
        if self._waiting and self.is_attached:
            self._apply_waiting()

    def _apply_one(self, uid: str, row: PodRow | None) -> None:
        old = self.pods.get(uid)
        if row is None:
            if old is not None:
                del self.pods[uid]
                self._count(old, -1)
                self._ages.pop(uid, None)
                try:
                    self.remove_row(uid)
                except RowDoesNotExist:
                    pass
            return
        self.pods[uid] = row
        if old is not None:
            self._count(old, -1)
        self._count(row, 1)
        if old is None or uid not in self.rows:
            cells = [self._cell(key, row) for key, _, _ in COLUMNS]
            self._ages[uid] = self._age(row)
            self.add_row(*cells, key=uid)
            if self._rows_to_repaint is not None:
                self._rows_to_repaint.add(len(self.rows) - 1)
            return
        if old == row:
            return
        for key, fields in _FIELDS.items():
            if any(getattr(old, f) != getattr(row, f) for f in fields):
                self.update_cell(uid, key, self._cell(key, row))

    def _count(self, row: PodRow, sign: int) -> None:
        if row.total and row.ready == row.total and row.status == "Running":
            self._ready += sign
        if row.phase == "Pending":
            self._pending += sign

    def set_rows(self, rows: Iterable[PodRow]) -> None:
        """Show exactly these rows (a full snapshot), still applied as a diff."""
        fresh = {row.uid: row for row in rows}
        changes: dict[str, PodRow | None] = {uid: None for uid in self.pods if uid not in fresh}
        changes.update({uid: None for uid in self._waiting if uid not in fresh})
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
        # Setting a border title repaints the whole table: only when the counts changed.
        total = len(self.pods)
        if not total:
            subtitle = "no pods yet"
        else:
            parts = [f"{total} pod{'s' if total != 1 else ''}", f"{self._ready} ready"]
            if self._pending:
                parts.append(f"{self._pending} pending")
            subtitle = " · ".join(parts)
        if subtitle != self._subtitle:
            self._subtitle = subtitle
            # Setting a border title repaints the whole widget; the counts live in the bottom border line.
            self._quiet = self.is_mounted and self.size.height > 0
            try:
                self.border_subtitle = subtitle
            finally:
                quiet, self._quiet = self._quiet, False
            if quiet:
                offset = self.content_offset
                outer = self.outer_size
                self.refresh(Region(-offset.x, outer.height - 1 - offset.y, outer.width, 1))

    # -- queries (tests, headless) -------------------------------------------------------------------

    def row_texts(self, uid: str) -> dict[str, str]:
        return {key: self.get_cell(uid, key).plain for key, _, _ in COLUMNS}
