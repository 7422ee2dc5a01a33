"""The loopback workloads every overhead figure is measured on, each returning its rate.

The issue measured bulk streams (iperf3, 1 and 8 streams) swinging ±20% between identical
runs, and 64-byte writes and a CPU-pinned 64-byte request/response varying about 1%. On
the machines of December 2026 the pinned request/response swings too: it jumps between
rates a third apart within seconds, with nothing attached (bench/alternation.py, which
measures through that).
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


def iperf3_client(*extra: str) -> Callable[[float], list[str]]:
    def argv(seconds: float) -> list[str]:
        return ["iperf3", "-c", "127.0.0.1", "-p", str(IPERF_PORT), "-t", f"{seconds:g}", "-J", *extra]

    return argv


def sockperf_client(seconds: float) -> list[str]:
    """64-byte ping-pong, pinned to the server's CPU."""
    return ["taskset", "-c", str(PINNED_CPU), "sockperf", "ping-pong", "--tcp", "-i", "127.0.0.1",
            "-p", str(SOCKPERF_PORT), "-m", "64", "-t", f"{max(1, round(seconds))}"]


def iperf3_result(out: str) -> dict:
    result = json.loads(out)
    if "error" in result:
        raise RuntimeError(f"iperf3: {result['error']}")
    return result["end"]["sum_received"]


def gbits(out: str, seconds: float) -> float:
    return iperf3_result(out)["bits_per_second"] / 1e9


def thousand_writes(out: str, seconds: float) -> float:
    """Thousands of 64-byte writes per second: each write is one sock_send_length event."""
    return iperf3_result(out)["bytes"] / 64 / seconds / 1e3


def thousand_round_trips(out: str, seconds: float) -> float:
    match = re.search(r"\[Valid Duration\] RunTime=([\d.]+) sec; SentMessages=\d+; ReceivedMessages=(\d+)", out)
    if not match:
        raise RuntimeError(f"sockperf printed no summary: {out[-300:]}")
    return int(match.group(2)) / float(match.group(1)) / 1e3


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    unit: str
    client: Callable[[float], list[str]]  # argv of a client running `seconds`
    rate: Callable[[str, float], float]  # its output and seconds -> the rate, in `unit`
    #: the lo counter whose rate follows the traffic (all of it crosses lo), which
    #: bench/alternation.py reads for slices of one long run
    lo_counter: str

    def run(self, seconds: float) -> float:
        out = subprocess.run(self.client(seconds), capture_output=True, text=True,
                             timeout=seconds + 30).stdout
        return self.rate(out, seconds)


WORKLOADS: tuple[Workload, ...] = (
    Workload("bulk1", "iperf3, 1 stream", "Gbit/s", iperf3_client(), gbits, "tx_bytes"),
    Workload("bulk8", "iperf3, 8 streams", "Gbit/s", iperf3_client("-P", "8"), gbits, "tx_bytes"),
    Workload("writes64", "iperf3, 64-byte writes", "k writes/s", iperf3_client("-l", "64"), thousand_writes,
             "tx_bytes"),
    Workload("rr64", "sockperf ping-pong, 64 bytes, pinned", "k round trips/s", sockperf_client,
             thousand_round_trips, "tx_packets"),
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
