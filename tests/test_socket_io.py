"""socket_io's BPF text and the Python side of its drain: pure, no root needed."""

from __future__ import annotations

import socket

import pytest

from nettop.btf import running_kernel_btf
from nettop.probes import socket_io
from nettop.probes.socket_io import SLOTS, bpf_text, build_snapshots

needs_btf = pytest.mark.skipif(running_kernel_btf() is None, reason="no kernel BTF")


@needs_btf
@pytest.mark.parametrize("source", ["raw_tracepoint", "tracepoint", "kprobe"])
def test_bpf_text_per_source(source):
    text = bpf_text(source, max_sockets=1234)
    assert "BPF_HASH(stats, struct sock_key, struct sock_stats, 1234)" in text
    btf = running_kernel_btf()
    assert f"#define OFF_SKC_V6_DADDR {btf.offsetof('sock_common', 'skc_v6_daddr')}" in text
    assert "offsetof(" not in text  # never through the installed headers when BTF exists
    if source == "raw_tracepoint":
        assert "RAW_TRACEPOINT_PROBE(sock_send_length)" in text and "args->" not in text
        # family and protocol are read from the socket once per entry, not per call
        assert f"#define OFF_SK_PROTOCOL {btf.offsetof('sock', 'sk_protocol')}" in text
        assert "account((void *)ctx->args[0], -1, -1," in text
    elif source == "tracepoint":
        assert "TRACEPOINT_PROBE(sock, sock_send_length)" in text and "kprobe__" not in text
        assert "#define OFF_SK_PROTOCOL" not in text
    else:
        assert "int on_recv_return(" in text and "TRACEPOINT_PROBE" not in text
        assert f"#define OFF_SOCKET_SK {btf.offsetof('socket', 'sk')}" in text


def test_bpf_text_without_btf_falls_back_to_header_offsets(monkeypatch):
    monkeypatch.setattr("nettop.probes.layout.running_kernel_btf", lambda: None)
    assert "#define OFF_SKC_DADDR offsetof(struct sock_common, skc_daddr)" in bpf_text("tracepoint")


def entry(pid, rx=0, tx=0, calls=(0, 0), errors=(0, 0), hist=None, meta=None):
    """One drained map entry as poll() hands it to build_snapshots."""
    meta = meta or (b"\0" * 16, b"\0" * 16, 0, 0, 0, 0, b"\0" * 16)
    slots = hist or [0] * (2 * SLOTS)
    lanes = socket_io._lanes(socket_io._HIST.pack(*slots))
    return (pid, (rx, tx, *calls, *errors, *meta), lanes)


def meta(family, laddr, raddr, lport, rport, protocol=socket.IPPROTO_TCP, comm=b"curl"):
    def raw(address):
        return socket.inet_pton(family, address).ljust(16, b"\0")

    return (raw(laddr), raw(raddr), lport, rport, family, protocol, comm.ljust(16, b"\0"))


def test_histograms_of_one_process_sum_slot_by_slot():
    a = [0] * (2 * SLOTS)
    a[7] = 3  # rx [64, 128)
    b = [0] * (2 * SLOTS)
    b[7] = 2
    b[SLOTS + 13] = 5  # tx [4096, 8192)
    m = meta(socket.AF_INET, "10.0.0.1", "10.0.0.2", 80, 5555)
    m2 = meta(socket.AF_INET, "10.0.0.1", "10.0.0.3", 80, 5556)
    snaps = build_snapshots([entry(9, rx=300, calls=(3, 0), hist=a, meta=m),
                             entry(9, rx=200, tx=5 * 4096, calls=(2, 5), errors=(1, 0), hist=b, meta=m2)],
                            "tracepoint", 0)
    (process,) = snaps["sizes"].processes
    assert (process.read.count, process.read.bytes, process.read.errors) == (5, 500, 1)
    assert process.read.histogram.buckets == ((64, 128, 5),)
    assert process.write.histogram.buckets == ((4096, 8192, 5),) and process.write.bytes == 20480


def test_lanes_add_every_counter_at_once():
    x = [i for i in range(2 * SLOTS)]
    y = [1000 * i for i in range(2 * SLOTS)]
    total = socket_io._lanes(socket_io._HIST.pack(*x)) + socket_io._lanes(socket_io._HIST.pack(*y))
    assert socket_io._slots(total) == tuple(1001 * i for i in range(2 * SLOTS))


def test_snapshots_split_tcp_rows_from_size_rows_and_unmap_ipv4():
    tcp6_mapped = entry(7, rx=100, tx=50, calls=(1, 1),
                        meta=meta(socket.AF_INET6, "::ffff:127.0.0.1", "::ffff:127.0.0.2", 80, 9))
    udp = entry(8, tx=64, calls=(0, 1), meta=meta(socket.AF_INET, "0.0.0.0", "0.0.0.0", 53, 0,
                                                   protocol=socket.IPPROTO_UDP, comm=b"dns"))
    idle = entry(7, meta=meta(socket.AF_INET, "10.0.0.1", "10.0.0.3", 22, 7))
    snaps = build_snapshots([tcp6_mapped, udp, idle], "tracepoint", dropped=2)
    tcp = snaps["tcp"]
    assert tcp.dropped == 2 and len(tcp.connections) == 1  # the idle socket has no bytes: no row
    row = tcp.connections[0]
    assert (row.family, row.laddr, row.raddr, row.lport, row.rport) == (4, "127.0.0.1", "127.0.0.2", 80, 9)
    assert (row.pid, row.comm, row.rx_bytes, row.tx_bytes) == (7, "curl", 100, 50)
    protocols = {(p.pid, p.protocol) for p in snaps["sizes"].processes}
    assert protocols == {(7, "tcp"), (8, "udp")}


def test_entries_without_metadata_are_skipped():
    snaps = build_snapshots([entry(1, rx=5)], "tracepoint", 0)
    assert snaps["tcp"].connections == () and snaps["sizes"].processes == ()


def test_stats_layout_matches_the_c_struct():
    # bytes[2] u64, calls/errors u32[2], hist u64[2*SLOTS], laddr/raddr 16, 4 x u16, comm 16
    assert socket_io._STATS.size == 16 + 8 + 8 + 8 * 2 * SLOTS + 32 + 8 + 16
    assert socket_io._HIST_OFFSET == 32 and socket_io._HIST.size == socket_io._HIST_BYTES
