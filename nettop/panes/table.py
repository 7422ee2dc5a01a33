"""Helpers shared by table panes: rows kept by key, the cursor kept on its row, and
bounded since-start totals."""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Iterable, Mapping, TypeVar

from textual.widgets import DataTable

Row = TypeVar("Row")


def cursor_key(table: DataTable) -> str | None:
    """The key of the row under the cursor, or None for an empty table."""
    if table.row_count == 0:
        return None
    try:
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
    except Exception:
        return None
    return row_key.value


def sync_table(table: DataTable, wanted: Mapping[str, Row], cells: Callable[[Row], tuple], keep: str | None) -> None:
    """Update cells in place when the row order is unchanged; otherwise rebuild (DataTable
    cannot reorder rows by key) and put the cursor back on `keep`."""
    columns = [c.value for c in table.columns]
    if [k.value for k in table.rows] == list(wanted):
        for key, row in wanted.items():
            for column, value in zip(columns, cells(row)):
                table.update_cell(key, column, value)
    else:
        table.clear()
        for key, row in wanted.items():
            table.add_row(*cells(row), key=key)
    if keep in wanted and cursor_key(table) != keep:
        table.move_cursor(row=table.get_row_index(keep), animate=False)


class Totals:
    """Rows summed since start, keyed by `row.key` and combined with `row.merge()`;
    the least recently active are forgotten first, so memory stays bounded."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.rows: OrderedDict[object, object] = OrderedDict()
        self.forgotten = 0

    def add(self, rows: Iterable) -> None:
        for row in rows:
            previous = self.rows.pop(row.key, None)
            self.rows[row.key] = previous.merge(row) if previous is not None else row
        while len(self.rows) > self.capacity:
            self.rows.popitem(last=False)
            self.forgotten += 1

    def values(self) -> tuple:
        return tuple(self.rows.values())
