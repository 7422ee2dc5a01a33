"""qdisc_latency without root (netdev's transmit part: tests/test_netdev.py): BPF text per source, tc naming, counter deltas, snapshot building."""

from __future__ import annotations

import pytest

from nettop.btf import running_kernel_btf
from nettop.errors import ProbeUnavailable
from nettop.model.queues import QdiscStats, QueuesSnapshot
from nettop.probes import netdev, qdisc_latency
from nettop.probes.qdisc_latency import (
    KPROBE_FUNCTIONS,
    CounterDeltas,
    NetlinkQdisc,
    bpf_text,
    build_snapshot,
    counter_delta,
    kprobe_source,
    qdiscs_by_device,
    tc_handle,
    tc_parent,
)
from nettop.probes.timing import SLOTS

BTF = running_kernel_btf()
needs_btf = pytest.mark.skipif(BTF is None, reason="no kernel BTF")


@needs_btf
@pytest.mark.parametrize("source", ["raw_tracepoint", "tracepoint"])
def test_tracepoint_text_walks_bulk_lists_and_uses_btf_offsets(source):
    text = bpf_text(source, btf=BTF)
    assert 'BPF_F_TABLE("lru_hash", u64, u64, starts, 16384, BPF_F_NO_COMMON_LRU)' in text
    assert f"#define OFF_SKB_NEXT {BTF.offsetof('sk_buff', 'next')}" in text
    assert f"#define OFF_QDISC_HANDLE {BTF.offsetof('Qdisc', 'handle')}" in text
    assert "n <= 0 || !skb" in text  # empty polls skipped
    assert "kprobe__" not in text


@needs_btf
def test_raw_tracepoint_text_reads_tp_proto_arguments_only():
    """qdisc_enqueue(qdisc, txq, skb), qdisc_dequeue(qdisc, txq, packets, skb); the rest from the structs."""
    raw = bpf_text("raw_tracepoint", btf=BTF)
    assert "RAW_TRACEPOINT_PROBE(qdisc_enqueue)" in raw and "RAW_TRACEPOINT_PROBE(qdisc_dequeue)" in raw
    assert "enqueued(ctx->args[2])" in raw
    assert "dequeued((void *)ctx->args[0], (int)ctx->args[2], ctx->args[3])" in raw
    assert "args->" not in raw and "TRACEPOINT_PROBE(qdisc," not in raw
    perf = bpf_text("tracepoint", btf=BTF)
    assert "TRACEPOINT_PROBE(qdisc, qdisc_enqueue)" in perf and "TRACEPOINT_PROBE(qdisc, qdisc_dequeue)" in perf
    assert "RAW_TRACEPOINT_PROBE" not in perf and "ctx->args" not in perf


def test_sources_best_first(monkeypatch):
    monkeypatch.setattr("nettop.kernel.tracepoint_exists", lambda c, e: True)
    assert [s.name for s in qdisc_latency.QdiscLatencyProbe.sources] == ["raw_tracepoint", "tracepoint"]
    probe = qdisc_latency.QdiscLatencyProbe(lister=FakeLister())
    assert probe.select().name == "raw_tracepoint"
    assert qdisc_latency.QdiscLatencyProbe("tracepoint", lister=FakeLister()).select().name == "tracepoint"


class FakeLister:
    def list(self):
        return [NetlinkQdisc(2, "eth0", "htb", 0x10000, 0xFFFFFFFF)]

    def close(self):
        pass


@needs_btf
def test_kprobe_text_only_for_kinds_in_use():
    text = bpf_text("kprobe", kinds=("tbf", "noqueue", "fq_codel"), btf=BTF)
    assert "int kprobe__tbf_enqueue(" in text and "int kretprobe__tbf_dequeue(" in text
    assert "int kprobe__fq_codel_enqueue(" in text and "int kretprobe__fq_codel_dequeue(" in text
    assert "htb_enqueue" not in text and "TRACEPOINT_PROBE" not in text
    assert text.count("enqueued(skb, sch, ") == 2
    with pytest.raises(ProbeUnavailable, match="no qdisc in use"):
        bpf_text("kprobe", kinds=("noqueue", "pfifo"), btf=BTF)


def test_kprobe_table_covers_the_books_qdiscs():
    for kind in ("fq", "fq_codel", "codel", "cbq", "cbs", "red", "tbf", "htb"):
        assert kind in KPROBE_FUNCTIONS
    assert KPROBE_FUNCTIONS["codel"] == ("codel_qdisc_enqueue", "codel_qdisc_dequeue")
    source = kprobe_source(["htb", "mq", "fq"])
    assert [str(h) for h in source.hooks] == ["kprobe:fq_enqueue", "kprobe:fq_dequeue",
                                              "kprobe:htb_enqueue", "kprobe:htb_dequeue"]


def test_tc_names():
    assert tc_handle(0x80010000) == "8001:" and tc_handle(0) == "0:"
    assert tc_parent(0xFFFFFFFF) == "root" and tc_parent(0x10010) == "1:10"
    assert tc_parent(0x10000) == "1:" and tc_parent(0x1) == ":1" and tc_parent(0xFFFFFFF1) == "ffff:fff1"


def test_counter_delta_wraps_and_resets():
    assert counter_delta(10, 4) == 6
    assert counter_delta(5, (1 << 32) - 5) == 10  # wrapped
    assert counter_delta(7, 1000) == 7  # replaced qdisc: counts from zero


def nl(sent, drops=0, backlog=0, handle=0x80010000, kind="tbf"):
    return NetlinkQdisc(7, "veth0", kind, handle, 0xFFFFFFFF, sent_packets=sent, drops=drops, backlog_bytes=backlog)


def test_counter_deltas_per_interval_backlog_is_a_level():
    deltas = CounterDeltas()
    deltas.step([nl(100, 5)])
    step = deltas.step([nl(250, 9, backlog=3000)])
    assert step[(7, 0x80010000, 0xFFFFFFFF)] == QdiscStats(sent_packets=150, drops=4, backlog_bytes=3000)


def entry(netns, packets_slot, other=0, handle=0x80010000):
    hist = [0] * SLOTS
    hist[packets_slot] = 10
    return {"other": other, "inherited": 0, "max_ns": 40_000_000, "hist": hist,
            "meta": (7, netns, handle, 0xFFFFFFFF, "veth0")}


def test_build_snapshot_names_from_netlink_and_keeps_foreign_namespaces():
    stats = {(7, 0x80010000, 0xFFFFFFFF): QdiscStats(sent_packets=10)}
    netlink = [nl(10), NetlinkQdisc(1, "lo", "noqueue", 0, 0xFFFFFFFF)]
    snap = build_snapshot([entry(111, 16, other=2), entry(222, 3)], netlink, stats, netns=111, source="tracepoint")
    rows = {(q.ifname, q.kind, q.handle): q for q in snap.qdiscs}
    tbf = rows[("veth0", "tbf", "8001:")]
    assert tbf.packets == 10 and tbf.missed == 2 and tbf.stats.sent_packets == 10
    assert tbf.latency.max_us == 40_000.0 and tbf.latency.histogram.buckets == ((32768, 65536, 10),)
    assert rows[("lo", "noqueue", "0:")].queueless
    assert rows[("veth0", "?", "8001:")].packets == 10  # same ifindex, other namespace: not merged
    assert snap.missed == 2
    again = QueuesSnapshot.from_record(snap.to_record())
    assert again == snap
    assert snap.to_record()["qdiscs"][0]["latency_us"]["p50"] is not None


def test_qdiscs_by_device_for_doctor():
    assert qdiscs_by_device([nl(0), NetlinkQdisc(1, "lo", "noqueue", 0, 0xFFFFFFFF)]) == {
        "lo": ["noqueue 0: root"], "veth0": ["tbf 8001: root"]}


def test_snapshots_of_both_probes_merge():
    a = build_snapshot([], [nl(1)], {}, 1, "tracepoint")
    tx = entry(1, 2)
    b = netdev.build_snapshots([(tx, {"bytes": [0] * 4, "errors": [0] * 4, "hist": [0] * (4 * SLOTS)})], "kprobe")["queues"]
    merged = a.merge(b)
    assert merged.source == "tracepoint+kprobe" and len(merged.qdiscs) == 1 and len(merged.devices) == 1
    assert merged.devices[0].packets == 0 and merged.devices[0].latency.count == 10


def test_module_docstrings_name_hooks():
    for module in (qdisc_latency, netdev):
        assert "Kernel hooks" in module.__doc__ and "Overhead" in module.__doc__
