"""tcp_info: the kernel's TCP state of the busiest sockets, as `ss -tiepm` shows it.

Feeds the per-socket detail view (rtt, cwnd, ssthresh, mss, congestion control,
retransmits, delivery and pacing rate, bytes, queues, socket memory) and records it, so
a replayed recording can drill down too.

Kernel interface: netlink NETLINK_SOCK_DIAG (inet_diag) with the INET_DIAG_INFO
(struct tcp_info), INET_DIAG_CONG and INET_DIAG_SKMEMINFO extensions, parsed with struct
(nettop/probes/sock_diag.py; pyroute2's DiagSocket gives the same answers ~10-30x slower);
one dump per interval for both address families (one walk of the kernel's TCP hash table;
a dump per family where the kernel refuses that), listening and TIME-WAIT sockets excluded
in the kernel. Routes are looked up with pyroute2's IPRoute. No BPF, so no kprobe fallback is needed: sock_diag is in every kernel nettop
runs on (tcp_info's bytes_sent/bytes_retrans need 4.19+; older kernels report 0).
The route to each reported remote host (`ip route get`) names the device whose queues
the detail view shows; answers are cached for ROUTE_TTL seconds.

Which sockets: those whose bytes_acked/bytes_received/total_retrans grew in the
interval (or that are new), busiest first, at most `max_sockets`; the rest are counted
as skipped, and quiet sockets as idle. A reported socket that disappears (closed, or
now TIME-WAIT) is reported once more, marked closed, with the last counters read.

How they are found: with few TCP sockets in the namespace (/proc/net/sockstat's inuse at
most `census_max`), one dump lists them all; with more, the probe
follows the TCP pane (socket_io's snapshot of the same interval) and asks sock_diag for
its `max_sockets` busiest connections, plus those it reported last interval, one exact
lookup each. A socket first looked up then has no baseline: its deltas read 0 for that
interval (the TCP pane has its bytes). Sockets that move data without a send or receive
call (sendfile, kernel sockets) are seen only in the dump mode. Without a TCP pane
(`--probes tcp_info`, or socket_io unavailable) it always dumps.

Overhead, measured here (2 cores, Python 3.11): a dump costs ~5-16 us per connected
socket (sock_diag cannot sort by traffic in the kernel, so the cost grows with every
connected socket: 20,000 local sockets took ~500 ms per poll), an exact lookup ~11 us
per socket whatever the total; so at most `census_max` sockets are dumped (~5-16 ms)
and beyond that at most 256 lookups (~3 ms). All of it in the sampler thread, never the UI
thread. pyroute2's decoder cost ~170 us a socket on the same machine.

Sample (one socket of the snapshot, as the detail view prints it):
  ESTAB 0 0 10.201.1.1:43210 10.201.1.2:5201
    bbr rto:204 rtt:0.08/0.02 mss:1448 pmtu:1500 rcvmss:536 cwnd:52 bytes_sent:2147483
    bytes_acked:2146035 bytes_received:0 delivery_rate 1.1Gbps pacing_rate 1.4Gbps
    retrans:0/12 lost:0 unacked:10 skmem:(r0,rb131072,t0,tb2626560,f0,w14480,o0,bl0,d0)
"""

from __future__ import annotations

import heapq
import operator
import socket
import struct
import time
from collections import OrderedDict
from dataclasses import fields, replace
from typing import Any, Callable, Iterable, Mapping

from nettop.errors import ProbeUnavailable
from nettop.model.sockets import STATE_NAMES, SocketMemory, SocketsSnapshot, TcpSocketInfo
from nettop.probes.addresses import format_endpoint
from nettop.probes.base import EventSource, Probe
from nettop.probes.sock_diag import (
    INET_DIAG_CONG, INET_DIAG_INFO, INET_DIAG_SKMEMINFO, MSG, MSG_COOKIE, TCP_INFO_NAMES, SockDiag, attributes,
    tcp_info_values,
)

DEFAULT_MAX_SOCKETS = 128
#: with more TCP sockets than this in the namespace, look up the busy ones instead of dumping all
DEFAULT_CENSUS_MAX = 1000
SOCKSTAT = "/proc/net/sockstat"
ROUTE_TTL = 10.0
ROUTE_CACHE = 1024
NETLINK = EventSource("netlink", ())
#: a TCP pane row's lookup key (a socket with two owners has two rows), and its traffic
_FIVE_TUPLE = operator.attrgetter("family", "laddr", "lport", "raddr", "rport")
_ROW_BYTES = operator.attrgetter("total_bytes")

#: connected states only: LISTEN has no peer, TIME-WAIT and CLOSE carry no tcp_info
WANTED_STATES = sum(1 << s for s in (1, 2, 3, 4, 5, 8, 9, 11))
#: INET_DIAG_MEMINFO(1), INFO(2), VEGASINFO(3), CONG(4), TOS(5), TCLASS(6), SKMEMINFO(7)
EXTENSIONS = (1 << (2 - 1)) | (1 << (4 - 1)) | (1 << (7 - 1))

_SKMEM = struct.Struct("<9I")

#: TcpSocketInfo's fields read from struct tcp_info, in TcpSocketInfo's order, and the
#: kernel's name of each
FROM_TCP_INFO = (
    ("rto_us", "tcpi_rto"), ("rtt_us", "tcpi_rtt"), ("rttvar_us", "tcpi_rttvar"), ("min_rtt_us", "tcpi_min_rtt"),
    ("mss", "tcpi_snd_mss"), ("rcv_mss", "tcpi_rcv_mss"), ("pmtu", "tcpi_pmtu"), ("cwnd", "tcpi_snd_cwnd"),
    ("ssthresh", "tcpi_snd_ssthresh"), ("unacked", "tcpi_unacked"), ("retrans", "tcpi_retrans"),
    ("total_retrans", "tcpi_total_retrans"), ("lost", "tcpi_lost"), ("bytes_sent", "tcpi_bytes_sent"),
    ("bytes_acked", "tcpi_bytes_acked"), ("bytes_received", "tcpi_bytes_received"),
    ("bytes_retrans", "tcpi_bytes_retrans"), ("segs_out", "tcpi_segs_out"), ("segs_in", "tcpi_segs_in"),
    ("notsent", "tcpi_notsent_bytes"), ("delivery_rate", "tcpi_delivery_rate"), ("pacing_rate", "tcpi_pacing_rate"),
)
#: decode_socket() passes TcpSocketInfo's fields by position: these, FROM_TCP_INFO's, memory
_LEADING = ("family", "laddr", "lport", "raddr", "rport", "state", "cookie", "inode", "uid", "closed",
            "recv_q", "send_q", "congestion")
assert tuple(f.name for f in fields(TcpSocketInfo))[: len(_LEADING) + len(FROM_TCP_INFO) + 1] == (
    *_LEADING, *(mine for mine, _ in FROM_TCP_INFO), "memory")
_PICK_TCP_INFO = operator.itemgetter(*(TCP_INFO_NAMES.index(kernel) for _, kernel in FROM_TCP_INFO))


def parse_skmem(payload: bytes | memoryview) -> SocketMemory | None:
    """INET_DIAG_SKMEMINFO: nine u32 (include/uapi/linux/sock_diag.h); None if shorter."""
    if len(payload) < _SKMEM.size:
        return None
    return SocketMemory(*_SKMEM.unpack_from(payload))


def decode_socket(data: memoryview) -> TcpSocketInfo | None:
    """One sock_diag answer (inet_diag_msg and its attributes) to a TcpSocketInfo, deltas
    zero; None without tcp_info (not a TCP socket in a state that has one).

    Straight from the bytes, ~8 us a socket here: through a dict of every field and
    keywords it took ~15, for ~160 sockets a poll at 10,000 connections (bench/NOTES.md).
    Addresses as socket_io formats them: IPv4-mapped IPv6 reads as IPv4."""
    (family, state, _timer, _retrans, sport, dport, src, dst, _ifindex,
     _expires, rqueue, wqueue, uid, inode) = MSG.unpack_from(data)
    info = None
    congestion = ""
    memory = None
    for kind, payload in attributes(data):
        if kind == INET_DIAG_INFO:
            info = tcp_info_values(payload)
        elif kind == INET_DIAG_CONG:
            congestion = bytes(payload).split(b"\0", 1)[0].decode("ascii", "replace")
        elif kind == INET_DIAG_SKMEMINFO:
            memory = parse_skmem(payload)
    if info is None:
        return None
    version, laddr = format_endpoint(family, src)
    _, raddr = format_endpoint(family, dst)
    return TcpSocketInfo(
        version, laddr, socket.ntohs(sport), raddr, socket.ntohs(dport), STATE_NAMES.get(state, str(state)),
        int.from_bytes(data[MSG_COOKIE], "little"), inode, uid, False, rqueue, wqueue, congestion,
        *_PICK_TCP_INFO(info), memory,
    )


def _counters(info: TcpSocketInfo) -> tuple[int, int, int]:
    return (info.bytes_received, info.bytes_acked, info.total_retrans)


class SocketTracker:
    """Interval deltas, the bounded choice of sockets, and closed-socket detection.

    Pure: fed the sockets listed at each poll, it returns the snapshot's sockets. The
    first poll only sets the baseline (every socket then counts as idle), so counters a
    socket built up before nettop started are not reported as one interval's traffic.
    """

    def __init__(self, max_sockets: int = DEFAULT_MAX_SOCKETS) -> None:
        self.max_sockets = max_sockets
        self._previous: dict[int, tuple[int, int, int]] = {}
        self._reported: OrderedDict[int, TcpSocketInfo] = OrderedDict()
        self._primed = False

    def update(self, listed: Iterable[TcpSocketInfo], complete: bool = True) -> tuple[list[TcpSocketInfo], int, int, int]:
        """(sockets to report, seen, skipped, idle). `complete`: `listed` is every socket (a
        dump), so one without a baseline is new; otherwise (lookups of chosen sockets) it may
        be old, and only its baseline is taken."""
        current: dict[int, TcpSocketInfo] = {}
        active: list[TcpSocketInfo] = []
        for info in listed:
            current[info.cookie] = info
            before = self._previous.get(info.cookie)
            if not self._primed:
                continue
            now = _counters(info)
            if before is None:
                if complete:
                    info = info.with_deltas(now[0], now[1], now[2])
                active.append(info)
            elif now != before:
                info = info.with_deltas(max(0, now[0] - before[0]), max(0, now[1] - before[1]),
                                        max(0, now[2] - before[2]))
                active.append(info)
            current[info.cookie] = info
        self._previous = {cookie: _counters(info) for cookie, info in current.items()}
        self._primed = True

        active.sort(key=lambda s: (s.rx_bytes + s.tx_bytes, s.retrans_delta), reverse=True)
        chosen = active[: self.max_sockets]
        closed = [
            replace(last, closed=True, rx_bytes=0, tx_bytes=0, retrans_delta=0)
            for cookie, last in self._reported.items()
            if cookie not in current
        ]
        for info in closed:
            del self._reported[info.cookie]
        for cookie in list(self._reported):
            if complete:
                self._reported[cookie] = current[cookie]  # quiet ones keep their latest counters
            else:
                del self._reported[cookie]  # not chosen: no longer looked up, so never known closed
        for info in chosen:
            self._reported[info.cookie] = info
            self._reported.move_to_end(info.cookie)
        while len(self._reported) > 8 * self.max_sockets:
            self._reported.popitem(last=False)
        seen = len(current)
        return chosen + closed, seen, len(active) - len(chosen), seen - len(active)

    def reported(self) -> list[TcpSocketInfo]:
        """The sockets reported and not yet closed (the lookup mode asks for them again)."""
        return list(self._reported.values())


class RouteCache:
    """Remote address -> device of its route, looked up at most once per `ttl` seconds."""

    def __init__(self, lookup: Callable[[str], str | None], ttl: float = ROUTE_TTL,
                 capacity: int = ROUTE_CACHE, clock: Callable[[], float] = time.monotonic) -> None:
        self.lookup = lookup
        self.ttl = ttl
        self.capacity = capacity
        self.clock = clock
        self._cache: OrderedDict[str, tuple[float, str | None]] = OrderedDict()
        self.lookups = 0

    def get(self, address: str) -> str | None:
        now = self.clock()
        hit = self._cache.get(address)
        if hit is not None and hit[0] > now:
            return hit[1]
        self.lookups += 1
        ifname = self.lookup(address)
        self._cache[address] = (now + self.ttl, ifname)
        self._cache.move_to_end(address)
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        return ifname


class TcpInfoProbe(Probe):
    name = "tcp_info"
    panes = ("sockets",)
    sources = (NETLINK,)
    follows = ("tcp",)

    def __init__(self, forced_source: str | None = None, max_sockets: int = DEFAULT_MAX_SOCKETS,
                 census_max: int = DEFAULT_CENSUS_MAX, sockstat: str = SOCKSTAT) -> None:
        # --source tracepoint/kprobe forces the BPF probes; netlink is the only way this one works
        super().__init__(None)
        self.tracker = SocketTracker(max_sockets)
        self.census_max = census_max
        self.sockstat = sockstat
        self._tcp: Any = None  # the TCP pane's snapshot of this interval, when there is one
        self._diag = None
        self._ipr = None
        self.routes = RouteCache(self._route_device)

    def start(self) -> None:
        try:
            self._diag = SockDiag(decode_socket)
            self.list_sockets()  # fails here, with a reason, rather than at the first poll
        except OSError as exc:
            self.close()
            raise ProbeUnavailable(f"netlink sock_diag failed: {exc.strerror or exc}") from exc
        try:
            from pyroute2 import IPRoute

            self._ipr = IPRoute()
        except Exception:
            self._ipr = None  # sockets without their route device: the detail says "route via ?"

    def list_sockets(self) -> list[TcpSocketInfo]:
        assert self._diag is not None
        return self._diag.dump_all(WANTED_STATES, EXTENSIONS)

    def follow(self, snapshots: Mapping[str, Any]) -> None:
        self._tcp = snapshots.get("tcp")

    def busiest(self) -> tuple[list[tuple[int, str, int, str, int]], int]:
        """The followed TCP pane's busiest connections, at most max_sockets (family, laddr,
        lport, raddr, rport), and how many more rows it has (the lookup mode's skipped: a
        socket with two owners has two rows; counting distinct sockets instead took a set
        of 16,000 four-tuples, 4-10 ms a poll)."""
        if self._tcp is None:
            return [], 0
        # a socket may have two owners (two rows): twice the bound leaves room for those
        wanted = 2 * self.tracker.max_sockets
        top = heapq.nlargest(wanted, self._tcp.top("total", wanted), key=_ROW_BYTES)
        chosen = list(dict.fromkeys(map(_FIVE_TUPLE, top)))[: self.tracker.max_sockets]
        return chosen, max(0, len(self._tcp.connections) - len(chosen))

    def sockets_in_use(self) -> int | None:
        """TCP sockets in this namespace, listening ones included (None if unreadable)."""
        try:
            with open(self.sockstat) as f:
                for line in f:
                    if line.startswith("TCP:"):
                        fields = line.split()
                        return int(fields[fields.index("inuse") + 1])
        except (OSError, ValueError, IndexError):
            return None
        return None

    def look_up(self, endpoints: Iterable[tuple[int, str, int, str, int]]) -> list[TcpSocketInfo]:
        """tcp_info of the given (family, laddr, lport, raddr, rport), those still open."""
        assert self._diag is not None
        wanted = [(socket.AF_INET if family == 4 else socket.AF_INET6, laddr, lport, raddr, rport)
                  for family, laddr, lport, raddr, rport in dict.fromkeys(endpoints)]
        return [info for info in self._diag.lookup_all(wanted, EXTENSIONS) if info is not None]

    def _route_device(self, address: str) -> str | None:
        if self._ipr is None:
            return None
        try:
            answer = self._ipr.route("get", dst=address)
            oif = answer[0].get_attr("RTA_OIF") if answer else None
        except Exception:
            return None  # unreachable, or the route vanished: the view says "no route"
        if oif is None:
            return None
        try:
            return socket.if_indextoname(oif)
        except OSError:
            return f"if{oif}"

    def poll(self, interval: float) -> Mapping[str, Any]:
        in_use = self.sockets_in_use() if self._tcp is not None else None
        if in_use is None or in_use <= self.census_max:
            sockets, seen, skipped, idle = self.tracker.update(self.list_sockets())
        else:
            chosen, beyond_bound = self.busiest()
            again = [(s.family, s.laddr, s.lport, s.raddr, s.rport) for s in self.tracker.reported()]
            sockets, seen, _, idle = self.tracker.update(self.look_up(chosen + again), complete=False)
            skipped = beyond_bound
        routes = {}
        for remote in dict.fromkeys(s.raddr for s in sockets):
            ifname = self.routes.get(remote)
            if ifname is not None:
                routes[remote] = ifname
        return {"sockets": SocketsSnapshot("netlink", tuple(sockets), routes, seen, skipped, idle)}

    def close(self) -> None:
        for handle in (self._diag, self._ipr):
            if handle is not None:
                try:
                    handle.close()
                except Exception:
                    pass
        self._diag = None
        self._ipr = None
