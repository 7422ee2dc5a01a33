"""wifi_scan probe: BPF text per source, event decoding, scans assembled per radio, availability."""

from __future__ import annotations

import json

import pytest

from nettop.btf import running_kernel_btf
from nettop.errors import ProbeUnavailable
from nettop.model.wifi import WifiScan, WifiSnapshot, band_of
from nettop.probes import wifi_scan
from nettop.probes.wifi_scan import (
    BEACON, CHANNEL, DONE_MAC, HW_DONE, HW_START, KEY_DONE, NO_STACK, REQUEST, SW_DONE, SW_START, _EVENT,
    Radios, ScanAssembler, WifiScanProbe, bpf_text, decode_event, stack_problem,
)

MS = 1_000_000
T0 = 5_000 * MS  # monotonic ns of the first event


def wall(ns: int) -> float:
    return 1_800_000_000.0 + ns / 1e9


def radios(macs=None, interfaces=None) -> Radios:
    return Radios(lambda: dict(macs or {}), lambda: dict(interfaces or {}))


def ev(kind, ts, wiphy="phy1", freq=0, aux=0, pid=0, comm="", vif="", mac=""):
    return {"ts": ts, "kind": kind, "freq": freq, "pid": pid, "aux": aux, "comm": comm, "wiphy": wiphy, "vif": vif, "mac": mac}


def sw_scan(wiphy="phy1", vif="wlan1", start=T0, freqs=(2412, 2437, 5180), heard=(2437,), pid=812, step=100 * MS):
    """The event order Linux 6.1 + mac80211_hwsim produced for `iw dev wlan1 scan trigger`."""
    events = [ev(REQUEST, start, wiphy, pid=pid, comm="iw"), ev(SW_START, start + MS, wiphy, pid=pid, comm="iw", vif=vif)]
    t = start + 2 * MS
    for freq in freqs:
        events.append(ev(CHANNEL, t, wiphy, freq=freq, comm="kworker/u4:0"))
        if freq in heard:
            events.append(ev(BEACON, t + 30 * MS, wiphy, freq=freq, aux=0, comm="hostapd"))
        t += step
    return events, t


def test_band_of_frequencies():
    assert [band_of(f) for f in (2412, 2484, 5180, 5825, 5955, 7115, 900)] == ["2.4", "2.4", "5", "5", "6", "6", "other"]


def test_software_scan_ends_at_cfg80211_scan_done_not_the_later_channel_change():
    events, t = sw_scan()
    events += [
        ev(DONE_MAC, t, "", aux=0, mac="02:00:00:00:01:00"),
        ev(CHANNEL, t + MS, "phy1", freq=2412),  # back to the operating channel: not a visit
        ev(SW_DONE, t + 2 * MS, "phy1", vif="wlan1"),
    ]
    asm = ScanAssembler(radios({"02:00:00:00:01:00": "phy1"}))
    asm.feed(events, wall)
    done, under_way = asm.take(t + 3 * MS, wall)
    assert under_way == ()
    (scan,) = done
    assert (scan.device, scan.wiphy, scan.pid, scan.comm, scan.kind, scan.aborted) == ("wlan1", "phy1", 812, "iw", "sw", False)
    assert scan.duration_ms == pytest.approx((t - T0) / MS)
    assert scan.start == pytest.approx(wall(T0)) and scan.end == pytest.approx(wall(t))
    assert [(c.band, c.freq_mhz, c.beacon_found, c.beacons) for c in scan.channels] == [
        ("2.4", 2412, False, 0), ("2.4", 2437, True, 1), ("5", 5180, False, 0)]
    assert [c.at_ms for c in scan.channels] == pytest.approx([2, 102, 202])
    assert asm.dropped == 0


def test_overlapping_scans_on_two_radios_are_kept_apart():
    a, ta = sw_scan("phy1", "wlan1", T0, (2412, 2437), (2437,))
    b, tb = sw_scan("phy2", "wlan2", T0 + 50 * MS, (2412, 2437, 2462), (2437,), pid=900, step=120 * MS)
    done_a = ev(DONE_MAC, ta, "", aux=0, mac="aa:aa:aa:aa:aa:aa")
    done_b = ev(DONE_MAC, tb, "", aux=1, mac="bb:bb:bb:bb:bb:bb")
    asm = ScanAssembler(radios({"aa:aa:aa:aa:aa:aa": "phy1", "bb:bb:bb:bb:bb:bb": "phy2"}))
    asm.feed(a + b + [done_a], wall)  # fed out of order: sorted by time inside
    first, under_way = asm.take(ta + MS, wall)
    assert [s.device for s in first] == ["wlan1"] and [s.device for s in under_way] == ["wlan2"]
    assert under_way[0].end is None and under_way[0].duration_ms == pytest.approx((ta + MS - (T0 + 50 * MS)) / MS)
    asm.feed([done_b], wall)
    (second,), _ = asm.take(tb + MS, wall)
    assert second.device == "wlan2" and second.pid == 900 and second.aborted
    assert [c.freq_mhz for c in second.channels] == [2412, 2437, 2462]
    assert [c.freq_mhz for c in first[0].channels] == [2412, 2437]


def test_offloaded_scan_lists_channels_heard_and_ends_at_api_scan_completed():
    events = [
        ev(REQUEST, T0, "phy0", pid=50, comm="wpa_supplicant"),
        ev(HW_START, T0 + MS, "phy0", vif="wlp2s0"),
        ev(BEACON, T0 + 300 * MS, "phy0", freq=5180),
        ev(BEACON, T0 + 100 * MS, "phy0", freq=2437),
        ev(BEACON, T0 + 120 * MS, "phy0", freq=2437),
        ev(HW_DONE, T0 + 900 * MS, "phy0", aux=1),
        ev(DONE_MAC, T0 + 901 * MS, "", mac="00:11:22:33:44:55"),  # after the end: ignored
    ]
    asm = ScanAssembler(radios({"00:11:22:33:44:55": "phy0"}))
    asm.feed(events, wall)
    (scan,), _ = asm.take(T0 + 1000 * MS, wall)
    assert (scan.device, scan.kind, scan.aborted, scan.duration_ms) == ("wlp2s0", "hw", True, pytest.approx(900))
    assert [(c.freq_mhz, c.beacons, c.beacon_found) for c in scan.channels] == [(2437, 2, True), (5180, 1, True)]


def test_scan_mac80211_started_itself_and_device_from_sysfs():
    events = [
        ev(SW_START, T0, "phy3", pid=7, comm="kworker/0:1", vif="mesh0"),
        ev(CHANNEL, T0 + MS, "phy3", freq=2412),
        ev(SW_DONE, T0 + 50 * MS, "phy3", vif="mesh0"),
        ev(REQUEST, T0 + 60 * MS, "phy4", pid=9, comm="iw"),  # a fullmac radio: no mac80211 events
        ev(BEACON, T0 + 70 * MS, "phy4", freq=2462),
        ev(DONE_MAC, T0 + 80 * MS, "", mac="44:44:44:44:44:44"),
    ]
    asm = ScanAssembler(radios({"44:44:44:44:44:44": "phy4"}, {"phy4": ["wlan9"]}))
    asm.feed(events, wall)
    done, _ = asm.take(T0 + 100 * MS, wall)
    assert [(s.device, s.comm, s.kind, len(s.channels)) for s in done] == [("mesh0", "kworker/0:1", "sw", 1), ("wlan9", "iw", "", 1)]


def test_refused_request_is_replaced_and_counted_and_bounds_hold():
    asm = ScanAssembler(radios(), max_channels=2, max_open=2)
    asm.feed([ev(REQUEST, T0, "phy1"), ev(REQUEST, T0 + MS, "phy1")], wall)
    assert asm.dropped == 1 and asm.open["phy1"].start_ns == T0 + MS
    asm.feed([ev(CHANNEL, T0 + 2 * MS + i, "phy1", freq=2412 + 5 * i) for i in range(3)], wall)
    assert len(asm.open["phy1"].visits) == 2 and asm.dropped == 2
    asm.feed([ev(REQUEST, T0 + 10 * MS, "phy2"), ev(REQUEST, T0 + 11 * MS, "phy3")], wall)
    assert len(asm.open) == 2 and asm.dropped == 3
    asm.feed([ev(DONE_MAC, T0 + 20 * MS, "", mac="ff:ff:ff:ff:ff:ff"), ev(CHANNEL, T0 + 21 * MS, "phy9", freq=2412)], wall)
    assert asm.take(T0 + 30 * MS, wall)[0] == ()  # unknown radios: nothing made up


def test_kprobe_source_completes_on_its_own_key():
    events = [ev(REQUEST, T0, "wiphy@ffff1", pid=1, comm="iw", vif="wlan0"), ev(BEACON, T0 + MS, "wiphy@ffff1", freq=2437),
              ev(KEY_DONE, T0 + 5 * MS, "wiphy@ffff1", aux=0)]
    asm = ScanAssembler(radios())
    asm.feed(events, wall)
    (scan,), _ = asm.take(T0 + 6 * MS, wall)
    assert scan.device == "wlan0" and [c.freq_mhz for c in scan.channels] == [2437]


def test_decode_event_layout():
    raw = _EVENT.pack(T0, CHANNEL, 2437, 812, 1, b"iw\0", b"phy1\0", b"wlan1\0", bytes.fromhex("020000000100"))
    assert len(raw) == 96
    assert decode_event(raw) == {
        "ts": T0, "kind": CHANNEL, "freq": 2437, "pid": 812, "aux": 1, "comm": "iw", "wiphy": "phy1", "vif": "wlan1",
        "mac": "02:00:00:00:01:00",
    }
    pointer = _EVENT.pack(T0, REQUEST, 0, 1, 0, b"", (0xFFFF888001234000).to_bytes(8, "little"), b"", b"")
    assert decode_event(pointer, pointer_keys=True)["wiphy"] == "wiphy@ffff888001234000"


def test_tracepoint_text_includes_nl80211_enums_and_gates_by_radio():
    text = bpf_text("tracepoint", ring_pages=8, max_radios=4)
    assert "#include <uapi/linux/nl80211.h>" in text
    assert "BPF_RINGBUF_OUTPUT(events, 8);" in text and "BPF_HASH(scanning, struct radio, u64, 4);" in text
    for tp in ("cfg80211, rdev_scan", "cfg80211, cfg80211_scan_done", "cfg80211, cfg80211_inform_bss_frame",
               "mac80211, drv_sw_scan_start", "mac80211, drv_hw_scan", "mac80211, drv_config",
               "mac80211, drv_sw_scan_complete", "mac80211, api_scan_completed"):
        assert f"TRACEPOINT_PROBE({tp})" in text
    assert "kprobe__" not in text and "offsetof" not in text
    assert "#define EV_CHANNEL 4" in text and "args->changed & CONF_CHANGE_CHANNEL" in text
    # radio names are keys: copied up to the NUL only (the trace buffer holds stale bytes after
    # it; a 32-byte copy lost most channel events of a second radio scanning in the VM)
    assert "bpf_probe_read_kernel_str(dst, 32, name);" in text
    assert text.count("radio_name(") == 4 and "bpf_probe_read_kernel(e->radio" not in text


def test_kprobe_text_uses_btf_for_vmlinux_structs_and_headers_for_cfg80211():
    btf = running_kernel_btf()
    text = bpf_text("kprobe", btf=btf)
    for fn in ("ieee80211_request_scan", "ieee80211_get_channel_khz", "cfg80211_scan_done"):
        assert f"int kprobe__{fn}(" in text
    assert "TRACEPOINT_PROBE" not in text and "#include <net/cfg80211.h>" in text
    assert "#define OFF_REQ_WIPHY offsetof(struct cfg80211_scan_request, wiphy)" in text
    if btf is not None:
        assert f"#define OFF_NETDEV_NAME {btf.offsetof('net_device', 'name')}" in text
    assert set(wifi_scan.KPROBE.hooks) == set(wifi_scan.kprobes("ieee80211_request_scan", "ieee80211_get_channel_khz", "cfg80211_scan_done"))


def test_stack_problem_says_why(tmp_path):
    events = tmp_path / "events"
    events.mkdir()
    modules = tmp_path / "modules"
    absent = tmp_path / "no-module"
    assert stack_problem(events, absent, modules) == NO_STACK
    wireless = modules / __import__("os").uname().release / "kernel" / "net" / "wireless"
    wireless.mkdir(parents=True)
    (wireless / "cfg80211.ko.xz").write_bytes(b"")
    assert "not loaded" in stack_problem(events, absent, modules)
    (events / "cfg80211").mkdir()
    assert stack_problem(events, absent, modules) is None


def test_radios_read_sysfs(tmp_path):
    phy = tmp_path / "ieee80211" / "phy1"
    phy.mkdir(parents=True)
    (phy / "macaddress").write_text("02:00:00:00:01:00\n")
    net = tmp_path / "net"
    (net / "wlan1").mkdir(parents=True)
    (net / "wlan1" / "phy80211").symlink_to(phy)
    (net / "eth0").mkdir()
    found = Radios(lambda: wifi_scan.radio_macs(tmp_path / "ieee80211"), lambda: wifi_scan.radio_interfaces(net))
    assert found.wiphy_of("02:00:00:00:01:00") == "phy1" and found.device_of("phy1") == "wlan1"
    assert found.device_of("phy7") == "phy7"


def test_probe_unavailable_here_says_no_stack(monkeypatch):
    monkeypatch.setattr(wifi_scan, "stack_problem", lambda: NO_STACK)
    monkeypatch.setattr(wifi_scan.EventSource, "missing_hooks", lambda self: list(self.hooks))
    with pytest.raises(ProbeUnavailable, match="^no 802.11 stack in this kernel$"):
        WifiScanProbe().select()


def test_snapshot_round_trips_through_a_record():
    events, t = sw_scan()
    asm = ScanAssembler(radios())
    asm.feed(events + [ev(SW_DONE, t, "phy1", vif="wlan1")], wall)
    asm.feed(sw_scan("phy2", "wlan2", t)[0], wall)
    done, under_way = asm.take(t + 10 * MS, wall)
    snapshot = WifiSnapshot("tracepoint", 3, done, under_way, 1)
    record = json.loads(json.dumps(snapshot.to_record()))
    assert record["scans"][0]["channels"][1] == {"band": "2.4", "freq_mhz": 2437, "beacon_found": True, "at_ms": 102.0, "beacons": 1}
    assert record["in_progress"][0]["end"] is None
    assert WifiSnapshot.from_record(record) == snapshot
    merged = snapshot.merge(WifiSnapshot("tracepoint", 1, (), (), 0))
    assert merged.lost_events == 4 and merged.scans == snapshot.scans
    assert isinstance(WifiScan.from_record(record["scans"][0]), WifiScan)


@pytest.mark.root
def test_doctor_and_record_on_this_kernel(recording):
    """Where the kernel has no 802.11 stack, doctor says so and the other probes still record."""
    import subprocess
    import sys

    problem = stack_problem()
    doctor = subprocess.run([sys.executable, "-m", "nettop", "doctor"], capture_output=True, text=True, timeout=300)
    (line,) = [line for line in doctor.stdout.splitlines() if "wifi_scan" in line.split()]
    if problem == NO_STACK:
        assert line.endswith("unavailable: no 802.11 stack in this kernel")
        with recording(2.0, "--probes", "socket_io,wifi_scan") as rec:
            frames = rec.finish()
        assert frames and all("wifi" not in f["panes"] and "tcp" in f["panes"] for f in frames)
    else:
        assert "wifi_scan" in line and ("ok, tracepoint" in line or "ok, kprobe" in line or (problem or "") in line)
