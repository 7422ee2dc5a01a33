"""tcp_info probe logic without netlink: parsing, deltas, the bound, closed sockets, routes."""

from __future__ import annotations

import socket
import struct
from dataclasses import replace

import pytest

from nettop.model.sockets import SocketMemory, STATE_NAMES, TcpSocketInfo
from nettop.probes.sock_diag import TCP_INFO_FIELDS
from nettop.probes.addresses import format_endpoint
from nettop.probes.tcp_info import FROM_TCP_INFO, RouteCache, SocketTracker, decode_socket


def answer(src="10.0.0.1", dst="10.0.0.2", sport=40000, dport=443, state=1, cookie=7, family=socket.AF_INET,
           info=True, skmem=(0, 131072, 0, 87040, 0, 2896, 0, 0, 1), **fields) -> memoryview:
    """A sock_diag answer's bytes as the kernel lays them out: inet_diag_msg and the attribute
    headers packed here from the uapi layouts, apart from the decoder's structs; struct
    tcp_info from TCP_INFO_FIELDS, which the root test checks against pyroute2's decoding."""
    tcp_info = {"tcpi_rtt": 812, "tcpi_rttvar": 120, "tcpi_snd_cwnd": 42, "tcpi_snd_ssthresh": 30,
                "tcpi_snd_mss": 1448, "tcpi_bytes_acked": 5000, "tcpi_bytes_received": 2000,
                "tcpi_total_retrans": 3, "tcpi_pacing_rate": 1_000_000, "tcpi_bytes_retrans": 77}
    tcp_info.update(fields)
    raw = [socket.inet_pton(family, a).ljust(16, b"\0") for a in (src, dst)]
    message = struct.pack("<BBBB", family, state, 0, 0) + struct.pack(">HH", sport, dport) + raw[0] + raw[1]
    message += struct.pack("<I", 0) + struct.pack("<Q", cookie) + struct.pack("<IIIII", 0, 5, 6, 0, 99)

    def attribute(kind, payload):
        return struct.pack("<HH", 4 + len(payload), kind) + payload + b"\0" * (-len(payload) % 4)

    if info:
        message += attribute(2, struct.pack("=" + "".join(code for _, code in TCP_INFO_FIELDS),
                                            *(tcp_info.get(name, 0) for name, _ in TCP_INFO_FIELDS)))
    message += attribute(4, b"cubic\0")
    if skmem is not None:
        message += attribute(7, struct.pack("<%dI" % len(skmem), *skmem))
    return memoryview(message)


def test_decodes_a_sock_diag_answer():
    info = decode_socket(answer())
    assert (info.laddr, info.lport, info.raddr, info.rport, info.state) == ("10.0.0.1", 40000, "10.0.0.2", 443, "ESTAB")
    assert (info.rtt_us, info.cwnd, info.ssthresh, info.mss, info.congestion) == (812, 42, 30, 1448, "cubic")
    assert (info.bytes_acked, info.bytes_received, info.total_retrans, info.bytes_retrans) == (5000, 2000, 3, 77)
    assert (info.pacing_rate, info.cookie, info.inode) == (1_000_000, 7, 99)
    assert (info.recv_q, info.send_q, info.memory.rcvbuf, info.memory.sndbuf, info.memory.drops) == (5, 6, 131072, 87040, 1)


def test_ipv4_mapped_and_ipv6_addresses():
    mapped = decode_socket(answer(src="::ffff:127.0.0.1", dst="::ffff:127.0.0.2", family=socket.AF_INET6))
    assert (mapped.family, mapped.laddr, mapped.raddr) == (4, "127.0.0.1", "127.0.0.2")
    v6 = decode_socket(answer(src="fd00::1", dst="fd00:0::2", family=socket.AF_INET6))
    assert (v6.family, v6.raddr) == (6, "fd00::2")


def test_no_tcp_info_no_socket_and_short_skmem_ignored():
    assert decode_socket(answer(info=False)) is None
    assert decode_socket(answer(skmem=(1, 2))).memory is None


def test_a_shorter_tcp_info_from_an_older_kernel_reads_its_missing_fields_as_zero():
    data = bytearray(answer(skmem=None, tcpi_bytes_retrans=77, tcpi_bytes_sent=9))
    start = data.index(struct.pack("<HH", 4 + struct.calcsize("=" + "".join(c for _, c in TCP_INFO_FIELDS)), 2))
    cut = 104  # struct tcp_info up to tcpi_total_retrans, as Linux 2.6 had it
    data[start:start + 2] = struct.pack("<H", 4 + cut)
    del data[start + 4 + cut:]
    info = decode_socket(memoryview(bytes(data)))
    assert (info.rtt_us, info.cwnd, info.bytes_acked, info.bytes_sent, info.bytes_retrans) == (812, 42, 0, 0, 0)


def test_with_deltas_is_replace():
    info = decode_socket(answer())
    assert info.with_deltas(1, 2, 3) == replace(info, rx_bytes=1, tx_bytes=2, retrans_delta=3)


def sock(cookie, received=0, acked=0, retrans=0, lport=None):
    return TcpSocketInfo(4, "10.0.0.1", lport or 40000 + cookie, "10.0.0.2", 443, "ESTAB", cookie=cookie,
                         bytes_received=received, bytes_acked=acked, total_retrans=retrans)


def test_first_poll_is_a_baseline_then_deltas():
    tracker = SocketTracker(max_sockets=10)
    reported, seen, skipped, idle = tracker.update([sock(1, 1000, 5000)])
    assert reported == [] and (seen, skipped, idle) == (1, 0, 1)  # lifetime counters are not one interval's
    reported, *_ = tracker.update([sock(1, 1500, 9000, retrans=2), sock(2, 10, 20)])
    by_cookie = {s.cookie: s for s in reported}
    assert (by_cookie[1].rx_bytes, by_cookie[1].tx_bytes, by_cookie[1].retrans_delta) == (500, 4000, 2)
    assert (by_cookie[2].rx_bytes, by_cookie[2].tx_bytes) == (10, 20)  # new socket: all of it is new
    reported, seen, skipped, idle = tracker.update([sock(1, 1500, 9000, retrans=2), sock(2, 10, 20)])
    assert reported == [] and idle == 2


def test_bound_keeps_the_busiest_and_counts_the_rest():
    tracker = SocketTracker(max_sockets=2)
    tracker.update([sock(c) for c in range(1, 6)])
    reported, seen, skipped, idle = tracker.update([sock(c, acked=c * 100) for c in range(1, 6)])
    assert [s.cookie for s in reported] == [5, 4] and (seen, skipped, idle) == (5, 3, 0)


def test_closed_socket_reported_once_with_its_last_counters():
    tracker = SocketTracker()
    tracker.update([sock(1), sock(2)])
    tracker.update([sock(1, acked=100), sock(2, acked=50)])
    tracker.update([sock(1, acked=100), sock(2, acked=70)])  # 1 quiet: its latest counters are kept
    reported, *_ = tracker.update([sock(2, acked=90)])
    closed = [s for s in reported if s.closed]
    assert [(s.cookie, s.bytes_acked, s.tx_bytes) for s in closed] == [(1, 100, 0)]
    reported, *_ = tracker.update([sock(2, acked=90)])
    assert not any(s.closed for s in reported)


def test_lookup_mode_takes_a_baseline_for_sockets_it_did_not_follow_before():
    tracker = SocketTracker(max_sockets=10)
    tracker.update([sock(1, 1000, 5000)])
    reported, seen, skipped, idle = tracker.update([sock(1, 1500, 9000), sock(2, 10_000, 20_000)], complete=False)
    by_cookie = {s.cookie: s for s in reported}
    assert (by_cookie[1].rx_bytes, by_cookie[1].tx_bytes) == (500, 4000)
    # socket 2 may be old: its lifetime counters are not this interval's, but its tcp_info is reported
    assert (by_cookie[2].rx_bytes, by_cookie[2].tx_bytes, by_cookie[2].bytes_acked) == (0, 0, 20_000)
    reported, *_ = tracker.update([sock(1, 1500, 9000), sock(2, 10_000, 26_000)], complete=False)
    assert [(s.cookie, s.tx_bytes, s.closed) for s in reported] == [(2, 6000, False)]
    assert [s.cookie for s in tracker.reported()] == [2]  # 1 went quiet: no longer followed
    reported, *_ = tracker.update([], complete=False)  # 2 was asked for again and not found
    assert [(s.cookie, s.closed) for s in reported] == [(2, True)]


def test_following_the_tcp_pane_picks_its_busiest_connections():
    from nettop.model.tcp import TcpConnection, TcpSnapshot
    from nettop.probes.tcp_info import TcpInfoProbe

    probe = TcpInfoProbe(max_sockets=2)
    conns = [TcpConnection(10 + i, "app", 4, "10.0.0.1", 40000 + i, "10.0.0.2", 443, i * 100, 0) for i in range(5)]
    conns.append(TcpConnection(99, "fork", 4, "10.0.0.1", 40004, "10.0.0.2", 443, 1, 0))  # a second owner of 40004
    probe.follow({"tcp": TcpSnapshot("raw_tracepoint", 0, tuple(conns))})
    chosen, beyond_bound = probe.busiest()
    assert chosen == [(4, "10.0.0.1", 40004, "10.0.0.2", 443), (4, "10.0.0.1", 40003, "10.0.0.2", 443)]
    assert beyond_bound == 4  # six rows, two sockets looked up (a second owner's row counts as a row)
    probe.follow({})
    assert probe._tcp is None  # no TCP pane: poll() dumps


def test_sockstat_inuse_is_read(tmp_path):
    from nettop.probes.tcp_info import TcpInfoProbe

    stat = tmp_path / "sockstat"
    stat.write_text("sockets: used 20123\nTCP: inuse 20006 orphan 0 tw 3 alloc 20010 mem 5\nUDP: inuse 3 mem 1\n")
    assert TcpInfoProbe(sockstat=str(stat)).sockets_in_use() == 20006
    stat.write_text("garbage\n")
    assert TcpInfoProbe(sockstat=str(stat)).sockets_in_use() is None
    assert TcpInfoProbe(sockstat=str(tmp_path / "absent")).sockets_in_use() is None


def test_route_cache_looks_up_once_per_ttl():
    now = [0.0]
    asked = []
    cache = RouteCache(lambda a: asked.append(a) or "eth0", ttl=10, capacity=2, clock=lambda: now[0])
    assert cache.get("10.0.0.2") == "eth0" and cache.get("10.0.0.2") == "eth0"
    now[0] = 11
    cache.get("10.0.0.2")
    cache.get("10.0.0.3")
    cache.get("10.0.0.4")  # evicts the least recent
    assert asked == ["10.0.0.2", "10.0.0.2", "10.0.0.3", "10.0.0.4"] and len(cache._cache) == 2


@pytest.mark.root
def test_probe_reads_a_loopback_connection():
    from nettop.probes.tcp_info import TcpInfoProbe

    probe = TcpInfoProbe()
    probe.select()
    probe.start()
    server = socket.create_server(("127.0.0.1", 0))
    try:
        probe.poll(1.0)
        client = socket.create_connection(server.getsockname())
        peer, _ = server.accept()
        client.sendall(b"x" * 100_000)
        got = 0
        while got < 100_000:
            got += len(peer.recv(1 << 20))
        snapshot = probe.poll(1.0)["sockets"]
        ours = {s.lport: s for s in snapshot.sockets if {s.lport, s.rport} == {client.getsockname()[1], server.getsockname()[1]}}
        sender = ours[client.getsockname()[1]]
        receiver = ours[server.getsockname()[1]]
        assert sender.tx_bytes >= 100_000 and receiver.rx_bytes == 100_000
        assert snapshot.routes["127.0.0.1"] == "lo"
        client.close()
        peer.close()
        closed = {s.lport for s in probe.poll(1.0)["sockets"].sockets if s.closed}
        assert {sender.lport, receiver.lport} <= closed
    finally:
        server.close()
        probe.close()


def _both_families_connected():
    """A dual-stack listener, a client over IPv4 and one over IPv6, and the accepted ends
    (AF_INET6 both, the IPv4 one v4-mapped)."""
    server = socket.create_server(("::", 0), family=socket.AF_INET6, dualstack_ipv6=True)
    ends = [socket.create_connection((address, server.getsockname()[1])) for address in ("127.0.0.1", "::1")]
    return server, ends, [server.accept()[0] for _ in ends]


def pyroute2_info(message) -> TcpSocketInfo | None:
    """The reference: a TcpSocketInfo from pyroute2's decoding of the same answer."""
    attrs = dict(message["attrs"])
    info = attrs.get("INET_DIAG_INFO")
    if info is None:
        return None
    skmem = attrs.get("INET_DIAG_SKMEMINFO")
    raw = bytes.fromhex(skmem.replace(":", "")) if isinstance(skmem, str) else bytes(skmem)
    ends = [socket.inet_pton(message["idiag_family"], message[key]).ljust(16, b"\0") for key in ("idiag_src", "idiag_dst")]
    family, laddr = format_endpoint(message["idiag_family"], ends[0])
    _, raddr = format_endpoint(message["idiag_family"], ends[1])
    return TcpSocketInfo(
        family, laddr, message["idiag_sport"], raddr, message["idiag_dport"], STATE_NAMES[message["idiag_state"]],
        cookie=message["idiag_cookie"], inode=message["idiag_inode"], uid=message["idiag_uid"],
        recv_q=message["idiag_rqueue"], send_q=message["idiag_wqueue"], congestion=attrs.get("INET_DIAG_CONG") or "",
        memory=SocketMemory(*struct.unpack_from("<9I", raw)),
        **{mine: int(info.get(kernel) or 0) for mine, kernel in FROM_TCP_INFO},
    )


@pytest.mark.root
def test_own_sock_diag_decoder_agrees_with_pyroute2():
    """The struct decoder against pyroute2's, field by field, on quiet sockets of both families."""
    from pyroute2 import DiagSocket

    from nettop.probes.sock_diag import SockDiag
    from nettop.probes.tcp_info import EXTENSIONS, WANTED_STATES

    server, ends, peers = _both_families_connected()
    port = server.getsockname()[1]
    ends[0].sendall(b"x" * 5000)
    peers[0].recv(10000)
    ours, reference = SockDiag(decode_socket), DiagSocket()
    reference.bind()
    checked = 0
    try:
        for family in (socket.AF_INET, socket.AF_INET6):
            mine = {i.cookie: i for i in ours.dump(family, WANTED_STATES, EXTENSIONS)}
            theirs = {i.cookie: i for i in (pyroute2_info(m) for m in
                                            reference.get_sock_stats(family=family, states=WANTED_STATES,
                                                                     extensions=EXTENSIONS)) if i}
            for cookie, info in mine.items():
                if port in (info.lport, info.rport):
                    assert info == theirs[cookie]
                    checked += 1
        assert checked == 4  # both ends of both connections (accepted ones are AF_INET6, v4-mapped)
    finally:
        ours.close()
        reference.close()
        for s in (*ends, *peers, server):
            s.close()


@pytest.mark.root
@pytest.mark.parametrize("refused", [False, True])
def test_one_dump_lists_both_families_or_falls_back_to_one_per_family(monkeypatch, refused):
    """dump_all() asks once for IPv4 and IPv6 (TCPDIAG_GETSOCK) and finds what a dump per
    family finds; a kernel that refuses that request gets a dump per family from then on."""
    from nettop.probes import sock_diag
    from nettop.probes.tcp_info import EXTENSIONS, WANTED_STATES

    if refused:  # a request type the kernel rejects, as one without the old interface would
        monkeypatch.setattr(sock_diag, "TCPDIAG_GETSOCK", 17)
    server, ends, peers = _both_families_connected()
    port = server.getsockname()[1]
    diag = sock_diag.SockDiag(decode_socket)
    try:
        ours = {s.cookie for s in diag.dump_all(WANTED_STATES, EXTENSIONS) if port in (s.lport, s.rport)}
        per_family = {s.cookie for family in (socket.AF_INET, socket.AF_INET6)
                      for s in diag.dump(family, WANTED_STATES, EXTENSIONS) if port in (s.lport, s.rport)}
        assert len(ours) == 4 and ours == per_family  # both ends of a v4 and a v6 connection
        assert diag.one_walk is not refused
        assert {s.cookie for s in diag.dump_all(WANTED_STATES, EXTENSIONS) if port in (s.lport, s.rport)} == ours
    finally:
        diag.close()
        for s in (*ends, *peers, server):
            s.close()


@pytest.mark.root
def test_lookup_mode_follows_the_tcp_pane_on_real_sockets():
    """Beyond census_max sockets the probe asks sock_diag for the followed connections only."""
    from nettop.model.tcp import TcpConnection, TcpSnapshot
    from nettop.probes.tcp_info import TcpInfoProbe

    probe = TcpInfoProbe(census_max=0)  # always beyond: lookup mode whenever a TCP pane is followed
    probe.select()
    probe.start()
    server = socket.create_server(("127.0.0.1", 0))
    quiet_client = socket.create_connection(server.getsockname())
    quiet_peer, _ = server.accept()
    client = socket.create_connection(server.getsockname())
    peer, _ = server.accept()

    def follow(*conns):
        rows = [TcpConnection(1, "t", 4, "127.0.0.1", c.getsockname()[1], "127.0.0.1", c.getpeername()[1], 0, n)
                for c, n in conns]
        probe.follow({"tcp": TcpSnapshot("raw_tracepoint", 0, tuple(rows))})

    try:
        follow((client, 1))
        probe.poll(1.0)  # the tracker's baseline
        follow((client, 1))
        first = probe.poll(1.0)["sockets"]
        assert first.sockets == () and (first.seen, first.idle) == (1, 1)  # only the followed one asked: quiet
        client.sendall(b"x" * 50_000)
        got = 0
        while got < 50_000:
            got += len(peer.recv(1 << 20))
        follow((client, 50_000), (quiet_client, 0))
        second = {s.lport: s for s in probe.poll(1.0)["sockets"].sockets}
        assert second[client.getsockname()[1]].tx_bytes == 50_000
        assert second[quiet_client.getsockname()[1]].tx_bytes == 0  # first looked up: a baseline only
        lport = client.getsockname()[1]
        client.close()
        peer.close()
        follow()
        closed = [s for s in probe.poll(1.0)["sockets"].sockets if s.closed]
        assert lport in {s.lport for s in closed}  # asked again because reported last time: gone
    finally:
        for s in (quiet_client, quiet_peer, server):
            s.close()
        probe.close()


@pytest.mark.root
def test_lookups_in_batches_answer_each_socket_in_order():
    """Requests sent several to a send: each answer lands at its own request's place, a
    closed or unknown socket and an address of the wrong family are None, across batches."""
    from nettop.probes.sock_diag import SockDiag
    from nettop.probes.tcp_info import EXTENSIONS

    server = socket.create_server(("127.0.0.1", 0))
    clients = [socket.create_connection(server.getsockname()) for _ in range(3)]
    peers = [server.accept()[0] for _ in clients]
    diag = SockDiag(decode_socket)
    try:
        ends = [(socket.AF_INET, *c.getsockname(), *c.getpeername()) for c in clients]
        gone = (socket.AF_INET, "127.0.0.1", 1, "127.0.0.1", 2)
        wrong = (socket.AF_INET, "::1", 5, "::1", 6)
        wanted = [ends[0], gone, ends[1], wrong, ends[2], ends[0]]
        for batch in (1, 2, 64):
            answers = diag.lookup_all(wanted, EXTENSIONS, batch=batch)
            found = [None if a is None else (a.lport, a.rport) for a in answers]
            assert found == [ends[0][2:5:2], None, ends[1][2:5:2], None, ends[2][2:5:2], ends[0][2:5:2]]
            assert all(a.state == "ESTAB" for a in answers if a is not None)
    finally:
        diag.close()
        for s in (*clients, *peers, server):
            s.close()


@pytest.mark.root
def test_answers_with_no_room_are_lost_without_a_hang_and_the_next_lookups_get_theirs():
    """A receive buffer too small for a batch's answers: the kernel drops some (ENOBUFS).
    The lookups return what came, each in its place, and the buffer is emptied, so the next
    lookups are answered in full."""
    from nettop.probes.sock_diag import SockDiag
    from nettop.probes.tcp_info import EXTENSIONS

    server = socket.create_server(("127.0.0.1", 0))
    clients = [socket.create_connection(server.getsockname()) for _ in range(40)]
    peers = [server.accept()[0] for _ in clients]
    diag = SockDiag(decode_socket)
    diag.netlink.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the kernel doubles it: a few answers
    try:
        wanted = [(socket.AF_INET, *c.getsockname(), *c.getpeername()) for c in clients]
        answers = diag.lookup_all(wanted, EXTENSIONS, batch=len(wanted))
        came = [(i, a) for i, a in enumerate(answers) if a is not None]
        assert 0 < len(came) < len(wanted)
        assert all((a.lport, a.rport) == (wanted[i][2], wanted[i][4]) for i, a in came)
        again = diag.lookup_all(wanted, EXTENSIONS, batch=1)
        assert [(a.lport, a.rport) for a in again] == [(w[2], w[4]) for w in wanted]
    finally:
        diag.close()
        for s in (*clients, *peers, server):
            s.close()
