"""The sizes pane and its histogram renderable, driven from constructed snapshots."""

from __future__ import annotations

import pytest
from textual.widgets import Static, TabbedContent

from fakes import ScriptedSource, live
from nettop.app import NettopApp
from nettop.model.frame import Frame
from nettop.model.histogram import Histogram, log2_bounds, log2_slot
from nettop.model.sizes import DeviceSizes, IoSizes, ProcessSizes, SizesSnapshot
from nettop.panes.histogram import HistogramView, bucket_label, hist_lines, render_plain
from nettop.panes.registry import PANES
from nettop.panes.row_table import RowTable
from nettop.panes.sizes import Totals


def io(*sizes_counts: tuple[int, int], errors: int = 0) -> IoSizes:
    """IoSizes for `count` calls of `size` bytes each."""
    hist = Histogram()
    total = 0
    for size, count in sizes_counts:
        hist = hist.merge(Histogram(((*log2_bounds(log2_slot(size)), count),)))
        total += size * count
    return IoSizes(sum(c for _, c in sizes_counts), total, errors, hist)


def proc(pid, comm, protocol, read=(), write=()):
    return ProcessSizes(pid, comm, protocol, io(*read), io(*write))


def dev(name, ifindex, stack_send=(), nic_send=(), stack_recv=(), nic_recv=(), netns=4026531840):
    return DeviceSizes(name, ifindex, netns, io(*stack_recv), io(*stack_send), io(*nic_recv), io(*nic_send))


def frame(processes=(), devices=()):
    return Frame(time=1_800_000_000.0, interval=1.0,
                 panes={"sizes": SizesSnapshot("tracepoint", 2, tuple(processes), tuple(devices))})


FIRST = frame(
    [
        proc(100, "nginx", "tcp", read=[(100, 10)], write=[(65536, 4)]),
        proc(200, "dns", "udp", read=[(64, 3)], write=[(64, 3)]),
    ],
    [
        dev("eth0", 2, stack_send=[(65536, 2)], nic_send=[(1514, 90)], stack_recv=[(60000, 1)], nic_recv=[(1500, 40)]),
        dev("lo", 1, stack_send=[(100, 1)], nic_send=[(100, 1)]),
    ],
)
SECOND = frame([proc(100, "nginx", "tcp", read=[(4096, 5)])], [dev("lo", 1, stack_send=[(200, 7)])])


def rows(app, table_id):
    table = app.query_one(table_id, RowTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def detail(app, which):
    pane = app.query_one("#sizes-pane")
    return render_plain(pane.process_view if which == "process" else pane.device_view, 80)


async def start(pilot, app, *frames):
    await pilot.press(str(next(i for i, spec in enumerate(PANES, start=1) if spec.key == "sizes")))
    for f in frames:
        app.accept_frame(f)
    await pilot.pause()


# -- the renderable --------------------------------------------------------


def test_bucket_labels_follow_bpftrace():
    assert bucket_label(0, 1) == "[0]"
    assert bucket_label(1, 2) == "[1]"
    assert bucket_label(64, 128) == "[64, 128)"
    assert bucket_label(512, 1024) == "[512, 1K)"
    assert bucket_label(65536, 131072) == "[64K, 128K)"
    assert bucket_label(1 << 30, 1 << 31) == "[1G, 2G)"


def test_histogram_lines_at_80_columns():
    hist = io((100, 1000), (4096, 500), (65536, 100), (0, 2)).histogram
    lines = hist_lines(hist, 80)
    assert all(len(line) <= 80 for line in lines)
    assert lines[0].startswith("[0] ") and lines[0].split("|")[0].split()[-1] == "2"
    # zero buckets between used ones are shown, as bpftrace does
    labels = [line[:16].strip() for line in lines]
    assert labels[labels.index("[64, 128)") + 1] == "[128, 256)"
    assert labels[-1] == "[64K, 128K)"
    by_label = {line[:16].strip(): line for line in lines}
    assert by_label["[64, 128)"].endswith("|" + "@" * 52 + "|")
    assert by_label["[4K, 8K)"].count("@") == 26
    assert by_label["[64K, 128K)"].count("@") == 5
    assert by_label["[128, 256)"].split()[2] == "0" and "@" not in by_label["[128, 256)"]


@pytest.mark.parametrize("width", [40, 60, 80, 120])
def test_rendered_histogram_fits_the_width(width):
    text = render_plain(HistogramView(io((100, 7), (9000, 3)).histogram, "title"), width)
    lines = text.rstrip("\n").split("\n")
    assert lines[0] == "title"
    assert all(len(line) <= width for line in lines)
    assert sum(int(line.split("|")[0].split()[-1]) for line in lines[1:]) == 10


def test_empty_histogram_says_so():
    assert "(none)" in render_plain(HistogramView(Histogram(), "t"), 80)


def test_totals_merge_and_stay_bounded():
    totals = Totals(capacity=2)
    totals.add([proc(1, "a", "tcp", read=[(10, 1)])])
    totals.add([proc(2, "b", "tcp", read=[(10, 1)]), proc(1, "a", "tcp", read=[(100, 2)])])
    assert {p.pid: p.read.count for p in totals.values()} == {1: 3, 2: 1}
    totals.add([proc(3, "c", "udp")])
    assert [p.pid for p in totals.values()] == [1, 3] and totals.forgotten == 1


def test_snapshot_halves_merge():
    processes = SizesSnapshot("tracepoint", 1, (proc(1, "a", "tcp", read=[(10, 1)]),))
    devices = SizesSnapshot("tracepoint", 2, devices=(dev("lo", 1, stack_send=[(10, 1)]),))
    both = processes.merge(devices)
    assert both.source == "tracepoint" and both.dropped == 3
    assert len(both.processes) == 1 and len(both.devices) == 1
    assert SizesSnapshot.from_record(both.to_record()) == both
    assert processes.merge(SizesSnapshot("kprobe", 0)).source == "tracepoint+kprobe"


# -- the pane --------------------------------------------------------------


async def test_process_list_and_selection():
    app = NettopApp(ScriptedSource([FIRST], live("sizes")), autopoll=False)
    async with app.run_test(size=(100, 60)) as pilot:
        await start(pilot, app, FIRST)
        assert app.query_one(TabbedContent).active == "sizes"
        table = rows(app, "#sizes-processes")
        assert [r[:5] for r in table] == [["100", "nginx", "tcp", "10", "4"], ["200", "dns", "udp", "3", "3"]]
        assert table[0][5:] == ["100 B", "64.0 KiB", "1000 B", "256.0 KiB"]
        text = detail(app, "process")
        assert "nginx (PID 100, tcp)" in text and "[64, 128)" in text and "[64K, 128K)" in text
        app.query_one("#sizes-processes", RowTable).focus()
        await pilot.press("down")
        await pilot.pause()
        text = detail(app, "process")
        assert "dns (PID 200, udp)" in text and "[64K" not in text
        summary = str(app.query_one("#sizes-summary", Static).render())
        assert "2 processes" in summary and "dropped 2" in summary


async def test_cumulative_toggle():
    app = NettopApp(ScriptedSource([FIRST, SECOND], live("sizes")), autopoll=False)
    async with app.run_test(size=(100, 60)) as pilot:
        await start(pilot, app, FIRST, SECOND)
        assert [r[0] for r in rows(app, "#sizes-processes")] == ["100"]
        assert "[4K, 8K)" in detail(app, "process") and "[64, 128)" not in detail(app, "process")
        app.query_one("#sizes-processes", RowTable).focus()
        await pilot.press("c")
        await pilot.pause()
        table = rows(app, "#sizes-processes")
        assert [r[:5] for r in table] == [["100", "nginx", "tcp", "15", "4"], ["200", "dns", "udp", "3", "3"]]
        text = detail(app, "process")
        assert "since start (2 intervals)" in text
        lines = {line[:16].strip(): line for line in text.splitlines()}
        assert lines["[64, 128)"].split()[2] == "10" and lines["[4K, 8K)"].split()[2] == "5"
        assert "since start" in str(app.query_one("#sizes-summary", Static).render())
        await pilot.press("c")
        await pilot.pause()
        assert [r[0] for r in rows(app, "#sizes-processes")] == ["100"]
        assert "this interval" in detail(app, "process")


async def test_device_section_shows_segmentation_and_selects_with_d():
    app = NettopApp(ScriptedSource([FIRST], live("sizes")), autopoll=False)
    async with app.run_test(size=(100, 60)) as pilot:
        await start(pilot, app, FIRST)
        assert [r[0] for r in rows(app, "#sizes-devices")] == ["eth0", "lo"]
        assert rows(app, "#sizes-devices")[0][2:] == ["40", "1", "2", "90"]
        text = detail(app, "device")
        sections = text.split("eth0 ")[1:]
        assert [s.split(",")[0] for s in sections] == [
            "NIC receive (napi_gro_receive_entry)", "stack receive (netif_receive_skb)",
            "stack send (net_dev_queue)", "NIC send (net_dev_xmit)",
        ]
        # GSO: two 64 KiB sends at the stack, ninety 1514-byte frames at the NIC
        assert "[64K, 128K)            2 |" in sections[2] and "[1K, 2K)              90 |" in sections[3]
        app.query_one("#sizes-processes", RowTable).focus()
        await pilot.press("d")
        await pilot.pause()
        assert app.query_one("#sizes-pane").selected_device.endswith("/1/lo")
        assert "lo stack send (net_dev_queue), this interval: 1 packets" in detail(app, "device")
        # the selection survives a new interval in which the order changes
        app.accept_frame(SECOND)
        await pilot.pause()
        assert [r[0] for r in rows(app, "#sizes-devices")] == ["lo"]
        assert "7 packets" in detail(app, "device")


async def test_histograms_fit_an_80_column_terminal():
    app = NettopApp(ScriptedSource([FIRST], live("sizes")), autopoll=False)
    async with app.run_test(size=(80, 40)) as pilot:
        await start(pilot, app, FIRST)
        widget = app.query_one("#sizes-process-hist", Static)
        width = widget.content_region.width
        assert 60 <= width <= 80
        text = render_plain(app.query_one("#sizes-pane").process_view, width)
        bars = [line for line in text.splitlines() if line.endswith("|")]
        assert bars and all(len(line) <= width for line in bars)
        assert max(line.count("@") for line in bars) == width - 16 - 8 - 3


async def test_hostile_names_render_inert():
    hostile = frame([proc(666, "[b]x[/]\x1b[2J", "tcp", read=[(1, 1)])], [dev("e\x1b]0;pwn\x07", 9, stack_send=[(1, 1)])])
    app = NettopApp(ScriptedSource([hostile], live("sizes")), autopoll=False)
    async with app.run_test(size=(100, 60)) as pilot:
        await start(pilot, app, hostile)
        text = detail(app, "process") + detail(app, "device")
        assert "[b]x[/]\\x1b[2J" in text and "e\\x1b]0;pwn\\x07" in text
        assert "\x1b" not in text and "\x07" not in text
