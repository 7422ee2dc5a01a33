"""The kernel's TCP state of individual sockets (`ss -tiepm`), for the per-socket detail view.

One snapshot per interval from the tcp_info probe (netlink sock_diag): the sockets that
had traffic in the interval (bounded), the ones that closed since the last interval with
their final counters, and the device that carries the route to each remote host.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

#: ss's names for the kernel's TCP states (include/net/tcp_states.h order, from 1)
STATE_NAMES = {
    1: "ESTAB",
    2: "SYN-SENT",
    3: "SYN-RECV",
    4: "FIN-WAIT-1",
    5: "FIN-WAIT-2",
    6: "TIME-WAIT",
    7: "UNCONN",
    8: "CLOSE-WAIT",
    9: "LAST-ACK",
    10: "LISTEN",
    11: "CLOSING",
    12: "NEW-SYN-RECV",
}

#: tcp_info's "no slow start threshold yet"; ss leaves ssthresh out then
INFINITE_SSTHRESH = 0x7FFFFFFF


@dataclass(frozen=True, slots=True)
class SocketMemory:
    """INET_DIAG_SKMEMINFO, printed by `ss -m` as skmem:(r,rb,t,tb,f,w,o,bl,d)."""

    rmem_alloc: int = 0
    rcvbuf: int = 0
    wmem_alloc: int = 0
    sndbuf: int = 0
    fwd_alloc: int = 0
    wmem_queued: int = 0
    optmem: int = 0
    backlog: int = 0
    drops: int = 0

    def to_record(self) -> list[int]:
        return [getattr(self, f.name) for f in fields(self)]

    @classmethod
    def from_record(cls, data: list[int]) -> SocketMemory:
        return cls(*(int(v) for v in data))

    def ss_text(self) -> str:
        return (
            f"skmem:(r{self.rmem_alloc},rb{self.rcvbuf},t{self.wmem_alloc},tb{self.sndbuf},"
            f"f{self.fwd_alloc},w{self.wmem_queued},o{self.optmem},bl{self.backlog},d{self.drops})"
        )


@dataclass(frozen=True, slots=True)
class TcpSocketInfo:
    """One socket's tcp_info at the end of the interval, plus its deltas over the interval."""

    family: int  # 4 or 6; IPv4-mapped IPv6 sockets are reported as 4
    laddr: str
    lport: int
    raddr: str
    rport: int
    state: str  # ss's name: "ESTAB", "FIN-WAIT-1", ...
    cookie: int = 0  # the kernel's socket cookie: identity while the socket lives
    inode: int = 0
    uid: int = 0
    closed: bool = False  # gone since the last interval; counters are the last ones read
    recv_q: int = 0  # bytes not yet read by the application
    send_q: int = 0  # bytes not yet acknowledged by the peer
    congestion: str = ""
    rto_us: int = 0
    rtt_us: int = 0
    rttvar_us: int = 0
    min_rtt_us: int = 0
    mss: int = 0
    rcv_mss: int = 0
    pmtu: int = 0
    cwnd: int = 0
    ssthresh: int = INFINITE_SSTHRESH
    unacked: int = 0
    retrans: int = 0  # segments retransmitted and not yet acknowledged
    total_retrans: int = 0  # over the socket's life
    lost: int = 0
    bytes_sent: int = 0
    bytes_acked: int = 0
    bytes_received: int = 0
    bytes_retrans: int = 0
    segs_out: int = 0
    segs_in: int = 0
    notsent: int = 0
    delivery_rate: int = 0  # bytes/s
    pacing_rate: int = 0  # bytes/s
    memory: SocketMemory | None = None
    rx_bytes: int = 0  # bytes_received grew by this much in the interval
    tx_bytes: int = 0  # bytes_acked grew by this much in the interval
    retrans_delta: int = 0  # total_retrans grew by this much in the interval

    @property
    def endpoints(self) -> tuple[str, int, str, int]:
        """Identity shared with TcpConnection and RetransmitFlow (which add pid or state)."""
        return (self.laddr, self.lport, self.raddr, self.rport)

    def to_record(self) -> dict[str, Any]:
        record = {f.name: getattr(self, f.name) for f in fields(self)}
        record["memory"] = None if self.memory is None else self.memory.to_record()
        return record

    def with_deltas(self, rx_bytes: int, tx_bytes: int, retrans_delta: int) -> TcpSocketInfo:
        """This socket with the interval's deltas: dataclasses.replace() goes through fields()
        and keywords, ~11 us here, where this is ~4 (the tracker does it for every socket
        it reports)."""
        return TcpSocketInfo(*_ALL_BUT_DELTAS(self), rx_bytes, tx_bytes, retrans_delta)

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> TcpSocketInfo:
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            if f.name == "memory":
                values[f.name] = None if value is None else SocketMemory.from_record(value)
            elif f.name in ("laddr", "raddr", "state", "congestion"):
                values[f.name] = str(value)
            elif f.name == "closed":
                values[f.name] = bool(value)
            else:
                values[f.name] = int(value)
        return cls(**values)


_DELTAS = ("rx_bytes", "tx_bytes", "retrans_delta")
assert tuple(f.name for f in fields(TcpSocketInfo))[-3:] == _DELTAS  # with_deltas() passes them last
_ALL_BUT_DELTAS = operator.attrgetter(*(f.name for f in fields(TcpSocketInfo) if f.name not in _DELTAS))


@dataclass(frozen=True)
class SocketsSnapshot:
    source: str  # "netlink"
    sockets: tuple[TcpSocketInfo, ...] = ()  # with traffic this interval, busiest first; closed ones too
    routes: Mapping[str, str] = field(default_factory=dict)  # remote address -> device of its route
    seen: int = 0  # connected TCP sockets the kernel listed
    skipped: int = 0  # had traffic but over the bound, not reported (following the TCP pane: its rows)
    idle: int = 0  # no traffic this interval, not reported

    def merge(self, other: SocketsSnapshot) -> SocketsSnapshot:
        return SocketsSnapshot(
            self.source,
            self.sockets + other.sockets,
            {**self.routes, **other.routes},
            self.seen + other.seen,
            self.skipped + other.skipped,
            self.idle + other.idle,
        )

    def to_record(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "seen": self.seen,
            "skipped": self.skipped,
            "idle": self.idle,
            "routes": dict(self.routes),
            "sockets": [s.to_record() for s in self.sockets],
        }

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> SocketsSnapshot:
        return cls(
            str(data.get("source", "")),
            tuple(TcpSocketInfo.from_record(s) for s in data.get("sockets", [])),
            {str(k): str(v) for k, v in data.get("routes", {}).items()},
            int(data.get("seen", 0)),
            int(data.get("skipped", 0)),
            int(data.get("idle", 0)),
        )
