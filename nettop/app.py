"""The dashboard shell: a header, one tab per pane, and the poll loop.

The app never builds its own data source: it is handed a FrameSource (live probes, a
replay, or a test's scripted fake). Polls run in a thread worker and the next poll is
armed only after the previous one was shown, so polls never overlap.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Callable, TextIO

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Static, TabbedContent, TabPane

from nettop.model.frame import Frame
from nettop.panes.registry import PANES, PaneSpec
from nettop.probes.base import ProbeState, ProbeStatus
from nettop.recording import write_frame
from nettop.sampler import FrameSource

INTERVAL_STEPS = (0.5, 1.0, 2.0, 5.0, 10.0)
STATUS_REFRESH_SECONDS = 0.5

HELP_TEXT = """\
nettop: live network dashboard (BPF)

  1-5        switch pane
  p, space   pause / resume the display (probes keep draining)
  + / -      longer / shorter interval
  s          sort by the next column;  r  reverse the sort
             (or click a column header)
  /          filter rows: PID, port, address or COMM; Esc clears
  ?          this help
  q          quit (also Ctrl-C)

TCP pane: bytes each connection received (RX) and sent (TX) in the
last interval, from sock:sock_{recv,send}_length. Counted once per
socket read/write, in the process that made the call.
"""


def read_loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "-"


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "close")]

    def compose(self) -> ComposeResult:
        yield Static(HELP_TEXT, id="help-body")


def describe_status(status: ProbeStatus | None) -> str:
    return status.describe() if status is not None else "not started"


class NettopApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "nettop"
    AUTO_FOCUS = "DataTable"
    BINDINGS = [
        Binding("q", "quit", "quit"),
        Binding("ctrl+c", "quit", "quit", show=False, priority=True),
        Binding("question_mark", "help", "help"),
        Binding("p,space", "toggle_pause", "pause"),
        Binding("plus,equals_sign", "slower", "+interval"),
        Binding("minus", "faster", "-interval"),
        Binding("s", "next_sort", "sort"),
        Binding("r", "reverse_sort", "reverse", show=False),
        Binding("slash", "filter", "filter"),
        Binding("escape", "clear_filter", show=False),
        *[Binding(str(i), f"pane('{spec.key}')", show=False) for i, spec in enumerate(PANES, start=1)],
    ]

    paused: reactive[bool] = reactive(False)
    interval: reactive[float] = reactive(1.0)

    def __init__(
        self,
        source: FrameSource,
        interval: float = 1.0,
        record_to: TextIO | None = None,
        loadavg: Callable[[], str] = read_loadavg,
        clock: Callable[[], float] = time.time,
        autopoll: bool = True,
    ) -> None:
        super().__init__()
        self.source = source
        self.set_reactive(NettopApp.interval, interval)
        self.record_to = record_to
        self._loadavg = loadavg
        self._clock = clock
        self._autopoll = autopoll
        self.latest: Frame | None = None
        self.shown: Frame | None = None
        self.frames_polled = 0

    def compose(self) -> ComposeResult:
        yield Static(id="topline")
        with TabbedContent(id="panes", initial=PANES[0].key):
            for number, spec in enumerate(PANES, start=1):
                with TabPane(f"{number} {spec.title}", id=spec.key):
                    with Vertical():
                        yield Static("", id=f"{spec.key}-status", classes="pane-status")
                        pane = spec.factory()
                        pane.id = f"{spec.key}-pane"
                        yield pane
        yield Input(placeholder="filter: PID, port, address or COMM (Enter to apply, Esc to clear)", id="filter")
        yield Footer()

    def on_mount(self) -> None:
        self.source.start()
        self._update_topline()
        self.set_interval(STATUS_REFRESH_SECONDS, self._update_topline)
        try:
            import asyncio

            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self.exit)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
        if self._autopoll:
            self._arm_poll()

    def on_unmount(self) -> None:
        self.source.close()

    # -- polling ---------------------------------------------------------

    def _arm_poll(self) -> None:
        self.set_timer(self.interval, self.poll_now)

    def poll_now(self) -> None:
        self._poll_worker()

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def _poll_worker(self) -> None:
        frame = self.source.poll()
        self.call_from_thread(self.accept_frame, frame)

    def accept_frame(self, frame: Frame) -> None:
        """A polled frame arrives: record it, show it unless paused, arm the next poll."""
        self.latest = frame
        self.frames_polled += 1
        if self.record_to is not None:
            write_frame(self.record_to, frame)
        if not self.paused:
            self.show_frame(frame)
        if self._autopoll:
            self._arm_poll()

    def show_frame(self, frame: Frame) -> None:
        self.shown = frame
        for spec in PANES:
            self.pane(spec.key).show(frame.panes.get(spec.key), frame.interval)
        self._update_topline()

    def pane(self, key: str):
        return self.query_one(f"#{key}-pane")

    def active_pane(self):
        return self.pane(self.query_one(TabbedContent).active)

    def _focus_active_pane(self) -> None:
        focusable = [w for w in self.active_pane().query("*") if w.focusable]
        if focusable:
            focusable[0].focus()

    def _route(self, method: str, *args) -> None:
        handler = getattr(self.active_pane(), method, None)
        if handler is not None:
            handler(*args)

    # -- header ----------------------------------------------------------

    def _update_topline(self) -> None:
        statuses = self.source.statuses()
        now = time.strftime("%H:%M:%S", time.localtime(self.shown.time if self.shown else self._clock()))
        state = "PAUSED" if self.paused else "live"
        live = sum(1 for spec in PANES if (s := statuses.get(spec.key)) and s.state is ProbeState.LIVE)
        dropped = sum(getattr(snapshot, "dropped", 0) for snapshot in (self.shown.panes.values() if self.shown else ()))
        line = Text.assemble(
            ("nettop ", "bold"),
            f"{now}  load {self._loadavg()}  interval {self.interval:g}s  ",
            (state, "reverse bold" if self.paused else ""),
            f"  panes live {live}/{len(PANES)}  dropped {dropped}",
        )
        self.query_one("#topline", Static).update(line)
        for spec in PANES:
            self._update_pane_status(spec, statuses.get(spec.key))

    def _update_pane_status(self, spec: PaneSpec, status: ProbeStatus | None) -> None:
        widget = self.query_one(f"#{spec.key}-status", Static)
        widget.update(Text(f"{spec.title}: {describe_status(status)}"))
        widget.set_class(status is not None and status.state is ProbeState.UNAVAILABLE, "unavailable")

    # -- actions ---------------------------------------------------------

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused and self.latest is not None:
            self.show_frame(self.latest)
        self._update_topline()

    def _step_interval(self, direction: int) -> None:
        steps = list(INTERVAL_STEPS)
        position = min(range(len(steps)), key=lambda i: abs(steps[i] - self.interval))
        self.interval = steps[max(0, min(len(steps) - 1, position + direction))]
        self._update_topline()

    def action_slower(self) -> None:
        self._step_interval(+1)

    def action_faster(self) -> None:
        self._step_interval(-1)

    def action_pane(self, pane: str) -> None:
        self.query_one(TabbedContent).active = pane

    def action_next_sort(self) -> None:
        self._route("cycle_sort")

    def action_reverse_sort(self) -> None:
        self._route("reverse_sort")

    def action_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.add_class("visible")
        field.focus()

    def action_clear_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.value = ""
        field.remove_class("visible")
        self._route("set_filter", "")
        self._focus_active_pane()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self._route("set_filter", event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            event.input.remove_class("visible")
            self._focus_active_pane()
