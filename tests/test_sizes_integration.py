"""The sizes pane's probes against known workloads: real BPF, real sockets, real devices.

Socket sizes: a helper process (tests/sizes_workload.py) writes and reads exact sizes
over TCP, UDP and UNIX sockets; the recording must hold exactly those counts in exactly
those buckets, for that PID and protocol, read and write.

Device sizes: UDP datagrams of a known size go over a veth pair into a test network
namespace; the device histograms must agree with the kernel's own counters (`ip -s
link`). On veth, TX packets count every skb veth_xmit accepted (= net_dev_xmit with
rc 0; veth has no qdisc, so also = net_dev_queue), and RX packets are the peer's TX
(= netif_receive_skb on this end). veth without XDP or GRO enabled does not use NAPI,
so napi_gro_receive_entry (NIC receive) stays at zero there.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from nettop.model.histogram import log2_bounds, log2_slot
from nettop.probes.netdev import NetdevProbe
from kernel_paths import kernel_socket_source

pytestmark = pytest.mark.root

WORKLOAD = Path(__file__).parent / "sizes_workload.py"
sys.path.insert(0, str(WORKLOAD.parent))
from sizes_workload import PLAN  # noqa: E402


def expected_buckets(plan) -> list[list[int]]:
    counts: dict[int, int] = {}
    for size, count in plan:
        counts[log2_slot(size)] = counts.get(log2_slot(size), 0) + count
    return [[*log2_bounds(slot), n] for slot, n in sorted(counts.items())]


def summed(frames, pid, protocol, direction):
    """Count, bytes, errors and buckets over all frames for one (pid, protocol)."""
    count = bytes_ = errors = 0
    buckets: dict[tuple[int, int], int] = {}
    comms = set()
    for frame in frames:
        for p in frame["panes"].get("sizes", {}).get("processes", []):
            if p["pid"] == pid and p["protocol"] == protocol:
                comms.add(p["comm"])
                io = p[direction]
                count += io["count"]
                bytes_ += io["bytes"]
                errors += io["errors"]
                for lo, hi, n in io["buckets"]:
                    buckets[(lo, hi)] = buckets.get((lo, hi), 0) + n
    return count, bytes_, errors, [[lo, hi, n] for (lo, hi), n in sorted(buckets.items())], comms


def test_socket_sizes_match_a_known_workload(recording):
    with recording(15.0, "--probes", "socket_io", interval=0.5) as rec:
        helper = subprocess.run(
            [sys.executable, str(WORKLOAD), "tcp", "udp", "unix"], capture_output=True, text=True, timeout=60
        )
        rec.process.terminate()  # stop early: the record command writes what it has on SIGTERM
        frames = rec.finish()
    assert helper.returncode == 0 and helper.stdout.strip() == "done", helper.stderr
    pid = helper_pid(frames)
    for protocol, plan in PLAN.items():
        buckets = expected_buckets(plan)
        total_bytes = sum(size * count for size, count in plan)
        for direction in ("read", "write"):
            count, bytes_, errors, got, comms = summed(frames, pid, protocol, direction)
            assert got == buckets, (protocol, direction)
            assert (count, bytes_, errors) == (sum(c for _, c in plan), total_bytes, 0), (protocol, direction)
            assert comms == {"python3"} or comms == {Path(sys.executable).name[:15]}
    assert {f["panes"]["sizes"]["source"] for f in frames if "sizes" in f["panes"]} == {kernel_socket_source()}
    assert all(f["panes"]["sizes"]["dropped"] == 0 for f in frames if "sizes" in f["panes"])


def helper_pid(frames) -> int:
    """The one PID with UNIX datagram writes of 64 KiB in the recording: the helper's."""
    pids = {
        p["pid"]
        for f in frames
        for p in f["panes"].get("sizes", {}).get("processes", [])
        if p["protocol"] == "unix" and any(lo == 65536 for lo, _, _ in p["write"]["buckets"])
    }
    assert len(pids) == 1, pids
    return pids.pop()


def link_packets(ifname: str, netns: str | None = None) -> tuple[int, int]:
    """(rx_packets, tx_packets) as `ip -s link` reports them."""
    cmd = ["ip", "-s", "-j", "link", "show", "dev", ifname]
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    stats = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)[0]["stats64"]
    return stats["rx"]["packets"], stats["tx"]["packets"]


@contextmanager
def live_netdev(source: str | None = None) -> Iterator[NetdevProbe]:
    probe = NetdevProbe(source)
    probe.select()
    probe.start()
    try:
        yield probe
    finally:
        probe.close()


def device(snapshot, ifname):
    found = [d for d in snapshot.devices if d.ifname == ifname]
    assert len(found) == 1, [d.ifname for d in snapshot.devices]
    return found[0]


def bucket_count(io, size) -> int:
    lo, hi = log2_bounds(log2_slot(size))
    return sum(n for b_lo, b_hi, n in io.histogram.buckets if (b_lo, b_hi) == (lo, hi))


DATAGRAMS = 200
PAYLOAD = 1000
ETH_IP_UDP = 14 + 20 + 8  # the sender's skb holds the Ethernet header; the receiver's does not


@pytest.mark.parametrize("source", ["tp_btf", "raw_tracepoint"])
def test_device_sizes_agree_with_ip_link(host, source):
    with live_netdev(source) as probe:
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sender.sendto(b"warm-up", (host.ip, 9))  # resolve ARP before the measured window
        time.sleep(0.3)
        probe.poll(1.0)
        host_before = link_packets(host.host_if)
        ns_before = link_packets(host.ns_if, host.name)
        for _ in range(DATAGRAMS):
            sender.sendto(b"y" * PAYLOAD, (host.ip, 9))
        time.sleep(0.3)
        host_after = link_packets(host.host_if)
        ns_after = link_packets(host.ns_if, host.name)
        snapshots = probe.poll(1.0)
        snapshot = snapshots["sizes"]
    here = device(snapshot, host.host_if)
    there = device(snapshot, host.ns_if)
    assert here.netns != there.netns  # the namespace end is told apart from this one

    # The datagrams themselves: exact counts in exact buckets at each point they pass.
    assert bucket_count(here.stack_send, PAYLOAD + ETH_IP_UDP) == DATAGRAMS
    assert bucket_count(here.nic_send, PAYLOAD + ETH_IP_UDP) == DATAGRAMS
    assert bucket_count(there.stack_recv, PAYLOAD + ETH_IP_UDP - 14) == DATAGRAMS
    assert here.nic_recv.count == there.nic_recv.count == 0  # veth: no NAPI without XDP/GRO

    # Everything else (ICMP port unreachable replies, rate-limited by the kernel; IPv6
    # router solicitations and MLD reports of a young link) is counted by both sides.
    # A packet can slip between the probe's poll and an `ip` read (a few ms apart); in
    # the quiet test namespace that is at most a stray IPv6 control packet, hence 2.
    rx_delta = host_after[0] - host_before[0]
    tx_delta = host_after[1] - host_before[1]
    ns_rx_delta = ns_after[0] - ns_before[0]
    assert 0 <= here.nic_send.count - tx_delta <= 2, (here.nic_send, tx_delta)
    assert here.stack_send.count == here.nic_send.count
    assert 0 <= here.stack_recv.count - rx_delta <= 2, (here.stack_recv, rx_delta)
    assert 0 <= there.stack_recv.count - ns_rx_delta <= 2, (there.stack_recv, ns_rx_delta)
    assert here.nic_send.errors == 0

    # The same program's transmit part: every skb handed to the veth's driver, no GSO.
    (sent,) = [d for d in snapshots["queues"].devices if d.key == here.key]
    assert sent.packets == here.nic_send.count


def link_tx(ifname: str) -> tuple[int, int]:
    """(tx_packets, tx_dropped) as `ip -s link` reports them."""
    cmd = ["ip", "-s", "-j", "link", "show", "dev", ifname]
    stats = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)[0]["stats64"]
    return stats["tx"]["packets"], stats["tx"]["dropped"]


@pytest.mark.parametrize("source", ["tp_btf", "raw_tracepoint", "tracepoint"])
def test_sends_the_driver_refuses_are_errors_not_sizes(host, source):
    """A veth refuses a frame its peer's MTU cannot take (veth_xmit returns NET_XMIT_DROP and
    counts a tx drop). The raw and BTF-typed sources count a send at net_dev_start_xmit and
    take it back at net_dev_xmit; the tracepoint source counts it only at net_dev_xmit. Both must show
    refusals as errors, outside the histogram, as `ip -s link` counts them."""
    host.run("ip", "link", "set", host.ns_if, "mtu", "1000")
    host.pin_neighbours()  # no ARP to wait for: a send and its transmit counters are synchronous
    with live_netdev(source) as probe:
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.poll(1.0)
        before = link_tx(host.host_if)
        for _ in range(REFUSED):
            sender.sendto(b"r" * 1200, (host.ip, 9))  # 1242 bytes on the wire: over the peer's MTU
        for _ in range(ACCEPTED):
            sender.sendto(b"a" * 500, (host.ip, 9))
        after = link_tx(host.host_if)
        snapshots = probe.poll(1.0)
    here = device(snapshots["sizes"], host.host_if)
    sent, dropped = after[0] - before[0], after[1] - before[1]
    assert dropped == REFUSED and here.nic_send.errors == REFUSED
    assert bucket_count(here.nic_send, 1200 + ETH_IP_UDP) == 0
    assert bucket_count(here.nic_send, 500 + ETH_IP_UDP) == ACCEPTED
    assert bucket_count(here.stack_send, 1200 + ETH_IP_UDP) == REFUSED  # the stack did send them
    assert 0 <= here.nic_send.count - sent <= 2, (here.nic_send, sent)  # a stray IPv6 packet, as above
    assert 0 <= here.nic_send.bytes - ACCEPTED * (500 + ETH_IP_UDP) < 400  # the refused bytes taken back out
    (queued,) = [d for d in snapshots["queues"].devices if d.key == here.key]
    assert queued.packets == here.nic_send.count + REFUSED  # handed to the driver, whatever it answered


REFUSED = 50
ACCEPTED = 30


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_every_cpus_copy_of_a_device_entry_names_its_device(host):
    """A BPF update of a per-CPU hash fills only the creating CPU's copy; the others start
    zeroed. A CPU that finds the entry must describe the device in its own copy: the sends
    it counts are timed only if that copy says the device is hardware (the VM's NIC test
    timed 1,393 of 2,000 sends when only the creating CPU's copy said so)."""
    host.pin_neighbours()  # no ARP: each send runs the send hooks on the sender's CPU, then and there
    cpus = sorted(os.sched_getaffinity(0))[:2]
    saved = os.sched_getaffinity(0)
    with live_netdev() as probe:
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.poll(1.0)
        try:
            for cpu in cpus:
                os.sched_setaffinity(0, {cpu})
                for _ in range(20):
                    sender.sendto(b"c" * 300, (host.ip, 9))
        finally:
            os.sched_setaffinity(0, saved)
        copies = []
        for _, per_cpu in probe._bpf["devices"].items():
            copies += [(cpu, c) for cpu, c in enumerate(per_cpu) if c.bytes[1] and cpu in cpus]
    ifindex = socket.if_nametoindex(host.host_if)
    ours = [(cpu, c) for cpu, c in copies if c.tx.ifindex == ifindex]
    assert {cpu for cpu, _ in ours} == set(cpus)  # both CPUs' copies name the veth
    assert all(c.tx.name == host.host_if.encode() for _, c in ours)
    assert all(c.known == 1 and c.tx.ifindex for _, c in copies), "a copy that counted sends without describing its device"
