"""The Retransmits pane: tcpretrans -c as a live table, the tcpretrans log below, the kernel's counters.

Top: flows summed since the pane started (count mode), sorted by segments. The STATE
column is coloured by what it usually means: SYN_SENT retransmits are connects nobody
answers (an overloaded or firewalled server: a storm shows as many red rows), SYN_RECV
are SYN-ACKs whose final ACK never came, ESTABLISHED retransmits are loss on the path.
Below: the newest events first, bounded. Bottom: the kernel's counters for the interval,
from nettop's own network namespace (the events cover every namespace).

EVENTS counts retransmitted skbs (what the tracepoint sees), SEGS counts segments (what
the kernel's RetransSegs counts): under GSO/TSO one event is often tens of segments.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Iterable, Mapping

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from nettop.model.retransmits import COUNTER_NAMES, RetransmitEvent, RetransmitFlow, RetransmitsSnapshot, retransmit_rate
from nettop.panes.fixed_line import FixedLine
from nettop.panes.row_table import RowTable
from nettop.panes.table import Column, SortableTablePane, Totals, sorted_rows, sync_table
from nettop.panes.text import endpoint, inert

MAX_FLOWS = 2048
LOG_LINES = 200


COLUMNS = (
    Column("pid", "PID", lambda f: -1 if f.pid is None else f.pid),
    Column("comm", "COMM", lambda f: f.comm.lower(), numeric=False),
    Column("local", "LADDR:LPORT", lambda f: (f.laddr, f.lport), numeric=False),
    Column("remote", "RADDR:RPORT", lambda f: (f.raddr, f.rport), numeric=False),
    Column("state", "STATE", lambda f: f.state, numeric=False),
    Column("events", "EVENTS", lambda f: f.events),
    Column("segments", "SEGS", lambda f: f.segments),
    Column("last", "LAST", lambda f: f.last_seen),
)
COLUMN_KEYS = tuple(c.key for c in COLUMNS)
DEFAULT_SORT = "segments"

#: state -> what it usually means; the palette gives each meaning a style
STATE_MEANING = {
    "SYN_SENT": "connect",  # nobody answers our SYNs
    "SYN_RECV": "handshake",  # our SYN-ACKs unanswered
    "ESTABLISHED": "loss",
    "CLOSE_WAIT": "loss",
}


def default_palette() -> dict[str, str]:
    return {"connect": "bold red", "handshake": "yellow", "loss": "", "closing": "dim"}


def theme_palette(theme) -> dict[str, str]:
    """Styles from the app's theme, so the colours follow it."""
    return {"connect": f"bold {theme.error}", "handshake": f"{theme.warning}", "loss": "", "closing": "dim"}


def state_text(state: str, palette: Mapping[str, str], width: int = 0) -> Text:
    return Text(state.ljust(width), style=palette.get(STATE_MEANING.get(state, "closing"), ""), no_wrap=True)


def owner_text(pid: int | None) -> Text:
    return Text("-" if pid is None else str(pid), justify="right")


def clock(seconds: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(seconds)) if seconds else "-"


def matches(flow: RetransmitFlow, text: str) -> bool:
    """Filter: a PID, a port, a state, or a substring of COMM or of either address."""
    text = text.strip().lower()
    if not text:
        return True
    if text.isdigit() and int(text) in (flow.pid, flow.lport, flow.rport):
        return True
    return text in flow.comm.lower() or text in flow.laddr or text in flow.raddr or text in flow.state.lower()


def visible_rows(
    flows: Iterable[RetransmitFlow], sort_by: str = DEFAULT_SORT, reverse: bool = True, filter_text: str = ""
) -> list[RetransmitFlow]:
    return sorted_rows(flows, COLUMNS, sort_by, reverse,
                       (lambda f: matches(f, filter_text)) if filter_text.strip() else None)


def flow_cells(flow: RetransmitFlow, palette: Mapping[str, str]) -> tuple[Text, ...]:
    return (
        owner_text(flow.pid),
        inert(flow.comm),
        inert(endpoint(flow.laddr, flow.lport)),
        inert(endpoint(flow.raddr, flow.rport)),
        state_text(flow.state, palette),
        Text(str(flow.events), justify="right"),
        Text(str(flow.segments), justify="right"),
        Text(clock(flow.last_seen)),
    )


LOG_HEADER = f"{'TIME':<8} {'PID':>7} {'COMM':<15} {'LADDR:LPORT':>26} T> {'RADDR:RPORT':<26} {'STATE':<12} SEGS"


def event_line(event: RetransmitEvent, palette: Mapping[str, str]) -> Text:
    """One tcpretrans line: `T>` is the kind, R retransmit, S SYN-ACK, L tail-loss probe."""
    pid = "-" if event.pid is None else str(event.pid)
    line = Text(f"{clock(event.time):<8} {pid:>7} ", no_wrap=True)
    line.append_text(inert(f"{event.comm[:15]:<15}"))
    line.append(f" {endpoint(event.laddr, event.lport):>26} {event.kind}> {endpoint(event.raddr, event.rport):<26} ")
    line.append_text(state_text(event.state, palette, width=12))
    line.append(f" {event.segments}")
    return line


class EventLog:
    """The newest `limit` events, newest first."""

    def __init__(self, limit: int = LOG_LINES) -> None:
        self.events: deque[RetransmitEvent] = deque(maxlen=limit)
        self.seen = 0

    def add(self, events: Iterable[RetransmitEvent]) -> None:
        for event in events:  # oldest first in a snapshot
            self.events.appendleft(event)
            self.seen += 1

    def render(self, palette: Mapping[str, str]) -> Text:
        text = Text(LOG_HEADER, style="bold", no_wrap=True)
        for event in self.events:
            text.append("\n")
            text.append_text(event_line(event, palette))
        return text


COUNTER_LABELS = {
    "RetransSegs": "RetransSegs",
    "OutSegs": "OutSegs",
    "TCPFastRetrans": "Fast",
    "TCPSlowStartRetrans": "SlowStart",
    "TCPTimeouts": "Timeouts",
    "TCPLossProbes": "LossProbes",
    "TCPSynRetrans": "SynRetrans",
}


def counters_text(snapshot: RetransmitsSnapshot | None) -> Text:
    """The kernel strip: this interval's counter deltas and the retransmit rate."""
    text = Text("kernel, this netns, per interval: ", style="bold", no_wrap=True)
    if snapshot is None or not snapshot.counters:
        text.append("no data yet")
        return text
    counters = snapshot.counters
    parts = [f"{COUNTER_LABELS[name]} {counters[name]}" for name in COUNTER_NAMES if name in counters]
    rate = retransmit_rate(counters)
    parts.insert(2, f"rate {'-' if rate is None else f'{100 * rate:.2f}%'}")
    text.append("  ".join(parts))
    return text


def summary_line(snapshot: RetransmitsSnapshot | None, totals: Iterable[RetransmitFlow], shown: int) -> str:
    if snapshot is None:
        return "no data yet"
    flows = tuple(totals)
    events = sum(f.events for f in snapshot.flows)
    segments = sum(f.segments for f in snapshot.flows)
    syn_sent = sum(1 for f in flows if f.state == "SYN_SENT")
    kinds = ",".join(snapshot.kinds)
    return (
        f"{len(flows)} flows since start ({shown} shown, {syn_sent} SYN_SENT)  "
        f"this interval: {events} events = {segments} segments  "
        f"source {snapshot.source} ({kinds})  lost {snapshot.lost_events}  dropped {snapshot.dropped}  "
        f"failed {snapshot.failed}  missed {'?' if snapshot.missed is None else snapshot.missed}"
    )


class RetransmitsPane(SortableTablePane):
    COLUMNS = COLUMNS
    DEFAULT_SORT = DEFAULT_SORT

    def __init__(self, log_limit: int = LOG_LINES, max_flows: int = MAX_FLOWS, **kwargs) -> None:
        super().__init__(**kwargs)
        self.snapshot: RetransmitsSnapshot | None = None
        self.totals = Totals(max_flows)
        self.event_log = EventLog(log_limit)

    def compose(self) -> ComposeResult:
        yield FixedLine("no data yet", id="retransmits-summary", classes="pane-summary")
        table = RowTable(id="retransmits-table")
        for column in COLUMNS:
            table.add_column(column.label, key=column.key)
        yield table
        yield FixedLine("", id="retransmits-log")
        yield FixedLine(counters_text(None), id="retransmits-counters")

    @property
    def palette(self) -> dict[str, str]:
        try:
            return theme_palette(self.app.current_theme)
        except Exception:  # no app (renderable tests)
            return default_palette()

    def observe(self, snapshot: RetransmitsSnapshot | None, interval: float) -> None:
        """Every new interval, shown or not (paused), goes into the totals and the log."""
        if snapshot is not None:
            self.totals.add(snapshot.flows)
            self.event_log.add(snapshot.events)

    def reset_history(self) -> None:
        """The display jumped in time: totals and log restart from the frame shown next."""
        self.totals = Totals(self.totals.capacity)
        self.event_log = EventLog(self.event_log.events.maxlen)

    def show(self, snapshot: RetransmitsSnapshot | None, interval: float) -> None:
        self.snapshot = snapshot
        self.refresh_rows()

    def refresh_rows(self) -> None:
        if not self.is_mounted:
            return
        table = self.query_one("#retransmits-table", RowTable)
        rows = visible_rows(self.totals.values(), self.sort_by, self.sort_reverse, self.filter_text)
        wanted = {str(f.key): f for f in rows}
        palette = self.palette
        with self.app.batch_update():
            sync_table(table, wanted, lambda f: flow_cells(f, palette))
            self.query_one("#retransmits-summary", Static).update(
                summary_line(self.snapshot, self.totals.values(), len(rows))
            )
            self.query_one("#retransmits-log", Static).update(self.event_log.render(palette))
            self.query_one("#retransmits-counters", Static).update(counters_text(self.snapshot))
