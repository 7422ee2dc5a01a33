"""Cost of one interval's poll (drain + snapshot) of every probe, with N busy connections.

Run as root: .venv/bin/python bench/poll_cost.py --connections 1000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from connections import open_pairs, trickle  # noqa: E402

from nettop.probes.registry import build_probes  # noqa: E402
from nettop.sampler import LiveSource  # noqa: E402


def measure(connections: int, polls: int, interval: float) -> dict:
    _, pairs = open_pairs(connections)
    source = LiveSource(build_probes())
    source.start()
    source.wait_attached()
    load = threading.Thread(target=trickle, args=(pairs, polls * interval + 2, 64, 0.5), daemon=True)
    load.start()
    times, rows = [], []
    source.poll()
    for _ in range(polls):
        time.sleep(interval)
        t0 = time.perf_counter()
        frame = source.poll()
        times.append((time.perf_counter() - t0) * 1000)
        tcp = frame.panes.get("tcp")
        rows.append(len(tcp.connections) if tcp else 0)
    source.close()
    times.sort()
    return {
        "connections": connections,
        "polls": polls,
        "rows_median": statistics.median(rows),
        "poll_ms_p50": round(statistics.median(times), 2),
        "poll_ms_p99": round(times[min(len(times) - 1, int(len(times) * 0.99))], 2),
        "poll_ms_max": round(times[-1], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--polls", type=int, default=20)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    print(measure(args.connections, args.polls, args.interval))


if __name__ == "__main__":
    main()
