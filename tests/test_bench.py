"""The bench harness's pure parts: figures, BPF run-time deltas, drop counts from a recording,
observer selection, the alternation's slice ratios and the targets table (the benches
themselves run with `make bench`); and, as root, the alternation's detaching and
re-attaching of loaded programs."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import alternation  # noqa: E402
import common  # noqa: E402
import empty_hooks  # noqa: E402
import observers  # noqa: E402
import report  # noqa: E402
import soak  # noqa: E402


def test_figure_is_min_median_max_of_the_runs_given():
    assert common.figure([3.0, 1.0, 2.0, None]) == {"min": 1.0, "median": 2.0, "max": 3.0, "n": 3, "runs": [3.0, 1.0, 2.0]}
    assert common.figure([]) == {"n": 0}


def test_program_labels_name_the_event():
    assert common.program_label("tracepoint__sock__sock_send_length", "ab", False) == "sock:sock_send_length"
    assert common.program_label("raw_tracepoint__net_dev_xmit", "ab", False) == "net_dev_xmit (raw)"
    assert common.program_label("consume_skb", "abcdef99", True) == "consume_skb [abcdef]"
    # BCC names a raw program by its event alone where that fits 15 characters: its type says raw
    assert common.program_label("net_dev_xmit", "ab", False, "raw_tracepoint") == "net_dev_xmit (raw)"
    # a BTF-typed program's name is its event cut to the kernel's 15 characters
    assert common.program_label("net_dev_start_x", "ab", False, "tracing") == "net_dev_start_xmit (tp_btf)"
    assert common.program_label("net_dev_queue", "ab", False, "tracing") == "net_dev_queue (tp_btf)"


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert common.percentile(values, 0.5) == 50
    assert common.percentile(values, 0.99) == 99
    assert common.percentile([5.0, 1.0], 0.99) == 5.0


def test_bpf_runtime_delta_per_program_and_in_total():
    before = {7: {"name": "tracepoint__sock__sock_send_length", "tag": "aa", "run_time_ns": 1000, "run_cnt": 10},
              8: {"name": "tracepoint__net__net_dev_queue", "tag": "bb11223344", "run_time_ns": 0, "run_cnt": 0},
              9: {"name": "tracepoint__net__net_dev_queue", "tag": "cc", "run_time_ns": 0, "run_cnt": 0}}
    after = {7: {**before[7], "run_time_ns": 3000, "run_cnt": 20},
             8: {**before[8], "run_time_ns": 500, "run_cnt": 5},
             9: {**before[9]}}
    delta = common.bpf_runtime_delta(before, after, seconds=2.0)
    assert delta["programs"]["sock:sock_send_length"] == {"events_per_s": 5.0, "ns_per_event": 200.0}
    assert delta["programs"]["net:net_dev_queue [bb1122]"] == {"events_per_s": 2.5, "ns_per_event": 100.0}
    assert delta["programs"]["net:net_dev_queue [cc]"]["ns_per_event"] is None
    assert delta["cpu_seconds"] == pytest.approx(2500e-9)
    assert delta["core_percent"] == pytest.approx(100 * 2500e-9 / 2)


def test_bpf_stats_restored_after_a_failure(tmp_path, monkeypatch):
    sysctl = tmp_path / "bpf_stats_enabled"
    sysctl.write_text("0\n")
    monkeypatch.setattr(common, "BPF_STATS_SYSCTL", sysctl)
    with pytest.raises(RuntimeError):
        with common.bpf_stats_enabled():
            assert sysctl.read_text() == "1"
            raise RuntimeError("workload failed")
    assert sysctl.read_text() == "0"


def test_exceptions_in_finds_tracebacks_and_failed_polls():
    lines = ["nettop: recording tcp for 10s", "Traceback (most recent call last):", "x: poll failed: boom"]
    assert common.exceptions_in(lines) == lines[1:]


def test_soak_sums_drops_and_losses_and_sees_panes_stop(tmp_path):
    path = tmp_path / "r.jsonl.gz"
    frames = [
        {"panes": {"tcp": {"dropped": 2}, "retransmits": {"dropped": 0, "lost_events": 1}}},
        {"panes": {"tcp": {"dropped": 3}}},
    ]
    with gzip.open(path, "wt") as f:
        for frame in frames:
            f.write(json.dumps(frame) + "\n")
        f.write('{"panes": {"tc')  # cut short when nettop stopped
    totals, count, first, last = soak.losses(path)
    assert totals == {"tcp": {"dropped": 5}, "retransmits": {"dropped": 0, "lost_events": 1}}
    assert count == 2
    assert first - last == {"retransmits"}


def test_observers_chosen_by_key_bare_first_and_nettop_with_some_probes():
    chosen = observers.chosen("iftop,nettop:netdev+socket_io")
    assert [o.key for o in chosen] == ["bare", "iftop", "nettop:netdev+socket_io"]
    assert chosen[2].title == "nettop record --probes netdev,socket_io"
    with pytest.raises(SystemExit):
        observers.chosen("tcpdump")


def _overhead(nettop_cpu: float, capture_cpu: float, ratio: float) -> dict:
    fig = common.figure
    return {
        "observers": {"bare": {"kind": "bare"}, "nettop": {"kind": "nettop"}, "iftop": {"kind": "capture"}},
        "ratio": {"nettop": {w: fig([ratio]) for w in ("bulk8", "writes64", "rr64")}},
        "cpu_percent": {"nettop": {w: fig([nettop_cpu]) for w in ("bulk1", "bulk8", "writes64", "rr64")},
                        "iftop": {w: fig([capture_cpu]) for w in ("bulk1", "bulk8", "writes64", "rr64")}},
    }


def test_targets_met_missed_and_not_measured():
    rows = {line.split(" | ")[0].lstrip("| "): line for line in report.targets_table(
        {"overhead": _overhead(nettop_cpu=1.0, capture_cpu=50.0, ratio=0.95)})[2:]}
    assert rows["8-stream loopback throughput ratio, all panes"].endswith("| **missed** |")
    assert rows["64-byte writes ratio"].endswith("| met |")
    assert rows["nettop CPU at bulk loopback"].endswith("| met |")
    assert "50.0× (iftop)" in rows["CPU vs the cheapest packet-capture tool, bulk loopback"]
    assert rows["time to first frame"].endswith("| not measured |")


def test_a_pinned_ratio_above_what_its_bpf_time_allows_is_not_shown_met():
    """50k round trips/s bare is 20 us each; 1,000 ns of BPF time on each caps the ratio at
    20 / 21 = 0.952: 1.0 is the rounds' noise, 0.96 still within the slack."""

    def row(ratio: float) -> str:
        overhead = _overhead(nettop_cpu=1.0, capture_cpu=50.0, ratio=ratio)
        overhead["rate"] = {"bare": {"rr64": common.figure([50.0])}}
        overhead["bpf"] = {"rr64": {"ns_per_operation": common.figure([1000.0])}}
        rows = report.targets_table({"overhead": overhead})
        return next(line for line in rows if line.startswith("| 64-byte request/response ratio"))

    assert row(1.0).endswith("| **not shown**: the run's noise exceeds nettop's cost |")
    assert "above the 0.952 at most" in row(1.0) and "1,000 ns on a 20.0 µs round trip" in row(1.0)
    assert row(0.96).endswith("| met |")
    assert row(0.90).endswith("| **missed** |")


def test_scale_reports_the_socket_maps_drops_only_when_there_were_some():
    assert report.dropped_note({}) == ""  # results from before the figure existed
    assert report.dropped_note({"tcp_dropped": common.figure([0, 0])}) == ""
    note = report.dropped_note({"tcp_dropped": common.figure([7236, 7432, 6670], 0)})
    assert "7236 [6670–7432] sends/receives per interval" in note and "16,384" in note


def test_empty_hooks_are_one_empty_raw_program_per_tracepoint():
    text = empty_hooks.program(("net:net_dev_queue", "skb:consume_skb"))
    assert text.splitlines() == ["RAW_TRACEPOINT_PROBE(net_dev_queue) { return 0; }",
                                 "RAW_TRACEPOINT_PROBE(consume_skb) { return 0; }"]


def test_each_attached_slice_is_divided_by_the_bare_slices_beside_it():
    sequence = [(None, 100.0), ("a", 90.0), (None, 80.0), ("b", 45.0), (None, 100.0), ("a", 60.0)]
    assert alternation.slice_ratios(sequence) == {"a": [1.0], "b": [0.5]}  # the last slice has no bare after it
    # a bare slice with no traffic (the client had ended) makes no ratio
    assert alternation.slice_ratios([(None, 0.0), ("a", 5.0), (None, 0.0), ("b", 1.0), (None, 4.0)]) == {}


def test_median_summary_gives_the_order_statistic_interval():
    summary = alternation.median_summary([float(v) for v in range(100, 0, -1)])
    # n = 100: ranks 50 -/+ 1.96 * sqrt(100) / 2, cut to whole ranks
    assert summary == {"median": 50.5, "ci_low": 41.0, "ci_high": 60.0, "q1": 26.0, "q3": 76.0, "n": 100}
    assert alternation.median_summary([]) == {"n": 0}


def _alternation(nettop: float, **others: float) -> dict:
    def summary(median: float) -> dict:
        return {"median": median, "ci_low": median - 0.01, "ci_high": median + 0.01, "q1": 0, "q3": 0, "n": 300}

    ratios = {"nettop": summary(nettop), **{key.replace("_", "-"): summary(v) for key, v in others.items()}}
    return {"slice_s": 0.1, "seconds_per_variant": 30, "nettop_probes": ["netdev", "socket_io"],
            "variants": {"nettop": "nettop, every probe", "empty-device-hooks": "empty device programs"},
            "workloads": {"rr64": {"title": "ping-pong", "counter": "tx_packets",
                                   "bare_per_s": {"median": 130000.0, "n": 301}, "ratio": ratios}}}


def test_throughput_targets_are_judged_by_the_alternation_where_it_ran():
    overhead = _overhead(nettop_cpu=1.0, capture_cpu=50.0, ratio=1.0)
    overhead["rate"] = {"bare": {"rr64": common.figure([50.0])}}
    overhead["bpf"] = {"rr64": {"ns_per_operation": common.figure([1000.0])}}  # the rounds alone: not shown
    alternated = _alternation(0.90, minimal=0.935, empty_device_hooks=0.97, empty_socket_hooks=0.98)
    rows = report.targets_table({"overhead": overhead, "alternation": alternated})
    row = next(line for line in rows if line.startswith("| 64-byte request/response ratio"))
    assert row.endswith("| **missed** |")
    assert "0.900 [0.890–0.910] by fast alternation" in row
    assert "the issue's minimal program 0.935" in row and "empty programs on its hooks 0.951" in row  # 0.97 x 0.98
    assert "`nettop record` in interleaved rounds 1.000" in row
    met = report.targets_table({"overhead": overhead, "alternation": _alternation(0.95)})
    assert next(line for line in met if line.startswith("| 64-byte request/response")).endswith("| met |")
    # the other workloads had no alternation: judged by the rounds
    assert next(line for line in met if line.startswith("| 64-byte writes ratio")).endswith("| met |")


def test_the_alternation_section_shows_each_variant_per_workload():
    text = "\n".join(report.alternation_section(_alternation(0.9, empty_device_hooks=0.97)))
    assert "| nettop, every probe | 0.900 [0.890–0.910] (n 300) |" in text
    assert "| empty device programs | 0.970 [0.960–0.980] (n 300) |" in text
    assert "| bare rate, median slice | 130.0k packets/s |" in text
    assert "netdev, socket_io" in text


def _udp_writes_seen(probes, datagrams: int = 20) -> tuple[int, int]:
    """Send datagrams over lo, then poll: (this process's UDP writes, lo's stack sends) counted."""
    import os
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        for _ in range(datagrams):
            sender.sendto(b"x" * 100, sink.getsockname())
    sizes = [snapshot for probe in probes for key, snapshot in probe.poll(1.0).items() if key == "sizes"]
    writes = sum(p.write.count for s in sizes for p in s.processes if p.pid == os.getpid() and p.protocol == "udp")
    sends = sum(d.stack_send.count for s in sizes for d in s.devices if d.ifname == "lo")
    return writes, sends


@pytest.mark.root
def test_alternation_detaches_and_reattaches_the_loaded_programs():
    """socket_io (raw tracepoints) and netdev (BTF-typed where the kernel types them, as
    here): detached, their programs see no traffic; attached again, they count all of it."""
    from nettop.probes.netdev import NetdevProbe
    from nettop.probes.owners import SocketOwners
    from nettop.probes.socket_io import SocketIoProbe

    probes = [SocketIoProbe(owners=SocketOwners()), NetdevProbe()]
    try:
        for probe in probes:
            probe.select()
            probe.start()
        variant = alternation.Variant("nettop", "both", [alternation.probe_hooks(p) for p in probes])
        _udp_writes_seen(probes, 1)  # anything before this test starts counting
        assert _udp_writes_seen(probes) == (20, 20)
        variant.detach()
        assert _udp_writes_seen(probes) == (0, 0)
        variant.attach()
        assert _udp_writes_seen(probes) == (20, 20)
        variant.detach()
        variant.attach()  # twice: the links made by the first re-attach are the ones closed
        assert _udp_writes_seen(probes) == (20, 20)
    finally:
        for probe in probes:
            probe.close()
