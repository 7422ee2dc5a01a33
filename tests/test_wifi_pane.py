"""The WiFi pane, driven headlessly from constructed snapshots and from a recording made in the VM."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import Static

from fakes import ScriptedSource, live, show_pane
from nettop.app import NettopApp
from nettop.model.frame import Frame
from nettop.model.wifi import WifiChannel, WifiScan, WifiSnapshot, band_of
from nettop.panes.row_table import RowTable
from nettop.panes.wifi import STORM_PER_MINUTE, ScanRate, rate_text, timeline_text
from nettop.probes.base import ProbeState, ProbeStatus
from nettop.probes.wifi_scan import NO_STACK
from nettop.recording import load_recording
from nettop.replay import ReplaySource
from nettop.timeline import Timeline

T0 = 1_800_000_000.0
VM_RECORDING = Path(__file__).parent / "data" / "wifi-hwsim-6.1.jsonl"


def channels(*freqs, heard=()):
    return tuple(WifiChannel(band_of(f), f, f in heard, 10.0 * i, int(f in heard)) for i, f in enumerate(freqs))


def scan(device="wlan1", start=T0, ms=4084.0, aborted=False, pid=812, comm="iw", chans=None, end=True):
    chans = chans if chans is not None else channels(2412, 2437, 5180, 5955, heard=(2437,))
    return WifiScan(device, f"phy{device[-1]}", start, start + ms / 1000 if end else None, ms, aborted, pid, comm, "sw", chans)


def frame(scans=(), in_progress=(), t=T0, interval=1.0, lost=0):
    return Frame(t, interval, {"wifi": WifiSnapshot("tracepoint", lost, tuple(scans), tuple(in_progress))})


def rendered(renderable, width=160) -> str:
    console = Console(record=True, width=width, color_system=None)
    console.print(renderable)
    return console.export_text()


def rows(app) -> list[list[str]]:
    table = app.query_one("#wifi-scans", RowTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def text_of(app, selector) -> str:
    return rendered(app.query_one(selector, Static).render())


async def open_pane(pilot):
    await show_pane(pilot, "wifi")


def test_timeline_groups_bands_in_visit_order_and_marks_beacons():
    text = rendered(timeline_text(scan()))
    assert "4 in 4084 ms, beacons on 2437 MHz" in text
    lines = text.splitlines()
    assert lines[1].split() == ["2.4", "GHz", "2", "+0.00s", "2412·", "2437●"]
    assert lines[2].split()[:5] == ["5", "GHz", "1", "+0.02s", "5180·"]
    assert lines[3].split()[-1] == "5955·" and "other" not in text
    assert "none visited" in rendered(timeline_text(scan(chans=channels(2412))))


def test_scan_rate_counts_the_last_minute_of_intervals():
    rate = ScanRate(window=60)
    for i in range(70):
        rate.add(1.0, [scan("wlan1", T0 + i)] if i % 10 == 0 else [])
    assert rate.counts()["wlan1"] == 6 and rate.seconds == pytest.approx(60)
    assert "wlan1 6 storm" in rendered(rate_text(rate, ["wlan0"]))
    assert "wlan0 0" in rendered(rate_text(rate, ["wlan0"]))
    assert "last 3s" in rendered(rate_text(_rate_after(3), ()))


def _rate_after(seconds):
    rate = ScanRate()
    for _ in range(seconds):
        rate.add(1.0, ())
    return rate


@pytest.mark.parametrize("size", [(80, 24), (160, 40)])
async def test_recent_scans_newest_first_with_the_one_under_way_on_top(size):
    first = frame([scan("wlan1", T0, comm="iw")])
    second = frame([scan("wlan2", T0 + 5, ms=8100.5, aborted=True, pid=None, comm="kworker/u4:0")],
                   [scan("wlan1", T0 + 9, ms=1200, end=False, chans=channels(2412))], t=T0 + 10)
    app = NettopApp(ScriptedSource([first, second], live("wifi")), autopoll=False)
    async with app.run_test(size=size) as pilot:
        await open_pane(pilot)
        app.accept_frame(app.source.poll())
        app.accept_frame(app.source.poll())
        await pilot.pause()
        got = rows(app)
        assert [r[1] for r in got] == ["wlan1", "wlan2", "wlan1"]
        assert got[0][3:] == ["1200 ms", "1", "0", "scanning"]
        assert got[1][2:] == ["- kworker/u4:0", "8100 ms", "4", "1", "aborted"]
        assert got[2][2:] == ["812 iw", "4084 ms", "4", "1", "done"]
        assert "2 recent scans, 1 under way" in text_of(app, "#wifi-summary")
        assert "wlan1 1" in text_of(app, "#wifi-rate") and "wlan2 1" in text_of(app, "#wifi-rate")
        timeline = text_of(app, "#wifi-timeline")  # the cursor stayed on the row it was on
        assert "channels of wlan1 scan" in timeline and "4 in 4084 ms" in timeline and "2437●" in timeline
        app.query_one("#wifi-scans", RowTable).focus()
        await pilot.press("up", "up")
        assert "1 in 1200 ms so far" in text_of(app, "#wifi-timeline")


async def test_scan_storm_is_flagged():
    frames = [frame([scan("wlan0", T0 + i)], t=T0 + i) for i in range(STORM_PER_MINUTE)]
    app = NettopApp(ScriptedSource(frames, live("wifi")), autopoll=False)
    async with app.run_test(size=(120, 30)) as pilot:
        await open_pane(pilot)
        for _ in frames:
            app.accept_frame(app.source.poll())
        await pilot.pause()
        assert f"wlan0 {STORM_PER_MINUTE} storm" in text_of(app, "#wifi-rate")


async def test_kernel_strings_are_inert():
    hostile = scan("wl[bold]x\x1b[2J", comm="[red]evil\x07")
    app = NettopApp(ScriptedSource([frame([hostile])], live("wifi")), autopoll=False)
    async with app.run_test(size=(120, 30)) as pilot:
        await open_pane(pilot)
        app.accept_frame(app.source.poll())
        await pilot.pause()
        row = rows(app)[0]
        assert row[1] == "wl[bold]x\\x1b[2J" and row[2] == "812 [red]evil\\x07"


async def test_no_802_11_stack_is_said_and_the_other_panes_run():
    statuses = {**live("tcp"), "wifi": ProbeStatus(ProbeState.UNAVAILABLE, reason=NO_STACK)}
    app = NettopApp(ScriptedSource([Frame(T0, 1.0, {})], statuses), autopoll=False)
    async with app.run_test(size=(120, 30)) as pilot:
        await open_pane(pilot)
        app.accept_frame(app.source.poll())
        await pilot.pause()
        assert "no 802.11 stack in this kernel" in text_of(app, "#wifi-status")
        assert rows(app) == []


@pytest.mark.skipif(not VM_RECORDING.exists(), reason="the VM recording is not in tests/data")
async def test_replay_of_a_recording_made_on_mac80211_hwsim():
    recorded = load_recording(str(VM_RECORDING)).frames
    scans = [s for f in recorded if "wifi" in f.panes for s in f.panes["wifi"].scans]
    assert len(scans) >= 3
    app = NettopApp(ReplaySource(recorded, VM_RECORDING.name), timeline=Timeline(recorded, max_frames=len(recorded)),
                    replay=True, autopoll=False)
    async with app.run_test(size=(160, 40)) as pilot:
        await open_pane(pilot)
        for _ in recorded:  # step through, as a user playing it does: the pane keeps what it saw
            await pilot.press("full_stop")
        await pilot.pause()
        got = rows(app)
        assert len(got) == len(scans)
        newest_first = sorted(scans, key=lambda s: -s.start)
        assert [r[4] for r in got] == [str(len(s.channels)) for s in newest_first]
        assert [r[5] for r in got] == [str(s.beacon_channels) for s in newest_first]
        assert all(r[6] == "done" for r in got)
        assert {r[1] for r in got} >= {"wlan1", "wlan2"}
        timeline = text_of(app, "#wifi-timeline")
        assert "2437●" in timeline and "2412·" in timeline and "5 GHz" in timeline
