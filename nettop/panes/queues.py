"""The Queues pane: time packets spend in each qdisc and in each device's transmit.

One row per qdisc (named as `tc qdisc` names it) and one per device's driver transmit
(nettxlat): packets per second, p50/p90/p99/max latency of the interval, a sparkline of
p99 over the last minutes, and the qdisc's own netlink counters beside them. Devices
without a queue (`noqueue`) say so. Below the table: the selected row's full latency
histogram and its p99 history.

The p99 history is kept here, per row, bounded (HISTORY intervals, MAX_TRACKED rows).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.reactive import reactive
from textual.widgets import Static

from nettop.model.queues import DeviceLatency, Latency, QdiscQueue, QdiscStats, QueuesSnapshot
from nettop.panes.histogram import HistogramView
from nettop.panes.fixed_line import FixedLine
from nettop.panes.panel import Panel
from nettop.panes.row_table import RowTable
from nettop.panes.table import sync_table
from nettop.panes.text import human_bytes, inert, rate, sparkline

HISTORY = 180  # intervals of p99 kept per row (3 minutes at the default 1 s)
TREND_WIDTH = 16  # the table's sparkline: the newest intervals
MAX_TRACKED = 512  # rows with a history; the least recently seen forgotten first

COLUMNS = (
    ("device", "DEVICE"),
    ("queue", "QUEUE"),
    ("parent", "PARENT"),
    ("pps", "PKT/s"),
    ("p50", "P50"),
    ("p90", "P90"),
    ("p99", "P99"),
    ("max", "MAX"),
    ("trend", "P99 TREND"),
    ("sent", "SENT"),
    ("drops", "DROPS"),
    ("overlimits", "OVERLIM"),
    ("backlog", "BACKLOG"),
)


@dataclass(frozen=True)
class QueueRow:
    """A qdisc or a device transmit, as one table row."""

    key: str
    ifname: str
    queue: str  # "tbf 8001:", "noqueue 0:", "driver xmit"
    parent: str
    packets: int  # for the rate: the qdisc's sent counter (bypassed packets too), else timed
    latency: Latency
    stats: QdiscStats | None = None
    missed: int = 0
    noqueue: bool = False
    device: bool = False  # a driver transmit row (nettxlat), not a qdisc
    virtual: bool = False  # a device row of lo, veth, a bridge: transmits counted, not timed


def qdisc_row(q: QdiscQueue) -> QueueRow:
    packets = q.stats.sent_packets if q.stats is not None else q.packets
    return QueueRow(
        f"q/{q.ifindex}/{q.ifname}/{q.handle}/{q.parent}", q.ifname, q.label, q.parent, packets,
        q.latency, q.stats, q.missed, q.queueless,
    )


def device_row(d: DeviceLatency) -> QueueRow:
    return QueueRow(
        f"d/{d.netns}/{d.ifindex}/{d.ifname}", d.ifname, "driver xmit" if d.hardware else "virtual xmit", "-",
        d.packets, d.latency, device=True, virtual=not d.hardware,
    )


def queue_rows(snapshot: QueuesSnapshot | None, filter_text: str = "") -> list[QueueRow]:
    """Grouped by device; a device's root qdisc first, its children, then its driver row."""
    if snapshot is None:
        return []
    rows = [qdisc_row(q) for q in snapshot.qdiscs] + [device_row(d) for d in snapshot.devices]
    text = filter_text.strip().lower()
    if text:
        rows = [r for r in rows if text in r.ifname.lower() or text in r.queue.lower()]
    order = {"root": 0}
    rows.sort(key=lambda r: (r.ifname, r.device, order.get(r.parent, 1), r.parent, r.queue))
    return rows


def human_us(us: float | None) -> str:
    """A latency: 0.4µs, 12µs, 3.5ms, 48ms, 1.2s."""
    if us is None:
        return "-"
    if us < 10:
        return f"{us:.1f}µs"
    if us < 1000:
        return f"{us:.0f}µs"
    if us < 10_000:
        return f"{us / 1000:.1f}ms"
    if us < 1_000_000:
        return f"{us / 1000:.0f}ms"
    return f"{us / 1e6:.1f}s"


class P99History:
    """p99 per row over the last HISTORY intervals; 0 where a row had no samples."""

    def __init__(self, length: int = HISTORY, max_rows: int = MAX_TRACKED) -> None:
        self.length = length
        self.max_rows = max_rows
        self.rows: OrderedDict[str, deque[float]] = OrderedDict()

    def add(self, rows: list[QueueRow]) -> None:
        seen = set()
        for row in rows:
            seen.add(row.key)
            values = self.rows.pop(row.key, None) or deque(maxlen=self.length)
            values.append(row.latency.percentile(0.99) or 0.0)
            self.rows[row.key] = values
        for key, values in self.rows.items():
            if key not in seen:
                values.append(0.0)
        while len(self.rows) > self.max_rows:
            self.rows.popitem(last=False)

    def values(self, key: str) -> list[float]:
        return list(self.rows.get(key, ()))


def _num(value: str) -> Text:
    return Text(value, justify="right")


def row_cells(row: QueueRow, interval: float, trend: list[float]) -> tuple[Text, ...]:
    stats = row.stats
    if row.noqueue:
        latency = (Text("no queue", style="dim"), Text(""), Text(""), Text(""))
    else:
        latency = tuple(_num(human_us(row.latency.percentile(f))) for f in (0.5, 0.9, 0.99)) + (
            _num(human_us(row.latency.max_us)),
        )
    counters = (
        (_num(str(stats.sent_packets)), _num(str(stats.drops)), _num(str(stats.overlimits)),
         _num(human_bytes(stats.backlog_bytes)))
        if stats is not None
        else (_num("-"), _num("-"), _num("-"), _num("-"))
    )
    return (
        inert(row.ifname),
        inert(row.queue),
        inert(row.parent),
        _num(f"{rate(row.packets, interval):.0f}"),
        *latency,
        Text(sparkline(trend[-TREND_WIDTH:]) if not row.noqueue else ""),
        *counters,
    )


def detail(row: QueueRow | None, interval: float, trend: list[float]) -> Group:
    """The selected row's full histogram (µs) and its p99 history."""
    if row is None:
        return Group(Text("no row selected", style="dim"))
    who = inert(f"{row.ifname} {row.queue}" + (f" parent {row.parent}" if row.parent != "-" else ""), "bold")
    if row.noqueue:
        return Group(Text.assemble(who, ": noqueue, no queueing: packets go straight to the driver"))
    if row.virtual:
        return Group(Text.assemble(
            who, f": virtual device, {row.packets} packets this interval; not timed: its transmit hands the "
            "packet to another stack (no hardware completion), so nettxlat would time the receiver"))
    what = "driver transmit, start_xmit to consume_skb" if row.device else "time in the qdisc, enqueue to dequeue"
    lat = row.latency
    title = Text.assemble(
        who, f"  {what} (µs), this interval: {lat.count} packets",
        f", {row.missed} untimed" if row.missed else "",
        f"  p50 {human_us(lat.percentile(0.5))}  p99 {human_us(lat.percentile(0.99))}  max {human_us(lat.max_us)}",
    )
    peak = max(trend, default=0.0)
    history = Text.assemble(
        ("p99, last ", "dim"), (f"{len(trend) * interval:.0f}s", "dim"), (f" (peak {human_us(peak)}): ", "dim"),
        sparkline(trend),
    )
    return Group(HistogramView(lat.histogram, title, empty="(no packets timed this interval)"), history)


def summary_line(snapshot: QueuesSnapshot | None, shown: int) -> str:
    if snapshot is None:
        return "no data yet"
    devices = {q.ifname for q in snapshot.qdiscs} | {d.ifname for d in snapshot.devices}
    queueless = sum(1 for q in snapshot.qdiscs if q.queueless)
    return (
        f"{len(snapshot.qdiscs)} qdiscs ({queueless} noqueue) on {len(devices)} devices, {shown} rows  "
        f"source {snapshot.source or '-'}  untimed {snapshot.missed}  dropped {snapshot.dropped}"
    )


class QueuesPane(Vertical):
    """Rows keyed by qdisc or device; the detail follows the cursor."""

    filter_text: reactive[str] = reactive("")

    def __init__(self, history: int = HISTORY, **kwargs) -> None:
        super().__init__(**kwargs)
        self.snapshot: QueuesSnapshot | None = None
        self.interval = 1.0
        self.history = P99History(history)
        self.rows: dict[str, QueueRow] = {}
        self.detail_view: Group = detail(None, 1.0, [])

    def compose(self) -> ComposeResult:
        yield FixedLine("no data yet", id="queues-summary", classes="pane-summary")
        table = RowTable(id="queues-table")
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        yield table
        with VerticalScroll(id="queues-detail"):
            yield Panel(self.detail_view, id="queues-hist")

    def observe(self, snapshot: QueuesSnapshot | None, interval: float) -> None:
        """Every new interval, shown or not (paused), extends the p99 history."""
        if snapshot is not None:
            self.history.add(queue_rows(snapshot))

    def reset_history(self) -> None:
        """The display jumped in time: the sparklines restart from the frame shown next."""
        self.history = P99History(self.history.length, self.history.max_rows)

    def show(self, snapshot: QueuesSnapshot | None, interval: float) -> None:
        self.snapshot = snapshot
        self.interval = interval
        self.refresh_rows()

    def watch_filter_text(self) -> None:
        self.refresh_rows()

    def refresh_rows(self) -> None:
        if not self.is_mounted:
            return
        table = self.query_one("#queues-table", RowTable)
        self.rows = {r.key: r for r in queue_rows(self.snapshot, self.filter_text)}
        with self.app.batch_update():
            sync_table(table, self.rows, lambda r: row_cells(r, self.interval, self.history.values(r.key)))
            self.query_one("#queues-summary", Static).update(summary_line(self.snapshot, len(self.rows)))
            self.update_detail()

    def selected_row(self) -> QueueRow | None:
        return self.rows.get(self.query_one("#queues-table", RowTable).cursor_key or "")

    def update_detail(self) -> None:
        row = self.selected_row()
        trend = self.history.values(row.key) if row else []
        self.detail_view = detail(row, self.interval, trend)
        self.query_one("#queues-hist", Static).update(self.detail_view)

    def on_row_table_row_highlighted(self, event: RowTable.RowHighlighted) -> None:
        self.update_detail()

    def set_filter(self, text: str) -> None:
        self.filter_text = text
