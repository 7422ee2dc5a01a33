"""The Queues pane, driven headlessly from constructed snapshots; its pure parts as strings."""

from __future__ import annotations

from textual.widgets import Static

from fakes import ScriptedSource, live, show_pane
from nettop.app import NettopApp
from nettop.model.frame import Frame
from nettop.model.histogram import Histogram
from nettop.model.queues import DeviceLatency, Latency, QdiscQueue, QdiscStats, QueuesSnapshot
from nettop.panes.histogram import render_plain
from nettop.panes.queues import P99History, detail, human_us, queue_rows
from nettop.panes.row_table import RowTable

TBF_HIST = Histogram(((32768, 65536, 400),))
FAST_HIST = Histogram(((1, 2, 300), (2, 4, 100)))


def tbf(p99_hist=TBF_HIST, max_us=51_000.0, sent=420):
    return QdiscQueue(
        "ntv1h", 7, "tbf", "8001:", "root", p99_hist.count, 0, 0, Latency(p99_hist, max_us),
        QdiscStats(sent_packets=sent, drops=430, overlimits=850, backlog_bytes=64_000),
    )


NOQUEUE = QdiscQueue("lo", 1, "noqueue", "0:", "root", stats=QdiscStats())
DEVICE = DeviceLatency("ntv1h", 7, 4026531840, 500, Latency(FAST_HIST, 3.5))


def snapshot(*qdiscs, devices=(DEVICE,)):
    return QueuesSnapshot("tracepoint", 0, 2, tuple(qdiscs), tuple(devices))


def frame(snap, t=1_800_000_000.0):
    return Frame(time=t, interval=1.0, panes={"queues": snap})


def table_rows(app) -> list[list[str]]:
    table = app.query_one("#queues-table", RowTable)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def text_of(app, selector) -> str:
    return render_plain(app.query_one(selector, Static).render(), width=120)


def hist_text(app) -> str:
    return render_plain(app.query_one("#queues-pane").detail_view, width=120)


async def open_queues(app, pilot):
    await show_pane(pilot, "queues")
    app.accept_frame(app.source.poll())
    await pilot.pause()


def test_rows_grouped_by_device_root_first():
    rows = queue_rows(snapshot(tbf(), NOQUEUE))
    assert [(r.ifname, r.queue) for r in rows] == [("lo", "noqueue 0:"), ("ntv1h", "tbf 8001:"), ("ntv1h", "driver xmit")]
    assert [r.ifname for r in queue_rows(snapshot(tbf(), NOQUEUE), filter_text="tbf")] == ["ntv1h"]


def test_human_us_units():
    assert [human_us(v) for v in (0.42, 12.4, 3500, 48_000, 1_200_000, None)] == [
        "0.4µs", "12µs", "3.5ms", "48ms", "1.2s", "-"
    ]


def test_history_is_bounded_and_pads_absent_rows():
    history = P99History(length=3, max_rows=1)
    rows = queue_rows(snapshot(tbf(), devices=()))
    for _ in range(5):
        history.add(rows)
    assert len(history.values(rows[0].key)) == 3
    history.add(queue_rows(snapshot(NOQUEUE, devices=())))
    assert list(history.rows) == [queue_rows(snapshot(NOQUEUE, devices=()))[0].key]  # one row kept


def test_detail_draws_the_full_histogram():
    row = queue_rows(snapshot(tbf(), devices=()))[0]
    text = render_plain(detail(row, 1.0, [51_000.0, 0.0, 40_000.0]), width=100)
    assert "ntv1h tbf 8001: parent root" in text and "400 packets" in text
    assert "[32K, 64K)" in text and "@" * 20 in text
    assert "p99, last 3s (peak 51ms)" in text


async def test_rows_render_latency_counters_and_noqueue():
    app = NettopApp(ScriptedSource([frame(snapshot(tbf(), NOQUEUE))], live("queues")), autopoll=False)
    async with app.run_test(size=(150, 40)) as pilot:
        await open_queues(app, pilot)
        rows = table_rows(app)
        assert [r[:3] for r in rows] == [["lo", "noqueue 0:", "root"], ["ntv1h", "tbf 8001:", "root"],
                                        ["ntv1h", "driver xmit", "-"]]
        lo, shaped, driver = rows
        assert lo[4] == "no queue" and lo[8] == ""
        assert shaped[3] == "420"  # PKT/s from the qdisc's own sent counter
        assert shaped[6] == "51ms" and shaped[7] == "51ms"  # p99 capped by the exact max
        assert shaped[9:13] == ["420", "430", "850", "62.5 KiB"]
        assert driver[3] == "500" and driver[9] == "-"
        summary = text_of(app, "#queues-summary")
        assert "2 qdiscs (1 noqueue) on 2 devices" in summary and "untimed 2" in summary


async def test_selection_moves_the_histogram():
    app = NettopApp(ScriptedSource([frame(snapshot(tbf(), NOQUEUE))], live("queues")), autopoll=False)
    async with app.run_test(size=(150, 40)) as pilot:
        await open_queues(app, pilot)
        assert "noqueue, no queueing" in hist_text(app)
        app.query_one("#queues-table", RowTable).focus()
        await pilot.press("down")
        await pilot.pause()
        assert "time in the qdisc" in hist_text(app) and "[32K, 64K)" in hist_text(app)
        await pilot.press("down")
        await pilot.pause()
        hist = hist_text(app)
        assert "driver transmit" in hist and "[1]" in hist and "[2, 4)" in hist


async def test_sparkline_follows_p99_and_keeps_the_cursor():
    slow = Histogram(((65536, 131072, 10),))
    frames = [frame(snapshot(tbf(FAST_HIST, 3.0)), t=1.0), frame(snapshot(tbf(TBF_HIST, 60_000.0)), t=2.0),
              frame(snapshot(tbf(slow, 120_000.0)), t=3.0)]
    app = NettopApp(ScriptedSource(frames, live("queues")), autopoll=False)
    async with app.run_test(size=(150, 40)) as pilot:
        await open_queues(app, pilot)
        app.query_one("#queues-table", RowTable).focus()
        await pilot.press("down")  # onto the driver row: the cursor must stay there
        for _ in range(2):
            app.accept_frame(app.source.poll())
            await pilot.pause()
        trend = table_rows(app)[0][8]
        assert len(trend) == 3 and trend[0] < trend[1] < trend[2] and trend[2] == "█"
        assert "driver transmit" in hist_text(app)
