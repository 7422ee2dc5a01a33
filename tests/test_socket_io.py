"""socket_io's BPF text and the Python side of its drain: pure, no root needed."""

from __future__ import annotations

import socket

import pytest

from nettop.btf import running_kernel_btf
from nettop.probes import socket_io
from nettop.probes.socket_io import SLOTS, build_snapshots, bpf_text, merge_cpu_values

needs_btf = pytest.mark.skipif(running_kernel_btf() is None, reason="no kernel BTF")


@needs_btf
@pytest.mark.parametrize("source", ["tracepoint", "kprobe"])
def test_bpf_text_per_source(source):
    text = bpf_text(source, max_sockets=1234)
    assert "BPF_PERCPU_HASH(stats, struct sock_key, struct sock_stats, 1234)" in text
    btf = running_kernel_btf()
    assert f"#define OFF_SKC_V6_DADDR {btf.offsetof('sock_common', 'skc_v6_daddr')}" in text
    assert "offsetof(" not in text  # never through the installed headers when BTF exists
    if source == "tracepoint":
        assert "TRACEPOINT_PROBE(sock, sock_send_length)" in text and "kprobe__" not in text
    else:
        assert "kretprobe__sock_recvmsg" in text and "TRACEPOINT_PROBE" not in text
        assert f"#define OFF_SOCKET_SK {btf.offsetof('socket', 'sk')}" in text


def test_bpf_text_without_btf_falls_back_to_header_offsets(monkeypatch):
    monkeypatch.setattr("nettop.probes.layout.running_kernel_btf", lambda: None)
    assert "#define OFF_SKC_DADDR offsetof(struct sock_common, skc_daddr)" in bpf_text("tracepoint")


def cpu_value(rx=0, tx=0, rx_calls=0, tx_calls=0, errors=(0, 0), hist=None, meta=None):
    hist = hist or [0] * (2 * SLOTS)
    meta = meta or (b"\0" * 16, b"\0" * 16, 0, 0, 0, 0, b"\0" * 16)
    return (rx, tx, rx_calls, tx_calls, *errors, *hist, *meta)


def meta(family, laddr, raddr, lport, rport, protocol=socket.IPPROTO_TCP, comm=b"curl"):
    def raw(address):
        packed = socket.inet_pton(family, address)
        return packed.ljust(16, b"\0")

    return (raw(laddr), raw(raddr), lport, rport, family, protocol, comm.ljust(16, b"\0"))


def test_cpu_values_sum_and_metadata_comes_from_the_creating_cpu():
    hist0 = [0] * (2 * SLOTS)
    hist0[3] = 2
    hist1 = [0] * (2 * SLOTS)
    hist1[3] = 1
    hist1[SLOTS + 7] = 4
    merged = merge_cpu_values([
        cpu_value(rx=10, rx_calls=2, hist=hist0),  # this CPU never created the entry
        cpu_value(rx=5, tx=400, rx_calls=1, tx_calls=4, errors=(1, 0), hist=hist1,
                  meta=meta(socket.AF_INET, "10.0.0.1", "10.0.0.2", 80, 5555)),
    ])
    assert merged["bytes"] == [15, 400] and merged["calls"] == [3, 4] and merged["errors"] == [1, 0]
    assert merged["hist"][3] == 3 and merged["hist"][SLOTS + 7] == 4
    assert merged["meta"][4] == socket.AF_INET


def test_snapshots_split_tcp_rows_from_size_rows_and_unmap_ipv4():
    tcp6_mapped = merge_cpu_values([cpu_value(rx=100, tx=50, rx_calls=1, tx_calls=1,
                                              meta=meta(socket.AF_INET6, "::ffff:127.0.0.1", "::ffff:127.0.0.2", 80, 9))])
    udp = merge_cpu_values([cpu_value(tx=64, tx_calls=1, meta=meta(socket.AF_INET, "0.0.0.0", "0.0.0.0", 53, 0,
                                                                      protocol=socket.IPPROTO_UDP, comm=b"dns"))])
    idle = merge_cpu_values([cpu_value(meta=meta(socket.AF_INET, "10.0.0.1", "10.0.0.3", 22, 7))])
    snaps = build_snapshots([(7, tcp6_mapped), (8, udp), (7, idle)], "tracepoint", dropped=2)
    tcp = snaps["tcp"]
    assert tcp.dropped == 2 and len(tcp.connections) == 1  # the idle socket has no bytes: no row
    row = tcp.connections[0]
    assert (row.family, row.laddr, row.raddr, row.lport, row.rport) == (4, "127.0.0.1", "127.0.0.2", 80, 9)
    assert (row.pid, row.comm, row.rx_bytes, row.tx_bytes) == (7, "curl", 100, 50)
    protocols = {(p.pid, p.protocol) for p in snaps["sizes"].processes}
    assert protocols == {(7, "tcp"), (8, "udp")}


def test_entries_without_metadata_are_skipped():
    snaps = build_snapshots([(1, merge_cpu_values([cpu_value(rx=5)]))], "tracepoint", 0)
    assert snaps["tcp"].connections == () and snaps["sizes"].processes == ()


def test_stats_layout_matches_the_c_struct():
    # bytes[2] u64, calls/errors u32[2], hist u32[2*SLOTS], laddr/raddr 16, 4 x u16, comm 16
    assert socket_io._STATS.size == 16 + 8 + 8 + 4 * 2 * SLOTS + 32 + 8 + 16
    assert socket_io._STATS.size % 8 == 0  # BCC requires 8-byte aligned per-CPU values
