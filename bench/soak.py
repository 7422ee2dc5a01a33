"""Bench 5: churn soak. Thousands of short-lived loopback connections per second (one churn
process per CPU) plus one bulk iperf3 flow, with `nettop record` running every pane: its RSS
over time, what the kernel maps and event channels dropped or lost (summed from the
recording), panes that stopped, and any exception on nettop's stderr (there must be none).

Run as root: .venv/bin/python bench/soak.py --seconds 600
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from common import PYTHON, CpuMeter, Tool, exceptions_in, log, rss_mb
from observers import nettop_record
from workloads import IPERF_PORT

from nettop.testhosts import wait_for_port

CHURN = str(Path(__file__).resolve().parent / "connections.py")
LOSS_FIELDS = ("dropped", "lost", "lost_events")


def losses(recording: Path) -> tuple[dict[str, dict[str, int]], int, set[str], set[str]]:
    """Per pane, the sum of each drop/loss counter; frames; panes in the first and last frame."""
    totals: dict[str, dict[str, int]] = {}
    frames = 0
    first: set[str] = set()
    last: set[str] = set()
    with gzip.open(recording, "rt") as lines:
        for line in lines:
            try:
                panes = json.loads(line)["panes"]
            except (ValueError, KeyError):
                continue  # the last line may be cut short when nettop is stopped
            frames += 1
            first = first or set(panes)
            last = set(panes)
            for pane, record in panes.items():
                for field in LOSS_FIELDS:
                    if isinstance(record.get(field), int):
                        totals.setdefault(pane, {}).setdefault(field, 0)
                        totals[pane][field] += record[field]
    return totals, frames, first, last


def measure(seconds: float, sample_every: float = 5.0, warm_up: float = 10.0) -> dict:
    churners = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="nettop-bench-soak-") as tmp, ExitStack() as stack:
        recording = Path(tmp) / "soak.jsonl.gz"
        total = seconds + warm_up + 30
        watching = stack.enter_context(nettop_record(output=str(recording), duration=total)())
        stack.enter_context(Tool(["iperf3", "-s", "-p", str(IPERF_PORT)]))
        wait_for_port(None, IPERF_PORT)
        stack.enter_context(Tool(["iperf3", "-c", "127.0.0.1", "-p", str(IPERF_PORT), "-t", f"{total:g}"]))
        churn = [stack.enter_context(Tool([PYTHON, CHURN, "churn", "--seconds", f"{seconds + warm_up:g}"]))
                 for _ in range(churners)]
        log(f"soak: {churners} churn processes and a bulk flow for {seconds + warm_up:g}s")
        time.sleep(warm_up)
        samples = []
        meter = CpuMeter(watching.pid)
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds:
            samples.append((round(elapsed, 1), round(rss_mb(watching.pid), 1)))
            time.sleep(min(sample_every, max(0.0, seconds - elapsed)))
        samples.append((round(time.monotonic() - started, 1), round(rss_mb(watching.pid), 1)))
        cpu = meter.percent()
        rates = []
        for tool in churn:
            tool.wait(timeout=60)
            match = re.search(r"\((\d+)/s\), (\d+) failed", tool.tail(1))
            rates.append(int(match.group(1)) if match else 0)
        watching.tool.stop()
        problems = exceptions_in(watching.tool.output())
        dropped, frames, first, last = losses(recording)
    rss_start, rss_end = samples[0][1], samples[-1][1]
    return {
        "seconds": seconds,
        "connections_per_s": sum(rates),
        "nettop_cpu_percent": round(cpu, 2),
        "rss_mb_start": rss_start,
        "rss_mb_end": rss_end,
        "rss_mb_max": max(s[1] for s in samples),
        "rss_growth_percent": round(100 * (rss_end - rss_start) / rss_start, 1),
        "rss_samples": samples,
        "frames": frames,
        "losses": dropped,
        "panes_stopped": sorted(first - last),
        "exceptions": problems,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=600)
    args = parser.parse_args()
    print(json.dumps(measure(args.seconds), indent=2))


if __name__ == "__main__":
    main()
