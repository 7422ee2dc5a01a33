"""Replay and live rewind, driven through the keys a user presses."""

from __future__ import annotations

from textual.widgets import Static

from fakes import ScriptedSource, live
from nettop.app import NettopApp
from nettop.model.frame import Frame
from nettop.model.tcp import TcpConnection, TcpSnapshot
from nettop.panes.row_table import RowTable
from nettop.replay import ReplaySource
from nettop.timeline import Timeline


def frames(n, start=1_800_000_000.0):
    return [
        Frame(start + i, 1.0, {"tcp": TcpSnapshot("tracepoint", 0, (
            TcpConnection(1000 + i, f"proc{i}", 4, "10.0.0.1", 80, "10.0.0.2", 5000, 10, 10),))})
        for i in range(n)
    ]


def shown_pid(app) -> int:
    return int(str(app.query_one("#tcp-table", RowTable).get_row_at(0)[0]))


def timebar(app) -> str:
    return str(app.query_one("#timebar", Static).render())


def replay_app(n=150):
    recorded = frames(n)
    return NettopApp(ReplaySource(recorded, "demo.jsonl"), timeline=Timeline(recorded, max_frames=n),
                     replay=True, autopoll=False)


async def test_replay_starts_at_the_beginning_and_plays_forward():
    app = replay_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        assert shown_pid(app) == 1000 and "REPLAY" in timebar(app) and "1/150" in timebar(app)
        app.play_tick()
        app.play_tick()
        await pilot.pause()
        assert shown_pid(app) == 1002
        status = str(app.query_one("#tcp-status", Static).render())
        assert "replay of demo.jsonl, recorded via tracepoint" in status


async def test_pause_step_and_jump():
    app = replay_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("space")
        assert "REPLAY paused" in timebar(app)
        await pilot.press("full_stop", "full_stop", "full_stop", "comma")
        await pilot.pause()
        assert shown_pid(app) == 1002
        await pilot.press("right_square_bracket")
        await pilot.pause()
        assert shown_pid(app) == 1062
        await pilot.press("left_square_bracket")
        await pilot.pause()
        assert shown_pid(app) == 1002
        await pilot.press("G")
        await pilot.pause()
        assert shown_pid(app) == 1149
        await pilot.press("g")
        await pilot.pause()
        assert shown_pid(app) == 1000


async def test_speed_keys_clamp_between_half_and_eight():
    app = replay_app()
    async with app.run_test() as pilot:
        await pilot.press("greater_than_sign")
        assert app.speed == 2.0
        await pilot.press(*["greater_than_sign"] * 5)
        assert app.speed == 8.0 and "8x" in timebar(app)
        await pilot.press(*["less_than_sign"] * 6)
        assert app.speed == 0.5


async def test_end_of_recording_stops_and_space_restarts():
    app = replay_app(3)
    async with app.run_test() as pilot:
        for _ in range(4):
            app.play_tick()
        await pilot.pause()
        assert shown_pid(app) == 1002 and not app.playing and "REPLAY end" in timebar(app)
        await pilot.press("space")
        await pilot.pause()
        assert app.playing and shown_pid(app) == 1000


async def test_live_rewind_scrubs_back_and_returns_to_live():
    source = ScriptedSource(frames(10), live("tcp"))
    app = NettopApp(source, autopoll=False)
    async with app.run_test(size=(120, 30)) as pilot:
        for _ in range(5):
            app.accept_frame(source.poll())
        await pilot.press("p", "comma", "comma")
        await pilot.pause()
        assert shown_pid(app) == 1002 and "PAUSED -2s" in timebar(app)
        app.accept_frame(source.poll())  # probes keep draining while the user looks back
        await pilot.pause()
        assert shown_pid(app) == 1002 and "3/6" in timebar(app)
        await pilot.press("L")
        await pilot.pause()
        assert shown_pid(app) == 1005 and "LIVE" in timebar(app)
        app.accept_frame(source.poll())
        await pilot.pause()
        assert shown_pid(app) == 1006


async def test_cumulative_panes_keep_counting_while_the_display_is_paused():
    from nettop.model.sizes import SizesSnapshot

    sized = [Frame(1_800_000_000.0 + i, 1.0, {"sizes": SizesSnapshot("tracepoint", 0, (), ())}) for i in range(4)]
    source = ScriptedSource(sized, live("sizes"))
    app = NettopApp(source, autopoll=False)
    async with app.run_test() as pilot:
        app.accept_frame(source.poll())
        await pilot.press("p")
        app.accept_frame(source.poll())
        app.accept_frame(source.poll())
        await pilot.pause()
        assert app.pane("sizes").intervals_seen == 3
        await pilot.press("L")  # back to live is a jump: totals restart from the frame shown
        await pilot.pause()
        assert app.pane("sizes").intervals_seen == 1
