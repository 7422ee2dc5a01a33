"""socket_io's BPF text and the Python side of its drain: pure, no root needed."""

from __future__ import annotations

import itertools
import socket

import pytest

from nettop.btf import running_kernel_btf
from nettop.probes import socket_io
from nettop.probes.owners import Owner
from nettop.probes.socket_columns import SocketDecoder
from nettop.probes.socket_io import SLOTS, bpf_text

needs_btf = pytest.mark.skipif(running_kernel_btf() is None, reason="no kernel BTF")


@needs_btf
@pytest.mark.parametrize("source", ["raw_tracepoint", "tracepoint", "kprobe"])
def test_bpf_text_per_source(source):
    text = bpf_text(source, max_sockets=1234)
    assert "#define MAX_SOCKETS 1234" in text
    assert "BPF_F_TABLE(\"array\", u32, struct sock_slot, slots, 2 * MAX_SOCKETS, BPF_F_MMAPABLE)" in text
    assert "BPF_HASH(stats," not in text
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


def test_the_hash_layout_keeps_entries_in_one_drained_hash():
    text = bpf_text("tracepoint", max_sockets=1234, layout="hash")
    assert "BPF_HASH(stats, struct sock_key, struct sock_stats, MAX_SOCKETS)" in text and "#define MAX_SOCKETS 1234" in text
    assert "slot_indexes" not in text and "BPF_F_MMAPABLE" not in text


def test_bpf_text_without_btf_falls_back_to_header_offsets(monkeypatch):
    monkeypatch.setattr("nettop.probes.layout.running_kernel_btf", lambda: None)
    assert "#define OFF_SKC_DADDR offsetof(struct sock_common, skc_daddr)" in bpf_text("tracepoint")


_SOCKET_ADDRESSES = itertools.count(0xFFFF888000000000, 0x800)


def entry(pid, rx=0, tx=0, errors=(0, 0), hist=None, meta=None, sk=None):
    """One map entry as the kernel lays it out: (key bytes, value bytes). Its calls are the
    histogram's sum, as the kernel counts them."""
    meta = meta or (b"\0" * 16, b"\0" * 16, 0, 0, 0, 0, b"\0" * 16)
    slots = hist or [0] * (2 * SLOTS)
    key = socket_io.KEY.pack(sk if sk is not None else next(_SOCKET_ADDRESSES), pid)
    return key, socket_io.BODY.pack(rx, tx, *errors, *slots) + socket_io.META.pack(*meta)


def snapshots(entries, source="tracepoint", dropped=0, decoder=None):
    """What poll() makes of a drain that returned these entries."""
    decoder = decoder or SocketDecoder()
    keys = b"".join(k for k, _ in entries)
    values = b"".join(v for _, v in entries)
    return decoder.snapshots(keys, values, len(entries), source, dropped)


def meta(family, laddr, raddr, lport, rport, protocol=socket.IPPROTO_TCP, comm=b"curl"):
    def raw(address):
        return socket.inet_pton(family, address).ljust(16, b"\0")

    return (raw(laddr), raw(raddr), lport, rport, family, protocol, comm.ljust(16, b"\0"))


def test_histograms_and_counters_of_one_process_sum_slot_by_slot():
    a = [0] * (2 * SLOTS)
    a[7] = 3  # rx [64, 128)
    b = [0] * (2 * SLOTS)
    b[7] = 2
    b[SLOTS + 13] = 5  # tx [4096, 8192)
    m = meta(socket.AF_INET, "10.0.0.1", "10.0.0.2", 80, 5555)
    m2 = meta(socket.AF_INET, "10.0.0.1", "10.0.0.3", 80, 5556)
    snaps = snapshots([entry(9, rx=300, hist=a, meta=m),
                       entry(9, rx=200, tx=5 * 4096, errors=(1, 0), hist=b, meta=m2)])
    (process,) = snaps["sizes"].processes
    assert (process.read.count, process.read.bytes, process.read.errors) == (5, 500, 1)
    assert process.read.histogram.buckets == ((64, 128, 5),)
    assert process.write.histogram.buckets == ((4096, 8192, 5),) and process.write.bytes == 20480
    assert (process.write.count, process.write.errors) == (5, 0)


def test_summed_lanes_do_not_carry_between_fields():
    """Large 64-bit byte counts and 32-bit call, error and slot counts next to each other,
    summed over two sockets of one process as poll() sums them."""
    big = [2**30 + i for i in range(2 * SLOTS)]
    m = meta(socket.AF_INET, "10.0.0.1", "10.0.0.2", 80, 5555)
    m2 = meta(socket.AF_INET, "10.0.0.1", "10.0.0.3", 80, 5556)
    (process,) = snapshots([
        entry(9, rx=2**62, tx=2**61, errors=(0, 2**31 - 1), hist=big, meta=m),
        entry(9, rx=2**62 - 1, tx=5, errors=(3, 2**31 - 1), hist=big, meta=m2),
    ])["sizes"].processes
    read, write = process.read, process.write
    assert (read.bytes, write.bytes, read.errors, write.errors) == (2**63 - 1, 2**61 + 5, 3, 2**32 - 2)
    assert (read.count, write.count) == (2 * sum(big[:SLOTS]), 2 * sum(big[SLOTS:]))  # each call is in one slot
    assert [n for _, _, n in read.histogram.buckets] == [2 * b for b in big[:SLOTS]]
    assert [n for _, _, n in write.histogram.buckets] == [2 * b for b in big[SLOTS:]]


def test_a_process_is_one_row_per_protocol_named_by_its_last_entry():
    """Per-process sums over many entries in drain order: IPv4 and IPv6 TCP of one process
    are one row, UDP another, and a process that renamed itself (exec) shows its newest name."""
    one_write = [0] * (2 * SLOTS)
    one_write[SLOTS + 7] = 1
    entries = []
    for i in range(60):
        family, local, remote = (socket.AF_INET, "10.0.0.1", "10.0.0.2") if i % 2 else (socket.AF_INET6, "fd00::1", "fd00::2")
        entries.append(entry(5 + i % 3, tx=100, hist=one_write, meta=meta(family, local, remote, 1000 + i, 80,
                                                                              comm=b"old" if i < 50 else b"new%d" % (i % 3))))
    entries.append(entry(6, tx=64, hist=one_write, meta=meta(socket.AF_INET, "0.0.0.0", "0.0.0.0", 53, 0,
                                                             protocol=socket.IPPROTO_UDP, comm=b"last")))
    processes = {(p.pid, p.protocol): p for p in snapshots(entries)["sizes"].processes}
    assert set(processes) == {(5, "tcp"), (6, "tcp"), (7, "tcp"), (6, "udp")}
    assert [processes[(pid, "tcp")].write.bytes for pid in (5, 6, 7)] == [2000, 2000, 2000]
    assert [processes[(pid, "tcp")].write.count for pid in (5, 6, 7)] == [20, 20, 20]
    assert [processes[(pid, "tcp")].comm for pid in (5, 6, 7)] == ["new0", "last", "new2"]
    assert processes[(6, "udp")].comm == "last" and processes[(6, "udp")].write.bytes == 64


def test_owners_of_an_interval_are_found_by_socket_address():
    """Kernel addresses lie above 2^63: they must be compared as uint64."""
    addresses = [0xFFFF8881_0000_0000 + 0x40 * i for i in range(100)]
    shuffled = addresses[37:] + addresses[:37]
    decoder = SocketDecoder()
    snapshots([entry(1000 + i % 5, rx=1, sk=sk, meta=meta(socket.AF_INET, "10.0.0.1", "10.0.0.2", 1 + i, 80,
                                                         comm=b"p%d" % (i % 5)))
               for i, sk in enumerate(shuffled)], decoder=decoder)
    for i, sk in enumerate(shuffled):
        assert decoder.owners.get(sk) == Owner(1000 + i % 5, "p%d" % (i % 5))
    assert decoder.owners.get(addresses[0] - 0x40) is None and decoder.owners.get(addresses[-1] + 0x40) is None
    assert decoder.owners.get(addresses[0] + 1) is None and decoder.owners.sockets.tolist() == addresses


def test_snapshots_split_tcp_rows_from_size_rows_and_unmap_ipv4():
    tcp6_mapped = entry(7, rx=100, tx=50,
                        meta=meta(socket.AF_INET6, "::ffff:127.0.0.1", "::ffff:127.0.0.2", 80, 9))
    udp = entry(8, tx=64, meta=meta(socket.AF_INET, "0.0.0.0", "0.0.0.0", 53, 0,
                                                   protocol=socket.IPPROTO_UDP, comm=b"dns"))
    idle = entry(7, meta=meta(socket.AF_INET, "10.0.0.1", "10.0.0.3", 22, 7))
    snaps = snapshots([tcp6_mapped, udp, idle], dropped=2)
    tcp = snaps["tcp"]
    assert tcp.dropped == 2 and len(tcp.connections) == 1  # the idle socket has no bytes: no row
    row = tcp.connections[0]
    assert (row.family, row.laddr, row.raddr, row.lport, row.rport) == (4, "127.0.0.1", "127.0.0.2", 80, 9)
    assert (row.pid, row.comm, row.rx_bytes, row.tx_bytes) == (7, "curl", 100, 50)
    protocols = {(p.pid, p.protocol) for p in snaps["sizes"].processes}
    assert protocols == {(7, "tcp"), (8, "udp")}


def test_entries_without_metadata_are_skipped():
    snaps = snapshots([entry(1, rx=5)])
    assert snaps["tcp"].connections == () and snaps["sizes"].processes == ()


def test_the_next_interval_decodes_the_same_rows_from_kept_entries():
    """Kept decodes must follow the bytes: new counts make new rows, and a socket address
    reused by another connection (other metadata) is decoded afresh, not taken from the last."""
    decoder = SocketDecoder()
    m = meta(socket.AF_INET, "10.0.0.1", "10.0.0.2", 80, 5555)
    first = snapshots([entry(9, rx=64, meta=m, sk=0xA0)], decoder=decoder)["tcp"].connections[0]
    same = snapshots([entry(9, rx=64, meta=m, sk=0xA0)], decoder=decoder)["tcp"].connections[0]
    assert same == first
    more = snapshots([entry(9, rx=128, meta=m, sk=0xA0)], decoder=decoder)["tcp"].connections[0]
    assert (more.rx_bytes, more.rport) == (128, 5555)
    reused = meta(socket.AF_INET, "10.0.0.1", "10.0.0.9", 81, 6000, comm=b"wget")
    other = snapshots([entry(9, rx=128, meta=reused, sk=0xA0)], decoder=decoder)["tcp"].connections[0]
    assert (other.raddr, other.lport, other.rport, other.comm) == ("10.0.0.9", 81, 6000, "wget")
    assert decoder.owners.get(0xA0).comm == "wget" and decoder.owners.get(0xA8) is None


def _tcp_entries(values, sockets=None):
    """TCP entries whose (rx, tx) are `values`, each its own connection (port i)."""
    return [entry(100 + i % 3, rx=rx, tx=tx, sk=sockets[i] if sockets else None,
                  meta=meta(socket.AF_INET, "10.0.0.1", "10.0.1.1", 1000 + i, 80))
            for i, (rx, tx) in enumerate(values)]


@pytest.mark.parametrize("measure", ["rx", "tx", "total", "pid"])
@pytest.mark.parametrize("reverse", [True, False])
def test_top_is_the_head_of_a_full_sort(measure, reverse):
    """top() builds only the rows it returns; they must be those a sort of every row puts
    first, whatever the ties."""
    import random

    rng = random.Random(7)
    values = [(rng.choice([0, 64, 128, 4096]), rng.choice([0, 64, 128])) for _ in range(500)]
    rows = snapshots(_tcp_entries(values))["tcp"]
    value = {"rx": lambda c: c.rx_bytes, "tx": lambda c: c.tx_bytes,
             "total": lambda c: c.total_bytes, "pid": lambda c: c.pid}[measure]
    top = rows.top(measure, 40, reverse)
    assert len(top) == 40
    everything = sorted(map(value, rows.connections), reverse=reverse)
    assert sorted(map(value, top), reverse=reverse) == everything[:40]
    assert set(top) <= set(rows.connections)


@pytest.mark.parametrize("reverse", [True, False])
@pytest.mark.parametrize("limit", [1, 37, 299, 599])
def test_top_is_a_full_sort_by_measure_then_socket_cut_at_the_limit(limit, reverse):
    """Row for row, whatever the ties at the cut (only the rows that can make it are sorted)."""
    import random

    rng = random.Random(limit)
    values = [(rng.choice([0, 64, 128, 4096]), rng.choice([1, 2])) for _ in range(600)]  # no idle rows: all 600 are rows
    sockets = rng.sample(range(0xFFFF_8880_0000_0000, 0xFFFF_8880_0100_0000, 64), len(values))
    top = snapshots(_tcp_entries(values, sockets))["tcp"].top("total", limit, reverse)
    sign = -1 if reverse else 1
    expected = sorted(range(len(values)), key=lambda i: (sign * sum(values[i]), sockets[i]))[:limit]
    assert [c.lport for c in top] == [1000 + i for i in expected]


def test_a_shorter_top_is_the_head_of_a_longer_one():
    """The TCP pane's top 200 comes from the answer kept for tcp_info's 256: it must be what
    a sort of every row puts first, in order, ties by socket address."""
    values = [(64 * (i % 7), i % 3) for i in range(300)]
    tcp = snapshots(_tcp_entries(values))["tcp"]
    longer = tcp.top("total", 120)
    shorter = tcp.top("total", 50)
    assert shorter == longer[:50]
    assert [c.total_bytes for c in longer] == sorted((c.total_bytes for c in tcp.connections), reverse=True)[:120]
    assert tcp.top("total", 200)[:120] == longer  # a longer one asked later is computed afresh


def test_entries_being_written_are_left_out_of_every_pane():
    m = meta(socket.AF_INET, "10.0.0.1", "10.0.0.2", 80, 5555)
    one_read = [0] * (2 * SLOTS)
    one_read[7] = 1
    written = entry(9, rx=100, hist=one_read, meta=m, sk=0xB0)
    unwritten = entry(9, rx=5, sk=0xB8)  # family 0: its metadata not yet written
    decoder = SocketDecoder()
    snaps = snapshots([unwritten, written, unwritten], decoder=decoder)
    assert [c.rx_bytes for c in snaps["tcp"].connections] == [100]
    (process,) = snaps["sizes"].processes
    assert (process.read.bytes, process.read.count) == (100, 1) and decoder.owners.sockets.tolist() == [0xB0]


def test_top_cuts_ties_by_socket_the_same_way_each_interval():
    sockets = [0xFFFF0000 + 0x100 * i for i in range(50)]
    shuffled = sockets[25:] + sockets[:25]  # the map hands entries back in another order
    first = snapshots(_tcp_entries([(64, 0)] * 50, sockets))["tcp"].top("total", 10)
    second_entries = _tcp_entries([(64, 0)] * 50, sockets)
    by_socket = dict(zip(sockets, second_entries))
    second = snapshots([by_socket[s] for s in shuffled])["tcp"].top("total", 10)
    assert {c.lport for c in first} == {c.lport for c in second} == set(range(1000, 1010))


def test_drained_rows_behave_as_a_tuple_of_rows():
    tcp = snapshots(_tcp_entries([(10, 1), (20, 2), (0, 0), (30, 3)]))["tcp"]
    assert len(tcp.connections) == 3 and tcp.totals() == (60, 6)  # (0, 0): no traffic, no row
    plain = tuple(tcp.connections)
    assert tcp.connections == plain and tcp.connections[1] == plain[1]
    assert tcp.top("rx", 10) == list(plain)  # fewer rows than the limit: all of them


def test_stats_layout_matches_the_c_struct():
    # bytes[2] u64, errors u32[2], hist u32[2*SLOTS], laddr/raddr 16, 4 x u16, comm 16
    assert socket_io.VALUE_SIZE == 16 + 8 + 4 * 2 * SLOTS + 32 + 8 + 16 == 336
    assert socket_io.BODY.size == 16 + 8 + 4 * 2 * SLOTS and socket_io.KEY.size == 16
    assert socket_io.SLOT_SIZE == 336 + 16  # struct sock_slot: the value, then its key (8-byte aligned)


def test_slots_decode_as_the_same_entries_drained_from_the_hash():
    """A slot is an entry's value followed by its key: the same entries either way make the
    same rows, process sums and owners (empty slots, family 0, are left out)."""
    m = meta(socket.AF_INET, "10.0.0.1", "10.0.0.2", 80, 5555)
    hist = [0] * (2 * SLOTS)
    hist[3], hist[SLOTS + 9] = 2, 1
    entries = [entry(7, rx=10, tx=600, hist=hist, meta=m, sk=0xA0), entry(8, rx=5, meta=m, sk=0xA8),
               entry(9, rx=1, sk=0xB0)]  # the last one unwritten
    drained, from_slots = SocketDecoder(), SocketDecoder()
    expected = snapshots(entries, decoder=drained)
    got = from_slots.slot_snapshots(b"".join(value + key for key, value in entries), "tracepoint", 0)
    assert tuple(got["tcp"].connections) == tuple(expected["tcp"].connections) and len(expected["tcp"].connections) == 2
    assert got["sizes"].processes == expected["sizes"].processes
    assert from_slots.owners.sockets.tolist() == drained.owners.sockets.tolist() == [0xA0, 0xA8]


@pytest.mark.parametrize("grouping", ["host", "process", "port"])
def test_host_view_groups_drained_rows_as_it_groups_built_ones(grouping):
    """The host view walks a live snapshot's identities() without building its rows; the
    groups must be those of the same rows as a plain tuple (a recording's)."""
    from nettop.model.frame import Frame
    from nettop.model.tcp import TcpSnapshot
    from nettop.panes.drilldown import build_groups

    entries = [entry(100 + i % 4, rx=64 * i, tx=i,
                     meta=meta(socket.AF_INET, "10.0.0.1", f"10.0.1.{i % 5}", 1000 + i, 80 + i % 3,
                               comm=b"client%d" % (i % 4)))
               for i in range(1, 40)]
    # the same host over a dual-stack socket (IPv4-mapped), and one socket two processes use
    mapped = meta(socket.AF_INET6, "::ffff:10.0.0.1", "::ffff:10.0.1.1", 2000, 80, comm=b"client1")
    shared = meta(socket.AF_INET, "10.0.0.1", "10.0.1.1", 2001, 81, comm=b"forked")
    entries += [entry(101, rx=7, meta=mapped), entry(104, rx=5, meta=shared, sk=0xC0), entry(105, tx=3, meta=shared, sk=0xC0)]
    live = snapshots(entries)["tcp"]
    plain = TcpSnapshot(live.source, live.dropped, tuple(live.connections))
    assert list(live.identities()) == list(plain.identities())
    groups = build_groups(Frame(time=1.0, interval=1.0, panes={"tcp": live}), grouping)
    expected = build_groups(Frame(time=1.0, interval=1.0, panes={"tcp": plain}), grouping)
    assert len(groups) > 1 and groups == expected
    if grouping == "host":  # 10.0.1.1: eight IPv4 connections, the mapped one, the shared one once
        assert groups["10.0.1.1"].connections == 10 and {104, 105} <= set(groups["10.0.1.1"].processes)


def test_without_numpy_the_probe_is_unavailable_with_a_reason(monkeypatch):
    """Checked before anything is compiled or attached: the other probes still run."""
    import sys

    from nettop.errors import ProbeUnavailable
    from nettop.probes.socket_io import SocketIoProbe

    monkeypatch.setitem(sys.modules, "numpy", None)
    monkeypatch.delitem(sys.modules, "nettop.probes.socket_columns")
    monkeypatch.setattr("nettop.probes.socket_io.load_bpf", lambda text: pytest.fail("compiled without numpy"))
    with pytest.raises(ProbeUnavailable, match="numpy is missing"):
        SocketIoProbe().start()
