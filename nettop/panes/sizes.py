"""The sizes pane: socket read/write sizes per process (socksize) and packet sizes per device (netsize).

Top: processes with their reads and writes in the interval. Below: the selected process's
read and write size histograms, then a device table and the selected device's histograms
at the four points a packet passes (NIC receive, stack receive, stack send, NIC send), so
GRO merging and GSO/TSO segmentation show as a shift between the stack and NIC rows.

`c` toggles between this interval and totals since the pane started (kept here, bounded);
`d` selects the next device (or click its row).
"""

from __future__ import annotations

from typing import Iterable, TypeVar

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.reactive import reactive
from textual.widgets import Static

from nettop.model.sizes import DEVICE_POINTS, DeviceSizes, ProcessSizes, SizesSnapshot
from nettop.panes.histogram import HistogramView
from nettop.panes.fixed_line import FixedLine
from nettop.panes.panel import Panel
from nettop.panes.row_table import RowTable
from nettop.panes.table import Totals, sync_table
from nettop.panes.text import human_bytes, inert

MAX_CUMULATIVE_PROCESSES = 4096
MAX_CUMULATIVE_DEVICES = 512

PROCESS_COLUMNS = (
    ("pid", "PID"),
    ("comm", "COMM"),
    ("proto", "PROTO"),
    ("reads", "READS"),
    ("writes", "WRITES"),
    ("r_avg", "R_AVG"),
    ("w_avg", "W_AVG"),
    ("r_bytes", "R_BYTES"),
    ("w_bytes", "W_BYTES"),
)
DEVICE_COLUMNS = (
    ("ifname", "DEVICE"),
    ("netns", "NETNS"),
    *((p, p.upper()) for p in DEVICE_POINTS),
)
POINT_TITLES = {
    "nic_recv": "NIC receive (napi_gro_receive_entry)",
    "stack_recv": "stack receive (netif_receive_skb)",
    "stack_send": "stack send (net_dev_queue)",
    "nic_send": "NIC send (net_dev_xmit)",
}

Row = TypeVar("Row", ProcessSizes, DeviceSizes)


def process_key(p: ProcessSizes) -> str:
    return f"{p.pid}/{p.protocol}"


def device_key(d: DeviceSizes) -> str:
    return f"{d.netns}/{d.ifindex}/{d.ifname}"


def matches(p: ProcessSizes, text: str) -> bool:
    """Filter: a PID, a protocol, or a substring of COMM."""
    text = text.strip().lower()
    if not text:
        return True
    return (text.isdigit() and int(text) == p.pid) or text == p.protocol or text in p.comm.lower()


def process_rows(processes: Iterable[ProcessSizes], filter_text: str = "") -> list[ProcessSizes]:
    """Busiest first (bytes read plus written); ties by key so rows do not jump."""
    rows = sorted((p for p in processes if matches(p, filter_text)), key=lambda p: p.key)
    rows.sort(key=lambda p: p.read.bytes + p.write.bytes, reverse=True)
    return rows


def device_rows(devices: Iterable[DeviceSizes]) -> list[DeviceSizes]:
    """Most packets first; ties by name."""
    rows = sorted(devices, key=lambda d: (d.ifname, d.netns, d.ifindex))
    rows.sort(key=lambda d: sum(d.point(p).count for p in DEVICE_POINTS), reverse=True)
    return rows


def _num(value: int | str) -> Text:
    return Text(str(value), justify="right")


def process_cells(p: ProcessSizes) -> tuple[Text, ...]:
    return (
        _num(p.pid),
        inert(p.comm),
        Text(p.protocol),
        _num(p.read.count),
        _num(p.write.count),
        _num(human_bytes(p.read.average)),
        _num(human_bytes(p.write.average)),
        _num(human_bytes(p.read.bytes)),
        _num(human_bytes(p.write.bytes)),
    )


def device_cells(d: DeviceSizes) -> tuple[Text, ...]:
    return (inert(d.ifname), _num(d.netns), *(_num(d.point(p).count) for p in DEVICE_POINTS))


def _errors(errors: int, what: str) -> str:
    return f", {errors} {what}" if errors else ""


def process_detail(p: ProcessSizes | None, scope: str) -> Group:
    """The selected process's read and write histograms (bytes per call)."""
    if p is None:
        return Group(Text("no process selected", style="dim"))
    who = inert(f"{p.comm} (PID {p.pid}, {p.protocol})", "bold")
    parts = []
    for label, io in (("read", p.read), ("write", p.write)):
        title = Text.assemble(
            f"{label} sizes, {scope}: ", who,
            f"  {io.count} calls, {human_bytes(io.bytes)}{_errors(io.errors, 'errors')}",
        )
        title.stylize("bold", 0, len(label) + 7)
        parts.append(HistogramView(io.histogram, title))
    return Group(*parts)


def device_detail(d: DeviceSizes | None, scope: str) -> Group:
    """The selected device's packet sizes at its four points, in the order a packet meets them."""
    if d is None:
        return Group(Text("no device selected", style="dim"))
    parts = []
    for point in DEVICE_POINTS:
        io = d.point(point)
        title = Text.assemble(
            inert(d.ifname, "bold"),
            f" {POINT_TITLES[point]}, {scope}: {io.count} packets, "
            f"{human_bytes(io.bytes)}{_errors(io.errors, 'refused')}",
        )
        parts.append(HistogramView(io.histogram, title))
    return Group(*parts)


class SizesPane(Vertical):
    """Process and device tables keyed by row; the detail follows the table cursors."""

    BINDINGS = [
        Binding("c", "toggle_cumulative", "cumulative"),
        Binding("d", "next_device", "device"),
    ]

    cumulative: reactive[bool] = reactive(False)
    filter_text: reactive[str] = reactive("")

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.snapshot: SizesSnapshot | None = None
        self.interval = 1.0
        self.process_totals = Totals(MAX_CUMULATIVE_PROCESSES)
        self.device_totals = Totals(MAX_CUMULATIVE_DEVICES)
        self.intervals_seen = 0
        self.selected_device: str | None = None
        self.process_view: Group = process_detail(None, "")
        self.device_view: Group = device_detail(None, "")

    def compose(self) -> ComposeResult:
        yield FixedLine("no data yet", id="sizes-summary", classes="pane-summary")
        processes = RowTable(id="sizes-processes")
        for key, label in PROCESS_COLUMNS:
            processes.add_column(label, key=key)
        yield processes
        with VerticalScroll(id="sizes-detail"):
            yield Panel(self.process_view, id="sizes-process-hist")
            devices = RowTable(id="sizes-devices")
            for key, label in DEVICE_COLUMNS:
                devices.add_column(label, key=key)
            yield devices
            yield Panel(self.device_view, id="sizes-device-hist")

    # -- data --------------------------------------------------------------

    def observe(self, snapshot: SizesSnapshot | None, interval: float) -> None:
        """Every new interval, shown or not (paused), goes into the cumulative totals."""
        if snapshot is not None:
            self.process_totals.add(snapshot.processes)
            self.device_totals.add(snapshot.devices)
            self.intervals_seen += 1

    def reset_history(self) -> None:
        """The display jumped in time: totals restart from the frame shown next."""
        self.process_totals = Totals(MAX_CUMULATIVE_PROCESSES)
        self.device_totals = Totals(MAX_CUMULATIVE_DEVICES)
        self.intervals_seen = 0

    def show(self, snapshot: SizesSnapshot | None, interval: float) -> None:
        self.snapshot = snapshot
        self.interval = interval
        self.refresh_rows()

    @property
    def scope(self) -> str:
        return f"since start ({self.intervals_seen} intervals)" if self.cumulative else "this interval"

    def processes(self) -> tuple[ProcessSizes, ...]:
        if self.cumulative:
            return self.process_totals.values()
        return self.snapshot.processes if self.snapshot else ()

    def devices(self) -> tuple[DeviceSizes, ...]:
        if self.cumulative:
            return self.device_totals.values()
        return self.snapshot.devices if self.snapshot else ()

    # -- view --------------------------------------------------------------

    def watch_cumulative(self) -> None:
        self.refresh_rows()

    def watch_filter_text(self) -> None:
        self.refresh_rows()

    def refresh_rows(self) -> None:
        if not self.is_mounted:
            return
        process_table = self.query_one("#sizes-processes", RowTable)
        device_table = self.query_one("#sizes-devices", RowTable)
        processes = {process_key(p): p for p in process_rows(self.processes(), self.filter_text)}
        devices = {device_key(d): d for d in device_rows(self.devices())}
        if self.selected_device not in devices:
            self.selected_device = next(iter(devices), None)
        with self.app.batch_update():
            sync_table(process_table, processes, process_cells)
            sync_table(device_table, devices, device_cells, self.selected_device)
            self.query_one("#sizes-summary", Static).update(self.summary(len(processes)))
            self.update_detail()

    def summary(self, shown: int) -> str:
        if self.snapshot is None and not self.intervals_seen:
            return "no data yet"
        source = self.snapshot.source if self.snapshot else "-"
        dropped = self.snapshot.dropped if self.snapshot else 0
        forgotten = self.process_totals.forgotten + self.device_totals.forgotten
        return (
            f"{'since start' if self.cumulative else 'this interval'} (c)  {shown} processes  "
            f"{len(self.devices())} devices  source {source}  dropped {dropped}"
            + (f"  forgotten {forgotten}" if self.cumulative and forgotten else "")
        )

    def update_detail(self) -> None:
        self.process_view = process_detail(self.selected_process(), self.scope)
        self.device_view = device_detail(self.selected_device_sizes(), self.scope)
        self.query_one("#sizes-process-hist", Static).update(self.process_view)
        self.query_one("#sizes-device-hist", Static).update(self.device_view)

    def selected_process(self) -> ProcessSizes | None:
        key = self.query_one("#sizes-processes", RowTable).cursor_key
        return next((p for p in self.processes() if process_key(p) == key), None)

    def selected_device_sizes(self) -> DeviceSizes | None:
        return next((d for d in self.devices() if device_key(d) == self.selected_device), None)

    # -- events and keys ---------------------------------------------------

    def on_row_table_row_highlighted(self, event: RowTable.RowHighlighted) -> None:
        if event.table.id == "sizes-devices":
            self.selected_device = event.row_key
        self.update_detail()

    def action_toggle_cumulative(self) -> None:
        self.cumulative = not self.cumulative

    def action_next_device(self) -> None:
        table = self.query_one("#sizes-devices", RowTable)
        if table.row_count:
            table.move_cursor((table.cursor_row + 1) % table.row_count)

    def set_filter(self, text: str) -> None:
        self.filter_text = text
