"""Per-socket detail: every socket of one host-view group (or one TCP connection), with the
kernel's TCP state of each as `ss -tiepm` prints it, joined with the other panes' data.

Beside the socket under the cursor: its retransmit events (retransmits pane), its
process's socket I/O size histograms (sizes pane), and the queue latency of the device
its route goes out of (queues pane; the device comes from the tcp_info probe's route
lookup). A pane that is not live says "no data from <pane>".

The screen keeps its own rows while it is open: a socket that closes stays, marked
closed with the last counters the kernel gave, until the user leaves with Escape.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterable

from rich.console import Group, RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static

from nettop.model.frame import Frame
from nettop.model.sockets import INFINITE_SSTHRESH, TcpSocketInfo
from nettop.panes.drilldown import Endpoints, Selector, TrafficHistory, endpoints_of, recent_frames
from nettop.panes.fixed_line import FixedLine
from nettop.panes.histogram import HistogramView
from nettop.panes.panel import Panel
from nettop.panes.row_table import RowTable
from nettop.panes.table import sync_table
from nettop.panes.text import endpoint, human_rate, inert, printable, rate

MAX_ROWS = 512
MAX_EVENTS = 64
EVENTS_SHOWN = 8


@dataclass
class SocketRow:
    endpoints: Endpoints
    pid: int | None = None
    comm: str = ""
    rx_bytes: int = 0  # this interval
    tx_bytes: int = 0
    info: TcpSocketInfo | None = None
    closed: bool = False
    retransmits: int = 0  # segments retransmitted while the view was open (retransmits pane)

    @property
    def key(self) -> str:
        return str(self.endpoints)

    @property
    def state(self) -> str:
        if self.closed:
            return "CLOSED"
        return self.info.state if self.info else "?"


class DetailState:
    """The rows and joined data of one open detail view; fed one frame at a time (pure)."""

    def __init__(self, selector: Selector, capacity: int = MAX_ROWS) -> None:
        self.selector = selector
        self.capacity = capacity
        self.rows: dict[Endpoints, SocketRow] = {}
        self.events: deque = deque(maxlen=MAX_EVENTS)
        self.routes: dict[str, str] = {}
        self.frame: Frame | None = None
        self.skipped = 0
        self.history = TrafficHistory()  # each socket's last minute, for its sparkline

    def catch_up(self, frames: Iterable[Frame]) -> None:
        """The frames before the view opened (the last minute the app still holds): the
        group's recent sockets, quiet ones too, and their sparklines. Retransmits count
        from the opening on, as the view says."""
        for frame in frames:
            self.update(frame)
        for row in self.rows.values():
            row.retransmits = 0
        self.events.clear()

    def update(self, frame: Frame) -> None:
        if frame is self.frame:
            return  # shown again (a tab switch, a redraw): counted once
        self.frame = frame
        for row in self.rows.values():
            row.rx_bytes = row.tx_bytes = 0
        from_tcp: set[Endpoints] = set()
        active: set[Endpoints] = set()  # with traffic (a TCP pane row) or an open tcp_info report
        tcp = frame.panes.get("tcp")
        known: dict[Endpoints, tuple[int, str]] = {}  # every connection's owner, as drilldown.owners() finds them
        for (pid, comm, _, laddr, lport, raddr, rport), rx, tx in tcp.identities() if tcp else ():
            ends = (laddr, lport, raddr, rport)
            known[ends] = (pid, comm)
            if not self.selector.matches(pid, ends):
                continue
            row = self._row(ends)
            if row.pid is None:
                row.pid, row.comm = pid, comm
            row.rx_bytes += rx
            row.tx_bytes += tx
            from_tcp.add(ends)
            active.add(ends)
        sockets = frame.panes.get("sockets")
        if sockets is not None:
            self.routes.update(sockets.routes)
            self.skipped = sockets.skipped
            for info in sockets.sockets:
                ends = info.endpoints
                row = self.rows.get(ends)
                pid = row.pid if row else known.get(ends, (None,))[0]
                if row is None and not self.selector.matches(pid, ends):
                    continue
                row = self._row(ends)
                row.info = info
                row.closed = row.closed or info.closed
                if ends not in from_tcp:
                    row.rx_bytes, row.tx_bytes = info.rx_bytes, info.tx_bytes
                if not info.closed:
                    active.add(ends)
        retransmits = frame.panes.get("retransmits")
        if retransmits is not None:
            for flow in retransmits.flows:
                row = self.rows.get(endpoints_of(flow))
                if row is not None:
                    row.retransmits += flow.segments
            self.events.extend(e for e in retransmits.events if endpoints_of(e) in self.rows)
        self._bound()
        self.history.advance(frame.time)
        for ends in active:
            row = self.rows.get(ends)
            if row is not None:
                self.history.add(ends, frame.time, rate(row.rx_bytes, frame.interval), rate(row.tx_bytes, frame.interval))

    def _row(self, ends: Endpoints) -> SocketRow:
        row = self.rows.get(ends)
        if row is None:
            row = self.rows[ends] = SocketRow(ends)
        return row

    def _bound(self) -> None:
        """Over capacity, closed sockets go first, then the quietest."""
        excess = len(self.rows) - self.capacity
        if excess <= 0:
            return
        order = sorted(self.rows.values(), key=lambda r: (not r.closed, r.rx_bytes + r.tx_bytes))
        for row in order[:excess]:
            del self.rows[row.endpoints]

    def sorted_rows(self) -> list[SocketRow]:
        """Open sockets busiest first, closed ones last; ties in endpoint order (stable)."""
        rows = sorted(self.rows.values(), key=lambda r: r.endpoints)
        rows.sort(key=lambda r: (r.closed, -(r.rx_bytes + r.tx_bytes)))
        return rows


# -- rendering (pure) ---------------------------------------------------------


def ss_bandwidth(bytes_per_second: float) -> str:
    """ss's sprint_bw(): bits per second with K/M/G."""
    bits = bytes_per_second * 8
    for scale, unit in ((1e9, "Gbps"), (1e6, "Mbps"), (1e3, "Kbps")):
        if bits > scale:
            return f"{bits / scale:.1f}{unit}"
    return f"{bits:.0f}bps"


def milliseconds(us: int) -> str:
    return f"{us / 1000:g}"


def ss_lines(row: SocketRow) -> list[str]:
    """The socket as `ss -tiepm` prints it (the fields nettop records)."""
    laddr, lport, raddr, rport = row.endpoints
    info = row.info
    users = f' users:(("{row.comm}",pid={row.pid}))' if row.pid is not None else ""
    if info is None:
        return [f"{row.state}  {endpoint(laddr, lport)}  {endpoint(raddr, rport)}{users}",
                "  no tcp_info: idle since the view opened, not among the busiest sockets, "
                "or in another network namespace"]
    head = (f"{row.state}  Recv-Q {info.recv_q}  Send-Q {info.send_q}  {endpoint(laddr, lport)}  "
            f"{endpoint(raddr, rport)}{users} uid:{info.uid} ino:{info.inode} sk-cookie:{info.cookie}")
    if row.closed:
        head += "  (closed: last counters read)"
    ssthresh = f" ssthresh:{info.ssthresh}" if info.ssthresh < INFINITE_SSTHRESH else ""
    send = rate(info.cwnd * info.mss * 1e6, info.rtt_us) if info.rtt_us else 0
    lines = [
        head,
        f"  {info.congestion or '-'} rto:{milliseconds(info.rto_us)} rtt:{milliseconds(info.rtt_us)}/"
        f"{milliseconds(info.rttvar_us)} minrtt:{milliseconds(info.min_rtt_us)} mss:{info.mss} pmtu:{info.pmtu} "
        f"rcvmss:{info.rcv_mss} cwnd:{info.cwnd}{ssthresh}",
        f"  bytes_sent:{info.bytes_sent} bytes_retrans:{info.bytes_retrans} bytes_acked:{info.bytes_acked} "
        f"bytes_received:{info.bytes_received} segs_out:{info.segs_out} segs_in:{info.segs_in}",
        f"  send {ss_bandwidth(send)} pacing_rate {ss_bandwidth(info.pacing_rate)} "
        f"delivery_rate {ss_bandwidth(info.delivery_rate)} unacked:{info.unacked} "
        f"retrans:{info.retrans}/{info.total_retrans} lost:{info.lost} notsent:{info.notsent}",
    ]
    if info.memory is not None:
        lines.append(f"  {info.memory.ss_text()}")
    return lines


def retransmit_panel(state: DetailState, row: SocketRow | None) -> RenderableType:
    title = Text("Retransmits", style="bold")
    frame = state.frame
    if frame is None or frame.panes.get("retransmits") is None:
        lines = [Text("no data from retransmits")]
        if row is not None and row.info is not None:
            lines.append(Text(f"tcp_info: retrans {row.info.retrans}/{row.info.total_retrans}, "
                              f"+{row.info.retrans_delta} this interval"))
        return Group(title, *lines)
    events = [e for e in state.events if row is None or endpoints_of(e) == row.endpoints]
    total = row.retransmits if row is not None else sum(r.retransmits for r in state.rows.values())
    lines: list[RenderableType] = [Text(f"{total} segments since opened, {len(events)} events kept")]
    for e in list(events)[-EVENTS_SHOWN:]:
        when = time.strftime("%H:%M:%S", time.localtime(e.time))
        lines.append(Text(f"{when} {e.kind} {e.state} :{e.lport} segs {e.segments}"))
    if not events:
        lines.append(Text("none for this socket" if row is not None else "none"))
    return Group(title, *lines)


def sizes_panel(state: DetailState, row: SocketRow | None) -> RenderableType:
    frame = state.frame
    sizes = frame.panes.get("sizes") if frame else None
    if sizes is None:
        return Group(Text("Socket I/O sizes", style="bold"), Text("no data from sizes"))
    if row is None or row.pid is None:
        return Group(Text("Socket I/O sizes", style="bold"), Text("owner not known"))
    process = next((p for p in sizes.processes if p.pid == row.pid and p.protocol == "tcp"), None)
    title = Text.assemble(("Socket I/O sizes ", "bold"), inert(row.comm), f" ({row.pid}), bytes")
    if process is None:
        return Group(title, Text("no TCP socket I/O this interval"))
    return Group(
        title,
        HistogramView(process.read.histogram, f"read: {process.read.count} calls"),
        HistogramView(process.write.histogram, f"write: {process.write.count} calls"),
    )


def _latency(latency: Any) -> str:
    parts = []
    for name, fraction in (("p50", 0.5), ("p99", 0.99)):
        value = latency.percentile(fraction)
        parts.append(f"{name} {'-' if value is None else f'{value:.0f}us'}")
    if latency.max_us is not None:
        parts.append(f"max {latency.max_us:.0f}us")
    return " ".join(parts)


def queues_panel(state: DetailState, row: SocketRow | None) -> RenderableType:
    ifname = state.routes.get(row.endpoints[2]) if row is not None else None
    title = Text.assemble(("Queues ", "bold"), "route via ", inert(ifname or "?"))
    frame = state.frame
    queues = frame.panes.get("queues") if frame else None
    if queues is None:
        return Group(title, Text("no data from queues"))
    if ifname is None:
        return Group(title, Text("route device not known yet"))
    lines: list[RenderableType] = [title]
    for q in queues.qdiscs:
        if q.ifname == ifname:
            lines.append(Text.assemble(inert(q.label), f" {q.packets} pkts  {_latency(q.latency)}"))
    for d in queues.devices:
        if d.ifname == ifname:
            lines.append(Text(f"device xmit {d.packets} pkts  {_latency(d.latency)}"))
    if len(lines) == 1:
        lines.append(Text("no queue activity on this device this interval"))
    return Group(*lines)


COLUMNS = ("PID", "COMM", "LOCAL", "REMOTE", "STATE", "RX/s", "TX/s", "LAST 1m", "RTT ms", "CWND", "RETR")


def row_cells(row: SocketRow, interval: float, history: TrafficHistory) -> tuple:
    info = row.info
    laddr, lport, raddr, rport = row.endpoints
    style = "dim" if row.closed else ""
    return (
        Text("-" if row.pid is None else str(row.pid), justify="right", style=style),
        inert(row.comm or "-", style),
        inert(endpoint(laddr, lport), style),
        inert(endpoint(raddr, rport), style),
        Text(row.state, style="reverse" if row.closed else ""),
        Text(human_rate(rate(row.rx_bytes, interval)), justify="right", style=style),
        Text(human_rate(rate(row.tx_bytes, interval)), justify="right", style=style),
        Text(history.spark(row.endpoints)),
        Text(milliseconds(info.rtt_us) if info else "-", justify="right", style=style),
        Text(str(info.cwnd) if info else "-", justify="right", style=style),
        Text(f"{info.retrans}/{info.total_retrans}" if info else "-", justify="right", style=style),
    )


class SocketDetailScreen(Screen[None]):
    """Pushed over the dashboard; frames reach it through `show_frame` (the app forwards
    every frame it shows, live or replayed, to the screens stacked over the dashboard)."""

    BINDINGS = [Binding("escape", "app.pop_screen", "back"), Binding("q", "app.quit", "quit", show=False)]

    def __init__(self, selector: Selector, frame: Frame | None = None, earlier: Iterable[Frame] = (),
                 names: dict[str, str] | None = None) -> None:
        super().__init__()
        self.state = DetailState(selector)
        self.state.catch_up(earlier)
        self.names = names or {}
        self._first = frame
        self._mounted = False

    def compose(self) -> ComposeResult:
        yield FixedLine(id="detail-title")
        with Vertical(id="detail-body"):
            table = RowTable(id="detail-table")
            for label in COLUMNS:
                table.add_column(label, key=label)
            yield table
            yield Panel(id="detail-ss")
            with Horizontal(id="detail-joins"):
                yield Panel(id="detail-retransmits", classes="detail-join")
                yield Panel(id="detail-sizes", classes="detail-join")
                yield Panel(id="detail-queues", classes="detail-join")
        yield Footer()

    def on_mount(self) -> None:
        if self._first is not None:
            self.state.update(self._first)
        self._mounted = True
        self._refresh_rows()

    def show_frame(self, frame: Frame) -> None:
        self.state.update(frame)
        if self._mounted:
            self._refresh_rows()

    def _render_title(self) -> None:
        selector = self.state.selector
        what = {"host": "remote host", "process": "process", "port": "remote port", "socket": "connection"}
        name = self.names.get(selector.key)
        rows = list(self.state.rows.values())
        closed = sum(r.closed for r in rows)
        line = Text.assemble(
            ("Sockets of ", "bold"), f"{what.get(selector.grouping, selector.grouping)} ",
            inert(selector.label, "bold"), inert(f" ({name})" if name else ""),
            f"   {len(rows)} sockets, {closed} closed",
            f", tcp_info skipped {self.state.skipped} busier-than-bound" if self.state.skipped else "",
            "   Esc back",
        )
        if self.state.frame is not None and self.state.frame.panes.get("sockets") is None:
            line.append("   no data from tcp_info")
        self.query_one("#detail-title", Static).update(line)

    def _refresh_rows(self) -> None:
        table = self.query_one("#detail-table", RowTable)
        interval = self.state.frame.interval if self.state.frame else 1.0
        rows = self.state.sorted_rows()
        with self.app.batch_update():
            sync_table(table, {r.key: r for r in rows}, lambda r: row_cells(r, interval, self.state.history))
        self._render_title()
        self._render_side()

    def selected_key(self) -> str | None:
        return self.query_one("#detail-table", RowTable).cursor_key

    def selected_row(self) -> SocketRow | None:
        key = self.selected_key()
        return next((r for r in self.state.rows.values() if r.key == key), None)

    def _render_side(self) -> None:
        row = self.selected_row()
        ss = Text("\n".join(printable(line) for line in ss_lines(row))) if row is not None else Text("no sockets")
        self.query_one("#detail-ss", Static).update(ss)
        self.query_one("#detail-retransmits", Static).update(retransmit_panel(self.state, row))
        self.query_one("#detail-sizes", Static).update(sizes_panel(self.state, row))
        self.query_one("#detail-queues", Static).update(queues_panel(self.state, row))

    def on_row_table_row_highlighted(self, event: RowTable.RowHighlighted) -> None:
        self._render_side()


def open_detail(app: Any, selector: Selector, names: dict[str, str] | None = None, fallback: Frame | None = None) -> None:
    """Push the detail of `selector` over the dashboard, caught up on the last minute the
    app's timeline still holds (its sparklines and the group's quiet sockets)."""
    frame = getattr(app, "shown", None) or fallback  # a hidden tab's frame is older than the shown one
    timeline = getattr(app, "timeline", None)
    earlier = []
    if timeline is not None and frame is not None:
        earlier = [f for f in recent_frames(timeline, frame.time) if f.time < frame.time]  # `frame` opens it
    app.push_screen(SocketDetailScreen(selector, frame, earlier, names))


def open_connection_detail(app: Any, connection: Any) -> None:
    """Enter on a TCP pane row: the same detail, for that one connection."""
    open_detail(app, Selector.for_connection(connection))
