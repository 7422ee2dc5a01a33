"""Queues probes against real shaping: a tbf / htb on a veth, saturated by iperf3.

Checks the recorded qdisc latency against a reference BPF program written here (linear
1 ms buckets, its own maps) and against what the shaper implies (backlog / rate), the
packet counts against `tc -s qdisc`, that an unshaped qdisc is orders of magnitude faster,
and the probe's own decoding of the qdisc dump against pyroute2's.
"""

from __future__ import annotations

import re
import subprocess
import time

import pytest

from netns import sh, wait_for_port
from nettop.model.histogram import Histogram
from nettop.probes.qdisc_latency import NetlinkQdisc, QdiscLister, tc_handle, tc_parent

RATE_BITS = 10_000_000
REFERENCE_C = r"""
BPF_HASH(start, u64, u64, 65536);
BPF_ARRAY(ms, u64, 1001);  /* 1 ms linear buckets, the last one open-ended */
TRACEPOINT_PROBE(qdisc, qdisc_enqueue)
{
    if (args->ifindex != IFINDEX) return 0;
    u64 skb = (u64)args->skbaddr, now = bpf_ktime_get_ns();
    start.update(&skb, &now);
    return 0;
}
TRACEPOINT_PROBE(qdisc, qdisc_dequeue)
{
    if (args->ifindex != IFINDEX || args->packets != 1 || !args->skbaddr) return 0;
    u64 skb = (u64)args->skbaddr;
    u64 *t = start.lookup(&skb);
    if (!t) return 0;
    u32 bucket = (bpf_ktime_get_ns() - *t) / 1000000;
    if (bucket > 1000) bucket = 1000;
    start.delete(&skb);
    ms.increment(bucket);
    return 0;
}
"""


def tc_sent_packets(dev: str) -> int:
    out = sh("tc", "-s", "qdisc", "show", "dev", dev).stdout
    return int(re.search(r"Sent \d+ bytes (\d+) pkt", out).group(1))


def reference_percentile(counts: list[int], fraction: float) -> float:
    """Upper edge (ms) of the 1 ms bucket holding the fraction."""
    total, seen = sum(counts), 0
    for i, n in enumerate(counts):
        seen += n
        if seen >= fraction * total:
            return i + 1.0
    return float(len(counts))


def qdisc_rows(frames, dev):
    return [q for f in frames for q in f["panes"].get("queues", {}).get("qdiscs", []) if q["ifname"] == dev]


def shaped_run(host, recording, flow: list[str], seconds: float = 3.0):
    """Record while iperf3 saturates the shaped veth; returns (rows, tc delta, reference ms counts)."""
    from bcc import BPF

    ifindex = int(open(f"/sys/class/net/{host.host_if}/ifindex").read())
    reference = BPF(text=REFERENCE_C.replace("IFINDEX", str(ifindex)))
    try:
        host.popen("iperf3", "-s", "-1")
        wait_for_port(host, 5201)
        with recording(seconds + 4, "--probes", "qdisc_latency", interval=0.5) as rec:
            before = tc_sent_packets(host.host_if)
            subprocess.run(["timeout", str(seconds + 10), "iperf3", "-c", host.ip, "-t", str(seconds), *flow],
                           check=True, capture_output=True)
            time.sleep(0.5)  # the queue drains (at most tbf's 50 ms, htb's ~200 ms)
            after = tc_sent_packets(host.host_if)
            frames = rec.finish()
        counts = [v.value for v in reference["ms"].values()]
    finally:
        reference.cleanup()
    return qdisc_rows(frames, host.host_if), after - before, counts



def check_against_reference(rows, tc_delta, counts):
    packets = sum(r["packets"] for r in rows)
    assert tc_delta > 1000
    assert abs(packets - tc_delta) <= 0.02 * tc_delta, (packets, tc_delta)
    hist = Histogram()
    for r in rows:
        hist = hist.merge(Histogram.from_record(r["latency_us"]["buckets"]))
    for fraction in (0.5, 0.99):
        mine_ms = hist.percentile(fraction) / 1000
        ref_ms = reference_percentile(counts, fraction)
        # log2 buckets interpolated: within a factor of two of the 1 ms reference
        assert ref_ms / 2 <= mine_ms <= ref_ms * 2, (fraction, mine_ms, ref_ms)
    return hist


@pytest.mark.root
def test_tbf_udp_latency_matches_reference_and_backlog(host, recording):
    sh("tc", "qdisc", "add", "dev", host.host_if, "root", "handle", "8001:", "tbf",
       "rate", "10mbit", "burst", "32kbit", "latency", "50ms")
    rows, tc_delta, counts = shaped_run(host, recording, ["-u", "-b", "20M"])
    assert {r["kind"] for r in rows} == {"tbf"} and rows[0]["handle"] == "8001:" and rows[0]["parent"] == "root"
    hist = check_against_reference(rows, tc_delta, counts)
    # The queue is kept full: waiting time is the standing backlog drained at the shaped rate.
    backlogs = [r["stats"]["backlog_bytes"] for r in rows if r["stats"]["backlog_bytes"] > 10_000]
    expected_ms = sum(backlogs) / len(backlogs) * 8 / RATE_BITS * 1000
    assert 0.6 * expected_ms <= hist.percentile(0.5) / 1000 <= 1.4 * expected_ms
    assert sum(r["stats"]["drops"] for r in rows) > 0  # saturated: the shaper dropped


@pytest.mark.root
def test_htb_tcp_latency_and_counts(host, recording):
    sh("tc", "qdisc", "add", "dev", host.host_if, "root", "handle", "1:", "htb", "default", "10")
    sh("tc", "class", "add", "dev", host.host_if, "parent", "1:", "classid", "1:10", "htb", "rate", "10mbit")
    rows, tc_delta, counts = shaped_run(host, recording, ["-C", "cubic"])
    assert {(r["kind"], r["handle"]) for r in rows} == {("htb", "1:")}
    hist = check_against_reference(rows, tc_delta, counts)
    assert hist.percentile(0.5) > 5_000  # a standing queue of milliseconds


@pytest.mark.root
def test_tbf_tcp_segments_are_timed(host, recording):
    """tbf cuts TSO packets larger than its burst at enqueue: timed from skb->tstamp."""
    sh("tc", "qdisc", "add", "dev", host.host_if, "root", "handle", "8001:", "tbf",
       "rate", "10mbit", "burst", "32kbit", "latency", "50ms")
    rows, tc_delta, counts = shaped_run(host, recording, ["-C", "cubic"])
    packets = sum(r["packets"] for r in rows)
    assert abs(packets - tc_delta) <= 0.02 * tc_delta, (packets, tc_delta)
    assert sum(r["inherited"] for r in rows) > 0.5 * packets
    assert Histogram.from_record([b for r in rows for b in r["latency_us"]["buckets"]]).percentile(0.5) > 5_000


@pytest.mark.root
def test_unshaped_is_orders_of_magnitude_faster(host, recording):
    sh("tc", "qdisc", "add", "dev", host.host_if, "root", "handle", "8001:", "tbf",
       "rate", "10gbit", "burst", "1mbit", "latency", "50ms")
    rows, tc_delta, _ = shaped_run(host, recording, ["-u", "-b", "20M"], seconds=2.0)
    packets = sum(r["packets"] for r in rows)
    assert abs(packets - tc_delta) <= 0.02 * tc_delta
    hist = Histogram()
    for r in rows:
        hist = hist.merge(Histogram.from_record(r["latency_us"]["buckets"]))
    assert hist.percentile(0.99) < 500  # µs; the shaped runs sit at tens of ms


@pytest.mark.root
def test_device_rows_and_noqueue(host, recording):
    host.popen("iperf3", "-s", "-1")
    wait_for_port(host, 5201)
    with recording(4, "--probes", "qdisc_latency,netdev", interval=0.5) as rec:
        subprocess.run(["iperf3", "-c", host.ip, "-t", "2"], check=True, capture_output=True)
        frames = rec.finish()
    qdiscs = qdisc_rows(frames, host.host_if)
    assert qdiscs and all(q["kind"] == "noqueue" and q["packets"] == 0 for q in qdiscs)
    devices = [d for f in frames for d in f["panes"]["queues"]["devices"] if d["ifname"] == host.host_if]
    assert sum(d["packets"] for d in devices) > 10_000
    # a veth has no parent bus device: counted, never timed (its "completion" is the peer's reader)
    assert all(d["hardware"] is False and not d["latency_us"]["buckets"] for d in devices)


def pyroute2_qdisc(message, names) -> NetlinkQdisc:
    """The reference: a NetlinkQdisc from pyroute2's decoding of the same dump."""
    stats2 = message.get_attr("TCA_STATS2")
    basic = (stats2.get_attr("TCA_STATS_BASIC") if stats2 else None) or {}
    queue = (stats2.get_attr("TCA_STATS_QUEUE") if stats2 else None) or {}
    index = message["index"]
    return NetlinkQdisc(
        index, names.get(index, f"if{index}"), message.get_attr("TCA_KIND") or "?", message["handle"],
        message["parent"], basic.get("packets", 0), basic.get("bytes", 0), queue.get("drops", 0),
        queue.get("overlimits", 0), queue.get("requeues", 0), queue.get("backlog", 0), queue.get("qlen", 0),
    )


@pytest.mark.root
def test_own_qdisc_decoder_agrees_with_pyroute2(host):
    """The struct decoder of the qdisc dump against pyroute2's, qdisc by qdisc: an htb tree
    with a tbf inside and an ingress qdisc, their counters moved by a UDP flow they drop."""
    import socket

    from pyroute2 import IPRoute

    dev = host.host_if
    sh("tc", "qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", "10")
    sh("tc", "class", "add", "dev", dev, "parent", "1:", "classid", "1:10", "htb", "rate", "10mbit")
    sh("tc", "qdisc", "add", "dev", dev, "parent", "1:10", "handle", "10:", "tbf",
       "rate", "5mbit", "burst", "16kbit", "latency", "20ms")
    sh("tc", "qdisc", "add", "dev", dev, "ingress")
    host.popen("iperf3", "-s", "-1")
    wait_for_port(host, 5201)
    subprocess.run(["timeout", "12", "iperf3", "-c", host.ip, "-u", "-b", "20M", "-t", "1"],
                   check=True, capture_output=True)
    time.sleep(0.3)  # the queues drain
    ifindex = socket.if_nametoindex(dev)
    lister, reference = QdiscLister(), IPRoute()
    try:
        for _attempt in range(3):  # a stray packet (ARP, IPv6 ND) between the two reads: again
            ours = lister.list()
            names = dict(socket.if_nameindex())
            theirs = [pyroute2_qdisc(m, names) for m in reference.get_qdiscs()]
            if ours == theirs:
                break
    finally:
        lister.close()
        reference.close()
    assert ours == theirs
    on_dev = {(q.kind, tc_handle(q.handle), tc_parent(q.parent)): q for q in ours if q.ifindex == ifindex}
    assert set(on_dev) == {("htb", "1:", "root"), ("tbf", "10:", "1:10"), ("ingress", "ffff:", "ffff:fff1")}
    tbf = on_dev["tbf", "10:", "1:10"]
    assert tbf.sent_packets > 100 and tbf.sent_bytes > 100_000 and tbf.drops > 0 and tbf.overlimits > 0
    assert on_dev["htb", "1:", "root"].sent_packets >= tbf.sent_packets
