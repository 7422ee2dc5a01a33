"""Bench 1b: what nettop's BPF programs cost the traffic, measured by fast alternation.

Why: loopback rates here move by a third within seconds with nothing attached (a pinned
64-byte request/response jumps between ~52k and ~68k round trips/s in spells of 0.5-3 s;
10 minutes at 0.1 s resolution), so runs minutes apart (bench/overhead.py) cannot resolve
the few points the targets are about. Here one workload runs throughout while the programs,
loaded once, are attached and detached in 0.1 s slices; each attached slice is compared
with the bare slices on either side of it, and the figure is the median of those ratios
over hundreds of slices: a jump between spells spoils the few slices it falls in, which
the median leaves out. Rates come from lo's own counters (every byte and packet of these
workloads crosses lo).

nettop runs here as `record` does: every probe, attached through a LiveSource and polled
once per interval in this process. Only its BPF programs are toggled, so a ratio is what
they cost the traffic; the poll's CPU is paid in both slices (it is nettop's process CPU,
bench/overhead.py's CPU column). Beside it, in the same slices: nettop without its
per-packet probes (netdev, qdisc_latency), the issue's minimal program, and programs that
return at once on nettop's device hooks and on its socket hooks: what attaching costs
before a program does any work (the floor under any program there).

Run as root: .venv/bin/python bench/alternation.py --seconds 40 [--workloads rr64]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Iterator

from common import Tool, log
from workloads import WORKLOADS, Workload, servers

SLICE_S = 0.1
SETTLE_S = 0.01  # after a toggle, before a slice is counted
PER_PACKET_PROBES = ("netdev", "qdisc_latency")
SOCKET_HOOKS = ("sock:sock_send_length", "sock:sock_recv_length")


class Hooks:
    """Where one loaded BCC program (and the BTF-typed links nettop made for it) is attached,
    detachable and re-attachable without compiling or loading again."""

    def __init__(self, bpf, links: list[int] | None = None, typed_events: tuple[str, ...] = ()) -> None:
        from nettop.probes.btf_tracepoints import function_name

        if bpf.kprobe_fds or bpf.uprobe_fds:
            raise RuntimeError("alternation toggles tracepoints only; this program has kprobes or uprobes")
        self.bpf = bpf
        self.raw = {tp: bpf.funcs[b"raw_tracepoint__" + tp].fd for tp in bpf.raw_tracepoint_fds}
        self.perf = {tp: b"tracepoint__" + tp.replace(b":", b"__") for tp in bpf.tracepoint_fds}
        self.links = links if links is not None else []
        self.typed = {event: bpf.funcs[function_name(event).encode()].fd for event in typed_events}

    def detach(self) -> None:
        for tp in list(self.bpf.raw_tracepoint_fds):
            os.close(self.bpf.raw_tracepoint_fds.pop(tp))
        for tp in list(self.bpf.tracepoint_fds):
            self.bpf.detach_tracepoint(tp)
        while self.links:
            os.close(self.links.pop())

    def attach(self) -> None:
        from bcc import lib

        from nettop.probes.btf_tracepoints import open_link

        for tp, fd in self.raw.items():
            link = lib.bpf_attach_raw_tracepoint(fd, tp)
            if link < 0:
                raise RuntimeError(f"raw tracepoint {tp.decode()}: attach failed")
            self.bpf.raw_tracepoint_fds[tp] = link
        for tp, function in self.perf.items():
            self.bpf.attach_tracepoint(tp=tp, fn_name=function)
        for event, fd in self.typed.items():
            self.links.append(open_link(fd, event))


def probe_hooks(probe) -> Hooks:
    typed = tuple(h.target for h in probe.source.hooks) if probe.source.name == "tp_btf" else ()
    return Hooks(probe._bpf, probe._links, typed)


@dataclass
class Variant:
    key: str
    title: str
    hooks: list[Hooks]

    def attach(self) -> None:
        for hooks in self.hooks:
            hooks.attach()

    def detach(self) -> None:
        for hooks in self.hooks:
            hooks.detach()


@contextmanager
def nettop_polled(interval: float = 1.0) -> Iterator[list]:
    """Every probe nettop runs, attached as `record` attaches them and polled every interval in
    a thread (so maps are drained as they would be); yields the live probes."""
    from nettop.probes.base import ProbeState
    from nettop.probes.registry import build_probes
    from nettop.sampler import LiveSource

    source = LiveSource(build_probes())
    stop = threading.Event()

    def poll_every_interval() -> None:
        while not stop.wait(interval):
            source.poll()

    poller = threading.Thread(target=poll_every_interval, name="nettop-poll", daemon=True)
    try:
        source.start()
        source.wait_attached()
        live = [p for p, s in source.probe_statuses().items() if s.state is ProbeState.LIVE and p._bpf is not None]
        poller.start()
        yield live
    finally:
        stop.set()
        if poller.is_alive():
            poller.join()
        source.close()


def reference_program(text: str) -> Hooks:
    from bcc import BPF

    return Hooks(BPF(text=text))


def variants(nettop_probes: list) -> list[Variant]:
    """Each variant's programs loaded and detached: nettop, nettop without its per-packet
    probes, the issue's minimal program, and the floors of nettop's device and socket hooks."""
    import empty_hooks
    import minimal_sock

    from nettop.probes.netdev import HOOKS as DEVICE_HOOKS

    hooks = {p.name: probe_hooks(p) for p in nettop_probes}
    out = [
        Variant("nettop", "nettop, every probe (all panes)", list(hooks.values())),
        Variant("nettop-sockets", "nettop without per-packet probes (netdev, qdisc_latency)",
                [h for name, h in hooks.items() if name not in PER_PACKET_PROBES]),
        Variant("minimal", "the issue's minimal program (bytes per PID on sock_*_length)",
                [reference_program(minimal_sock.PROGRAM)]),
        Variant("empty-device-hooks", "empty programs on netdev's six device hooks",
                [reference_program(empty_hooks.program(DEVICE_HOOKS))]),
        Variant("empty-socket-hooks", "empty programs on the two socket hooks",
                [reference_program(empty_hooks.program(SOCKET_HOOKS))]),
    ]
    for variant in out:
        variant.detach()
    return out


class LoCounter:
    """A counter of lo's (/sys/class/net/lo/statistics), read without opening it each time."""

    def __init__(self, name: str) -> None:
        self._fd = os.open(f"/sys/class/net/lo/statistics/{name}", os.O_RDONLY)

    def read(self) -> tuple[int, float]:
        value = int(os.pread(self._fd, 32, 0))
        return value, time.monotonic()

    def close(self) -> None:
        os.close(self._fd)


def slice_rate(counter: LoCounter) -> float:
    """Counter units per second over one slice, after the settle time."""
    time.sleep(SETTLE_S)
    start, started = counter.read()
    time.sleep(SLICE_S)
    end, ended = counter.read()
    return (end - start) / (ended - started)


def median_summary(values: list[float]) -> dict:
    """Median with its 95% confidence interval (order statistics: no assumption about the
    shape of the noise), the quartiles and the count."""
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        return {"n": 0}
    half_width = 1.96 * n ** 0.5 / 2
    low, high = max(0, int(n / 2 - half_width)), min(n - 1, int(n / 2 + half_width))
    return {"median": round(statistics.median(ordered), 4), "ci_low": round(ordered[low], 4),
            "ci_high": round(ordered[high], 4), "q1": round(ordered[n // 4], 4),
            "q3": round(ordered[(3 * n) // 4], 4), "n": n}


def alternate(workload: Workload, chosen: list[Variant], seconds: float) -> dict:
    """One client runs throughout; bare and attached slices alternate, the variants in turn,
    until each variant has had `seconds` of attached slices."""
    slices = max(1, round(seconds / SLICE_S))
    # toggling takes time too (~40 ms a slice here): the client is given plenty, and stopped at the end
    planned = len(chosen) * slices * 2 * (SLICE_S + SETTLE_S)
    counter = LoCounter(workload.lo_counter)
    sequence: list[tuple[str | None, float]] = []
    try:
        with Tool(workload.client(2 * planned + 60)) as client:
            time.sleep(1.0)  # connected and at speed
            for index in range(slices * len(chosen)):
                if client.process.poll() is not None:
                    raise RuntimeError(f"{workload.title}: the client ended before the alternation: {client.tail()}")
                variant = chosen[index % len(chosen)]
                sequence.append((None, slice_rate(counter)))
                variant.attach()
                try:
                    sequence.append((variant.key, slice_rate(counter)))
                finally:
                    variant.detach()
            sequence.append((None, slice_rate(counter)))
    finally:
        counter.close()
    ratios = slice_ratios(sequence)
    return {"title": workload.title, "counter": workload.lo_counter,
            "bare_per_s": median_summary([rate for key, rate in sequence if key is None]),
            "ratio": {v.key: median_summary(ratios.get(v.key, [])) for v in chosen}}


def slice_ratios(sequence: list[tuple[str | None, float]]) -> dict[str, list[float]]:
    """Per variant, each attached slice's rate over the mean of the bare slices on either side
    (a slice of None is bare; one with no traffic beside it counts for nothing)."""
    ratios: dict[str, list[float]] = {}
    for before, (key, rate), after in zip(sequence, sequence[1:], sequence[2:]):
        if key is None or before[0] is not None or after[0] is not None:
            continue
        if before[1] > 0 and after[1] > 0:
            ratios.setdefault(key, []).append(rate / ((before[1] + after[1]) / 2))
    return ratios


def measure(seconds: float, workloads: tuple[Workload, ...] = WORKLOADS) -> dict:
    with ExitStack() as stack:
        probes = stack.enter_context(nettop_polled())
        chosen = variants(probes)
        stack.enter_context(servers())
        results = {}
        for workload in workloads:
            log(f"alternation: {workload.title}, {len(chosen)} variants x {seconds:g} s attached")
            results[workload.key] = alternate(workload, chosen, seconds)
    return {
        "slice_s": SLICE_S,
        "seconds_per_variant": seconds,
        "variants": {v.key: v.title for v in chosen},
        "nettop_probes": sorted(p.name for p in probes),
        "workloads": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=40, help="attached time per variant per workload")
    parser.add_argument("--workloads", help="comma-separated workload keys")
    args = parser.parse_args()
    workloads = tuple(w for w in WORKLOADS if not args.workloads or w.key in args.workloads.split(","))
    print(json.dumps(measure(args.seconds, workloads), indent=2))


if __name__ == "__main__":
    main()
