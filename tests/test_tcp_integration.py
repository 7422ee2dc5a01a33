"""TCP throughput probe against known transfers: iperf3's own byte counts, real PIDs.

Real BPF, real traffic (loopback and a test host in a network namespace). iperf3 sends a
37-byte cookie on the data stream besides the payload, hence the 1% tolerance.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass

import pytest

from kernel_paths import kernel_socket_source

from netns import wait_for_port

pytestmark = pytest.mark.root

TRANSFER = 20 * 1024 * 1024


@dataclass
class Transfer:
    frames: list[dict]
    result: dict  # iperf3 -J
    client_pid: int
    server_pid: int
    port: int

    @property
    def lport(self) -> int:
        return self.result["start"]["connected"][0]["local_port"]

    def rows(self, pid, lport, rport):
        for frame in self.frames:
            for c in frame["panes"]["tcp"]["connections"]:
                if c["pid"] == pid and c["lport"] == lport and c["rport"] == rport:
                    yield c

    def sender_rows(self):
        return list(self.rows(self.client_pid, self.lport, self.port))

    def receiver_rows(self):
        return list(self.rows(self.server_pid, self.port, self.lport))

    def assert_bytes_match_iperf3(self):
        assert sum(c["tx_bytes"] for c in self.sender_rows()) == pytest.approx(
            self.result["end"]["sum_sent"]["bytes"], rel=0.01)
        assert sum(c["rx_bytes"] for c in self.receiver_rows()) == pytest.approx(
            self.result["end"]["sum_received"]["bytes"], rel=0.01)
        assert self.sender_rows() and self.receiver_rows()


def transfer(
    recording, server: subprocess.Popen, server_host, address: str, port: int, *record_args: str,
    duration: float = 6.0, timeout: float = 30,
) -> Transfer:
    """A known transfer to `address` while `nettop record --probes socket_io` runs; `server`
    is iperf3 -s -1. Slow kernels (the VM) pass a longer duration and timeout."""
    with recording(duration, "--probes", "socket_io", *record_args) as rec:
        wait_for_port(server_host, port)
        client = subprocess.Popen(
            ["iperf3", "-c", address, "-p", str(port), "-n", str(TRANSFER), "-J"],
            stdout=subprocess.PIPE, text=True,
        )
        out, _ = client.communicate(timeout=timeout)
        server.wait(timeout=10)
        frames = rec.finish(timeout=4 * timeout)
    return Transfer(frames, json.loads(out), client.pid, server.pid, port)


@pytest.mark.parametrize("address,family", [("127.0.0.1", 4), ("::1", 6)])
def test_loopback_transfer_matches_iperf3(recording, address, family):
    port = 5301 + family
    server = subprocess.Popen(["iperf3", "-s", "-1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t = transfer(recording, server, None, address, port)
    t.assert_bytes_match_iperf3()
    sender_row, receiver_row = t.sender_rows()[0], t.receiver_rows()[0]
    assert sender_row["comm"] == receiver_row["comm"] == "iperf3"
    assert sender_row["family"] == family and sender_row["raddr"] == address
    assert receiver_row["laddr"] == address
    assert all(f["panes"]["tcp"]["dropped"] == 0 for f in t.frames)
    assert {f["panes"]["tcp"]["source"] for f in t.frames} == {kernel_socket_source()}


@pytest.mark.parametrize("family", [4, 6])
def test_transfer_to_test_host_matches_iperf3(recording, host, family):
    port = 5201
    address = host.ip if family == 4 else host.ip6
    t = transfer(recording, host.popen("iperf3", "-s", "-1", "-p", str(port)), host, address, port)
    t.assert_bytes_match_iperf3()
    row = t.receiver_rows()[0]
    assert row["comm"] == "iperf3"
    assert (row["laddr"], row["raddr"], row["family"]) == (
        address, host.host_ip if family == 4 else host.host_ip6, family)
