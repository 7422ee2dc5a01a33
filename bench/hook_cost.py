"""BPF run time per event, per kernel hook, of the probes named, under a fixed workload.

Loads the probes, turns kernel.bpf_stats_enabled on (restored afterwards), sends a fixed
number of small UDP datagrams to a test host over a veth (a sink in its namespace reads
them), and prints per hook: events (run_cnt) and ns per event (run_time_ns / run_cnt)
summed over every program of the probes attached there, as `bpftool prog show -j` reports.
Two probes on one hook are two programs, each paid by every event: their times add.

Run as root:
  .venv/bin/python bench/hook_cost.py --probes nettop.probes.netdev:NetdevProbe
Another tree (e.g. an older commit unpacked with `git archive`) goes first on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import importlib
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent.parent))  # after PYTHONPATH: another tree may go first

from common import bpf_prog_runtime, bpf_stats_enabled

from nettop.testhosts import test_host

SINK = "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('0.0.0.0', 9))\nwhile True: s.recv(2048)"


def hook_programs(bpf) -> dict[str, int]:
    """Hook name -> program id, for every function BCC attached (its fdinfo names the id)."""
    ids = {}
    for name, function in bpf.funcs.items():
        name = name.decode() if isinstance(name, bytes) else name
        fdinfo = Path(f"/proc/self/fdinfo/{function.fd}").read_text()
        prog_id = int(next(line.split()[1] for line in fdinfo.splitlines() if line.startswith("prog_id:")))
        hook = name.removeprefix("tracepoint__").replace("__", ":", 1) if name.startswith("tracepoint__") else name
        ids[hook] = prog_id
    return ids


def load(spec: str, source: str | None):
    module, cls = spec.split(":")
    probe = getattr(importlib.import_module(module), cls)(source)
    probe.select()
    probe.start()
    return probe


def measure(specs: list[str], datagrams: int, size: int, source: str | None = None, qdisc: str = "") -> dict[str, dict]:
    probes = [load(spec, source) for spec in specs]
    try:
        hooks: dict[str, list[int]] = {}
        for probe in probes:
            for hook, prog_id in hook_programs(probe._bpf).items():
                hooks.setdefault(hook, []).append(prog_id)
        ids = {i for group in hooks.values() for i in group}
        with test_host() as host:
            if qdisc:  # the veth has none (noqueue): the qdisc hooks fire only with one
                subprocess.run(["tc", "qdisc", "add", "dev", host.host_if, "root", *qdisc.split()], check=True)
            host.popen(sys.executable, "-c", SINK)
            sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sender.sendto(b"warm-up", (host.ip, 9))  # ARP before the measured window
            time.sleep(0.5)
            with bpf_stats_enabled():
                before = bpf_prog_runtime(ids)
                payload = b"x" * size
                for _ in range(datagrams):
                    sender.sendto(payload, (host.ip, 9))
                time.sleep(0.2)
                after = bpf_prog_runtime(ids)
            for probe in probes:
                probe.poll(1.0)  # drained as the app would, outside the measured window
    finally:
        for probe in probes:
            probe.close()
    result = {}
    for hook, group in sorted(hooks.items()):
        ns = sum(after[i]["run_time_ns"] - before[i]["run_time_ns"] for i in group)
        events = max(after[i]["run_cnt"] - before[i]["run_cnt"] for i in group)
        result[hook] = {"programs": len(group), "events": events, "ns_per_event": ns / events if events else None}
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--probes", required=True, help="module:Class,... of the probes to load together")
    parser.add_argument("--datagrams", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=64, help="UDP payload bytes")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--qdisc", default="", help='a qdisc for the sending veth, as tc takes it ("tbf rate 1gbit burst 1mb latency 50ms")')
    parser.add_argument("--source", help="the event source to force (tp_btf, raw_tracepoint, ...): the best one if not given")
    args = parser.parse_args()
    runs = [measure(args.probes.split(","), args.datagrams, args.size, args.source, args.qdisc) for _ in range(args.runs)]
    for hook in runs[0]:
        values = sorted(r[hook]["ns_per_event"] for r in runs if r[hook]["ns_per_event"] is not None)
        median = values[len(values) // 2] if values else None
        shown = f"{median:7.1f}" if median is not None else "      -"
        print(f"{hook:32} programs {runs[0][hook]['programs']}  events {runs[0][hook]['events']:>8}  "
              f"ns/event median {shown}  runs {[round(v, 1) for v in values]}")


if __name__ == "__main__":
    main()
