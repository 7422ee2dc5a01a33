"""Paths only a distribution kernel offers: kprobe fallbacks, sch_fq and netem.

Run inside Debian's stock kernel by `make test-kernels` (tests/vm/). On a kernel without
the feature each test skips and says which one is missing; where it runs, it prints the
event source it exercised and records it as a junit property (tests/vm/summary.py).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from conftest import start_recording
from lossy_link import lossy_link
from netns import sh, wait_for_port
from nettop import kernel
from nettop.model.histogram import Histogram, log2_bounds, log2_slot
from nettop.probes.retransmits import counter_deltas, parse_counters
from test_retransmits_integration import RECEIVER, SENDER, retransmits
from test_sizes_integration import summed
from test_tcp_integration import transfer

pytestmark = pytest.mark.root


def need_kprobes(*functions: str) -> None:
    if not kernel.kprobes_supported():
        pytest.skip("kernel without kprobes (no tracefs kprobe_events)")
    missing = [f for f in functions if not kernel.kprobe_exists(f)]
    if missing:
        pytest.skip(f"kernel cannot kprobe {', '.join(missing)}")


def need_qdisc(kind: str, dev: str, *params: str) -> None:
    """Install a qdisc, or skip saying the kernel has no such kind."""
    done = sh("tc", "qdisc", "replace", "dev", dev, "root", kind, *params, check=False)
    if done.returncode != 0:
        pytest.skip(f"kernel without sch_{kind}: {done.stderr.strip()}")


def sources(frames, pane: str) -> set[str]:
    return {f["panes"][pane]["source"] for f in frames if pane in f["panes"]}


def report(record_property, pane: str, frames) -> set[str]:
    """Say which event source the pane's probe used on this kernel."""
    used = sources(frames, pane)
    print(f"nettop source {pane}={','.join(sorted(used))} on {os.uname().release}")
    record_property(f"source.{pane}", ",".join(sorted(used)))
    return used


def test_tcp_throughput_via_kprobes_matches_iperf3(recording, record_property):
    need_kprobes("sock_recvmsg")
    port = 5311
    server = subprocess.Popen(["iperf3", "-s", "-1", "-p", str(port)], stdout=subprocess.DEVNULL)
    t = transfer(recording, server, None, "127.0.0.1", port, "--source", "kprobe", duration=8.0, timeout=60)
    assert report(record_property, "tcp", t.frames) == {"kprobe"}
    print(f"iperf3 sent {t.result['end']['sum_sent']['bytes']} received {t.result['end']['sum_received']['bytes']}")
    t.assert_bytes_match_iperf3()
    assert all(f["panes"]["tcp"]["dropped"] == 0 for f in t.frames)


#: One UDP datagram size per system call pair, so each call lands in its own log2 bucket:
#: send/recv (sendto/recvfrom), write/read (sock_write_iter/sock_read_iter), sendmsg/recvmsg.
SYSCALL_PLAN = (("send", "recv", 100, 300), ("write", "read", 1000, 200), ("sendmsg", "recvmsg", 3000, 100))

WORKLOAD = r"""
import os, socket, sys, threading
plan = %r
reader = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
reader.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)
reader.bind(("127.0.0.1", 0))
writer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
writer.connect(reader.getsockname())
bad = []
def read_all():
    for _, how, size, count in plan:
        for _ in range(count):
            if how == "recv": got = len(reader.recv(size + 1))
            elif how == "read": got = len(os.read(reader.fileno(), size + 1))
            else: got = len(reader.recvmsg(size + 1)[0])
            if got != size: bad.append(got)
t = threading.Thread(target=read_all); t.start()
for how, _, size, count in plan:
    data = b"x" * size
    for _ in range(count):
        n = writer.send(data) if how == "send" else os.write(writer.fileno(), data) if how == "write" else writer.sendmsg([data])
        if n != size: bad.append(n)
t.join()
print("bad" if bad else "done", os.getpid(), flush=True)
"""


def test_socket_sizes_via_kprobes_count_every_syscall(recording, record_property):
    """Each of send/write/sendmsg and recv/read/recvmsg counted once, as the tracepoints do."""
    need_kprobes("sock_recvmsg")
    with recording(30.0, "--source", "kprobe", "--probes", "socket_io") as rec:
        helper = subprocess.run([sys.executable, "-c", WORKLOAD % (SYSCALL_PLAN,)],
                                capture_output=True, text=True, timeout=60)
        time.sleep(1.0)  # one more poll after the last call
        rec.process.terminate()
        frames = rec.finish(timeout=120)
    assert report(record_property, "sizes", frames) == {"kprobe"}
    status, pid = helper.stdout.split()
    assert status == "done", helper.stderr
    expected = [[*log2_bounds(log2_slot(size)), count] for _, _, size, count in SYSCALL_PLAN]
    total = sum(size * count for _, _, size, count in SYSCALL_PLAN)
    calls = sum(count for *_, count in SYSCALL_PLAN)
    for direction in ("write", "read"):
        count, bytes_, errors, buckets, _ = summed(frames, int(pid), "udp", direction)
        assert (count, bytes_, errors) == (calls, total, 0), direction
        assert buckets == expected, direction


def is_qdisc_program(key: str) -> bool:
    """A recursion_misses() key of the fq kprobes or the qdisc raw tracepoints: BCC names them
    kprobe__fq_enqueue, raw_tracepoint__qdisc_dequeue, ... (bpftool may cut names to 15 bytes)."""
    kind, _, name = key.partition(":")
    return (kind == "kprobe" and "fq_" in name) or (kind == "raw_tracepoint" and "qdisc_" in name)


def test_qdisc_program_names_as_bpftool_lists_them():
    assert is_qdisc_program("kprobe:kprobe__fq_enqueue") and is_qdisc_program("kprobe:kprobe__fq_deq")
    assert is_qdisc_program("raw_tracepoint:raw_tracepoint__qdisc_enqueue")
    assert not is_qdisc_program("raw_tracepoint:raw_tracepoint__net_dev_queue")
    assert not is_qdisc_program("tracepoint:tracepoint__qdisc__qdisc_enqueue")


def recursion_misses() -> dict[str, int]:
    """Runs the kernel skipped per loaded BPF program (bpftool's recursion_misses), by name."""
    done = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True, check=True)
    misses: dict[str, int] = {}
    for prog in json.loads(done.stdout):
        name = f"{prog['type']}:{prog.get('name', '?')}"
        misses[name] = misses.get(name, 0) + prog.get("recursion_misses", 0)
    return misses


def test_fq_latency_kprobes_agree_with_tracepoints(host, tmp_path, record_property):
    """Both sources at once on the same paced traffic: same packets, same latency histogram.

    The generic tracepoints are attached raw: a kprobe or perf-tracepoint program is skipped
    while another such program runs on the CPU (the shared bpf_prog_active guard), a raw
    tracepoint program only while it runs itself. Any skip the kernel reports (bpftool's
    recursion_misses) widens the packet tolerance by that many."""
    need_kprobes("fq_enqueue", "fq_dequeue")
    if not (kernel.tracepoint_exists("qdisc", "qdisc_enqueue") and kernel.tracepoint_exists("qdisc", "qdisc_dequeue")):
        pytest.skip("kernel without the qdisc tracepoints")
    need_qdisc("fq", host.host_if, "maxrate", "20mbit")
    host.popen("iperf3", "-s", "-1")
    wait_for_port(host, 5201)
    args = ("--probes", "qdisc_latency")
    (tmp_path / "kp").mkdir()
    (tmp_path / "rt").mkdir()
    # A recording's duration counts from its attach, and the second one compiles for tens of
    # seconds under emulation: both run until stopped here, so both see all the traffic.
    with start_recording(tmp_path / "kp", 600.0, "--source", "kprobe", *args, interval=0.5) as kp:
        with start_recording(tmp_path / "rt", 600.0, "--source", "raw_tracepoint", *args, interval=0.5) as rt:
            misses_before = recursion_misses()
            subprocess.run(["timeout", "30", "iperf3", "-c", host.ip, "-t", "3"], check=True, capture_output=True)
            time.sleep(0.5)  # fq drains
            misses = {k: v - misses_before.get(k, 0) for k, v in recursion_misses().items()}
            assert kp.process.poll() is None and rt.process.poll() is None, "a recording ended before the traffic"
            rt.process.terminate()
            kp.process.terminate()
            by_source = {"raw_tracepoint": rt.finish(timeout=120), "kprobe": kp.finish(timeout=120)}
    print(f"recursion_misses during the traffic: {misses}")
    totals = {}
    for name, frames in by_source.items():
        assert report(record_property, "queues", frames) == {name}
        panes = [f["panes"]["queues"] for f in frames]
        rows = [q for p in panes for q in p["qdiscs"] if q["ifname"] == host.host_if and q["kind"] == "fq"]
        hist = Histogram()
        for q in rows:
            hist = hist.merge(Histogram.from_record(q["latency_us"]["buckets"]))
        totals[name] = (sum(q["packets"] for q in rows), hist)
        print(f"{name}: {totals[name][0]} packets, missed {sum(q['missed'] for q in rows)} "
              f"(pane {sum(p.get('missed', 0) for p in panes)}), dropped {sum(p.get('dropped', 0) for p in panes)}, "
              f"p50 {hist.percentile(0.5)} us, p99 {hist.percentile(0.99)} us")
    (kp_packets, kp_hist), (rt_packets, rt_hist) = totals["kprobe"], totals["raw_tracepoint"]
    skipped = sum(v for k, v in misses.items() if is_qdisc_program(k))
    assert rt_packets > 1000
    assert abs(kp_packets - rt_packets) <= 0.02 * rt_packets + skipped, (kp_packets, rt_packets, misses)
    # The same skbs timed from fq_enqueue's entry vs just after it returns: microseconds apart on
    # latencies of tens of ms, plus interpolation inside a log2 bucket (measured: < 0.1% apart).
    assert kp_hist.percentile(0.5) == pytest.approx(rt_hist.percentile(0.5), rel=0.1)
    assert kp_hist.percentile(0.99) == pytest.approx(rt_hist.percentile(0.99), rel=0.2)


def test_netem_loss_retransmits_match_retranssegs(recording, record_property):
    """netem drops on the sender's own egress: every loss is a retransmit RetransSegs counts."""
    with lossy_link() as link:
        dev = f"ntl{link.sender.index}s"
        done = link.sender.run("tc", "qdisc", "add", "dev", dev, "root", "netem", "loss", "3%", check=False)
        if done.returncode != 0:
            pytest.skip(f"kernel without sch_netem: {done.stderr.strip()}")
        port = 5312
        receiver = link.receiver.popen(sys.executable, "-c", RECEIVER, link.receiver_ip, str(port))
        wait_for_port(link.receiver, port)
        with recording(30, "--probes", "retransmits", interval=0.5) as rec:
            before = parse_counters(link.counters(link.sender))
            sender = link.sender.popen(sys.executable, "-c", SENDER, link.receiver_ip, str(port), "2",
                                       stdout=subprocess.PIPE, text=True)
            int(sender.stdout.readline())
            assert sender.wait(timeout=60) == 0 and receiver.wait(timeout=60) == 0
            time.sleep(1.0)
            rec.process.terminate()
            frames = rec.finish(timeout=120)
            after = parse_counters(link.counters(link.sender))
    report(record_property, "retransmits", frames)
    kernel_counts = counter_deltas(before, after)
    panes = retransmits(frames)
    segments = sum(f["segments"] for p in panes for f in p["flows"] if f["laddr"] == link.sender_ip)
    print(f"retransmitted segments: probe {segments}, RetransSegs {kernel_counts['RetransSegs']}")
    assert kernel_counts["RetransSegs"] > 0
    assert abs(segments - kernel_counts["RetransSegs"]) <= 0.02 * kernel_counts["RetransSegs"]
    assert sum(p["lost_events"] for p in panes) == 0


def test_report_sock_tracepoints(record_property):
    """Not a check: records whether this kernel has sock:sock_send_length (Linux 6.3+)."""
    if kernel.tracefs() is None:
        pytest.skip("no tracefs")
    has = kernel.tracepoint_exists("sock", "sock_send_length")
    print(f"sock:sock_send_length on {os.uname().release}: {'yes' if has else 'no'}")
    record_property("sock_send_length", str(has))
    assert has == kernel.tracepoint_exists("sock", "sock_recv_length")


def hardware_device() -> str | None:
    """A device with a parent bus device (the VM's virtio NIC), up and addressed."""
    for name in sorted(os.listdir("/sys/class/net")):
        if os.path.exists(f"/sys/class/net/{name}/device") and sh("ip", "-4", "addr", "show", name).stdout.strip():
            return name
    return None


def tx_packets(dev: str) -> int:
    with open(f"/sys/class/net/{dev}/statistics/tx_packets") as f:
        return int(f.read())


def test_hardware_transmits_are_timed_virtual_ones_only_counted(recording, record_property):
    """nettxlat on a NIC: start_xmit to the driver's free at transmit completion. The VM's
    virtio NIC (qemu user-mode network) is the one hardware device nettop can send through."""
    if not os.environ.get("NETTOP_IN_VM"):
        pytest.skip("sends through a NIC: only inside the VM, whose NIC reaches nothing but qemu")
    dev = hardware_device()
    if dev is None:
        pytest.skip("no hardware network device (the VM runs with a virtio NIC)")
    datagrams = 2000
    with recording(120.0, "--probes", "netdev", interval=0.5) as rec:
        before = tx_packets(dev)
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(datagrams):
            sender.sendto(b"x" * 64, ("10.0.2.2", 9))  # qemu's own gateway: discard port
            time.sleep(0.0005)  # paced, so the NIC's queue never drops one (sent is checked below)
        for _ in range(10):
            sender.sendto(b"x", ("127.0.0.1", 9))  # loopback traffic too: a virtual device's row
        sender.close()
        sent = tx_packets(dev) - before
        time.sleep(1.0)
        rec.process.terminate()
        frames = rec.finish(timeout=120)
    report(record_property, "queues", frames)
    rows = [d for f in frames for d in f["panes"]["queues"]["devices"] if d["ifname"] == dev]
    assert rows and all(d["hardware"] for d in rows)
    handed = sum(d["packets"] for d in rows)
    timed = sum(n for d in rows for *_, n in d["latency_us"]["buckets"])
    print(f"{dev}: {sent} sent (ip -s link), {handed} handed to the driver, {timed} timed")
    assert datagrams <= sent and abs(handed - sent) <= 10  # ARP and the like besides ours
    assert timed >= 0.9 * datagrams  # freed at completion, each with its start
    lo_rows = [d for f in frames for d in f["panes"]["queues"]["devices"] if d["ifname"] == "lo"]
    assert lo_rows and all(not d["hardware"] and not d["latency_us"]["buckets"] for d in lo_rows)
