"""The TCP pane, driven headlessly from constructed snapshots."""

from __future__ import annotations

from textual.geometry import Region
from textual.widgets import Static

from fakes import ScriptedSource, live
from nettop.app import HelpScreen, NettopApp
from nettop.model.frame import Frame
from nettop.model.tcp import TcpConnection, TcpSnapshot
from nettop.panes.row_table import RowTable
from nettop.panes.tcp import visible_rows


def conn(pid, comm, rx, tx, lport=5201, raddr="10.0.0.2", rport=40000, laddr="10.0.0.1", family=4):
    return TcpConnection(pid, comm, family, laddr, lport, raddr, rport, rx, tx)


CONNECTIONS = (
    conn(100, "nginx", 5_000, 1_000_000, rport=40001),
    conn(200, "sshd", 300, 200, lport=22, rport=50000),
    conn(300, "iperf3", 9_000_000, 0, rport=40003, raddr="fd00::2", laddr="fd00::1", family=6),
)


def frame(*connections, interval=1.0, time=1_800_000_000.0):
    return Frame(time=time, interval=interval, panes={"tcp": TcpSnapshot("tracepoint", 3, tuple(connections))})


def table_rows(app) -> list[list[str]]:
    table = app.query_one("#tcp-table", RowTable)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def test_visible_rows_sort_and_filter():
    snapshot = TcpSnapshot("tracepoint", 0, CONNECTIONS)
    assert [c.pid for c in visible_rows(snapshot)] == [300, 100, 200]
    assert [c.pid for c in visible_rows(snapshot, "comm", reverse=False)] == [300, 100, 200]
    assert [c.pid for c in visible_rows(snapshot, "pid", reverse=False)] == [100, 200, 300]
    assert [c.pid for c in visible_rows(snapshot, filter_text="22")] == [200]
    assert [c.pid for c in visible_rows(snapshot, filter_text="fd00")] == [300]
    assert [c.pid for c in visible_rows(snapshot, filter_text="NGI")] == [100]
    assert [c.pid for c in visible_rows(snapshot, filter_text="300")] == [300]
    assert visible_rows(None) == []


async def test_rows_render_from_snapshot():
    app = NettopApp(ScriptedSource([frame(*CONNECTIONS)], live("tcp")), autopoll=False)
    async with app.run_test(size=(120, 30)) as pilot:
        app.accept_frame(app.source.poll())
        await pilot.pause()
        rows = table_rows(app)
        assert [r[0] for r in rows] == ["300", "100", "200"]
        assert rows[0][1:4] == ["iperf3", "[fd00::1]:5201", "[fd00::2]:40003"]
        assert rows[0][4:6] == [str(9_000_000 // 1024), "0"]
        assert rows[1][7] == "976.6 KiB/s"
        summary = str(app.query_one("#tcp-summary", Static).render())
        assert "3 connections" in summary and "dropped 3" in summary
        status = str(app.query_one("#tcp-status", Static).render())
        assert "live (tracepoint)" in status


async def test_sort_keys_and_header_click():
    app = NettopApp(ScriptedSource([frame(*CONNECTIONS)], live("tcp")), autopoll=False)
    async with app.run_test(size=(120, 30)) as pilot:
        app.accept_frame(app.source.poll())
        await pilot.press("s")  # total -> pid (wraps to the first column)
        await pilot.pause()
        assert [r[0] for r in table_rows(app)] == ["300", "200", "100"]
        await pilot.press("r")
        await pilot.pause()
        assert [r[0] for r in table_rows(app)] == ["100", "200", "300"]
        await pilot.click("#tcp-table", offset=(12, 0))  # the COMM header
        await pilot.pause()
        assert [r[1] for r in table_rows(app)] == ["iperf3", "nginx", "sshd"]


async def test_filter_and_clear():
    app = NettopApp(ScriptedSource([frame(*CONNECTIONS)], live("tcp")), autopoll=False)
    async with app.run_test(size=(100, 30)) as pilot:
        app.accept_frame(app.source.poll())
        await pilot.press("slash", "s", "s", "h")
        await pilot.pause()
        assert [r[1] for r in table_rows(app)] == ["sshd"]
        await pilot.press("enter")
        await pilot.pause()
        assert [r[1] for r in table_rows(app)] == ["sshd"]
        await pilot.press("escape")
        await pilot.pause()
        assert len(table_rows(app)) == 3


async def test_pause_holds_the_display_until_resumed():
    first = frame(conn(1, "old", 10, 10))
    second = frame(conn(2, "new", 20, 20))
    app = NettopApp(ScriptedSource([first, second], live("tcp")), autopoll=False)
    async with app.run_test() as pilot:
        app.accept_frame(app.source.poll())
        await pilot.press("p")
        app.accept_frame(app.source.poll())
        await pilot.pause()
        assert [r[1] for r in table_rows(app)] == ["old"]
        assert "PAUSED" in str(app.query_one("#timebar", Static).render())
        await pilot.press("p")
        await pilot.pause()
        assert [r[1] for r in table_rows(app)] == ["new"]


async def test_help_screen_opens_and_closes():
    app = NettopApp(ScriptedSource([], live("tcp")), autopoll=False)
    async with app.run_test() as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)


async def test_interval_keys_step_through_choices():
    app = NettopApp(ScriptedSource([], live("tcp")), interval=1.0, autopoll=False)
    async with app.run_test() as pilot:
        await pilot.press("plus")
        assert app.interval == 2.0
        await pilot.press("minus", "minus")
        assert app.interval == 0.5


async def test_hostile_process_names_render_inert():
    hostile = conn(666, "[bold red]x[/]\x1b[2J\x1b]0;pwn\x07", 50, 50)
    app = NettopApp(ScriptedSource([frame(hostile)], live("tcp")), autopoll=False)
    async with app.run_test(size=(120, 20)) as pilot:
        app.accept_frame(app.source.poll())
        await pilot.pause()
        table = app.query_one("#tcp-table", RowTable)
        shown = "".join(segment.text for segment in table.render_lines(Region(0, 1, table.size.width, 1))[0])
        assert "[bold red]x[/]" in shown  # drawn as typed: RowTable never parses a cell as markup
        assert "\x1b" not in shown and "\x07" not in shown
        assert "\\x1b[2J" in shown


async def test_quit_closes_the_source():
    source = ScriptedSource([], live("tcp"))
    app = NettopApp(source, autopoll=False)
    async with app.run_test() as pilot:
        assert source.started
        await pilot.press("q")
    assert source.closed


async def test_frames_and_status_updates_keep_flowing_under_the_help_screen():
    source = ScriptedSource([frame(*CONNECTIONS), frame(conn(7, "later", 1, 1))], live("tcp"))
    app = NettopApp(source, autopoll=False)
    async with app.run_test() as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        app.accept_frame(source.poll())
        app._update_topline()
        await pilot.press("escape")
        await pilot.pause()
        assert [r[1] for r in table_rows(app)] == ["iperf3", "nginx", "sshd"]


async def test_number_keys_switch_panes_and_focus_them():
    app = NettopApp(ScriptedSource([frame(*CONNECTIONS)], live("tcp")), autopoll=False)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("3")
        await pilot.pause()
        key = app.dashboard("TabbedContent").active
        assert app.focused is not None and app.pane(key) in app.focused.ancestors_with_self


async def test_a_huge_interval_draws_only_the_top_rows_but_filters_all():
    from nettop.panes.table import MAX_TABLE_ROWS

    many = [conn(10_000 + i, f"w{i}", i, 0, rport=20_000 + i) for i in range(MAX_TABLE_ROWS + 300)]
    app = NettopApp(ScriptedSource([frame(*many)], live("tcp")), autopoll=False)
    async with app.run_test(size=(120, 30)) as pilot:
        app.accept_frame(app.source.poll())
        await pilot.pause()
        rows = table_rows(app)
        assert len(rows) == MAX_TABLE_ROWS and rows[0][1] == f"w{len(many) - 1}"  # the busiest first
        summary = str(app.query_one("#tcp-summary", Static).render())
        assert f"{len(many)} connections ({MAX_TABLE_ROWS} shown)" in summary
        app.pane("tcp").set_filter("w3")  # w3, w30..w39, w300..w399: found beyond the cap too
        await pilot.pause()
        assert len(table_rows(app)) == 111
