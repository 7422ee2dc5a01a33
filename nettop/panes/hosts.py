"""The host view: TCP traffic per remote host (or local process, or remote port).

iftop's first question, "which remote host?", answered from the TCP pane's connections:
connections, RX/TX rate, the last minute as a sparkline, the processes involved and the
retransmits to that host. `b` switches the grouping, `n` turns reverse DNS names on/off,
Enter opens the sockets of the row (nettop/panes/socket_detail.py).

A group stays listed for a minute after its last traffic, so it does not vanish between
bursts. Names are looked up in a background thread (nettop/panes/resolver.py); they are
off in headless runs (tests, screenshots) so output does not depend on the resolver.
"""

from __future__ import annotations

from dataclasses import replace

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.reactive import reactive
from textual.widgets import Static

from nettop.model.frame import Frame
from nettop.panes.drilldown import (
    GROUPING_TITLES,
    GROUPINGS,
    GroupRow,
    Selector,
    TrafficHistory,
    build_groups,
    matches_filter,
    recent_frames,
    record_groups,
)
from nettop.panes.fixed_line import FixedLine
from nettop.panes.resolver import Resolver
from nettop.panes.row_table import RowTable
from nettop.panes.socket_detail import open_detail
from nettop.panes.table import Column, SortableTablePane, column_named, sync_table, top_rows
from nettop.panes.text import human_rate, inert, rate


COLUMNS = (
    Column("group", "HOST", lambda r: r.key, numeric=False),
    Column("name", "NAME", lambda r: r.label.lower(), numeric=False),
    Column("conns", "CONNS", lambda r: r.connections),
    Column("rx", "RX/s", lambda r: r.rx_bytes),
    Column("tx", "TX/s", lambda r: r.tx_bytes),
    Column("total", "TOTAL/s", lambda r: r.total_bytes),
    Column("spark", "LAST 1m", lambda r: r.total_bytes),
    Column("retx", "RETX 1m", lambda r: r.retransmits),
    Column("who", "PROCESSES", lambda r: sorted(r.processes.values()), numeric=False),
)
COLUMN_KEYS = tuple(c.key for c in COLUMNS)
FIRST_LABEL = {"host": "HOST", "process": "PID", "port": "RPORT"}
LAST_LABEL = {"host": "PROCESSES", "process": "REMOTE HOSTS", "port": "PROCESSES"}
DEFAULT_SORT = "total"


def who(row: GroupRow, grouping: str, limit: int = 4) -> str:
    """The processes of a host or port group, or the hosts of a process group."""
    if grouping == "process":
        items = sorted(row.hosts)
    else:
        items = [f"{comm}({pid})" for pid, comm in sorted(row.processes.items(), key=lambda p: (p[1], p[0]))]
    more = f" +{len(items) - limit}" if len(items) > limit else ""
    return " ".join(items[:limit]) + more


class HostsPane(SortableTablePane):
    """Fed whole frames (PaneSpec.whole_frame): it joins tcp, retransmits and sockets."""

    BINDINGS = [
        Binding("b", "cycle_grouping", "group by"),
        Binding("n", "toggle_names", "names", show=False),
    ]

    COLUMNS = COLUMNS
    DEFAULT_SORT = DEFAULT_SORT

    grouping: reactive[str] = reactive("host")

    def __init__(self, resolve_names: bool | None = None, resolver: Resolver | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.frame: Frame | None = None
        self.groups: dict[str, GroupRow] = {}  # the shown frame's groups, in the shown grouping
        self.last_rows: dict[tuple[str, str], GroupRow] = {}  # so quiet groups keep their labels
        self.group_history = TrafficHistory()  # the shown grouping's groups
        self._grouped: tuple[Frame, str, dict[str, GroupRow]] | None = None
        self._observed_up_to = 0.0  # the time of the latest frame observed, with the tab open or not
        self._behind = False  # frames were observed while the tab was closed
        self.resolve_names = resolve_names
        self.resolver = resolver

    def compose(self) -> ComposeResult:
        yield FixedLine("no data yet", id="hosts-summary", classes="pane-summary")
        yield RowTable(id="hosts-table")

    def on_mount(self) -> None:
        if self.resolve_names is None:
            self.resolve_names = not self.app.is_headless
        self._set_columns()

    def on_show(self) -> None:
        """Switching to this tab by its number key: arrows and Enter should work at once."""
        self.query_one("#hosts-table", RowTable).focus()

    # -- data --------------------------------------------------------------

    def observe(self, frame: Frame | None, interval: float) -> None:
        """Every frame while this tab is open (the app calls this while paused too): the
        histories, of the grouping shown. Another grouping's last minute, and this one's
        while the tab was closed, are rebuilt from the app's timeline when they are shown:
        grouping 16,000 connections took ~14 ms a frame, for a tab nobody was looking at."""
        if frame is None:
            return
        self._observed_up_to = frame.time
        if not self._tab_open():
            self._behind = True
            return
        rows = self._groups(frame)
        self._note_rows(rows)
        self.group_history.advance(frame.time)
        record_groups(frame, self.grouping, rows, self.group_history)
        for key in [k for k in self.last_rows if k not in self.group_history]:
            del self.last_rows[key]

    def _regroup_history(self) -> None:
        """The grouping changed: its groups' last minute from the frames the app still holds."""
        history = self.group_history
        history.forget(k for k in history.keys() if k[0] == self.grouping)
        for key in [k for k in self.last_rows if k[0] == self.grouping]:
            del self.last_rows[key]
        timeline = getattr(self.app, "timeline", None)
        if timeline is None:
            return
        for frame in recent_frames(timeline, history.now, history.window):
            rows = build_groups(frame, self.grouping)
            record_groups(frame, self.grouping, rows, history)
            self._note_rows(rows)

    def _tab_open(self) -> bool:
        active_pane = getattr(self.app, "active_pane", None)  # None: a test app hosting the pane alone
        return active_pane is None or active_pane() is self

    def _catch_up(self) -> None:
        """The tab opens: its grouping's last minute, up to the latest frame observed."""
        self._behind = False
        self.group_history.advance(self._observed_up_to)
        self._regroup_history()

    def _note_rows(self, rows: dict[str, GroupRow]) -> None:
        """The latest row of each group, so a group gone quiet keeps its label for a minute."""
        for key, row in rows.items():
            self.last_rows[(self.grouping, key)] = row

    def show(self, frame: Frame | None, interval: float) -> None:
        if frame is None:
            return
        if self._behind:
            self._catch_up()
        self.frame = frame
        self.groups = self._groups(frame)
        self.refresh_rows()

    def _groups(self, frame: Frame) -> dict[str, GroupRow]:
        """The shown grouping, grouped once per frame, though both observe() and show() need it."""
        if self._grouped is None or self._grouped[0] is not frame or self._grouped[1] != self.grouping:
            self._grouped = (frame, self.grouping, build_groups(frame, self.grouping))
        return self._grouped[2]

    def reset_history(self) -> None:
        """The app jumped in time: sparklines restart rather than mix two moments."""
        self.group_history.clear()
        self.last_rows.clear()

    def rows(self) -> list[GroupRow]:
        """This frame's groups plus those seen in the last minute (at zero), filtered, in no
        order: all of them (the summary adds them up; the table draws the top of the sort)."""
        current = self.groups
        rows = dict(current)
        for grouping, key in self.last_rows:
            if grouping == self.grouping and key not in rows:
                quiet = self.last_rows[(grouping, key)]
                rows[key] = GroupRow(quiet.key, quiet.label, 0, 0, 0, dict(quiet.processes), set(quiet.hosts))
        if not self.filter_text.strip():
            return list(rows.values())
        return [r for r in rows.values() if matches_filter(r, self.filter_text)]

    def sort_column(self) -> Column:
        """The column sorted by; RETX sorts by the last minute it shows, not by this interval."""
        column = column_named(COLUMNS, self.sort_by)
        if column.key != "retx":
            return column
        return replace(column, sort_key=lambda r: self.group_history.retransmits((self.grouping, r.key)))

    def name_of(self, row: GroupRow) -> str:
        if self.grouping != "host" or not self.resolve_names:
            return ""
        if self.resolver is None:
            self.resolver = Resolver()
        return self.resolver.name(row.key) or ""

    def cells(self, row: GroupRow) -> tuple:
        interval = self.frame.interval if self.frame else 1.0
        key = (self.grouping, row.key)
        if self.grouping == "host":
            first, name = inert(row.key), inert(self.name_of(row))
        elif self.grouping == "process":
            first, name = Text(row.key, justify="right"), inert(row.label.split(" ", 1)[-1])
        else:
            first, name = Text(row.key, justify="right"), inert(row.label.partition(" ")[2].strip("()"))
        return (
            first,
            name,
            Text(str(row.connections), justify="right"),
            Text(human_rate(rate(row.rx_bytes, interval)), justify="right"),
            Text(human_rate(rate(row.tx_bytes, interval)), justify="right"),
            Text(human_rate(rate(row.total_bytes, interval)), justify="right"),
            Text(self.group_history.spark(key)),
            Text(str(self.group_history.retransmits(key)), justify="right"),
            inert(who(row, self.grouping)),
        )

    # -- table -------------------------------------------------------------

    def _set_columns(self) -> None:
        table = self.query_one("#hosts-table", RowTable)
        table.clear(columns=True)
        for column in COLUMNS:
            label = column.label
            if column.key == "group":
                label = FIRST_LABEL[self.grouping]
            elif column.key == "who":
                label = LAST_LABEL[self.grouping]
            elif column.key == "name" and self.grouping == "port":
                label = "SERVICE"
            elif column.key == "name" and self.grouping == "process":
                label = "COMM"
            table.add_column(label, key=column.key)

    def refresh_rows(self) -> None:
        if not self.is_mounted:
            return
        table = self.query_one("#hosts-table", RowTable)
        rows = self.rows()
        top = top_rows(rows, self.sort_column(), self.sort_reverse, None)
        with self.app.batch_update():
            sync_table(table, {r.key: r for r in top}, self.cells)
        self.query_one("#hosts-summary", Static).update(self.summary(rows))

    def summary(self, rows: list[GroupRow]) -> str:
        if self.frame is None:
            return "no data yet"
        interval = self.frame.interval
        rx = sum(r.rx_bytes for r in rows)
        tx = sum(r.tx_bytes for r in rows)
        text = (f"{len(rows)} {GROUPING_TITLES[self.grouping]}s  RX {human_rate(rate(rx, interval))}  "
                f"TX {human_rate(rate(tx, interval))}  (b: group by, Enter: sockets)")
        if self.frame.panes.get("retransmits") is None:
            text += "  retransmits from tcp_info"
        return text

    def selected_key(self) -> str | None:
        return self.query_one("#hosts-table", RowTable).cursor_key

    def watch_grouping(self) -> None:
        if self.is_mounted:
            self._regroup_history()
            if self.frame is not None:
                self.groups = self._groups(self.frame)
            self._set_columns()
            self.refresh_rows()

    # -- keys --------------------------------------------------------------

    def action_cycle_grouping(self) -> None:
        self.grouping = GROUPINGS[(GROUPINGS.index(self.grouping) + 1) % len(GROUPINGS)]

    def action_toggle_names(self) -> None:
        self.resolve_names = not self.resolve_names
        self.refresh_rows()

    def on_row_table_row_selected(self, event: RowTable.RowSelected) -> None:
        event.stop()
        key = event.row_key
        row = self.groups.get(key) or self.last_rows.get((self.grouping, key))
        if row is None:
            return
        self.open_detail(Selector(self.grouping, key, row.label))

    def open_detail(self, selector: Selector) -> None:
        names = {}
        if selector.grouping == "host" and self.resolve_names and self.resolver is not None:
            names = {selector.key: self.resolver.name(selector.key) or ""}
        open_detail(self.app, selector, names, fallback=self.frame)
