"""TCP throughput probe against known transfers: iperf3's own byte counts, real PIDs.

Real BPF, real traffic (loopback and a test host in a network namespace). iperf3 sends a
37-byte cookie on the data stream besides the payload, hence the 1% tolerance.
"""

from __future__ import annotations

import json
import subprocess
import pytest

from kernel_paths import kernel_socket_source

from netns import wait_for_port

pytestmark = pytest.mark.root

TRANSFER = 20 * 1024 * 1024


def connection_bytes(frames, pid, lport, rport, direction):
    total = 0
    for frame in frames:
        for c in frame["panes"]["tcp"]["connections"]:
            if c["pid"] == pid and c["lport"] == lport and c["rport"] == rport:
                total += c[direction]
    return total


def find_connection(frames, pid, lport, rport):
    for frame in frames:
        for c in frame["panes"]["tcp"]["connections"]:
            if c["pid"] == pid and c["lport"] == lport and c["rport"] == rport:
                return c
    raise AssertionError(f"no connection pid={pid} {lport}->{rport} in the recording")


@pytest.mark.parametrize("address,family", [("127.0.0.1", 4), ("::1", 6)])
def test_loopback_transfer_matches_iperf3(recording, address, family):
    port = 5301 + family
    server_cmd = ["iperf3", "-s", "-1", "-p", str(port)]
    with recording(6.0, "--probes", "socket_io") as rec:
        server = subprocess.Popen(server_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(None, port)
        client = subprocess.Popen(
            ["iperf3", "-c", address, "-p", str(port), "-n", str(TRANSFER), "-J"],
            stdout=subprocess.PIPE, text=True,
        )
        out, _ = client.communicate(timeout=30)
        server.wait(timeout=10)
        frames = rec.finish()

    result = json.loads(out)
    stream = result["start"]["connected"][0]
    sent = result["end"]["sum_sent"]["bytes"]
    received = result["end"]["sum_received"]["bytes"]
    lport = stream["local_port"]

    tx = connection_bytes(frames, client.pid, lport, port, "tx_bytes")
    rx = connection_bytes(frames, server.pid, port, lport, "rx_bytes")
    assert tx == pytest.approx(sent, rel=0.01)
    assert rx == pytest.approx(received, rel=0.01)

    sender_row = find_connection(frames, client.pid, lport, port)
    receiver_row = find_connection(frames, server.pid, port, lport)
    assert sender_row["comm"] == receiver_row["comm"] == "iperf3"
    assert sender_row["family"] == family and sender_row["raddr"] == address
    assert receiver_row["laddr"] == address
    assert all(f["panes"]["tcp"]["dropped"] == 0 for f in frames)
    assert {f["panes"]["tcp"]["source"] for f in frames} == {kernel_socket_source()}


@pytest.mark.parametrize("family", [4, 6])
def test_transfer_to_test_host_matches_iperf3(recording, host, family):
    port = 5201
    address = host.ip if family == 4 else host.ip6
    with recording(6.0, "--probes", "socket_io") as rec:
        server = host.popen("iperf3", "-s", "-1", "-p", str(port))
        wait_for_port(host, port)
        client = subprocess.Popen(
            ["iperf3", "-c", address, "-p", str(port), "-n", str(TRANSFER), "-J"],
            stdout=subprocess.PIPE, text=True,
        )
        out, _ = client.communicate(timeout=30)
        server.wait(timeout=10)
        frames = rec.finish()

    result = json.loads(out)
    lport = result["start"]["connected"][0]["local_port"]
    tx = connection_bytes(frames, client.pid, lport, port, "tx_bytes")
    rx = connection_bytes(frames, server.pid, port, lport, "rx_bytes")
    assert tx == pytest.approx(result["end"]["sum_sent"]["bytes"], rel=0.01)
    assert rx == pytest.approx(result["end"]["sum_received"]["bytes"], rel=0.01)
    row = find_connection(frames, server.pid, port, lport)
    assert row["comm"] == "iperf3"
    assert (row["laddr"], row["raddr"], row["family"]) == (
        address, host.host_ip if family == 4 else host.host_ip6, family)
