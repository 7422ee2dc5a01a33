"""TCP throughput per connection over one interval (the tcptop pane's data)."""

from __future__ import annotations

from dataclasses import dataclass, field
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


@dataclass(frozen=True, slots=True)
class TcpSnapshot:
    source: str  # "raw_tracepoint", "tracepoint" or "kprobe"
    dropped: int  # socket entries lost to a full kernel map in this interval
    connections: tuple[TcpConnection, ...] = field(default_factory=tuple)

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
