"""Overhead of the sizes pane's device probe on a small-message loopback workload.

Throughput of an iperf3 TCP stream of 64-byte writes (TCP_NODELAY, so nearly one packet per
write: the probe's worst case) over loopback, with and without netdev attached, in
interleaved runs so drift (thermal, other load) hits both alike. The probe is polled once a
second while attached, as the app would. socket_io (shared with the TCP pane) can be added
with --with-socket-io to see the whole pane's cost.

Run as root: .venv/bin/python bench/sizes_overhead.py --runs 3 --seconds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nettop.probes.netdev import NetdevProbe  # noqa: E402
from nettop.probes.socket_io import SocketIoProbe  # noqa: E402

PORT = 5399


UDP = False  # --udp: 64-byte datagrams, one packet per write (TCP autocorking merges writes)


def iperf(seconds: float) -> float:
    """Receiver-side bits per second of one 64-byte-write stream."""
    mode = ["-u", "-b", "0"] if UDP else ["-N"]
    out = subprocess.run(
        ["iperf3", "-c", "127.0.0.1", "-p", str(PORT), "-l", "64", *mode, "-t", str(seconds), "-J"],
        check=True, capture_output=True, text=True,
    ).stdout
    end = json.loads(out)["end"]
    return (end["sum"] if UDP else end["sum_received"])["bits_per_second"]


def with_probes(probes, seconds: float) -> tuple[float, int]:
    for p in probes:
        p.select()
        p.start()
    stop = threading.Event()
    packets = [0]

    def poll() -> None:
        while not stop.wait(1.0):
            for p in probes:
                snap = p.poll(1.0).get("sizes")
                if snap is not None:
                    packets[0] += sum(d.stack_send.count for d in snap.devices if d.ifname == "lo")
    thread = threading.Thread(target=poll)
    thread.start()
    try:
        return iperf(seconds), packets[0]
    finally:
        stop.set()
        thread.join()
        for p in probes:
            p.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--with-socket-io", action="store_true")
    parser.add_argument("--udp", action="store_true")
    args = parser.parse_args()
    global UDP
    UDP = args.udp
    server = subprocess.Popen(["iperf3", "-s", "-p", str(PORT)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    try:
        base, probed = [], []
        for run in range(args.runs):
            base.append(iperf(args.seconds))
            probes = [NetdevProbe()] + ([SocketIoProbe()] if args.with_socket_io else [])
            rate, packets = with_probes(probes, args.seconds)
            probed.append(rate)
            print(f"run {run + 1}: without {base[-1] / 1e6:.1f} Mbit/s, with {rate / 1e6:.1f} Mbit/s"
                  f" ({packets / args.seconds:,.0f} lo packets/s seen at stack send)", flush=True)
        b, p = statistics.median(base), statistics.median(probed)
        print(f"median without {b / 1e6:.1f} Mbit/s, with {p / 1e6:.1f} Mbit/s: {100 * (b - p) / b:+.1f}% cost")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
