"""Benches 1 and 2: what watching costs the traffic, for nettop and for the tools users would
pick instead, on the same loopback workloads in the same run.

Each round runs every workload bare and under every observer, the observers' order rotating
from round to round, and a ratio is taken against the bare run of the same round, so drift
hits both sides alike. The observer's CPU is utime+stime of its process over the workload
only (not its start-up). BPF programs' run time is charged to the traced workload, not to
nettop: a separate nettop segment per round reads it from the kernel's BPF run-time
statistics, enabled for that segment only (turning them on costs two clock reads per event,
which would bias the throughput ratio).

Run as root: .venv/bin/python bench/overhead.py --rounds 3 --seconds 10
What one probe costs (e.g. the sizes pane's device probe, with socket_io or without):
  .venv/bin/python bench/overhead.py --observers nettop:netdev,nettop:netdev+socket_io --workloads writes64
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time

from common import CpuMeter, bpf_prog_ids, bpf_prog_runtime, bpf_runtime_delta, bpf_stats_enabled, figure, log
from observers import OBSERVERS, Observer, chosen
from workloads import WORKLOADS, Workload, servers


def rotated(observers: tuple[Observer, ...], round_index: int) -> list[Observer]:
    shift = round_index % len(observers)
    return list(observers[shift:] + observers[:shift])


def attempt(workload: Workload, seconds: float, failures: list[str], tries: int = 2) -> float | None:
    """The workload's rate; a run that fails (another test took the port, say) is retried once,
    then counted as missing rather than ending the bench."""
    for _ in range(tries):
        try:
            return workload.run(seconds)
        except (RuntimeError, subprocess.SubprocessError, ValueError, KeyError) as exc:
            failures.append(f"{workload.key}: {exc}")
            log(f"overhead: {workload.key} failed: {exc}")
    return None


def run_segment(observer: Observer, workloads: tuple[Workload, ...], seconds: float) -> tuple[dict, dict, list]:
    rates, cpu, problems = {}, {}, []
    with observer.start() as watching:
        for workload in workloads:
            meter = CpuMeter(watching.pid) if watching.pid else None
            rates[workload.key] = attempt(workload, seconds, problems)
            cpu[workload.key] = meter.percent() if meter else None
        problems += watching.problems()
    return rates, cpu, problems


def run_bpf_segment(observer: Observer, workloads: tuple[Workload, ...], seconds: float) -> dict:
    """Per workload: the BPF programs' run time and events, and the workload's rate meanwhile."""
    out = {}
    with bpf_stats_enabled(), observer.start() as watching:
        ids = bpf_prog_ids(watching.pid)
        for workload in workloads:
            before, started = bpf_prog_runtime(ids), time.monotonic()
            rate = attempt(workload, seconds, [], tries=1)
            elapsed = time.monotonic() - started
            if rate is not None:
                out[workload.key] = {**bpf_runtime_delta(before, bpf_prog_runtime(ids), elapsed), "rate": rate}
    return out


def per_operation_ns(workload: Workload, bpf: dict) -> float | None:
    """BPF ns per workload operation (per 64-byte write, per round trip)."""
    if not workload.unit.startswith("k "):
        return None
    operations = bpf["rate"] * 1e3
    return 1e9 * bpf["core_percent"] / 100 / operations if operations else None


def measure(rounds: int, seconds: float, observers: tuple[Observer, ...] = OBSERVERS,
            workloads: tuple[Workload, ...] = WORKLOADS) -> dict:
    rates = {o.key: {w.key: [] for w in workloads} for o in observers}
    cpu = {o.key: {w.key: [] for w in workloads} for o in observers}
    ratios = {o.key: {w.key: [] for w in workloads} for o in observers if o.key != "bare"}
    bpf_runs: dict[str, list[dict]] = {w.key: [] for w in workloads}
    problems: dict[str, list[str]] = {}
    nettop = next((o for o in observers if o.key == "nettop"), None)
    with servers():
        for round_index in range(rounds):
            this_round = {}
            for observer in rotated(observers, round_index):
                log(f"overhead round {round_index + 1}/{rounds}: {observer.title}")
                round_rates, round_cpu, round_problems = run_segment(observer, workloads, seconds)
                this_round[observer.key] = round_rates
                if round_problems:
                    problems.setdefault(observer.key, []).extend(round_problems)
                for w in workloads:
                    rates[observer.key][w.key].append(round_rates[w.key])
                    cpu[observer.key][w.key].append(round_cpu[w.key])
            for key in ratios:
                for w in workloads:
                    bare, watched = this_round["bare"][w.key], this_round[key][w.key]
                    if bare and watched is not None:
                        ratios[key][w.key].append(watched / bare)
            if nettop is not None:
                log(f"overhead round {round_index + 1}/{rounds}: nettop with BPF run-time statistics")
                for key, value in run_bpf_segment(nettop, workloads, seconds).items():
                    bpf_runs[key].append(value)
    return {
        "rounds": rounds,
        "seconds": seconds,
        "workloads": {w.key: {"title": w.title, "unit": w.unit} for w in workloads},
        "observers": {o.key: {"title": o.title, "kind": o.kind} for o in observers},
        "rate": {o: {w: figure(v) for w, v in per.items()} for o, per in rates.items()},
        "ratio": {o: {w: figure(v) for w, v in per.items()} for o, per in ratios.items()},
        "cpu_percent": {o: {w: figure(v, 2) for w, v in per.items()} for o, per in cpu.items() if o != "bare"},
        "bpf": {w.key: summarize_bpf(w, bpf_runs[w.key]) for w in workloads if bpf_runs[w.key]},
        "problems": problems,
    }


def summarize_bpf(workload: Workload, runs: list[dict]) -> dict:
    names = sorted({name for run in runs for name in run["programs"]})
    return {
        "core_percent": figure([r["core_percent"] for r in runs], 2),
        "cpu_seconds": figure([r["cpu_seconds"] for r in runs], 4),
        "ns_per_operation": figure([per_operation_ns(workload, r) for r in runs], 1),
        "rate_with_stats": figure([r["rate"] for r in runs]),
        "programs": {
            name: {
                "ns_per_event": figure([r["programs"][name]["ns_per_event"] for r in runs if name in r["programs"]], 1),
                "events_per_s": figure([r["programs"][name]["events_per_s"] for r in runs if name in r["programs"]], 0),
            }
            for name in names
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--observers", help="comma-separated observer keys (bare is always run); "
                        "nettop:netdev+socket_io runs nettop with only those probes")
    parser.add_argument("--workloads", help="comma-separated workload keys")
    args = parser.parse_args()
    workloads = tuple(w for w in WORKLOADS if not args.workloads or w.key in args.workloads.split(","))
    print(json.dumps(measure(args.rounds, args.seconds, chosen(args.observers), workloads), indent=2))


if __name__ == "__main__":
    main()
