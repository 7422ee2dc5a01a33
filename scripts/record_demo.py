#!/usr/bin/env python3
"""Regenerate nettop/data/demo.jsonl.gz: a real, busy workload recorded by `nettop record`.

Three test hosts in network namespaces (removed afterwards), traffic only to them and to
loopback, bounded in time:
  web    10.201.N.2  iperf3 bulk flows, its veth shaped by tbf (queueing to see)
  db     10.201.M.2  an echo service with 3% random inbound loss (retransmits to see),
                     many small request/response connections
  cache  10.201.K.2  UDP datagrams and mixed-size TCP writes (100 B / 4 KiB / 64 KiB)
plus a UNIX-socket chatter on this host. Process names are set per role so the demo
reads like a server. Usage (root): scripts/record_demo.py [--seconds 90] [--output FILE]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import random
import selectors
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from nettop.testhosts import sh, test_host, wait_for_port  # noqa: E402

PYTHON = sys.executable


def set_comm(name: str) -> None:
    ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME


def role_echo_server(port: int, seconds: float) -> None:
    set_comm("db-server")
    listener = socket.create_server(("0.0.0.0", port), backlog=512, reuse_port=True)
    listener.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.5):
            if key.fileobj is listener:
                conn, _ = listener.accept()
                conn.setblocking(False)
                selector.register(conn, selectors.EVENT_READ)
                continue
            try:
                data = key.fileobj.recv(65536)
            except OSError:
                data = b""
            if data:
                try:
                    key.fileobj.send(data[:512] * 4)
                except OSError:
                    pass
            else:
                selector.unregister(key.fileobj)
                key.fileobj.close()


def role_db_clients(address: str, port: int, connections: int, seconds: float) -> None:
    set_comm("api-worker")
    deadline = time.monotonic() + seconds
    socks = []
    for _ in range(connections):
        try:
            socks.append(socket.create_connection((address, port), timeout=5))
        except OSError:
            pass
    while time.monotonic() < deadline:
        for s in random.sample(socks, k=max(1, len(socks) // 3)):
            try:
                s.sendall(os.urandom(random.choice((64, 200, 1400))))
                s.settimeout(2)
                s.recv(65536)
            except OSError:
                pass
        time.sleep(0.05)
        if random.random() < 0.05:  # churn: a short-lived connection
            try:
                with socket.create_connection((address, port), timeout=2) as s:
                    s.sendall(b"ping" * 16)
                    s.recv(4096)
            except OSError:
                pass


def role_cache_client(address: str, tcp_port: int, udp_port: int, seconds: float) -> None:
    set_comm("cache-sync")
    deadline = time.monotonic() + seconds
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tcp = socket.create_connection((address, tcp_port), timeout=5)
    while time.monotonic() < deadline:
        for size in (100, 100, 100, 4096, 65536):
            tcp.sendall(b"c" * size)
        for _ in range(20):
            udp.sendto(b"u" * random.choice((48, 512, 1200)), (address, udp_port))
        time.sleep(0.02)


def role_sink(tcp_port: int, udp_port: int, seconds: float) -> None:
    set_comm("cache-server")
    listener = socket.create_server(("0.0.0.0", tcp_port))
    listener.settimeout(seconds)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("0.0.0.0", udp_port))
    udp.setblocking(False)
    conn, _ = listener.accept()
    conn.settimeout(0.05)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if not conn.recv(1 << 16):
                break
        except (TimeoutError, BlockingIOError):
            pass
        try:
            while udp.recv(2048):
                pass
        except BlockingIOError:
            pass


def role_unix_chatter(seconds: float) -> None:
    set_comm("log-shipper")
    a, b = socket.socketpair()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for size in (32, 32, 32, 32, 900):
            a.sendall(b"l" * size)
            b.recv(size)
        time.sleep(0.005)


ROLES = {
    "echo-server": lambda a: role_echo_server(int(a[0]), float(a[1])),
    "db-clients": lambda a: role_db_clients(a[0], int(a[1]), int(a[2]), float(a[3])),
    "cache-client": lambda a: role_cache_client(a[0], int(a[1]), int(a[2]), float(a[3])),
    "sink": lambda a: role_sink(int(a[0]), int(a[1]), float(a[2])),
    "unix-chatter": lambda a: role_unix_chatter(float(a[0])),
}


def spawn(processes, *args, host=None):
    cmd = [PYTHON, __file__, "--role", *map(str, args)]
    if host is not None:
        processes.append(host.popen(*cmd))
    else:
        processes.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))


def record(seconds: float, output: Path) -> None:
    processes: list[subprocess.Popen] = []
    with test_host() as web, test_host() as db, test_host() as cache:
        sh("tc", "qdisc", "add", "dev", web.host_if, "root", "handle", "8001:", "tbf",
           "rate", "20mbit", "burst", "32kbit", "latency", "50ms")
        db.run("iptables", "-A", "INPUT", "-p", "tcp", "-m", "statistic", "--mode", "random",
               "--probability", "0.03", "-j", "DROP")
        run_for = seconds + 8
        web.popen("iperf3", "-s", "-p", "5201")
        spawn(processes, "echo-server", 6432, run_for, host=db)
        spawn(processes, "sink", 6379, 6380, run_for, host=cache)
        wait_for_port(web, 5201)
        wait_for_port(db, 6432)
        wait_for_port(cache, 6379)
        recorder = subprocess.Popen(
            [PYTHON, "-m", "nettop", "record", "--duration", str(seconds), "--output", str(output)],
            cwd=REPO, stderr=subprocess.PIPE, text=True,
        )
        line = recorder.stderr.readline()
        while line and not line.startswith("nettop: recording"):
            line = recorder.stderr.readline()
        if not line:
            raise SystemExit(f"nettop record failed: exit {recorder.wait()}")
        spawn(processes, "db-clients", db.ip, 6432, 40, seconds)
        spawn(processes, "cache-client", cache.ip, 6379, 6380, seconds)
        spawn(processes, "unix-chatter", seconds)
        bulk = subprocess.Popen(["iperf3", "-c", web.ip, "-p", "5201", "-t", str(int(seconds)), "-P", "4"],
                                stdout=subprocess.DEVNULL)
        recorder.wait()
        for p in [bulk, *processes]:
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=10)
    size = output.stat().st_size
    print(f"recorded {output} ({size / 1e6:.2f} MB)")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--role":
        ROLES[sys.argv[2]](sys.argv[3:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=90)
    parser.add_argument("--output", type=Path, default=REPO / "nettop" / "data" / "demo.jsonl.gz")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("record_demo: needs root (network namespaces and BPF)")
    record(args.seconds, args.output)


if __name__ == "__main__":
    main()
