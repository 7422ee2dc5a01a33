"""RowTable: the table every pane draws, rows replaced whole each interval and drawn cheaply.

Textual's DataTable renders each cell through Rich (a Padding in a Styled, line splitting
and cropping) and keys its render cache by a table-wide update counter, so one changed cell
redraws every visible cell that way: with 10,000 connections the TCP pane's ~40 visible
rows took 47-301 ms a frame to draw, the wait for the screen refresh included
(bench/NOTES.md). Here a row is one Strip built from its cells' plain text, padded to the
column widths: no Rich rendering unless a cell carries spans. The look and keys are DataTable's (header, zebra stripes always, row cursor, Enter to
select, a header click to sort); rows are identified by key, and the cursor stays on its
row's key when the rows change under it.

Cells are `str` or `rich.text.Text`. A str is drawn as it is (never parsed as markup),
aligned as its column says; a Text's style and justify are honoured, and a Text with spans
is rendered by Rich (slower, for the few panes that colour part of a cell). Plain strings
are the cheap case: the TCP pane's 200 rows change every interval at 10,000 connections,
and a Text per cell was a fifth of its update. Kernel-supplied strings must already be
inert: control characters escaped (nettop/panes/text.py). Panes hand over rows with a
function that formats one (set_rows(format=...)), called only for rows drawn or asked for.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple, Sequence

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

Cell = str | Text
PADDING = 1  # blank cells either side of every cell, as DataTable's cell_padding


class RowColumn(NamedTuple):
    key: str
    label: str
    justify: str = "left"  # for str cells: "left", "right" or "center"


class TableMessage(Message):
    """From a RowTable; `control` lets handlers pick the table with @on(..., "#id")."""

    def __init__(self, table: RowTable) -> None:
        super().__init__()
        self.table = table

    @property
    def control(self) -> RowTable:
        return self.table


class RowTable(ScrollView, can_focus=True):
    """Rows keyed by string, replaced with set_rows(); the header stays on top when scrolling."""

    BINDINGS = [
        Binding("enter", "select_cursor", "Select", show=False),
        Binding("up", "cursor_up", "Cursor up", show=False),
        Binding("down", "cursor_down", "Cursor down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home,ctrl+home", "first_row", "Top", show=False),
        Binding("end,ctrl+end", "last_row", "Bottom", show=False),
    ]

    COMPONENT_CLASSES = {"rowtable--header", "rowtable--cursor", "rowtable--even-row", "rowtable--odd-row"}

    class RowHighlighted(TableMessage):
        """The cursor is on another row (or the rows changed under it)."""

        def __init__(self, table: RowTable, row_key: str) -> None:
            super().__init__(table)
            self.row_key = row_key

    class RowSelected(RowHighlighted):
        """Enter, or a click on the row under the cursor."""

    class HeaderSelected(TableMessage):
        def __init__(self, table: RowTable, column_key: str) -> None:
            super().__init__(table)
            self.column_key = column_key

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.columns: list[RowColumn] = []
        self._widths: list[int] = []  # content widths; they grow with the rows, clear() resets them
        self._keys: list[str] = []
        self._rows: Mapping[str, Any] = {}  # key -> row, made into cells by _format when drawn
        self._format: Callable[[Any], Sequence[Cell]] = tuple
        self._cells: dict[str, tuple[Cell, ...]] = {}  # the rows formatted so far
        self._index: dict[str, int] = {}
        self.cursor_row = 0
        self._highlighted: str | None = None
        self._styles: dict[str, Style] = {}
        self._base_style = Style()

    # -- content -----------------------------------------------------------

    def add_column(self, label: str, key: str, justify: str = "left") -> None:
        self.columns.append(RowColumn(key, label, justify))
        self._widths.append(cell_len(label))
        self._resize()

    def clear(self, columns: bool = False) -> None:
        """Remove every row (and the columns too, if asked); column widths start again."""
        self._keys, self._cells, self._index, self._rows = [], {}, {}, {}
        if columns:
            self.columns, self._widths = [], []
        else:
            self._widths = [cell_len(c.label) for c in self.columns]
        self.cursor_row = 0
        self._resize()

    def set_rows(self, rows: Mapping[str, Any], keep: str | None = None,
                 format: Callable[[Any], Sequence[Cell]] = tuple) -> None:
        """Show `rows` in order: key -> a row that format() turns into cells (by default the
        row is its cells) when it is first drawn or asked for. The cursor goes to `keep`, else
        stays on the key it was on, else on its row number (clamped).

        Only the rows on screen are formatted, and column widths grow from those (they never
        shrink: a row scrolled into view may widen a column). The TCP pane keeps 200 rows and
        shows a screenful; formatting and measuring all 200 each interval took ~22 us a row
        here, ~4.5 ms a frame at 10,000 connections."""
        keep = keep if keep is not None else self.cursor_key
        self._keys = list(rows)
        self._index = {key: i for i, key in enumerate(self._keys)}
        self._rows, self._format, self._cells = dict(rows), format, {}  # a copy: the caller may reuse its dict
        self.cursor_row = self._index.get(keep, min(self.cursor_row, max(0, len(self._keys) - 1)))
        self._format_shown()
        self._resize()
        self._cursor_moved()

    def _cells_of(self, key: str) -> tuple[Cell, ...]:
        cells = self._cells.get(key)
        if cells is None:
            cells = self._cells[key] = tuple(self._format(self._rows[key]))
            widths = self._widths
            for i, cell in enumerate(cells[: len(widths)]):
                width = _cell_width(cell)
                if width > widths[i]:
                    widths[i] = width
        return cells

    def _format_shown(self) -> bool:
        """Format the rows on screen (all of them before the table has a size); True if a
        column grew."""
        if not self._keys:
            return False
        before = list(self._widths)
        height = self.scrollable_content_region.height
        top = round(self.scroll_y)
        shown = self._keys[top: top + height] if height > 0 else self._keys
        for key in shown:
            self._cells_of(key)
        return self._widths != before

    @property
    def row_count(self) -> int:
        return len(self._keys)

    @property
    def cursor_key(self) -> str | None:
        """The key of the row under the cursor, or None for an empty table."""
        return self._keys[self.cursor_row] if self._keys else None

    def get_row_at(self, index: int) -> tuple[Cell, ...]:
        return self._cells_of(self._keys[index])

    def get_row_index(self, key: str) -> int:
        return self._index[key]

    def column_width(self, key: str) -> int:
        return self._widths[[c.key for c in self.columns].index(key)]

    # -- cursor ------------------------------------------------------------

    def move_cursor(self, row: int) -> None:
        if not self._keys:
            return
        self.cursor_row = max(0, min(row, len(self._keys) - 1))
        self._scroll_to_cursor()
        self.refresh()
        self._cursor_moved()

    def _cursor_moved(self) -> None:
        key = self.cursor_key
        if key is not None and key != self._highlighted:
            self._highlighted = key
            self.post_message(self.RowHighlighted(self, key))

    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def _scroll_to_cursor(self) -> None:
        top = round(self.scroll_y)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False)
        elif self.cursor_row >= top + self._page():
            self.scroll_to(y=self.cursor_row - self._page() + 1, animate=False)

    def action_cursor_up(self) -> None:
        self.move_cursor(self.cursor_row - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor_row + 1)

    def action_page_up(self) -> None:
        self.move_cursor(self.cursor_row - self._page())

    def action_page_down(self) -> None:
        self.move_cursor(self.cursor_row + self._page())

    def action_first_row(self) -> None:
        self.move_cursor(0)

    def action_last_row(self) -> None:
        self.move_cursor(len(self._keys) - 1)

    def action_select_cursor(self) -> None:
        if self.cursor_key is not None:
            self.post_message(self.RowSelected(self, self.cursor_key))

    async def _on_click(self, event: events.Click) -> None:
        """A header click asks to sort; a row click moves the cursor there, and selects
        the row when the cursor was already on it (as DataTable does)."""
        offset = event.get_content_offset(self)
        if offset is None:
            return
        event.stop()
        if offset.y == 0:
            column = self._column_at(offset.x + round(self.scroll_x))
            if column is not None:
                self.post_message(self.HeaderSelected(self, self.columns[column].key))
            return
        row = round(self.scroll_y) + offset.y - 1
        if 0 <= row < len(self._keys):
            again = row == self.cursor_row
            self.move_cursor(row)
            if again:
                self.action_select_cursor()

    def _column_at(self, x: int) -> int | None:
        left = 0
        for index, width in enumerate(self._widths):
            left += width + 2 * PADDING
            if x < left:
                return index
        return None

    # -- drawing -----------------------------------------------------------

    def _resize(self) -> None:
        """The virtual size follows rows and widths (a reactive: only a change lays out again)."""
        self.virtual_size = Size(sum(self._widths) + 2 * PADDING * len(self._widths), len(self._keys) + 1)
        self.refresh()

    def render_lines(self, crop):
        """The styles once per redraw, not once per line (each is a walk up the DOM). Rows
        scrolled into view are formatted first, so every line of a redraw has the same widths."""
        if self._format_shown():
            self._resize()
        self._base_style = self.rich_style
        self._styles = {name: self.get_component_rich_style(name) for name in self.COMPONENT_CLASSES}
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        base = self._base_style
        width = self.scrollable_content_region.width
        if y == 0:
            strip = self._header_strip(base + self._styles.get("rowtable--header", Style()))
        else:
            index = scroll_y + y - 1
            if index >= len(self._keys):
                return Strip.blank(width, base)
            strip = self._row_strip(index, base)
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    def _row_style(self, index: int, base: Style) -> Style:
        styles = self._styles
        if index == self.cursor_row:
            name = "rowtable--cursor"
        elif index % 2:
            name = "rowtable--even-row"  # DataTable's naming: its first row is "odd"
        else:
            name = "rowtable--odd-row"
        return base + styles.get(name, Style())

    def _header_strip(self, style: Style) -> Strip:
        segments = []
        for column, width in zip(self.columns, self._widths):
            segments.append(Segment(_padded(column.label, width, "left"), style))
        return Strip(segments)

    def _row_strip(self, index: int, base: Style) -> Strip:
        style = self._row_style(index, base)
        segments: list[Segment] = []
        for cell, width, column in zip(self._cells_of(self._keys[index]), self._widths, self.columns):
            if isinstance(cell, str):
                segments.append(Segment(_padded(cell, width, column.justify), style))
            elif isinstance(cell, Text):
                if cell.spans or "\n" in cell.plain:
                    segments.extend(self._rich_cell(cell, width, style))
                    continue
                cell_style = style
                if cell.style:  # Style.parse keeps its own cache
                    cell_style += Style.parse(cell.style) if isinstance(cell.style, str) else cell.style
                segments.append(Segment(_padded(cell.plain, width, cell.justify), cell_style))
            else:
                segments.append(Segment(_padded(str(cell), width, column.justify), style))
        return Strip(segments)

    def _rich_cell(self, cell: Text, width: int, style: Style) -> list[Segment]:
        """A cell with spans, through Rich: cropped, aligned, and padded like the others."""
        text = cell.copy()
        text.end = ""
        text.truncate(width)
        text.align(cell.justify if cell.justify in ("left", "center", "right") else "left", width)
        text.pad(PADDING)
        segments = list(text.render(self.app.console))
        return list(Segment.apply_style(Segment.adjust_line_length(segments, width + 2 * PADDING), style))


def _cell_width(cell: Cell) -> int:
    """A cell's width on screen: its widest line."""
    text = cell if isinstance(cell, str) else cell.plain if isinstance(cell, Text) else str(cell)
    if "\n" in text:
        return max(map(cell_len, text.splitlines()), default=0)
    return cell_len(text)


def _padded(text: str, width: int, justify: str | None) -> str:
    """`text` cut or padded to `width` cells, aligned, with the cell padding either side."""
    length = cell_len(text)
    if length > width:
        text, length = set_cell_size(text, width), width
    gap = width - length
    if justify == "right":
        text = " " * gap + text
    elif justify == "center":
        text = " " * (gap // 2) + text + " " * (gap - gap // 2)
    else:
        text = text + " " * gap
    return " " * PADDING + text + " " * PADDING

