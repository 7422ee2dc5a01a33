"""TCP throughput per connection over one interval (the tcptop pane's data)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Mapping

from nettop.model.records import flat_record, from_flat_record


@dataclass(frozen=True, slots=True)
class TcpConnection:
    pid: int
    comm: str
    family: int  # 4 or 6; IPv4-mapped IPv6 sockets are reported as 4
    laddr: str
    lport: int
    raddr: str
    rport: int
    rx_bytes: int
    tx_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.rx_bytes + self.tx_bytes

    @property
    def key(self) -> tuple:
        """Identity of a row across intervals."""
        return (self.pid, self.laddr, self.lport, self.raddr, self.rport)

    def to_record(self) -> dict[str, Any]:
        return flat_record(self)

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> TcpConnection:
        return from_flat_record(cls, data)


#: (pid, comm, family, laddr, lport, raddr, rport), rx_bytes, tx_bytes: one connection
#: without its row (TcpSnapshot.identities())
Identity = tuple[int, str, int, str, int, str, int]
_IDENTITY = attrgetter("pid", "comm", "family", "laddr", "lport", "raddr", "rport")
_RX = attrgetter("rx_bytes")
_TX = attrgetter("tx_bytes")


@dataclass(frozen=True, slots=True)
class ConnectionGroup:
    """One interval's connections that share a remote address, a process or a remote port."""

    key: str | int  # the remote address, the pid or the remote port
    rx_bytes: int
    tx_bytes: int
    sockets: int  # connections (a socket used by two processes counts once)
    processes: dict[int, str]  # pid -> comm (the first connection's)
    hosts: frozenset[str]  # remote addresses


#: where each grouping's key sits in an Identity
GROUP_FIELDS = {"pid": 0, "raddr": 5, "rport": 6}


def groups_of(identities: Iterable[tuple[Identity, int, int]], by: str) -> list[ConnectionGroup]:
    """(identity, rx, tx) summed per `by`, in order of first appearance."""
    field = GROUP_FIELDS[by]
    sums: dict[Any, list] = {}
    for identity, rx, tx in identities:
        pid, comm, _, laddr, lport, raddr, rport = identity
        group = sums.get(identity[field])
        if group is None:
            group = sums[identity[field]] = [0, 0, set(), {}, set()]
        group[0] += rx
        group[1] += tx
        group[2].add((laddr, lport, raddr, rport))
        group[3].setdefault(pid, comm)
        group[4].add(raddr)
    return [ConnectionGroup(key, rx, tx, len(ends), processes, frozenset(hosts))
            for key, (rx, tx, ends, processes, hosts) in sums.items()]


class ConnectionRows(Sequence):
    """An interval's connections kept as columns (a probe's drained map) and built into
    TcpConnection rows only when asked: with 10,000 connections, building every row each
    interval was most of a poll, where the TCP pane draws 200 of them. Iterating builds
    (and keeps) them all; top() builds only what it returns, totals() and identities() none."""

    def top(self, measure: str, limit: int, reverse: bool = True) -> list[TcpConnection]:
        """The `limit` rows a sort by `measure` ("rx", "tx", "total" or "pid") puts first, in
        that order; ties are cut in an order that is the same every interval."""
        raise NotImplementedError

    def totals(self) -> tuple[int, int]:
        """(rx, tx) bytes over every row."""
        raise NotImplementedError

    def identities(self) -> Iterator[tuple[Identity, int, int]]:
        raise NotImplementedError

    def groups(self, by: str) -> list[ConnectionGroup]:
        """The connections summed per remote address, process or remote port (`by`: "raddr",
        "pid" or "rport"), as groups_of() sums identities()."""
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class TcpSnapshot:
    source: str  # "raw_tracepoint", "tracepoint" or "kprobe"
    dropped: int  # socket entries lost to a full kernel map in this interval
    connections: Sequence[TcpConnection] = ()  # a tuple, or ConnectionRows from a live probe

    def top(self, measure: str, limit: int, reverse: bool = True) -> Sequence[TcpConnection]:
        """At least the `limit` rows a sort by `measure` puts first (every row, unless the
        rows are ConnectionRows): callers still sort what they get."""
        if isinstance(self.connections, ConnectionRows):
            return self.connections.top(measure, limit, reverse)
        return self.connections

    def totals(self) -> tuple[int, int]:
        if isinstance(self.connections, ConnectionRows):
            return self.connections.totals()
        return sum(c.rx_bytes for c in self.connections), sum(c.tx_bytes for c in self.connections)

    def identities(self) -> Iterator[tuple[Identity, int, int]]:
        """(identity, rx, tx) per connection, for a walk over all of them (the host view's
        grouping) that would otherwise build every row of a live snapshot."""
        if isinstance(self.connections, ConnectionRows):
            return self.connections.identities()
        rows = self.connections
        return zip(map(_IDENTITY, rows), map(_RX, rows), map(_TX, rows))

    def groups(self, by: str) -> list[ConnectionGroup]:
        """Connections summed per "raddr", "pid" or "rport" (the host view's groupings)."""
        if isinstance(self.connections, ConnectionRows):
            return self.connections.groups(by)
        return groups_of(self.identities(), by)

    def to_record(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "dropped": self.dropped,
            "connections": [c.to_record() for c in self.connections],
        }

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> TcpSnapshot:
        return cls(
            source=str(data["source"]),
            dropped=int(data["dropped"]),
            connections=tuple(TcpConnection.from_record(c) for c in data["connections"]),
        )
