"""The loopback workloads every overhead figure is measured on, each returning its rate.

Bulk streams (iperf3, 1 and 8 streams) swing ±20% between identical runs here; 64-byte
writes and a CPU-pinned 64-byte request/response vary about 1%, so per-event cost is
judged on those two.
"""

from __future__ import annotations

import json
import re
import subprocess
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

from common import Tool

from nettop.testhosts import wait_for_port

IPERF_PORT = 5401
SOCKPERF_PORT = 11401
PINNED_CPU = 1  # both ends of the request/response share one CPU: no cross-CPU wake-up noise


def iperf3(seconds: float, *extra: str) -> dict:
    out = subprocess.run(
        ["iperf3", "-c", "127.0.0.1", "-p", str(IPERF_PORT), "-t", f"{seconds:g}", "-J", *extra],
        capture_output=True, text=True, timeout=seconds + 30,
    ).stdout
    result = json.loads(out)
    if "error" in result:
        raise RuntimeError(f"iperf3: {result['error']}")
    return result["end"]["sum_received"]


def bulk(streams: int) -> Callable[[float], float]:
    def run(seconds: float) -> float:
        return iperf3(seconds, "-P", str(streams))["bits_per_second"] / 1e9

    return run


def small_writes(seconds: float) -> float:
    """Thousands of 64-byte writes per second: each write is one sock_send_length event."""
    return iperf3(seconds, "-l", "64")["bytes"] / 64 / seconds / 1e3


def request_response(seconds: float) -> float:
    """Thousands of 64-byte round trips per second, client and server pinned to one CPU."""
    out = subprocess.run(
        ["taskset", "-c", str(PINNED_CPU), "sockperf", "ping-pong", "--tcp", "-i", "127.0.0.1",
         "-p", str(SOCKPERF_PORT), "-m", "64", "-t", f"{max(1, round(seconds))}"],
        check=True, capture_output=True, text=True, timeout=seconds + 30,
    ).stdout
    match = re.search(r"\[Valid Duration\] RunTime=([\d.]+) sec; SentMessages=\d+; ReceivedMessages=(\d+)", out)
    if not match:
        raise RuntimeError(f"sockperf printed no summary: {out[-300:]}")
    return int(match.group(2)) / float(match.group(1)) / 1e3


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    unit: str
    run: Callable[[float], float]


WORKLOADS: tuple[Workload, ...] = (
    Workload("bulk1", "iperf3, 1 stream", "Gbit/s", bulk(1)),
    Workload("bulk8", "iperf3, 8 streams", "Gbit/s", bulk(8)),
    Workload("writes64", "iperf3, 64-byte writes", "k writes/s", small_writes),
    Workload("rr64", "sockperf ping-pong, 64 bytes, pinned", "k round trips/s", request_response),
)


@contextmanager
def servers() -> Iterator[None]:
    """The iperf3 and sockperf servers the workloads talk to, for the whole bench."""
    with ExitStack() as stack:
        stack.enter_context(Tool(["iperf3", "-s", "-p", str(IPERF_PORT)]))
        stack.enter_context(
            Tool(["sockperf", "server", "--tcp", "-i", "127.0.0.1", "-p", str(SOCKPERF_PORT)], cpu=PINNED_CPU)
        )
        for port in (IPERF_PORT, SOCKPERF_PORT):
            wait_for_port(None, port)
        yield
