"""Panel lays the screen out only when its content's height changes; the panes' views use it."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import Static

from fakes import ScriptedSource, live, show_pane
from nettop.app import NettopApp
from nettop.panes.fixed_line import FixedLine
from nettop.panes.panel import Panel
from nettop.probes.base import ProbeState, ProbeStatus
from test_queues_pane import NOQUEUE, frame, snapshot, tbf


class OnePanel(App):
    CSS = "Panel { height: auto; width: 20; }"

    def compose(self) -> ComposeResult:
        yield Panel(Text("start"), id="panel")


class OneFixedLine(App):
    CSS = "FixedLine { height: 1; }"

    def compose(self) -> ComposeResult:
        yield FixedLine(id="line")


def lines(n: int, word: str = "line") -> Group:
    return Group(*(Text(f"{word} {i}") for i in range(n)))


def spy_layouts(monkeypatch, widget) -> list[bool]:
    """The layout flag of each Static.update() the widget makes."""
    asked: list[bool] = []
    update = Static.update

    def recording(self, content="", *, layout=True):
        if self is widget:
            asked.append(layout)
        return update(self, content, layout=layout)

    monkeypatch.setattr(Static, "update", recording)
    return asked


async def test_height_follows_content_and_same_height_only_repaints(monkeypatch):
    app = OnePanel()
    async with app.run_test(size=(40, 20)) as pilot:
        panel = app.query_one(Panel)
        asked = spy_layouts(monkeypatch, panel)
        panel.update(lines(3))
        await pilot.pause()
        assert panel.size.height == 3
        panel.update(lines(3, "other"))  # new text, same height
        await pilot.pause()
        panel.update(lines(5))
        await pilot.pause()
        assert panel.size.height == 5
        panel.update(lines(2))
        await pilot.pause()
        assert panel.size.height == 2
        assert asked == [True, False, True, True]


async def test_wrapped_lines_count_at_the_panels_width():
    app = OnePanel()
    async with app.run_test(size=(40, 20)) as pilot:
        panel = app.query_one(Panel)
        panel.update(Text("short"))
        await pilot.pause()
        panel.update(Text("a long line that wraps at twenty columns"))  # one line of text, three on screen
        await pilot.pause()
        assert panel.lines_shown == 3 and panel.size.height == 3


async def test_markup_strings_always_lay_out(monkeypatch):
    app = OnePanel()
    async with app.run_test(size=(40, 20)) as pilot:
        panel = app.query_one(Panel)
        asked = spy_layouts(monkeypatch, panel)
        panel.update("[b]one[/b]")
        panel.update("[b]two[/b]")
        await pilot.pause()
        assert asked == [True, True] and panel.lines_shown is None


async def test_queues_detail_redrawn_without_a_layout_each_interval(monkeypatch):
    frames = [frame(snapshot(tbf(sent=400 + i), NOQUEUE), t=float(i)) for i in range(4)]
    app = NettopApp(ScriptedSource(frames, live("queues")), autopoll=False)
    async with app.run_test(size=(150, 40)) as pilot:
        await show_pane(pilot, "queues")
        app.accept_frame(app.source.poll())
        await pilot.pause()
        asked = spy_layouts(monkeypatch, app.query_one("#queues-hist", Panel))
        for _ in range(3):
            app.accept_frame(app.source.poll())
            await pilot.pause()
        assert asked == [False, False, False]


async def test_fixed_lines_repaint_only_when_their_text_changes(monkeypatch):
    """The top line and time bar are rewritten twice a second: unchanged, they are not drawn."""
    frames = [frame(snapshot(tbf(sent=400), NOQUEUE), t=float(i)) for i in range(2)]
    app = NettopApp(ScriptedSource(frames, live("queues")), autopoll=False, loadavg=lambda: "0.00")
    async with app.run_test(size=(150, 40)) as pilot:
        app.accept_frame(app.source.poll())
        await pilot.pause()
        topline = app.query_one("#topline", FixedLine)
        repaints: list[str] = []
        refresh = FixedLine.refresh

        def counting(self, *args, **kwargs):
            if self is topline:
                repaints.append(str(self.content))
            return refresh(self, *args, **kwargs)

        monkeypatch.setattr(FixedLine, "refresh", counting)
        before = str(topline.content)
        app._update_topline()  # what the half-second timer does between frames
        app._update_topline()
        assert repaints == []
        app.accept_frame(app.source.poll())  # a frame a second later: a new clock
        await pilot.pause()
        assert len(repaints) == 1 and repaints[0] != before


async def test_fixed_line_redraws_a_text_that_differs_only_in_style():
    app = OneFixedLine()
    async with app.run_test(size=(40, 10)) as pilot:
        line = app.query_one(FixedLine)
        line.update(Text("same words", style="red"))
        await pilot.pause()
        green = Text("same words", style="green")
        line.update(green)
        await pilot.pause()
        assert line.content.style == "green"
        line.update(Text("same words", style="green"))  # equal in every way: not drawn again
        assert line.content is green


async def test_the_status_timer_rebuilds_the_top_lines_only_when_a_status_or_the_load_changed(monkeypatch):
    frames = [frame(snapshot(tbf(sent=400), NOQUEUE), t=1.0)]
    load = ["0.00"]
    source = ScriptedSource(frames, live("queues"))
    app = NettopApp(source, autopoll=False, loadavg=lambda: load[0])
    async with app.run_test(size=(150, 40)) as pilot:
        app.accept_frame(source.poll())
        await pilot.pause()
        rebuilt: list[int] = []
        update = NettopApp._update_topline
        monkeypatch.setattr(NettopApp, "_update_topline", lambda self, *read: rebuilt.append(1) or update(self, *read))
        app._status_tick()  # the app's own timer may have ticked already: then nothing is new here
        settled = len(rebuilt)
        app._status_tick()
        app._status_tick()
        assert settled <= 1 and len(rebuilt) == settled
        load[0] = "1.50"
        app._status_tick()
        assert len(rebuilt) == settled + 1 and "load 1.50" in str(app.query_one("#topline", FixedLine).content)
        source.status["tcp"] = ProbeStatus(ProbeState.UNAVAILABLE, reason="no tracepoint:sock:sock_send_length")
        app._status_tick()
        await pilot.pause()
        assert len(rebuilt) == settled + 2
        assert "no tracepoint:sock:sock_send_length" in str(app.query_one("#tcp-status", Static).content)
