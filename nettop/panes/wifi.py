"""The WiFi pane: recent 802.11 scans, the selected scan's channel timeline, scans per minute.

Top: scans per minute per device over the last minute. A laptop or access point that scans
several times a minute leaves its channel each time for seconds: latency spikes and
stalls follow (a scan storm), so a device at STORM_PER_MINUTE or more is flagged.
Middle: recent scans, newest first (those under way on top), bounded. Bottom: the selected
scan's channels in visit order, grouped by band; ● marks a channel where a beacon or probe
response was heard, · one visited in silence.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from typing import Iterable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from nettop.model.wifi import BANDS, WifiScan, WifiSnapshot
from nettop.panes.fixed_line import FixedLine
from nettop.panes.panel import Panel
from nettop.panes.row_table import RowTable
from nettop.panes.table import sync_table
from nettop.panes.text import inert

RECENT_SCANS = 200
RATE_WINDOW = 60.0  # seconds
STORM_PER_MINUTE = 6
BAND_LABELS = {"2.4": "2.4 GHz", "5": "5 GHz", "6": "6 GHz", "other": "other"}
COLUMNS = (
    ("time", "TIME"),
    ("device", "DEVICE"),
    ("requester", "REQUESTER"),
    ("duration", "DURATION"),
    ("channels", "CHANNELS"),
    ("beacons", "BEACONS"),
    ("result", "RESULT"),
)


def clock(seconds: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(seconds)) if seconds else "-"


def scan_key(scan: WifiScan) -> str:
    return f"{scan.wiphy}@{scan.start:.6f}"


def result(scan: WifiScan) -> str:
    if scan.end is None:
        return "scanning"
    return "aborted" if scan.aborted else "done"


def scan_cells(scan: WifiScan) -> tuple[Text, ...]:
    requester = inert(f"{'-' if scan.pid is None else scan.pid} {scan.comm}")
    return (
        Text(clock(scan.start)),
        inert(scan.device),
        requester,
        Text(f"{scan.duration_ms:.0f} ms", justify="right"),
        Text(str(len(scan.channels)), justify="right"),
        Text(str(scan.beacon_channels), justify="right"),
        Text(result(scan), style="bold" if scan.end is None else ("red" if scan.aborted else "")),
    )


class ScanLog:
    """The newest `limit` completed scans, newest first."""

    def __init__(self, limit: int = RECENT_SCANS) -> None:
        self.scans: deque[WifiScan] = deque(maxlen=limit)

    def add(self, scans: Iterable[WifiScan]) -> None:
        for scan in sorted(scans, key=lambda s: s.start):
            self.scans.appendleft(scan)

    def clear(self) -> None:
        self.scans.clear()


class ScanRate:
    """Completed scans per device over the last `window` seconds of observed intervals.

    Intervals, not wall time, so a replay counts the same as it did live."""

    def __init__(self, window: float = RATE_WINDOW) -> None:
        self.window = window
        self.intervals: deque[tuple[float, Counter]] = deque()
        self.seconds = 0.0

    def add(self, interval: float, scans: Iterable[WifiScan]) -> None:
        self.intervals.append((interval, Counter(s.device for s in scans)))
        self.seconds += interval
        while self.intervals and self.seconds - self.intervals[0][0] >= self.window:
            self.seconds -= self.intervals.popleft()[0]

    def counts(self) -> Counter:
        total: Counter = Counter()
        for _, counts in self.intervals:
            total.update(counts)
        return total

    def clear(self) -> None:
        self.intervals.clear()
        self.seconds = 0.0


def rate_text(rate: ScanRate, devices: Iterable[str], storm_style: str = "bold red") -> Text:
    """`scans/min  wlan0 1  wlan1 9 STORM`: every device seen, busiest first."""
    counts = rate.counts()
    span = "last minute" if rate.seconds >= rate.window - 0.5 else f"last {rate.seconds:.0f}s"
    text = Text(f"scans per minute ({span}): ", style="bold", no_wrap=True)
    names = sorted(set(devices) | set(counts), key=lambda d: (-counts[d], d))
    if not names:
        text.append("no scans seen")
        return text
    for i, name in enumerate(names):
        if i:
            text.append("  ")
        text.append_text(inert(name))
        storm = counts[name] >= STORM_PER_MINUTE
        text.append(f" {counts[name]}", style=storm_style if storm else "")
        if storm:
            text.append(" storm", style=storm_style)
    return text


def timeline_text(scan: WifiScan | None, found_style: str = "bold green") -> Text:
    """The scan's channels in visit order, one line per band: `2437●` heard, `2412·` silent."""
    if scan is None:
        return Text("select a scan to see its channels", style="dim")
    heard = [c.freq_mhz for c in scan.channels if c.beacon_found]
    head = Text.assemble(
        ("channels of ", "bold"),
        inert(scan.device),
        f" scan at {clock(scan.start)}: {len(scan.channels)} in {scan.duration_ms:.0f} ms"
        f"{' so far' if scan.end is None else ''}, beacons on "
        f"{', '.join(str(f) for f in heard) or 'none'} MHz",
    )
    if scan.kind != "sw":
        head.append("  (channels walked by the device or unseen: only those where something was heard)", style="dim")
    lines = [head]
    for band in BANDS:
        visits = [c for c in scan.channels if c.band == band]
        if not visits and band == "other":
            continue
        line = Text(f"{BAND_LABELS[band]:<8} {len(visits):>3}  ", no_wrap=False)
        if not visits:
            line.append("none visited", style="dim")
        else:
            line.append(f"+{visits[0].at_ms / 1000:.2f}s  ", style="dim")
            for c in visits:
                line.append(f"{c.freq_mhz}●" if c.beacon_found else f"{c.freq_mhz}·", style=found_style if c.beacon_found else "")
                line.append(" ")
        lines.append(line)
    return Text("\n").join(lines)


def summary_line(snapshot: WifiSnapshot | None, log: ScanLog) -> str:
    if snapshot is None:
        return "no data yet"
    return (
        f"{len(log.scans)} recent scans, {len(snapshot.in_progress)} under way  "
        f"source {snapshot.source}  lost {snapshot.lost_events}  dropped {snapshot.dropped}"
    )


class WifiPane(Vertical):
    def __init__(self, limit: int = RECENT_SCANS, **kwargs) -> None:
        super().__init__(**kwargs)
        self.snapshot: WifiSnapshot | None = None
        self.scan_log = ScanLog(limit)
        self.rate = ScanRate()
        self.devices: set[str] = set()
        self.scan_rows: dict[str, WifiScan] = {}

    def compose(self) -> ComposeResult:
        yield FixedLine("no data yet", id="wifi-summary", classes="pane-summary")
        yield Panel(rate_text(self.rate, ()), id="wifi-rate")
        table = RowTable(id="wifi-scans")
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        yield table
        yield Panel(timeline_text(None), id="wifi-timeline")

    def _styles(self) -> tuple[str, str]:
        try:
            theme = self.app.current_theme
            return f"bold {theme.error}", f"bold {theme.success}"
        except Exception:  # no app (renderable tests)
            return "bold red", "bold green"

    def observe(self, snapshot: WifiSnapshot | None, interval: float) -> None:
        scans = snapshot.scans if snapshot is not None else ()
        self.scan_log.add(scans)
        self.rate.add(interval, scans)
        self.devices.update(s.device for s in scans)
        if snapshot is not None:
            self.devices.update(s.device for s in snapshot.in_progress)

    def reset_history(self) -> None:
        self.scan_log.clear()
        self.rate.clear()
        self.devices.clear()

    def show(self, snapshot: WifiSnapshot | None, interval: float) -> None:
        self.snapshot = snapshot
        self.refresh_rows()

    def refresh_rows(self) -> None:
        if not self.is_mounted:
            return
        under_way = sorted(self.snapshot.in_progress, key=lambda s: -s.start) if self.snapshot else []
        self.scan_rows = {scan_key(s): s for s in (*under_way, *self.scan_log.scans)}
        table = self.query_one("#wifi-scans", RowTable)
        storm_style, found_style = self._styles()
        with self.app.batch_update():
            sync_table(table, self.scan_rows, scan_cells)
            self.query_one("#wifi-summary", Static).update(summary_line(self.snapshot, self.scan_log))
            self.query_one("#wifi-rate", Static).update(rate_text(self.rate, self.devices, storm_style))
            self.query_one("#wifi-timeline", Static).update(timeline_text(self.selected(), found_style))

    def selected(self) -> WifiScan | None:
        key = self.query_one("#wifi-scans", RowTable).cursor_key
        return self.scan_rows.get(key) if key is not None else None

    def on_row_table_row_highlighted(self, event: RowTable.RowHighlighted) -> None:
        _, found_style = self._styles()
        self.query_one("#wifi-timeline", Static).update(timeline_text(self.selected(), found_style))
