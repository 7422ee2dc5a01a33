"""tcp_info probe against `ss -ti` for the same socket, and retransmits under real loss.

A flow from the root namespace to an iperf3 server in a test host (bounded in time and
rate). The probe's reading and ss's are taken back to back; ss is read before and after
the probe, so the probe's monotonic counters must lie between the two ss readings.
"""

from __future__ import annotations

import re
import subprocess
import time

import pytest

from netns import sh, wait_for_port
from nettop.probes.tcp_info import TcpInfoProbe

pytestmark = pytest.mark.root

PORT = 5411


def ss_reading(dst: str, port: int) -> dict[int, dict[str, float]]:
    """`ss -tiH` for the flows to dst:port, by local port: the fields the test compares."""
    out = sh("ss", "-tinH", "state", "established", "dst", dst, "dport", f"= :{port}").stdout
    readings = {}
    for block in re.split(r"\n(?=\S)", out.strip()):
        local = re.search(r"\S+:(\d+)\s+\S+:\d+\s", block)
        if not local:
            continue
        fields = {}
        for name, pattern in (("cwnd", r"\bcwnd:(\d+)"), ("rtt", r"\brtt:([\d.]+)/"),
                              ("bytes_acked", r"\bbytes_acked:(\d+)"), ("bytes_received", r"\bbytes_received:(\d+)")):
            m = re.search(pattern, block)
            fields[name] = float(m.group(1)) if m else 0.0
        m = re.search(r"\bretrans:\d+/(\d+)", block)
        fields["total_retrans"] = float(m.group(1)) if m else 0.0
        readings[int(local.group(1))] = fields
    return readings


@pytest.fixture
def probe():
    p = TcpInfoProbe()
    p.select()
    p.start()
    yield p
    p.close()


def start_flow(host, seconds: float, rate: str = "40M") -> subprocess.Popen:
    host.popen("iperf3", "-s", "-1", "-p", str(PORT))
    wait_for_port(host, PORT)
    client = subprocess.Popen(
        ["iperf3", "-c", host.ip, "-p", str(PORT), "-t", str(seconds), "-b", rate],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return client


def data_socket(snapshot, host_ip):
    """The iperf3 data stream: the busiest socket to the server port (the other is control)."""
    flows = [s for s in snapshot.sockets if s.raddr == host_ip and s.rport == PORT and not s.closed]
    assert flows, f"no socket to {host_ip}:{PORT} in the snapshot"
    return max(flows, key=lambda s: s.bytes_acked)


def test_snapshot_agrees_with_ss(host, probe):
    probe.poll(0.5)  # the baseline
    client = start_flow(host, 4)
    try:
        time.sleep(1.5)  # real traffic has to flow; the comparison below is back to back
        before = ss_reading(host.ip, PORT)
        snapshot = probe.poll(1.5)["sockets"]
        after = ss_reading(host.ip, PORT)
    finally:
        client.wait(timeout=20)

    sock = data_socket(snapshot, host.ip)
    assert sock.state == "ESTAB" and sock.family == 4 and sock.laddr == host.host_ip
    assert snapshot.routes[host.ip] == host.host_if  # the route to the host goes out of its veth
    first, last = before[sock.lport], after[sock.lport]
    assert first["bytes_acked"] <= sock.bytes_acked <= last["bytes_acked"]
    assert sock.bytes_acked > 1_000_000 and sock.tx_bytes > 0
    assert min(first["cwnd"], last["cwnd"]) * 0.75 <= sock.cwnd <= max(first["cwnd"], last["cwnd"]) * 1.25
    rtt_ms = sock.rtt_us / 1000
    low, high = min(first["rtt"], last["rtt"]), max(first["rtt"], last["rtt"])
    assert low * 0.5 - 0.2 <= rtt_ms <= high * 1.5 + 0.2
    assert sock.congestion and sock.mss > 0 and sock.memory is not None


def test_retransmits_appear_under_loss(host, probe):
    host.run("iptables", "-A", "INPUT", "-p", "tcp", "--dport", str(PORT), "-m", "statistic",
             "--mode", "random", "--probability", "0.05", "-j", "DROP")
    probe.poll(0.5)
    client = start_flow(host, 3, rate="20M")
    retransmitted = 0
    sock = ss_total = None
    try:
        for _ in range(6):
            time.sleep(0.5)
            snapshot = probe.poll(0.5)["sockets"]
            retransmitted += sum(s.retrans_delta for s in snapshot.sockets if s.rport == PORT)
            latest = [s for s in snapshot.sockets if s.rport == PORT and not s.closed]
            if latest:
                newest = max(latest, key=lambda s: s.bytes_acked)
                reading = ss_reading(host.ip, PORT).get(newest.lport, {}).get("total_retrans")
                if reading is not None:  # None: the flow closed between the probe and ss
                    sock, ss_total = newest, reading
    finally:
        client.wait(timeout=20)
    assert retransmitted > 0
    assert sock is not None and sock.total_retrans > 0
    assert ss_total is not None and ss_total >= sock.total_retrans  # ss read just after the probe
