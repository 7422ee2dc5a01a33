"""The dashboard shell: a header, one tab per pane, a time bar, and the poll loop.

The app never builds its own data source: it is handed a FrameSource (live probes, a
replayed file, or a test's scripted fake). Live, polls run in a thread worker and the
next poll is armed only after the previous one was shown, so polls never overlap. Every
frame goes into a bounded Timeline, so the user can pause and scrub back, live or not.
"""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Callable, Mapping, TextIO

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Footer, Input, Static, TabbedContent, TabPane

from nettop.heap import CollectorPacing
from nettop.model.frame import Frame
from nettop.panes.fixed_line import FixedLine
from nettop.panes.registry import PANES, PaneSpec
from nettop.probes.base import ProbeState, ProbeStatus
from nettop.recording import write_frame
from nettop.sampler import FrameSource
from nettop.timeline import Timeline

INTERVAL_STEPS = (0.5, 1.0, 2.0, 5.0, 10.0)
SPEEDS = (0.5, 1.0, 2.0, 4.0, 8.0)
STATUS_REFRESH_SECONDS = 0.5
JUMP_SECONDS = 60.0

HELP_TEXT = """\
nettop: live network dashboard (BPF)

  1-9        switch pane
  p, space   pause / resume (live: probes keep draining into history)
  , / .      one interval back / forward
  [ / ]      one minute back / forward
  g / G      start / end of history or recording
  < / >      slower / faster playback (0.5x - 8x)
  L          back to live
  + / -      longer / shorter interval (live)
  s          sort by the next column;  r  reverse the sort
             (or click a column header)
  /          filter rows: PID, port, address or COMM; Esc clears
  Enter      open the selected host's or connection's sockets (Esc back)
  b          Hosts: group by remote host, local process or remote port
  n          Hosts: reverse DNS names on/off
  c          Sizes: this interval / since start;  d  next device
  ?          this help
  q          quit (also Ctrl-C)

TCP pane: bytes each connection received (RX) and sent (TX) in the
last interval, from sock:sock_{recv,send}_length: counted once per
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


def time_bar(timeline: Timeline, replay: bool, playing: bool, speed: float, width: int = 30) -> Text:
    """`REPLAY ▶ 2x  12:01:05  [████▁▁▁▁] 35/120`: where the display is in its history."""
    index = timeline.index
    if index is None:
        return Text("no data yet")
    total = len(timeline)
    filled = round(width * (index + 1) / total)
    if replay:
        state = ("REPLAY ", "bold") if playing else ("REPLAY paused ", "reverse bold")
        if timeline.at_end and not playing:
            state = ("REPLAY end ", "reverse bold")
    elif timeline.following:
        state = ("LIVE ", "bold")
    else:
        behind = timeline.frame_at(total - 1).time - timeline.current().time
        state = (f"PAUSED -{behind:.0f}s ", "reverse bold")
    shown = time.strftime("%H:%M:%S", time.localtime(timeline.current().time))
    return Text.assemble(
        state,
        f"{'▶' if playing else '||'} {speed:g}x  {shown}  ",
        ("█" * filled, "bold"),
        ("▁" * (width - filled), "dim"),
        f" {index + 1}/{total}",
        f"  (history evicted {timeline.evicted})" if timeline.evicted else "",
    )


class NettopApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "nettop"
    AUTO_FOCUS = "RowTable"
    BINDINGS = [
        Binding("q", "quit", "quit"),
        Binding("ctrl+c", "quit", "quit", show=False, priority=True),
        Binding("question_mark", "help", "help"),
        Binding("p,space", "toggle_pause", "pause"),
        Binding("comma", "step(-1)", "back", show=False),
        Binding("full_stop", "step(1)", "fwd", show=False),
        Binding("left_square_bracket", "jump(-1)", "-1m", show=False),
        Binding("right_square_bracket", "jump(1)", "+1m", show=False),
        Binding("g", "to_start", show=False),
        Binding("G", "to_end", show=False),
        Binding("less_than_sign", "speed(-1)", show=False),
        Binding("greater_than_sign", "speed(1)", show=False),
        Binding("L", "live", "live", show=False),
        Binding("plus,equals_sign", "slower", "+interval"),
        Binding("minus", "faster", "-interval"),
        Binding("s", "next_sort", "sort"),
        Binding("r", "reverse_sort", "reverse", show=False),
        Binding("slash", "filter", "filter"),
        Binding("escape", "clear_filter", show=False),
        *[Binding(str(i), f"pane('{spec.key}')", show=False) for i, spec in enumerate(PANES, start=1)],
    ]

    interval: reactive[float] = reactive(1.0)
    speed: reactive[float] = reactive(1.0)

    def __init__(
        self,
        source: FrameSource,
        interval: float = 1.0,
        record_to: TextIO | None = None,
        loadavg: Callable[[], str] = read_loadavg,
        clock: Callable[[], float] = time.time,
        autopoll: bool = True,
        timeline: Timeline | None = None,
        replay: bool = False,
        heap: CollectorPacing | None = None,
    ) -> None:
        super().__init__()
        self.source = source
        self.set_reactive(NettopApp.interval, interval)
        self.record_to = record_to
        self._loadavg = loadavg
        self._clock = clock
        self._autopoll = autopoll
        self.timeline = timeline if timeline is not None else Timeline()
        self.heap = heap  # None: Python's collector as it is (tests, scripts)
        self.replay = replay
        self.playing = replay
        self.shown: Frame | None = None
        self.frames_polled = 0
        self._play_timer: Timer | None = None
        self._pane_status_lines: dict[str, str] = {}
        self._last_tick: tuple = ()  # what the status timer saw last (_status_tick)

    @property
    def paused(self) -> bool:
        return not self.playing if self.replay else not self.timeline.following

    def compose(self) -> ComposeResult:
        yield FixedLine(id="topline")
        with TabbedContent(id="panes", initial=PANES[0].key):
            for number, spec in enumerate(PANES, start=1):
                with TabPane(f"{number} {spec.title}", id=spec.key):
                    with Vertical():
                        yield Static("", id=f"{spec.key}-status", classes="pane-status")
                        pane = spec.factory()
                        pane.id = f"{spec.key}-pane"
                        yield pane
        yield Input(placeholder="filter: PID, port, address or COMM (Enter to apply, Esc to clear)", id="filter")
        yield FixedLine(id="timebar")
        yield Footer()

    def on_mount(self) -> None:
        self.source.start()
        self.set_interval(STATUS_REFRESH_SECONDS, self._status_tick)
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self.exit)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
        if self.heap is not None and self.replay:
            # the whole recording is kept; live, the first frame polled collects (after the
            # first paint: collecting the start-up heap here held the first frame ~0.2-1 s)
            self.heap.frames_kept()
        if self.replay:
            self.timeline.to_start()
            self._show_current(jumped=True)
            if self._autopoll:
                self._arm_play()
        elif self._autopoll:
            self._arm_poll()
        self._update_topline()

    def on_unmount(self) -> None:
        self.source.close()
        if self.heap is not None:
            self.heap.release()

    # -- live polling ----------------------------------------------------

    def _arm_poll(self) -> None:
        self.set_timer(self.interval, self.poll_now)

    def poll_now(self) -> None:
        self._poll_worker()

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def _poll_worker(self) -> None:
        frame = self.source.poll()
        self.call_from_thread(self.accept_frame, frame)

    def accept_frame(self, frame: Frame) -> None:
        """A polled frame arrives: record it, keep it in history, show it if following."""
        self.frames_polled += 1
        if self.record_to is not None:
            write_frame(self.record_to, frame)
        self.timeline.append(frame)
        self._observe(frame)
        if self.heap is not None:
            self.heap.frames_kept()
        if self.timeline.following:
            self._show_current()
        else:
            self._update_topline()
        if self._autopoll:
            self._arm_poll()

    # -- replay ----------------------------------------------------------

    def _arm_play(self) -> None:
        if self._play_timer is not None:
            self._play_timer.stop()
        self._play_timer = None
        if not self.playing:
            return
        current = self.timeline.current()
        delay = (current.interval if current else 1.0) / self.speed
        self._play_timer = self.set_timer(delay, self.play_tick)

    def play_tick(self) -> None:
        """Advance one recorded interval; stop at the end of the recording."""
        if self.timeline.step(1):
            self._observe(self.timeline.current())
        else:
            self.playing = False
        self._show_current()
        if self._autopoll:
            self._arm_play()

    # -- showing ---------------------------------------------------------

    def _observe(self, frame: Frame) -> None:
        for spec in PANES:
            observe = getattr(self.pane(spec.key), "observe", None)
            if observe is not None:
                observe(spec.data(frame), frame.interval)

    def _show_current(self, jumped: bool = False) -> None:
        frame = self.timeline.current()
        if frame is None:
            return
        if jumped:
            for spec in PANES:
                reset = getattr(self.pane(spec.key), "reset_history", None)
                if reset is not None:
                    reset()
            self._observe(frame)
        self.show_frame(frame)

    def show_frame(self, frame: Frame) -> None:
        """Draw the frame on the visible pane only (and on screens stacked over the dashboard
        that take frames, such as the socket detail): a hidden pane is drawn when its tab is
        opened. Redrawing every table every interval was a third of the UI's time with
        10,000 connections."""
        self.shown = frame
        self._show_pane(self.dashboard(TabbedContent).active)
        for screen in self.screen_stack[1:]:
            show = getattr(screen, "show_frame", None)
            if show is not None:
                show(frame)
        self._update_topline()

    def _show_pane(self, key: str) -> None:
        spec = next((s for s in PANES if s.key == key), None)
        if spec is not None and self.shown is not None:
            self.pane(key).show(spec.data(self.shown), self.shown.interval)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane is not None:
            self._show_pane(event.pane.id)

    def dashboard(self, selector, expect_type=None):
        """A widget of the dashboard screen, even while another screen (help, detail) is on top."""
        screen = self.screen_stack[0] if self.screen_stack else self.screen
        return screen.query_one(selector, expect_type) if expect_type else screen.query_one(selector)

    def pane(self, key: str):
        return self.dashboard(f"#{key}-pane")

    def active_pane(self):
        return self.pane(self.dashboard(TabbedContent).active)

    def _focus_active_pane(self) -> None:
        focusable = [w for w in self.active_pane().query("*") if w.focusable]
        if focusable:
            focusable[0].focus()

    def _route(self, method: str, *args) -> None:
        handler = getattr(self.active_pane(), method, None)
        if handler is not None:
            handler(*args)

    # -- header and time bar ---------------------------------------------

    def _status_tick(self) -> None:
        """The half-second timer. Between frames only the probes' statuses, the load average
        and, before the first frame, the clock can change what the top lines show (frames and
        keys redraw them themselves), so they are rebuilt only then, from what the check read.
        At 10,000 connections the top lines took 2.0 ms a second of the UI thread rebuilt on
        every tick, at most 1.7 this way (0.78 in the ticks, 0.96 in rebuilds, frames' included)."""
        statuses, load = self.source.statuses(), self._loadavg()
        seen = (statuses, load, None if self.shown else int(self._clock()))
        if seen != self._last_tick:
            self._last_tick = seen
            self._update_topline(statuses, load)

    def _update_topline(self, statuses: Mapping[str, ProbeStatus] | None = None, load: str | None = None) -> None:
        """`statuses` and `load`: as just read, or None to read them."""
        if not self.screen_stack:  # a timer firing during shutdown
            return
        try:
            topline = self.dashboard("#topline", Static)
        except NoMatches:  # shutdown with another screen on top: the dashboard's widgets are gone first
            return
        if statuses is None:
            statuses = self.source.statuses()
        now = time.strftime("%H:%M:%S", time.localtime(self.shown.time if self.shown else self._clock()))
        live = sum(1 for spec in PANES if (s := statuses.get(spec.status_key)) and s.state is ProbeState.LIVE)
        dropped = sum(getattr(snapshot, "dropped", 0) for snapshot in (self.shown.panes.values() if self.shown else ()))
        interval = self.shown.interval if self.replay and self.shown else self.interval
        load = "" if self.replay else f"load {self._loadavg() if load is None else load}  "
        line = Text.assemble(
            ("nettop ", "bold"),
            f"{now}  {load}interval {interval:.3g}s  panes live {live}/{len(PANES)}  dropped {dropped}",
        )
        topline.update(line)
        self.dashboard("#timebar", Static).update(
            time_bar(self.timeline, self.replay, self.playing if self.replay else self.timeline.following, self.speed)
        )
        for spec in PANES:
            self._update_pane_status(spec, statuses.get(spec.status_key))

    def _update_pane_status(self, spec: PaneSpec, status: ProbeStatus | None) -> None:
        widget = self.dashboard(f"#{spec.key}-status", Static)
        line = f"{spec.title}: {describe_status(status)}"
        if line != self._pane_status_lines.get(spec.key):  # its height follows the text: a new one lays out
            self._pane_status_lines[spec.key] = line
            widget.update(Text(line))
        widget.set_class(status is not None and status.state is ProbeState.UNAVAILABLE, "unavailable")

    # -- actions ---------------------------------------------------------

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_toggle_pause(self) -> None:
        if self.replay:
            if not self.playing and self.timeline.at_end:
                self.timeline.to_start()
                self._show_current(jumped=True)
            self.playing = not self.playing
            self._arm_play()
        elif self.timeline.following:
            self.timeline.pin()
        else:
            self.timeline.follow()
            self._show_current()
        self._update_topline()

    def _moved(self, moved: bool, jumped: bool = False) -> None:
        if moved:
            self._show_current(jumped)
        self._update_topline()

    def action_step(self, count: int) -> None:
        if self.replay:
            self.playing = False
            self._arm_play()
        moved = self.timeline.step(count)
        if moved and count > 0 and self.replay:
            self._observe(self.timeline.current())
        self._moved(moved, jumped=count < 0)

    def action_jump(self, direction: int) -> None:
        if self.replay:
            self._arm_play()
        self._moved(self.timeline.seek_seconds(direction * JUMP_SECONDS), jumped=True)

    def action_to_start(self) -> None:
        self.timeline.to_start()
        self._moved(True, jumped=True)

    def action_to_end(self) -> None:
        if self.replay:
            self.timeline.to_end()
        else:
            self.timeline.follow()
        self._moved(True, jumped=True)

    def action_live(self) -> None:
        if not self.replay:
            self.timeline.follow()
            self._moved(True, jumped=True)

    def action_speed(self, direction: int) -> None:
        position = SPEEDS.index(self.speed) if self.speed in SPEEDS else 1
        self.speed = SPEEDS[max(0, min(len(SPEEDS) - 1, position + direction))]
        if self.replay:
            self._arm_play()
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
        self.dashboard(TabbedContent).active = pane
        self.call_after_refresh(self._focus_active_pane)

    def action_next_sort(self) -> None:
        self._route("cycle_sort")

    def action_reverse_sort(self) -> None:
        self._route("reverse_sort")

    def action_filter(self) -> None:
        field = self.dashboard("#filter", Input)
        field.add_class("visible")
        field.focus()

    def action_clear_filter(self) -> None:
        field = self.dashboard("#filter", Input)
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
