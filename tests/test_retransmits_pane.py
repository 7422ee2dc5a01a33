"""The Retransmits pane, driven headlessly from constructed snapshots."""

from __future__ import annotations

from rich.console import Console
from textual.widgets import Static

from fakes import ScriptedSource, live, show_pane
from nettop.app import NettopApp
from nettop.model.frame import Frame
from nettop.model.retransmits import RetransmitEvent, RetransmitFlow, RetransmitsSnapshot
from nettop.panes.retransmits import LOG_LINES, default_palette, event_line, state_text, visible_rows
from nettop.panes.row_table import RowTable

T0 = 1_800_000_000.0


def flow(pid, comm, state, events, segments, lport=40000, raddr="10.0.0.2", rport=5201, seen=T0):
    return RetransmitFlow(pid, comm, 4, "10.0.0.1", lport, raddr, rport, state, events, segments, seen)


def event(i, kind="R", state="ESTABLISHED", pid=100, comm="iperf3", segments=10):
    return RetransmitEvent(T0 + i, kind, pid, comm, 4, "10.0.0.1", 40000 + i, "10.0.0.2", 5201, state, segments)


COUNTERS = {
    "RetransSegs": 40, "OutSegs": 4000, "TCPFastRetrans": 30, "TCPSlowStartRetrans": 5,
    "TCPTimeouts": 2, "TCPLossProbes": 1, "TCPSynRetrans": 3,
}


def snapshot(flows=(), events=(), counters=COUNTERS, lost=0):
    return RetransmitsSnapshot("tracepoint", lost, tuple(flows), tuple(events), dict(counters), "RS", 0, 0)


def frame(snap, t=T0):
    return Frame(time=t, interval=1.0, panes={"retransmits": snap})


def rendered(renderable, width=200) -> str:
    console = Console(record=True, width=width, color_system=None)
    console.print(renderable)
    return console.export_text()


def table_rows(app) -> list[list[str]]:
    table = app.query_one("#retransmits-table", RowTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def open_pane(pilot):
    await show_pane(pilot, "retransmits")


def test_sort_and_filter_rows():
    flows = (flow(1, "a", "ESTABLISHED", 3, 30), flow(2, "b", "SYN_SENT", 5, 5, lport=2), flow(None, "-", "ESTABLISHED", 1, 90, lport=3))
    assert [f.segments for f in visible_rows(flows)] == [90, 30, 5]
    assert [f.events for f in visible_rows(flows, "events")] == [5, 3, 1]
    assert [f.pid for f in visible_rows(flows, filter_text="syn_sent")] == [2]


async def test_flow_table_sums_intervals_and_sorts_by_segments():
    first = snapshot([flow(100, "iperf3", "ESTABLISHED", 2, 40), flow(200, "curl", "SYN_SENT", 1, 1, lport=50000, rport=80)])
    second = snapshot([flow(100, "iperf3", "ESTABLISHED", 3, 50, seen=T0 + 1), flow(None, "-", "SYN_RECV", 4, 4, lport=8080, rport=33000)])
    app = NettopApp(ScriptedSource([frame(first), frame(second, T0 + 1)], live("retransmits")), autopoll=False)
    async with app.run_test(size=(160, 40)) as pilot:
        await open_pane(pilot)
        app.accept_frame(app.source.poll())
        app.accept_frame(app.source.poll())
        await pilot.pause()
        rows = table_rows(app)
        assert [r[0] for r in rows] == ["100", "-", "200"]  # segments 90, 4, 1
        assert rows[0][1:7] == ["iperf3", "10.0.0.1:40000", "10.0.0.2:5201", "ESTABLISHED", "5", "90"]
        assert rows[2][4] == "SYN_SENT"
        summary = str(app.query_one("#retransmits-summary", Static).render())
        assert "3 flows since start" in summary and "1 SYN_SENT" in summary
        assert "7 events = 54 segments" in summary and "source tracepoint (R,S)" in summary


async def test_state_column_tells_syn_storms_from_loss():
    palette = default_palette()
    assert state_text("SYN_SENT", palette).style != state_text("ESTABLISHED", palette).style
    assert state_text("SYN_RECV", palette).style not in (state_text("SYN_SENT", palette).style, state_text("ESTABLISHED", palette).style)
    app = NettopApp(ScriptedSource([frame(snapshot([flow(1, "a", "SYN_SENT", 1, 1), flow(2, "b", "ESTABLISHED", 1, 2, lport=2)]))], live("retransmits")), autopoll=False)
    async with app.run_test(size=(160, 40)) as pilot:
        await open_pane(pilot)
        app.accept_frame(app.source.poll())
        await pilot.pause()
        table = app.query_one("#retransmits-table", RowTable)
        styles = {str(table.get_row_at(i)[4]): table.get_row_at(i)[4].style for i in range(2)}
        assert app.current_theme.error in str(styles["SYN_SENT"])
        assert styles["ESTABLISHED"] == ""


async def test_event_log_is_newest_first_and_bounded():
    total = LOG_LINES + 30
    many = [event(i) for i in range(total)]
    half = total // 2
    app = NettopApp(ScriptedSource([frame(snapshot(events=many[:half])), frame(snapshot(events=many[half:]))], live("retransmits")), autopoll=False)
    async with app.run_test(size=(160, 40)) as pilot:
        pane = app.pane("retransmits")
        app.accept_frame(app.source.poll())
        app.accept_frame(app.source.poll())
        await pilot.pause()
        assert len(pane.event_log.events) == LOG_LINES and pane.event_log.seen == total
        lines = rendered(pane.event_log.render(default_palette())).strip().splitlines()
        assert lines[0].startswith("TIME") and len(lines) == 1 + LOG_LINES
        assert f":{40000 + total - 1} R>" in lines[1]  # the newest first
        assert f":{40000 + total - LOG_LINES} R>" in lines[-1]  # the oldest 30 are gone


def test_event_line_reads_like_tcpretrans():
    line = rendered(event_line(event(1, kind="S", state="SYN_RECV", pid=None, comm="-", segments=1), default_palette()))
    assert " - " in line and "10.0.0.1:40001 S> 10.0.0.2:5201" in line and "SYN_RECV" in line


async def test_counters_strip_shows_deltas_and_rate():
    app = NettopApp(ScriptedSource([frame(snapshot())], live("retransmits")), autopoll=False)
    async with app.run_test(size=(200, 40)) as pilot:
        await open_pane(pilot)
        strip = str(app.query_one("#retransmits-counters", Static).render())
        assert "no data yet" in strip
        app.accept_frame(app.source.poll())
        await pilot.pause()
        strip = str(app.query_one("#retransmits-counters", Static).render())
        assert "RetransSegs 40" in strip and "OutSegs 4000" in strip and "rate 1.00%" in strip
        for label in ("Fast 30", "SlowStart 5", "Timeouts 2", "LossProbes 1", "SynRetrans 3"):
            assert label in strip


async def test_counters_strip_without_sent_segments():
    app = NettopApp(ScriptedSource([frame(snapshot(counters={"RetransSegs": 0, "OutSegs": 0}))], live("retransmits")), autopoll=False)
    async with app.run_test(size=(200, 40)) as pilot:
        await open_pane(pilot)
        app.accept_frame(app.source.poll())
        await pilot.pause()
        assert "rate -" in str(app.query_one("#retransmits-counters", Static).render())


async def test_hostile_comm_is_inert_in_table_and_log():
    hostile = "[bold]x[/]\x1b[2J"
    snap = snapshot([flow(5, hostile, "ESTABLISHED", 1, 1)], [event(0, comm=hostile)])
    app = NettopApp(ScriptedSource([frame(snap)], live("retransmits")), autopoll=False)
    async with app.run_test(size=(200, 40)) as pilot:
        await open_pane(pilot)
        app.accept_frame(app.source.poll())
        await pilot.pause()
        shown = rendered(app.query_one("#retransmits-table", RowTable).get_row_at(0)[1]) + rendered(
            app.pane("retransmits").event_log.render(default_palette())
        )
        assert "\x1b" not in shown and shown.count("[bold]x[/]") == 2


async def test_a_hidden_pane_is_drawn_when_its_tab_opens():
    """Only the visible pane is drawn each interval; opening a tab draws the frame shown."""
    snap = snapshot([flow(100, "iperf3", "ESTABLISHED", 2, 40)])
    app = NettopApp(ScriptedSource([frame(snap)], live("retransmits")), autopoll=False)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        app.accept_frame(app.source.poll())  # the TCP tab is visible
        await pilot.pause()
        assert table_rows(app) == []
        await open_pane(pilot)
        assert [r[0] for r in table_rows(app)] == ["100"]
