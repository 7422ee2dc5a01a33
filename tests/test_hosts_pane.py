"""The host view and the per-socket detail, driven headlessly from constructed frames."""

from __future__ import annotations

from rich.console import Console
from textual.widgets import Static

from fakes import ScriptedSource, live, show_pane
from nettop.app import NettopApp
from nettop.model.frame import Frame
from nettop.model.histogram import Histogram
from nettop.model.queues import DeviceLatency, Latency, QdiscQueue, QueuesSnapshot
from nettop.model.retransmits import RetransmitEvent, RetransmitFlow, RetransmitsSnapshot
from nettop.model.sizes import IoSizes, ProcessSizes, SizesSnapshot
from nettop.model.sockets import SocketMemory, SocketsSnapshot, TcpSocketInfo
from nettop.model.tcp import TcpConnection, TcpSnapshot
from nettop.panes.drilldown import Selector, TrafficHistory, build_groups, endpoints_of
from nettop.panes.hosts import HostsPane
from nettop.panes.resolver import Resolver
from nettop.panes.row_table import RowTable
from nettop.panes.socket_detail import DetailState, SocketDetailScreen, ss_lines
from nettop.panes.text import sparkline
from nettop.recording import frame_from_record, frame_to_record

T0 = 1_800_000_000.0
A, B, V6 = "10.201.1.2", "10.201.2.2", "fd00:201:3::2"


def conn(pid, comm, raddr, rport, lport, rx, tx, laddr="10.201.1.1"):
    return TcpConnection(pid, comm, 6 if ":" in raddr else 4, laddr, lport, raddr, rport, rx, tx)


def info(c: TcpConnection, **kw) -> TcpSocketInfo:
    values = dict(family=c.family, laddr=c.laddr, lport=c.lport, raddr=c.raddr, rport=c.rport, state="ESTAB",
                  cookie=c.lport, congestion="cubic", rtt_us=812, rttvar_us=120, cwnd=42, ssthresh=30, mss=1448,
                  bytes_acked=5_000_000, bytes_received=2_000, total_retrans=3, rx_bytes=c.rx_bytes,
                  tx_bytes=c.tx_bytes, memory=SocketMemory(rcvbuf=131072, sndbuf=87040, wmem_queued=2896))
    values.update(kw)
    return TcpSocketInfo(**values)


CONNS = (
    conn(100, "curl", A, 443, 40001, 1_000, 4_000_000),
    conn(100, "curl", A, 443, 40002, 500, 1_000_000),
    conn(200, "iperf3", B, 5201, 40003, 0, 9_000_000),
    conn(300, "ssh", V6, 22, 40004, 300, 200, laddr="fd00:201:3::1"),
)


def frame(connections=CONNS, t=T0, sockets=None, retransmits=None, sizes=None, queues=None, interval=1.0):
    panes = {"tcp": TcpSnapshot("tracepoint", 0, tuple(connections))}
    if sockets is not None:
        panes["sockets"] = sockets
    if retransmits is not None:
        panes["retransmits"] = retransmits
    if sizes is not None:
        panes["sizes"] = sizes
    if queues is not None:
        panes["queues"] = queues
    return Frame(time=t, interval=interval, panes=panes)


def sockets_of(*infos, routes=None):
    return SocketsSnapshot("netlink", tuple(infos), routes or {A: "ntv1h", B: "ntv2h"}, seen=len(infos))


def rows(app, table_id="#hosts-table"):
    table = app.screen.query_one(table_id, RowTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def cursor_key(app, table_id="#hosts-table"):
    table = app.screen.query_one(table_id, RowTable)
    return table.cursor_key


async def open_hosts(pilot, app, *frames):
    await show_pane(pilot, "hosts")
    for f in frames:
        app.accept_frame(f)
    await pilot.pause()
    app.screen.query_one("#hosts-table", RowTable).focus()
    await pilot.pause()


def plain(renderable, width=60) -> str:
    console = Console(record=True, width=width, color_system=None)
    console.print(renderable)
    return console.export_text()


# -- pure ----------------------------------------------------------------


def test_groups_by_host_process_and_port():
    f = frame()
    hosts = build_groups(f, "host")
    assert set(hosts) == {A, B, V6}
    assert hosts[A].connections == 2 and hosts[A].tx_bytes == 5_000_000 and hosts[A].processes == {100: "curl"}
    processes = build_groups(f, "process")
    assert set(processes) == {"100", "200", "300"} and processes["100"].hosts == {A}
    ports = build_groups(f, "port")
    assert set(ports) == {"443", "5201", "22"} and ports["22"].label.startswith("22")


def test_retransmits_from_the_retransmits_pane_else_tcp_info():
    flow = RetransmitFlow(None, "-", 4, "10.201.1.1", 40001, A, 443, "ESTABLISHED", 2, 5)
    with_pane = build_groups(frame(retransmits=RetransmitsSnapshot("tracepoint", 0, (flow,))), "process")
    assert with_pane["100"].retransmits == 5  # owner found through the TCP pane's connection
    from_info = build_groups(frame(sockets=sockets_of(info(CONNS[2], retrans_delta=7))), "host")
    assert from_info[B].retransmits == 7 and from_info[A].retransmits == 0


def test_service_names_come_from_the_services_file_read_once(tmp_path):
    from nettop.panes.drilldown import _tcp_services

    services = tmp_path / "services"
    services.write_text("# comment\nssh\t\t22/tcp\t\t\t# SSH\nsyslog\t\t514/udp\nshell\t\t514/tcp\t\tcmd\n"
                        "http\t\t80/tcp\t\twww\nhttp-alt\t80/tcp\nbroken\tx/tcp\n")
    assert _tcp_services(str(services)) == {22: "ssh", 514: "shell", 80: "http"}  # the first name of a port wins
    assert _tcp_services(str(tmp_path / "absent")) == {}


def test_a_detail_catches_up_on_its_sockets_last_minute_from_earlier_frames():
    """Histories are built when a detail opens, for its group only, from the frames the app holds."""
    flow = RetransmitFlow(100, "curl", 4, "10.201.1.1", 40001, A, 443, "ESTABLISHED", events=1, segments=5)
    earlier = [
        frame(t=T0, sockets=sockets_of(info(CONNS[0]))),
        frame(connections=CONNS[1:2], t=T0 + 1, retransmits=RetransmitsSnapshot("tracepoint", 0, (flow,))),
        frame(connections=CONNS[2:], t=T0 + 2),  # no traffic to A
    ]
    state = DetailState(Selector("host", A, A))
    state.catch_up(earlier)
    ends = [endpoints_of(c) for c in CONNS[:2]]
    assert set(state.rows) == set(ends)  # quiet now, still listed, B's socket not
    assert state.rows[ends[0]].info is not None and state.rows[ends[0]].pid == 100
    assert [round(s[2]) for s in state.history._samples[ends[0]]] == [4_000_000]  # one interval with traffic
    assert [s[0] for s in state.history._samples[ends[1]]] == [T0, T0 + 1]
    assert state.rows[ends[0]].retransmits == 0 and not state.events  # counted from the opening on
    now = frame(connections=CONNS[:1], t=T0 + 3)
    state.update(now)
    state.update(now)  # the same frame shown again
    assert [s[0] for s in state.history._samples[ends[0]]] == [T0, T0 + 3]
    assert state.history.spark(ends[0]).strip()


def test_recent_frames_are_the_last_minute_up_to_the_shown_one():
    from nettop.panes.drilldown import recent_frames
    from nettop.timeline import Timeline

    timeline = Timeline(frame(t=T0 + i) for i in range(100))
    recent = recent_frames(timeline, T0 + 80)
    assert [f.time - T0 for f in recent] == list(range(21, 81))  # a replay's later frames left out


def test_a_busy_key_keeps_only_its_last_window_of_samples():
    history = TrafficHistory(window=60, per_key=240)
    for i in range(200):
        history.advance(T0 + i)
        history.add("k", T0 + i, 1.0, 1.0)
    assert len(history._samples["k"]) == 60  # memory follows the window, not the per-key cap


def test_history_window_and_sparkline():
    history = TrafficHistory(window=60)
    for i in range(60):
        history.advance(T0 + i)
        history.add("k", T0 + i, 0.0, float(i), retransmits=1)
    history.advance(T0 + 70)
    assert history.retransmits("k") == 49  # samples older than a minute are gone
    spark = history.spark("k", width=6)
    assert len(spark) == 6 and spark[-1] == " "  # the last 10 s were quiet
    assert spark[-2] == "█" and list(spark[:-1]) == sorted(spark[:-1], key=" ▁▂▃▄▅▆▇█".index)
    assert sparkline([0, 1, 2, 4]) == " ▂▄█"
    history.advance(T0)  # time went backwards: a replay jump
    assert history.keys() == []


def test_detail_state_marks_closed_socket_and_keeps_final_counters():
    state = DetailState(Selector("host", A, A))
    state.update(frame(sockets=sockets_of(info(CONNS[0]), info(CONNS[1]))))
    assert len(state.rows) == 2
    closed = info(CONNS[1], closed=True, bytes_acked=7_777, rx_bytes=0, tx_bytes=0)
    state.update(frame(connections=CONNS[:1], t=T0 + 1, sockets=sockets_of(info(CONNS[0]), closed)))
    row = state.rows[closed.endpoints]
    assert row.closed and row.state == "CLOSED" and row.info.bytes_acked == 7_777 and row.pid == 100
    state.update(frame(connections=CONNS[:1], t=T0 + 2, sockets=sockets_of(info(CONNS[0]))))
    assert state.rows[closed.endpoints].closed  # stays until the view is left
    assert [r.endpoints for r in state.sorted_rows()][-1] == closed.endpoints


def test_ss_lines_show_tcp_info_as_ss_does():
    state = DetailState(Selector("host", A, A))
    state.update(frame(sockets=sockets_of(info(CONNS[0]))))
    text = "\n".join(ss_lines(next(iter(state.rows.values()))))
    for expected in ("ESTAB", 'users:(("curl",pid=100))', "cubic", "rtt:0.812/0.12", "cwnd:42", "ssthresh:30",
                     "mss:1448", "bytes_acked:5000000", "retrans:0/3", "skmem:(r0,rb131072,t0,tb87040"):
        assert expected in text, expected


def test_sockets_snapshot_round_trips_through_a_recording():
    f = frame(sockets=sockets_of(info(CONNS[0]), info(CONNS[1], closed=True, memory=None)))
    again = frame_from_record(frame_to_record(f))
    assert again.panes["sockets"] == f.panes["sockets"]


def test_resolver_answers_in_the_background_and_caches():
    asked = []
    resolver = Resolver(lookup=lambda a: asked.append(a) or "host-a.example")
    assert resolver.name(A) is None  # never blocks: first answer is "not yet"
    assert resolver.wait_idle()
    assert resolver.name(A) == "host-a.example" and resolver.name(A) == "host-a.example"
    assert asked == [A]


# -- Pilot ---------------------------------------------------------------


async def test_host_rows_render_with_processes_and_ipv6():
    app = NettopApp(ScriptedSource([], live("tcp")), autopoll=False)
    async with app.run_test(size=(130, 30)) as pilot:
        await open_hosts(pilot, app, frame())
        shown = rows(app)
        assert [r[0] for r in shown] == [B, A, V6]  # by total rate
        assert shown[1][2] == "2" and shown[1][8] == "curl(100)"
        assert shown[1][4] == "4.8 MiB/s"
        assert "Hosts: live (tracepoint)" in str(app.query_one("#hosts-status", Static).render())


async def test_enter_opens_detail_and_escape_returns_to_the_same_row():
    f = frame(sockets=sockets_of(info(CONNS[0]), info(CONNS[1]), info(CONNS[2])))
    app = NettopApp(ScriptedSource([], live("tcp", "sockets")), autopoll=False)
    async with app.run_test(size=(130, 36)) as pilot:
        await open_hosts(pilot, app, f)
        await pilot.press("down")
        assert cursor_key(app) == A
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, SocketDetailScreen)
        detail = rows(app, "#detail-table")
        assert sorted(r[2] for r in detail) == ["10.201.1.1:40001", "10.201.1.1:40002"]
        assert all(r[1] == "curl" and r[4] == "ESTAB" and r[9] == "42" for r in detail)
        ss = str(app.screen.query_one("#detail-ss", Static).render())
        assert "rtt:0.812/0.12" in ss and "cwnd:42" in ss
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, SocketDetailScreen)
        assert cursor_key(app) == A


async def test_detail_refreshes_live_and_marks_a_closed_socket():
    first = frame(sockets=sockets_of(info(CONNS[0]), info(CONNS[1])))
    closing = info(CONNS[1], closed=True, bytes_acked=6_000_000, rx_bytes=0, tx_bytes=0)
    second = frame(connections=(CONNS[0], CONNS[2]), t=T0 + 1, sockets=sockets_of(info(CONNS[0], cwnd=80), closing))
    app = NettopApp(ScriptedSource([], live("tcp", "sockets")), autopoll=False)
    async with app.run_test(size=(130, 36)) as pilot:
        await open_hosts(pilot, app, first)
        await pilot.press("down", "enter")
        await pilot.pause()
        app.accept_frame(second)
        await pilot.pause()
        detail = {r[2]: r for r in rows(app, "#detail-table")}
        assert detail["10.201.1.1:40001"][4] == "ESTAB" and detail["10.201.1.1:40001"][9] == "80"
        assert detail["10.201.1.1:40002"][4] == "CLOSED"
        app.accept_frame(frame(connections=(CONNS[0],), t=T0 + 2, sockets=sockets_of(info(CONNS[0]))))
        await pilot.pause()
        assert {r[2]: r[4] for r in rows(app, "#detail-table")}["10.201.1.1:40002"] == "CLOSED"
        assert "1 closed" in str(app.screen.query_one("#detail-title", Static).render())


async def test_grouping_switch_by_process_then_port():
    app = NettopApp(ScriptedSource([], live("tcp")), autopoll=False)
    async with app.run_test(size=(130, 30)) as pilot:
        await open_hosts(pilot, app, frame())
        await pilot.press("b")
        await pilot.pause()
        table = app.query_one("#hosts-table", RowTable)
        assert [c.label for c in table.columns][0] == "PID"
        assert {r[0]: r[1] for r in rows(app)} == {"200": "iperf3", "100": "curl", "300": "ssh"}
        assert {r[0]: r[8] for r in rows(app)}["100"] == A
        await pilot.press("b")
        await pilot.pause()
        assert [c.label for c in table.columns][0] == "RPORT"
        assert sorted(r[0] for r in rows(app)) == ["22", "443", "5201"]
        await pilot.press("down", "enter")  # a port group drills down too
        await pilot.pause()
        assert isinstance(app.screen, SocketDetailScreen)
        assert [r[3] for r in rows(app, "#detail-table")] == ["10.201.1.2:443"] * 2
        await pilot.press("escape", "b")
        await pilot.pause()
        assert [c.label for c in table.columns][0] == "HOST"


async def test_detail_joins_retransmits_sizes_and_queues():
    c = CONNS[0]
    event = RetransmitEvent(T0, "R", 100, "curl", 4, c.laddr, c.lport, c.raddr, c.rport, "ESTABLISHED", 2)
    flow = RetransmitFlow(100, "curl", 4, c.laddr, c.lport, c.raddr, c.rport, "ESTABLISHED", 1, 2)
    io = IoSizes(10, 40960, 0, Histogram(((4096, 8192, 10),)))
    queues = QueuesSnapshot(
        "tracepoint",
        qdiscs=(QdiscQueue("ntv1h", 7, "tbf", "8001:", "root", packets=50,
                           latency=Latency(Histogram(((64, 128, 50),)), 120.0)),),
        devices=(DeviceLatency("ntv2h", 8, packets=9),),
    )
    f = frame(sockets=sockets_of(info(c)), retransmits=RetransmitsSnapshot("tracepoint", 0, (flow,), (event,)),
              sizes=SizesSnapshot("tracepoint", 0, (ProcessSizes(100, "curl", "tcp", io, io),)), queues=queues)
    app = NettopApp(ScriptedSource([], live("tcp")), autopoll=False)
    async with app.run_test(size=(130, 40)) as pilot:
        await open_hosts(pilot, app, f)
        await pilot.press("down", "enter")
        await pilot.pause()
        screen = app.screen
        retrans = plain(screen.query_one("#detail-retransmits", Static).content)
        assert "2 segments" in retrans and "R ESTABLISHED :40001 segs 2" in retrans
        sizes = plain(screen.query_one("#detail-sizes", Static).content, 50)
        assert "curl (100)" in sizes and "[4K, 8K)" in sizes and "read: 10 calls" in sizes
        queues_text = plain(screen.query_one("#detail-queues", Static).content)
        assert "route via ntv1h" in queues_text and "tbf 8001:" in queues_text and "max 120us" in queues_text


async def test_detail_says_which_panes_have_no_data():
    app = NettopApp(ScriptedSource([], live("tcp")), autopoll=False)
    async with app.run_test(size=(130, 36)) as pilot:
        await open_hosts(pilot, app, frame())
        await pilot.press("enter")
        await pilot.pause()
        screen = app.screen
        for widget, pane in (("#detail-retransmits", "retransmits"), ("#detail-sizes", "sizes"),
                             ("#detail-queues", "queues")):
            assert f"no data from {pane}" in plain(screen.query_one(widget, Static).content)
        assert "no data from tcp_info" in str(screen.query_one("#detail-title", Static).render())


async def test_enter_on_a_tcp_connection_opens_its_detail():
    f = frame(sockets=sockets_of(*(info(c) for c in CONNS[:3])))
    app = NettopApp(ScriptedSource([], live("tcp")), autopoll=False)
    async with app.run_test(size=(130, 36)) as pilot:
        app.accept_frame(f)
        await pilot.pause()
        app.query_one("#tcp-table", RowTable).focus()
        await pilot.press("enter")  # the busiest connection: iperf3 to B
        await pilot.pause()
        assert isinstance(app.screen, SocketDetailScreen)
        assert [r[:4] for r in rows(app, "#detail-table")] == [["200", "iperf3", "10.201.1.1:40003", "10.201.2.2:5201"]]
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.query_one("#tcp-table", RowTable).has_focus


async def test_replayed_frames_drive_the_detail_the_same_way(tmp_path):
    recorded = [frame_from_record(frame_to_record(f)) for f in (
        frame(sockets=sockets_of(info(CONNS[0]), info(CONNS[1]))),
        frame(t=T0 + 1, sockets=sockets_of(info(CONNS[0], rtt_us=2500))),
    )]
    app = NettopApp(ScriptedSource([], live("tcp")), autopoll=False)
    async with app.run_test(size=(130, 36)) as pilot:
        await open_hosts(pilot, app, recorded[0])
        await pilot.press("down", "enter")
        await pilot.pause()
        app.accept_frame(recorded[1])
        await pilot.pause()
        assert {r[2]: r[8] for r in rows(app, "#detail-table")}["10.201.1.1:40001"] == "2.5"
        sparks = [r[7] for r in rows(app, "#detail-table")]
        assert all(s.strip() for s in sparks)  # two intervals of traffic in the last minute


async def test_names_are_off_when_headless():
    app = NettopApp(ScriptedSource([], live("tcp")), autopoll=False)
    async with app.run_test(size=(130, 30)) as pilot:
        await open_hosts(pilot, app, frame())
        pane = app.query_one(HostsPane)
        assert pane.resolve_names is False and pane.resolver is None
        assert all(r[1] == "" for r in rows(app))


async def test_a_quiet_host_still_drills_into_its_recent_sockets():
    busy = frame(sockets=sockets_of(info(CONNS[0]), info(CONNS[1])))
    quiet = frame(connections=CONNS[2:], t=T0 + 5)
    app = NettopApp(ScriptedSource([], live("tcp")), autopoll=False)
    async with app.run_test(size=(130, 36)) as pilot:
        await open_hosts(pilot, app, busy, quiet)
        table = app.query_one("#hosts-table", RowTable)
        table.move_cursor(table.get_row_index(A))
        assert rows(app)[table.cursor_row][2] == "0"  # listed for a minute, with no connections now
        await pilot.press("enter")
        await pilot.pause()
        detail = {r[2]: r for r in rows(app, "#detail-table")}
        assert set(detail) == {"10.201.1.1:40001", "10.201.1.1:40002"}
        assert detail["10.201.1.1:40001"][9] == "42" and detail["10.201.1.1:40001"][5] == "0 B/s"


async def test_history_keeps_growing_while_paused():
    app = NettopApp(ScriptedSource([], live("tcp")), autopoll=False)
    async with app.run_test(size=(130, 30)) as pilot:
        await open_hosts(pilot, app, frame(connections=CONNS[:1]))
        await pilot.press("p")
        app.accept_frame(frame(connections=CONNS[2:3], t=T0 + 1))
        await pilot.pause()
        assert [r[0] for r in rows(app)] == [A]  # the display holds still
        assert ("host", B) in app.query_one(HostsPane).group_history  # the history does not


async def test_a_closed_tab_groups_nothing_and_catches_up_from_the_timeline_when_opened():
    app = NettopApp(ScriptedSource([], live("tcp")), autopoll=False)
    async with app.run_test(size=(130, 30)) as pilot:
        await show_pane(pilot, "tcp")
        pane = app.query_one(HostsPane)
        for i in range(5):
            app.accept_frame(frame(connections=CONNS[:3], t=T0 + i))
        await pilot.pause()
        assert pane.group_history.keys() == [] and pane._grouped is None  # no work for a closed tab
        await show_pane(pilot, "hosts")
        assert len(pane.group_history._recent(("host", A))) == 5  # its last minute, from the timeline
        assert {r[0] for r in rows(app)} == {A, B} and rows(app)[0][6].strip()
        app.accept_frame(frame(connections=CONNS[:1], t=T0 + 5))  # open now: observed as it comes
        await pilot.pause()
        assert len(pane.group_history._recent(("host", A))) == 6 and len(pane.group_history._recent(("host", B))) == 5


async def test_another_grouping_gets_its_last_minute_from_the_timeline():
    """Only the shown grouping is grouped each interval; choosing another rebuilds its
    sparklines and quiet rows from the frames the app still holds."""
    app = NettopApp(ScriptedSource([], live("tcp")), autopoll=False)
    async with app.run_test(size=(130, 30)) as pilot:
        old = frame(connections=CONNS[3:4], t=T0)  # ssh, quiet after this
        busy = [frame(connections=CONNS[:3], t=T0 + i) for i in range(1, 6)]
        await open_hosts(pilot, app, old, *busy)
        history = app.query_one(HostsPane).group_history
        assert ("process", "100") not in history  # not grouped by process while hosts were shown
        await pilot.press("b")
        await pilot.pause()
        assert len(history._recent(("process", "100"))) == 5  # the five frames curl was in
        shown = {r[0]: r for r in rows(app)}
        assert set(shown) == {"100", "200", "300"}  # ssh's process, quiet now, still listed
        assert shown["300"][2] == "0" and shown["100"][6].strip()  # a sparkline from the rebuilt history


async def test_summary_adds_up_every_group_though_the_table_draws_the_top_rows():
    from nettop.panes.table import MAX_TABLE_ROWS

    many = [conn(500, "scan", f"10.9.{i // 250}.{i % 250 + 1}", 443, 30000 + i, 0, 1000) for i in range(MAX_TABLE_ROWS + 50)]
    app = NettopApp(ScriptedSource([], live("tcp")), autopoll=False)
    async with app.run_test(size=(130, 30)) as pilot:
        await open_hosts(pilot, app, frame(connections=many))
        assert app.query_one("#hosts-table", RowTable).row_count == MAX_TABLE_ROWS
        summary = str(app.query_one("#hosts-summary", Static).render())
        assert summary.startswith(f"{MAX_TABLE_ROWS + 50} remote hosts") and "244.1 KiB/s" in summary
