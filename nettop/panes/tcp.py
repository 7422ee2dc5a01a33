"""The TCP throughput pane: tcptop in a live table, sortable and filterable."""

from __future__ import annotations

import functools

from textual.app import ComposeResult
from textual.widgets import Static

from nettop.model.tcp import TcpConnection, TcpSnapshot
from nettop.panes.fixed_line import FixedLine
from nettop.panes.row_table import RowTable
from nettop.panes.socket_detail import open_connection_detail
from nettop.panes.table import MAX_TABLE_ROWS, Column, SortableTablePane, sorted_rows, sync_table
from nettop.panes.text import endpoint, human_rate, kb, printable, rate


COLUMNS = (
    Column("pid", "PID", lambda c: c.pid),
    Column("comm", "COMM", lambda c: c.comm.lower(), numeric=False),
    Column("local", "LADDR:LPORT", lambda c: (c.laddr, c.lport), numeric=False),
    Column("remote", "RADDR:RPORT", lambda c: (c.raddr, c.rport), numeric=False),
    Column("rx_kb", "RX_KB", lambda c: c.rx_bytes),
    Column("tx_kb", "TX_KB", lambda c: c.tx_bytes),
    Column("rx_rate", "RX/s", lambda c: c.rx_bytes),
    Column("tx_rate", "TX/s", lambda c: c.tx_bytes),
    Column("total", "TOTAL/s", lambda c: c.total_bytes),
)
COLUMN_KEYS = tuple(c.key for c in COLUMNS)
DEFAULT_SORT = "total"


def matches(connection: TcpConnection, text: str) -> bool:
    """Filter: a PID, a port, or a substring of COMM or of either address."""
    text = text.strip().lower()
    if not text:
        return True
    if text.isdigit():
        number = int(text)
        if number in (connection.pid, connection.lport, connection.rport):
            return True
    return text in connection.comm.lower() or text in connection.laddr or text in connection.raddr


#: the numeric columns by what TcpSnapshot.top() ranks them
MEASURE_OF = {"pid": "pid", "rx_kb": "rx", "tx_kb": "tx", "rx_rate": "rx", "tx_rate": "tx", "total": "total"}


def visible_rows(
    snapshot: TcpSnapshot | None, sort_by: str = DEFAULT_SORT, reverse: bool = True, filter_text: str = ""
) -> list[TcpConnection]:
    """The rows drawn: sorted by a numeric column and unfiltered, only the top of a live
    snapshot is built into rows (TcpSnapshot.top()); a filter or a text column needs them all."""
    if snapshot is None:
        return []
    filtering = bool(filter_text.strip())
    if filtering or sort_by not in MEASURE_OF:
        candidates = snapshot.connections
    else:
        candidates = snapshot.top(MEASURE_OF[sort_by], MAX_TABLE_ROWS, reverse)
    keep = (lambda c: matches(c, filter_text)) if filtering else None
    return sorted_rows(candidates, COLUMNS, sort_by, reverse, keep)


@functools.lru_cache(maxsize=2 * MAX_TABLE_ROWS)
def cells(connection: TcpConnection, interval: float) -> tuple[str, ...]:
    """One table row as plain strings (RowTable never parses them as markup; names from the
    kernel have their control characters escaped), numbers right-aligned by their columns.
    Cached: a live snapshot hands back the same row object while its bytes stay the same."""
    return (
        str(connection.pid),
        printable(connection.comm),
        printable(endpoint(connection.laddr, connection.lport)),
        printable(endpoint(connection.raddr, connection.rport)),
        kb(connection.rx_bytes),
        kb(connection.tx_bytes),
        human_rate(rate(connection.rx_bytes, interval)),
        human_rate(rate(connection.tx_bytes, interval)),
        human_rate(rate(connection.total_bytes, interval)),
    )


def summary_line(snapshot: TcpSnapshot | None, interval: float, shown: int) -> str:
    if snapshot is None:
        return "no data yet"
    rx, tx = snapshot.totals()
    return (
        f"{len(snapshot.connections)} connections ({shown} shown)  "
        f"RX {human_rate(rate(rx, interval))}  TX {human_rate(rate(tx, interval))}  "
        f"source {snapshot.source}  dropped {snapshot.dropped}"
    )


class TcpPane(SortableTablePane):
    """Rows keyed by connection; cells updated in place so the cursor stays put."""

    COLUMNS = COLUMNS
    DEFAULT_SORT = DEFAULT_SORT

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.snapshot: TcpSnapshot | None = None
        self.interval: float = 1.0
        self._shown: dict[str, TcpConnection] = {}  # the drawn rows by table key

    def compose(self) -> ComposeResult:
        yield FixedLine("no data yet", id="tcp-summary", classes="pane-summary")
        table = RowTable(id="tcp-table")
        for column in COLUMNS:
            table.add_column(column.label, key=column.key, justify="right" if column.numeric else "left")
        yield table

    def show(self, snapshot: TcpSnapshot | None, interval: float) -> None:
        self.snapshot = snapshot
        self.interval = interval
        self.refresh_rows()

    def refresh_rows(self) -> None:
        if not self.is_mounted:
            return
        table = self.query_one("#tcp-table", RowTable)
        rows = visible_rows(self.snapshot, self.sort_by, self.sort_reverse, self.filter_text)
        self._shown = {str(c.key): c for c in rows}
        with self.app.batch_update():
            sync_table(table, self._shown, lambda c: cells(c, self.interval))
        self.query_one("#tcp-summary", Static).update(summary_line(self.snapshot, self.interval, len(rows)))

    def selected_key(self) -> str | None:
        return self.query_one("#tcp-table", RowTable).cursor_key

    def selected_connection(self) -> TcpConnection | None:
        """The row under the cursor, one of those drawn (a search of a live snapshot would
        build every row of it)."""
        key = self.selected_key()
        return self._shown.get(key) if key is not None else None

    def on_row_table_row_selected(self, event: RowTable.RowSelected) -> None:
        """Enter: the kernel's view of this connection (nettop/panes/socket_detail.py)."""
        connection = self.selected_connection()
        if connection is not None:
            open_connection_detail(self.app, connection)
