"""The retransmits probe against real loss, and against the kernel's own counters.

Loss is made with iptables' statistic match inside the receiving namespace (tests/
lossy_link.py), so the sending namespace's RetransSegs counts only this test's traffic.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lossy_link import lossy_link
from netns import wait_for_port
from nettop.probes.retransmits import counter_deltas, parse_counters

pytestmark = pytest.mark.root

RECEIVER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(8)
c, _ = s.accept()
while c.recv(1 << 20):
    pass
c.close()
"""

SENDER = """
import socket, sys, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2])))
print(c.getsockname()[1], flush=True)
chunk = b"x" * 65536
end = time.monotonic() + float(sys.argv[3])
while time.monotonic() < end:
    c.sendall(chunk)
c.shutdown(socket.SHUT_WR)
c.recv(1)  # the receiver's close: everything was delivered
c.close()
"""

CONNECTOR = """
import socket, sys, time
c = socket.socket()
c.bind((sys.argv[1], 0))
print(c.getsockname()[1], flush=True)
c.settimeout(float(sys.argv[4]))
try:
    c.connect((sys.argv[2], int(sys.argv[3])))
    time.sleep(float(sys.argv[4]))
except OSError:
    pass
"""

LISTENER = """
import socket, sys, time
s = socket.socket()
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(8)
print("listening", flush=True)
time.sleep(float(sys.argv[3]))
"""


def comm_of(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def retransmits(frames: list[dict]) -> list[dict]:
    return [f["panes"]["retransmits"] for f in frames if "retransmits" in f["panes"]]


def test_lossy_flow_matches_the_senders_retransegs(recording):
    # Recorded until the transfer is over (not for a fixed time, which under emulation can end
    # mid-transfer and leave RetransSegs counting retransmits the recording never saw).
    with lossy_link() as link, recording(600, "--probes", "socket_io,retransmits", interval=0.5) as rec:
        port = 5310
        link.set_loss(port, 0.03)
        receiver = link.receiver.popen(sys.executable, "-c", RECEIVER, link.receiver_ip, str(port))
        wait_for_port(link.receiver, port)
        before = parse_counters(link.counters(link.sender))
        sender = link.sender.popen(
            sys.executable, "-c", SENDER, link.receiver_ip, str(port), "2", stdout=subprocess.PIPE, text=True
        )
        lport = int(sender.stdout.readline())
        comm = comm_of(sender.pid)
        assert sender.wait(timeout=60) == 0 and receiver.wait(timeout=60) == 0
        assert rec.process.poll() is None, "the recording ended before the transfer"
        rec.process.terminate()
        frames = rec.finish(timeout=120)
        after = parse_counters(link.counters(link.sender))  # after the last poll: same window
    kernel = counter_deltas(before, after)
    panes = retransmits(frames)
    assert panes and panes[0]["source"] == "raw_tracepoint"
    flows = [f for p in panes for f in p["flows"] if f["laddr"] == link.sender_ip]
    events = [e for p in panes for e in p["events"] if e["laddr"] == link.sender_ip]
    assert flows, "no retransmits recorded from the sender"
    for f in flows:
        assert (f["family"], f["lport"], f["raddr"], f["rport"]) == (4, lport, link.receiver_ip, port)
        assert f["pid"] == sender.pid and f["comm"] == comm
    assert "ESTABLISHED" in {f["state"] for f in flows}
    segments = sum(f["segments"] for f in flows)
    assert kernel["RetransSegs"] > 0
    # A raw tracepoint program is not skipped because socket_io's program was running on the
    # CPU when the retransmit's softirq came (perf tracepoints were: ~3% of segments lost).
    missed = [p["missed"] for p in panes]
    assert all(m == 0 for m in missed if m is not None), missed
    assert abs(segments - kernel["RetransSegs"]) <= 0.02 * kernel["RetransSegs"], (segments, kernel, missed)
    assert sum(p["lost_events"] for p in panes) == 0
    # Tail-loss probes (L: only where tcp_send_loss_probe can be kprobed, as on distribution
    # kernels) are logged but are not retransmits, so no flow counts them; a probe that resends
    # data is also its own R event. Without that kprobe there are none.
    kinds = {e["kind"] for e in events}
    print(f"events by kind: { {k: sum(e['kind'] == k for e in events) for k in sorted(kinds)} }, "
          f"flow events {sum(f['events'] for f in flows)}, dropped {sum(p['dropped'] for p in panes)}")
    assert kinds <= {"R", "L"} and ("L" not in kinds or all("L" in p["kinds"] for p in panes)), kinds
    resent = [e for e in events if e["kind"] == "R"]
    assert sum(p["dropped"] for p in panes) == 0
    assert len(resent) == sum(f["events"] for f in flows)
    assert sum(e["segments"] for e in resent) == segments
    assert {e["pid"] for e in events} == {sender.pid}
    # GSO: a retransmitted skb carries more than one segment, so the two numbers differ.
    assert segments > len(resent)


def recorded_events(path: Path) -> list[dict]:
    """The retransmit events in a recording so far (complete lines only: it is being written)."""
    text = path.read_text() if path.exists() else ""
    lines = text.split("\n")[:-1]
    return [e for p in retransmits([json.loads(line) for line in lines]) for e in p["events"]]


def test_handshake_retransmits_syn_sent_and_synack(recording, host):
    syn_port, ack_port, wait = 5320, 5321, "4.5"
    host.run("iptables", "-A", "INPUT", "-p", "tcp", "--dport", str(syn_port), "--syn", "-j", "DROP")
    host.run("iptables", "-A", "INPUT", "-p", "tcp", "--dport", str(ack_port), "!", "--syn", "-j", "DROP")
    # Records until both kinds have retransmitted twice (SYN and SYN-ACK timers fire at 1 s and
    # 3 s), bounded: under emulation starting the processes alone can take seconds.
    with recording(60, "--probes", "socket_io,retransmits", interval=0.5) as rec:
        listener = host.popen(
            sys.executable, "-c", LISTENER, host.ip, str(ack_port), "60", stdout=subprocess.PIPE, text=True
        )
        assert listener.stdout.readline().strip() == "listening"
        connectors = []
        for target in (syn_port, ack_port):
            process = subprocess.Popen(
                [sys.executable, "-c", CONNECTOR, host.host_ip, host.ip, str(target), wait],
                stdout=subprocess.PIPE, text=True,
            )
            connectors.append((process, int(process.stdout.readline()), comm_of(process.pid)))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            so_far = recorded_events(rec.path)
            if sum(e["kind"] == "R" for e in so_far) >= 2 and sum(e["kind"] == "S" for e in so_far) >= 2:
                break
            time.sleep(0.5)
        for process, _, _ in connectors:
            process.wait(timeout=20)
        rec.process.terminate()
        frames = rec.finish(timeout=120)
        listener.terminate()
    events = [e for p in retransmits(frames) for e in p["events"]]

    syn, syn_lport, syn_comm = connectors[0]
    syn_sent = [e for e in events if (e["laddr"], e["lport"]) == (host.host_ip, syn_lport)]
    assert len(syn_sent) >= 2, events  # SYN retransmits at 1 s and 3 s
    for e in syn_sent:
        assert (e["kind"], e["state"], e["raddr"], e["rport"]) == ("R", "SYN_SENT", host.ip, syn_port)
        assert (e["pid"], e["comm"]) == (syn.pid, syn_comm)

    _, client_port, _ = connectors[1]
    synacks = [e for e in events if (e["laddr"], e["lport"], e["rport"]) == (host.ip, ack_port, client_port)]
    assert len(synacks) >= 2, events
    for e in synacks:
        assert (e["kind"], e["state"], e["raddr"], e["segments"]) == ("S", "SYN_RECV", host.host_ip, 1)
        assert e["pid"] == listener.pid  # the listener's owner, learned from listen()
