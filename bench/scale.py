"""Bench 3: 10,000 concurrent TCP connections with traffic, on loopback and to test hosts in
network namespaces: poll and UI update time per interval (bench/poll_cost.py), and the live
dashboard's CPU and RSS at a 1 s interval (bench/startup.py's Dashboard in tmux).

Run as root: .venv/bin/python bench/scale.py --connections 10000 --polls 20 --seconds 30
"""

from __future__ import annotations

import argparse
import json
import time
from contextlib import contextmanager
from typing import Callable, ContextManager, Iterator

import poll_cost
from common import CpuMeter, log, rss_mb
from connections import loopback_load, test_host_load
from startup import Dashboard

DAY = 86400.0


@contextmanager
def loopback(count: int) -> Iterator[None]:
    with loopback_load(count, DAY):
        yield


@contextmanager
def test_hosts(count: int) -> Iterator[None]:
    with test_host_load(count, DAY, hosts=4):
        yield


LOADS: dict[str, tuple[str, Callable[[int], ContextManager[None]]]] = {
    "loopback": ("loopback", loopback),
    "testhosts": ("4 test hosts in network namespaces (veth)", test_hosts),
}


def dashboard_cost(seconds: float) -> dict:
    """CPU% of the live dashboard at a 1 s interval once every pane is live, its TCP tab
    shown (checked before and after), and its RSS."""
    with Dashboard("-i 1", session="nettop-bench-scale") as dashboard:
        dashboard.wait_all_live()
        time.sleep(3)  # the first frames fill the tables
        meter = CpuMeter(dashboard.pid)
        rss_start = rss_mb(dashboard.pid)
        time.sleep(seconds)
        shown = dashboard.visible_pane()
        if shown != "tcp":
            raise RuntimeError(f"the dashboard showed its {shown} tab, not TCP, while measured")
        return {"cpu_percent": round(meter.percent(), 2), "rss_mb_start": round(rss_start, 1),
                "rss_mb_end": round(rss_mb(dashboard.pid), 1), "seconds": seconds, "tab": shown}


def measure(connections: int, polls: int, seconds: float, loads: tuple[str, ...] = tuple(LOADS)) -> dict:
    out = {"connections": connections}
    for key in loads:
        title, load = LOADS[key]
        log(f"scale: {connections} connections, {title}")
        try:
            with load(connections):
                out[key] = {"title": title, **poll_cost.measure(polls), "dashboard": dashboard_cost(seconds)}
        except Exception as exc:  # the other load's figures still count
            log(f"scale: {title} failed: {type(exc).__name__}: {exc}")
            out[key] = {"title": title, "error": f"{type(exc).__name__}: {exc}"}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--polls", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30, help="dashboard CPU measured over this long")
    parser.add_argument("--loads", default=",".join(LOADS))
    args = parser.parse_args()
    print(json.dumps(measure(args.connections, args.polls, args.seconds, tuple(args.loads.split(","))), indent=2))


if __name__ == "__main__":
    main()
