"""A minimal NETLINK_SOCK_DIAG client for TCP: dumps and exact lookups, parsed with struct.

pyroute2's DiagSocket decodes every attribute of every socket in pure Python (~60-170 us
a socket measured here). This one hands each answer's bytes to the caller's decoder
(tcp_info's decode_socket(), which reads only what it shows: ~8 us a socket), and the
structs below say where things are; tests check the result against pyroute2's decoding.
The netlink framing is nettop/probes/netlink.py's, shared with the qdisc probe's dump.

Layouts: include/uapi/linux/inet_diag.h (inet_diag_req_v2, inet_diag_msg) and
include/uapi/linux/tcp.h (struct tcp_info). A shorter tcp_info from an older kernel is
zero-padded: fields it does not have read as 0.
"""

from __future__ import annotations

import errno
import socket
import struct
from typing import Any, Callable, Iterator, Sequence

from nettop.probes import netlink
from nettop.probes.netlink import NLM_F_DUMP, NLM_F_REQUEST, Refused, message

NETLINK_SOCK_DIAG = 4
TCPDIAG_GETSOCK = 18  # inet_diag's first request type: still answered, for both families at once
SOCK_DIAG_BY_FAMILY = 20

INET_DIAG_INFO = 2
INET_DIAG_CONG = 4
INET_DIAG_SKMEMINFO = 7

_REQ = struct.Struct("=BBBxI48x")  # family, protocol, ext, states, an empty inet_diag_sockid
#: struct inet_diag_req (TCPDIAG_GETSOCK): family, address lengths, ext, an empty sockid, states, dbs
_TCPDIAG_REQ = struct.Struct("=BBBB48xII")
#: family, protocol, ext, states, then inet_diag_sockid: ports (big-endian), src, dst, if, cookie
_EXACT_REQ = struct.Struct("=BBBxI2H16s16sI8s")
NO_COOKIE = b"\xff" * 8  # INET_DIAG_NOCOOKIE in both halves: match on the addresses alone
#: inet_diag_msg: family, state, timer, retrans, ports (big-endian), src, dst, ifindex,
#: (the cookie, read apart), expires, rqueue, wqueue, uid, inode; then its attributes
MSG = struct.Struct("=BBBB2H16s16sI8xIIIII")
MSG_COOKIE = slice(44, 52)
#: exact requests per send: their answers wait in the receive buffer until read, ~1.3 KB of
#: it each (166 of 456-byte answers fitted the default 208 KB here), so 64 leave room
LOOKUP_BATCH = 64

#: struct tcp_info fields nettop reads: (name, struct code), in layout order
TCP_INFO_FIELDS = (
    ("tcpi_state", "B"), ("tcpi_ca_state", "B"), ("tcpi_retransmits", "B"), ("tcpi_probes", "B"),
    ("tcpi_backoff", "B"), ("tcpi_options", "B"), ("tcpi_wscale", "B"), ("tcpi_flags", "B"),
    ("tcpi_rto", "I"), ("tcpi_ato", "I"), ("tcpi_snd_mss", "I"), ("tcpi_rcv_mss", "I"),
    ("tcpi_unacked", "I"), ("tcpi_sacked", "I"), ("tcpi_lost", "I"), ("tcpi_retrans", "I"), ("tcpi_fackets", "I"),
    ("tcpi_last_data_sent", "I"), ("tcpi_last_ack_sent", "I"), ("tcpi_last_data_recv", "I"),
    ("tcpi_last_ack_recv", "I"),
    ("tcpi_pmtu", "I"), ("tcpi_rcv_ssthresh", "I"), ("tcpi_rtt", "I"), ("tcpi_rttvar", "I"),
    ("tcpi_snd_ssthresh", "I"), ("tcpi_snd_cwnd", "I"), ("tcpi_advmss", "I"), ("tcpi_reordering", "I"),
    ("tcpi_rcv_rtt", "I"), ("tcpi_rcv_space", "I"), ("tcpi_total_retrans", "I"),
    ("tcpi_pacing_rate", "Q"), ("tcpi_max_pacing_rate", "Q"), ("tcpi_bytes_acked", "Q"),
    ("tcpi_bytes_received", "Q"), ("tcpi_segs_out", "I"), ("tcpi_segs_in", "I"),
    ("tcpi_notsent_bytes", "I"), ("tcpi_min_rtt", "I"), ("tcpi_data_segs_in", "I"), ("tcpi_data_segs_out", "I"),
    ("tcpi_delivery_rate", "Q"), ("tcpi_busy_time", "Q"), ("tcpi_rwnd_limited", "Q"), ("tcpi_sndbuf_limited", "Q"),
    ("tcpi_delivered", "I"), ("tcpi_delivered_ce", "I"), ("tcpi_bytes_sent", "Q"), ("tcpi_bytes_retrans", "Q"),
)
TCP_INFO = struct.Struct("=" + "".join(code for _, code in TCP_INFO_FIELDS))
TCP_INFO_NAMES = tuple(name for name, _ in TCP_INFO_FIELDS)


def request(family: int, states: int, extensions: int, sequence: int = 1) -> bytes:
    body = _REQ.pack(family, socket.IPPROTO_TCP, extensions, states)
    return message(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, sequence, body)


def both_families_request(states: int, extensions: int, sequence: int = 1) -> bytes:
    """A TCP dump of IPv4 and IPv6 sockets in one: the kernel answers the old request type
    with the family unset (inet_diag_dump_compat), so it walks its TCP hash table once."""
    body = _TCPDIAG_REQ.pack(socket.AF_INET, 0, 0, extensions, states, 0)
    return message(TCPDIAG_GETSOCK, NLM_F_REQUEST | NLM_F_DUMP, sequence, body)


def exact_request(family: int, src: str, sport: int, dst: str, dport: int, extensions: int,
                  sequence: int = 1) -> bytes:
    """A request for one socket by its four-tuple (no dump: the kernel looks it up in its hash)."""
    body = _EXACT_REQ.pack(family, socket.IPPROTO_TCP, extensions, 0xFFFFFFFF, socket.htons(sport),
                           socket.htons(dport), _raw_address(family, src), _raw_address(family, dst), 0, NO_COOKIE)
    return message(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, sequence, body)


def _raw_address(family: int, text: str) -> bytes:
    return socket.inet_pton(family, text).ljust(16, b"\0")


def tcp_info_values(payload: memoryview) -> tuple[int, ...]:
    """Every TCP_INFO_FIELDS value of an INET_DIAG_INFO payload, in layout order."""
    if len(payload) >= TCP_INFO.size:
        return TCP_INFO.unpack_from(payload)
    return TCP_INFO.unpack(bytes(payload).ljust(TCP_INFO.size, b"\0"))


def attributes(data: memoryview) -> Iterator[tuple[int, memoryview]]:
    """(type, payload) of each attribute after an inet_diag_msg."""
    return netlink.attributes(data, MSG.size)


class SockDiag:
    """One netlink socket. Each answer is `decode(body)`, a memoryview valid only during
    the call; a None from it is dropped from a dump, and is a lookup's "not found"."""

    def __init__(self, decode: Callable[[memoryview], Any]) -> None:
        self._decode = decode
        self.netlink = netlink.NetlinkSocket(NETLINK_SOCK_DIAG, "sock_diag")
        self.one_walk = True  # until the kernel refuses TCPDIAG_GETSOCK: then a dump per family

    def dump(self, family: int, states: int, extensions: int) -> Iterator[Any]:
        yield from self._answers(request(family, states, extensions, self.netlink.next_sequence()))

    def dump_all(self, states: int, extensions: int) -> list[Any]:
        """Every TCP socket in the given states, IPv4 and IPv6. One walk of the kernel's TCP
        hash table where a dump per family walks it twice (idle here: 1.1 ms against 2.3;
        the walk's cost is the table's size, not the sockets in it)."""
        if self.one_walk:
            try:
                return list(self._answers(both_families_request(states, extensions, self.netlink.next_sequence())))
            except Refused:
                self.one_walk = False  # the kernel would not: a dump per family from now on
        return [answer for family in (socket.AF_INET, socket.AF_INET6) for answer in self.dump(family, states, extensions)]

    def lookup_all(self, wanted: Sequence[tuple[int, str, int, str, int]], extensions: int,
                   batch: int = LOOKUP_BATCH) -> list[Any]:
        """Sockets by four-tuple (family, src, sport, dst, dport), in this network namespace:
        each one's answer, or None (no such socket, or an address sock_diag cannot take).

        `batch` requests go in one send, so a poll's ~130 lookups cost a few sends and one
        receive per answer, not a send and a receive each."""
        answers: list[Any] = [None] * len(wanted)
        for start in range(0, len(wanted), batch):
            first = self.netlink.sequence + 1
            requests = []
            for index in range(start, min(start + batch, len(wanted))):
                family, src, sport, dst, dport = wanted[index]
                sequence = self.netlink.next_sequence()
                try:
                    requests.append(exact_request(family, src, sport, dst, dport, extensions, sequence))
                except (OSError, ValueError):
                    pass  # not an address of its family: no socket to ask for
            if requests:
                self.netlink.sock.send(b"".join(requests))
                self._collect(first, answers, start)
        return answers

    def _collect(self, first: int, answers: list, start: int) -> None:
        """The answers to requests numbered first.. into answers[start + n].

        The kernel answers every request of a send before the send returns, each with the
        socket or an error (ENOENT: it is gone), so what is queued then is all there will
        be: read without waiting until nothing is left. Answers the receive buffer had no
        room for are lost (ENOBUFS, reported before the queued ones; 166 of 300 fitted the
        default buffer here): those sockets wait for the next interval, as do all of a
        batch whose receive fails otherwise."""
        while True:
            try:
                messages = self.netlink.received(socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    continue
                return
            for kind, sequence, body in messages:
                if kind == SOCK_DIAG_BY_FAMILY and first <= sequence <= self.netlink.sequence:
                    answers[start + sequence - first] = self._decode(body)

    def _answers(self, dump_request: bytes) -> Iterator[Any]:
        return self.netlink.dump(dump_request, (SOCK_DIAG_BY_FAMILY, TCPDIAG_GETSOCK), self._decode)

    def close(self) -> None:
        self.netlink.close()
