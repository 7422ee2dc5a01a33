"""The table helpers every pane shares: top-of-sort selection and the changed-cells sync."""

from __future__ import annotations

import random
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, AsyncIterator

from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import DataTable

from nettop.panes.table import Column, cursor_key, same_cell, sorted_rows, sync_table


@dataclass(frozen=True)
class Item:
    key: tuple
    value: int


COLUMNS = (Column("value", "VALUE", lambda item: item.value),)


def full_sort(items, reverse, limit):
    """What sorted_rows() promised before it cut first: two stable sorts of every row."""
    ordered = sorted(items, key=lambda item: item.key)
    ordered.sort(key=lambda item: item.value, reverse=reverse)
    return ordered[:limit]


def test_sorted_rows_draws_the_same_top_rows_as_sorting_every_row():
    rng = random.Random(7)
    # few distinct values: thousands of ties, as idle connections give, cut at the limit
    values = (0, 0, 0, 64, 128, 128, 4096)
    items = [Item((rng.randrange(50), rng.randrange(1000)), rng.choice(values)) for _ in range(3000)]
    for reverse in (True, False):
        for limit in (1, 7, 200, 2999, 3000, 5000):
            assert sorted_rows(items, COLUMNS, "value", reverse, None, limit) == full_sort(items, reverse, limit)
    busy = lambda item: item.value > 0  # noqa: E731
    assert sorted_rows(items, COLUMNS, "value", True, busy, 50) == full_sort(filter(busy, items), True, 50)


NAME, RATE = "name", "rate"


class TableApp(App):
    def compose(self) -> ComposeResult:
        table = DataTable(cursor_type="row")
        table.add_column("NAME", key=NAME)
        table.add_column("RATE", key=RATE)
        yield table


@dataclass(frozen=True)
class Row:
    name: str
    rate: str
    style: str = ""


def cells(row: Row) -> tuple[Text, Text]:
    return Text(row.name), Text(row.rate, style=row.style, justify="right")


def wanted(*rows: tuple[str, ...]) -> dict[str, Row]:
    """Rows keyed by name, from (name, rate) or (name, rate, style)."""
    return {fields[0]: Row(*fields) for fields in rows}


def shown(table: DataTable) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def count_calls(table: DataTable, method: str) -> list:
    """Record the calls sync_table() makes to one DataTable method, still calling it."""
    calls = []
    original = getattr(table, method)

    def recording(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    setattr(table, method, recording)
    return calls


@asynccontextmanager
async def table_showing(*rows: tuple[str, ...]) -> AsyncIterator[tuple[DataTable, Any]]:
    """A table synced to `rows` once and drawn: (table, pilot)."""
    app = TableApp()
    async with app.run_test() as pilot:
        table = app.query_one(DataTable)
        sync_table(table, wanted(*rows), cells, None)
        await pilot.pause()
        yield table, pilot


async def test_sync_writes_only_the_cells_that_changed():
    async with table_showing(("a", "1 B/s"), ("b", "2 B/s"), ("c", "3 B/s")) as (table, _):
        writes, clears, sorts = (count_calls(table, m) for m in ("update_cell", "clear", "sort"))

        sync_table(table, wanted(("a", "1 B/s"), ("b", "2 B/s"), ("c", "3 B/s")), cells, cursor_key(table))
        assert writes == [] and clears == [] and sorts == []  # nothing changed: nothing redrawn

        sync_table(table, wanted(("a", "1 B/s"), ("b", "9 B/s"), ("c", "3 B/s")), cells, cursor_key(table))
        assert [(row, column) for row, column, _ in writes] == [("b", RATE)]

        writes.clear()  # same characters, another style: Text's == would call them equal
        sync_table(table, wanted(("a", "1 B/s"), ("b", "9 B/s", "red"), ("c", "3 B/s")), cells, cursor_key(table))
        assert [(row, column) for row, column, _ in writes] == [("b", RATE)]
        assert table.get_cell("b", RATE).style == "red" and clears == []
        assert shown(table) == [["a", "1 B/s"], ["b", "9 B/s"], ["c", "3 B/s"]]


async def test_sync_reorders_kept_rows_and_rebuilds_when_a_row_leaves():
    async with table_showing(("a", "1"), ("b", "2"), ("c", "3")) as (table, _):
        table.move_cursor(row=1)  # on "b"
        writes, clears = count_calls(table, "update_cell"), count_calls(table, "clear")

        sync_table(table, wanted(("c", "3"), ("a", "1"), ("b", "5"), ("d", "4")), cells, cursor_key(table))
        assert shown(table) == [["c", "3"], ["a", "1"], ["b", "5"], ["d", "4"]]
        assert clears == [] and [(row, column) for row, column, _ in writes] == [("b", RATE)]
        assert cursor_key(table) == "b"  # the cursor follows its row

        sync_table(table, wanted(("b", "5"), ("d", "4")), cells, cursor_key(table))
        assert shown(table) == [["b", "5"], ["d", "4"]] and len(clears) == 1
        assert cursor_key(table) == "b"


async def test_a_wider_value_widens_its_column_as_a_new_row_would():
    async with table_showing(("a", "1 B/s")) as (table, pilot):
        narrow = table.columns[RATE].content_width
        sync_table(table, wanted(("a", "1000.0 KiB/s")), cells, cursor_key(table))
        await pilot.pause()
        assert table.columns[RATE].content_width == len("1000.0 KiB/s") > narrow


def test_same_cell_compares_what_a_cell_draws():
    assert same_cell(Text("x", justify="right"), Text("x", justify="right"))
    assert not same_cell(Text("x"), Text("x", justify="right"))
    assert not same_cell(Text("x"), Text("x", style="bold"))
    assert not same_cell(Text("x"), "x") and same_cell("x", "x") and not same_cell(1, 1.0)
