"""The table every pane shares: top-of-sort selection, and RowTable's drawing, cursor and events."""

from __future__ import annotations

import random
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

from rich.text import Text
from textual.app import App, ComposeResult
from textual.geometry import Region

import nettop.app
from nettop.panes.row_table import RowTable
from nettop.panes.table import Column, sorted_rows, sync_table


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
    CSS_PATH = str(Path(nettop.app.__file__).with_name("app.tcss"))  # RowTable's look is the app's

    def __init__(self) -> None:
        super().__init__()
        self.messages: list = []

    def compose(self) -> ComposeResult:
        table = RowTable(id="table")
        table.add_column("NAME", key=NAME)
        table.add_column("RATE", key=RATE)
        yield table

    def on_row_table_row_highlighted(self, event: RowTable.RowHighlighted) -> None:
        self.messages.append(("highlighted", event.row_key))

    def on_row_table_row_selected(self, event: RowTable.RowSelected) -> None:
        self.messages.append(("selected", event.row_key))

    def on_row_table_header_selected(self, event: RowTable.HeaderSelected) -> None:
        self.messages.append(("header", event.column_key))


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


def shown(table: RowTable) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def screen_lines(table: RowTable) -> list[str]:
    """The table as drawn: each line's characters."""
    strips = table.render_lines(Region(0, 0, table.size.width, table.size.height))
    return ["".join(segment.text for segment in strip) for strip in strips]


def line_styles(table: RowTable, y: int) -> set:
    strip = table.render_lines(Region(0, y, table.size.width, 1))[0]
    return {segment.style for segment in strip if segment.text.strip()}


@asynccontextmanager
async def table_showing(*rows: tuple[str, ...], size=(40, 8)) -> AsyncIterator[tuple[RowTable, Any]]:
    """A table synced to `rows` once and drawn: (table, pilot)."""
    app = TableApp()
    async with app.run_test(size=size) as pilot:
        table = app.query_one(RowTable)
        sync_table(table, wanted(*rows), cells)
        table.focus()
        await pilot.pause()
        yield table, pilot


async def test_rows_are_drawn_padded_to_their_columns_with_the_header_on_top():
    async with table_showing(("a", "1 B/s"), ("bb", "22 B/s"), ("c", "3 B/s", "red")) as (table, _):
        lines = screen_lines(table)
        assert lines[:4] == [
            " NAME  RATE  ".ljust(40),
            " a      1 B/s ".ljust(40),  # RATE right-justified, as its Text asks
            " bb    22 B/s ".ljust(40),
            " c      3 B/s ".ljust(40),
        ]
        assert lines[4:] == [" " * 40] * 4
        header, cursor, plain, striped = (line_styles(table, y) for y in range(4))
        assert all(style.bold for style in header)
        assert cursor != plain != striped  # the cursor's row and the zebra stripes stand out
        assert len({style.color for style in line_styles(table, 3)}) == 2  # "red" on RATE only (as the theme draws red)


async def test_plain_string_cells_align_as_their_column_says_and_are_never_markup():
    async with table_showing(("a", "1")) as (table, pilot):
        table.clear(columns=True)
        table.add_column("NAME", key=NAME)
        table.add_column("RATE", key=RATE, justify="right")
        table.set_rows({"x": ("[b]x[/b]", "1 B/s"), "y": ("y", "22 B/s")})
        await pilot.pause()
        assert screen_lines(table)[:3] == [
            " NAME      RATE   ".ljust(40),
            " [b]x[/b]   1 B/s ".ljust(40),
            " y         22 B/s ".ljust(40),
        ]


async def test_the_cursor_follows_its_row_when_rows_reorder_and_stays_put_when_it_leaves():
    async with table_showing(("a", "1"), ("b", "2"), ("c", "3")) as (table, pilot):
        table.move_cursor(1)  # on "b"
        sync_table(table, wanted(("c", "3"), ("a", "1"), ("b", "5"), ("d", "4")), cells)
        assert shown(table) == [["c", "3"], ["a", "1"], ["b", "5"], ["d", "4"]]
        assert table.cursor_key == "b" and table.cursor_row == 2
        sync_table(table, wanted(("c", "3"), ("a", "1"), ("d", "4")), cells)
        assert table.cursor_key == "d" and table.cursor_row == 2  # "b" left: the same row number
        sync_table(table, wanted(("c", "3"), ("a", "1"), ("d", "4")), cells, keep="a")
        assert table.cursor_key == "a"
        sync_table(table, wanted(("a", "1")), cells)
        assert table.cursor_row == 0
        sync_table(table, {}, cells)
        assert table.cursor_key is None and screen_lines(table)[1].strip() == ""
        await pilot.pause()


async def test_keys_move_the_cursor_enter_selects_and_highlights_are_posted_once_per_row():
    async with table_showing(*[(f"r{i:02d}", str(i)) for i in range(20)]) as (table, pilot):
        app = table.app
        app.messages.clear()
        await pilot.press("down", "down", "up", "enter")
        await pilot.press("end")
        assert table.cursor_key == "r19"
        assert round(table.scroll_y) == 20 + 1 - 8  # scrolled so the last row shows under the header
        assert screen_lines(table)[0].startswith(" NAME")  # the header stays on top
        assert screen_lines(table)[-1].startswith(" r19")
        await pilot.press("home", "pagedown")
        assert table.cursor_row == 7  # a page is the rows under the header
        sync_table(table, wanted(*[(f"r{i:02d}", str(i + 1)) for i in range(20)]), cells)
        await pilot.pause()
        assert app.messages == [("highlighted", "r01"), ("highlighted", "r02"), ("highlighted", "r01"),
                                ("selected", "r01"), ("highlighted", "r19"), ("highlighted", "r00"),
                                ("highlighted", "r07")]  # new values on the same row: no message


async def test_clicks_sort_by_the_header_move_the_cursor_and_select_the_row_clicked_twice():
    async with table_showing(("a", "1"), ("b", "2")) as (table, pilot):
        app = table.app
        app.messages.clear()
        await pilot.click(RowTable, offset=(8, 0))  # the RATE header: NAME's column is 6 cells wide
        await pilot.click(RowTable, offset=(2, 2))  # row "b"
        await pilot.click(RowTable, offset=(2, 2))
        assert app.messages == [("header", RATE), ("highlighted", "b"), ("selected", "b")]


async def test_columns_widen_for_wider_values_and_start_again_when_cleared():
    async with table_showing(("a", "1 B/s")) as (table, _):
        narrow = table.column_width(RATE)
        sync_table(table, wanted(("a", "1000.0 KiB/s")), cells)
        assert table.column_width(RATE) == len("1000.0 KiB/s") > narrow
        sync_table(table, wanted(("a", "1 B/s")), cells)
        assert table.column_width(RATE) == len("1000.0 KiB/s")  # no jitter from one interval to the next
        table.clear()
        sync_table(table, wanted(("a", "1 B/s")), cells)
        assert table.column_width(RATE) == len("RATE") + 1


async def test_a_cell_with_spans_is_drawn_through_rich_in_its_column():
    async with table_showing(("a", "1")) as (table, _):
        coloured = Text.assemble(("ab", "bold"), "c")
        table.set_rows({"x": (coloured, Text("9", justify="right")), "y": ("long name here", "1")})
        lines = screen_lines(table)
        # NAME is as wide as its widest cell (14), RATE as its header (4): each padded by one
        assert lines[1].startswith(" abc" + " " * 11 + " " + "    9 ")
        assert lines[2].startswith(" long name here " + " 1    ")
        assert any(style.bold for style in line_styles(table, 1))


async def test_only_rows_on_screen_are_formatted_and_a_wider_row_scrolled_into_view_widens_its_column():
    """The TCP pane keeps 200 rows and shows a screenful: the rest are formatted when drawn.
    Every line of one redraw has the same widths, the header's included."""
    formatted: list[str] = []

    def counting(row: Row) -> tuple[Text, Text]:
        formatted.append(row.name)
        return cells(row)

    rows = [(f"r{i:03d}", f"{i} B/s") for i in range(199)] + [("r199", "123456789 B/s")]
    async with table_showing(("a", "1")) as (table, pilot):
        sync_table(table, wanted(*rows), counting)
        await pilot.pause()
        assert formatted == [f"r{i:03d}" for i in range(8)]  # the 8 lines the table has (7 under the header)
        assert table.column_width(RATE) == len("7 B/s")
        await pilot.press("end")
        await pilot.pause()
        lines = screen_lines(table)
        assert "r199" in formatted and len(formatted) < 20
        assert table.column_width(RATE) == len("123456789 B/s")
        assert lines[0] == " NAME  RATE".ljust(6 + 1 + len("123456789 B/s") + 2).ljust(40)
        assert lines[-1].startswith(" r199  123456789 B/s ")
        assert lines[-2].startswith(" r198        198 B/s ")  # drawn at the new width too
        assert shown(table)[100] == ["r100", "100 B/s"]  # asked for, it is formatted then
