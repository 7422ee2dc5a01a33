"""TCP retransmits over one interval: per flow, per event, and the kernel's own counters.

Events are what `tcp:tcp_retransmit_skb` and friends fire: one per retransmitted skb.
Segments are what the kernel's RetransSegs counter counts: one skb can carry many
segments under GSO/TSO. Both are kept, and labelled, because they differ by 10x and more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from nettop.model.records import flat_record, from_flat_record

#: kernel counters shown beside the flows (from /proc/net/snmp and /proc/net/netstat), in strip order
COUNTER_NAMES = (
    "RetransSegs",
    "OutSegs",
    "TCPFastRetrans",
    "TCPSlowStartRetrans",
    "TCPTimeouts",
    "TCPLossProbes",
    "TCPSynRetrans",
)

#: event kinds, as tcpretrans prints them
KIND_RETRANSMIT = "R"
KIND_SYNACK = "S"
KIND_LOSS_PROBE = "L"


@dataclass(frozen=True, slots=True)
class RetransmitFlow:
    """One socket in one TCP state; `pid` None when the owner is unknown (shown as `-`)."""

    pid: int | None
    comm: str
    family: int  # 4 or 6
    laddr: str
    lport: int
    raddr: str
    rport: int
    state: str  # "ESTABLISHED", "SYN_SENT", ... without the TCP_ prefix
    events: int  # retransmitted skbs
    segments: int  # retransmitted segments (what RetransSegs counts)
    last_seen: float = 0.0  # unix seconds of the latest event

    @property
    def key(self) -> tuple:
        """Identity across intervals; the owner may become known later, so it is not part of it."""
        return (self.family, self.laddr, self.lport, self.raddr, self.rport, self.state)

    def merge(self, later: RetransmitFlow) -> RetransmitFlow:
        """The same flow over two intervals: counts add up, the latest known owner wins."""
        known = later if later.pid is not None else self
        return RetransmitFlow(
            known.pid, known.comm, self.family, self.laddr, self.lport, self.raddr, self.rport, self.state,
            self.events + later.events, self.segments + later.segments, max(self.last_seen, later.last_seen),
        )

    def to_record(self) -> dict[str, Any]:
        return flat_record(self)

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> RetransmitFlow:
        return from_flat_record(cls, data)


@dataclass(frozen=True, slots=True)
class RetransmitEvent:
    time: float  # unix seconds
    kind: str  # "R", "S" or "L"
    pid: int | None
    comm: str
    family: int
    laddr: str
    lport: int
    raddr: str
    rport: int
    state: str
    segments: int

    def to_record(self) -> dict[str, Any]:
        return flat_record(self)

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> RetransmitEvent:
        return from_flat_record(cls, data)


def retransmit_rate(counters: Mapping[str, int]) -> float | None:
    """Retransmitted / sent segments; None when nothing was sent (not a division error)."""
    sent = counters.get("OutSegs", 0)
    return counters.get("RetransSegs", 0) / sent if sent > 0 else None


@dataclass(frozen=True)
class RetransmitsSnapshot:
    source: str  # "raw_tracepoint", "tracepoint" or "kprobe"
    lost_events: int  # events the bounded event channel could not take this interval
    flows: tuple[RetransmitFlow, ...] = ()
    events: tuple[RetransmitEvent, ...] = ()  # oldest first
    counters: Mapping[str, int] = field(default_factory=dict)  # deltas, nettop's own network namespace
    kinds: str = "RS"  # the event kinds this source can report ("RSL" with tail-loss probes)
    dropped: int = 0  # flows the bounded kernel flow map could not take this interval
    failed: int = 0  # retransmit attempts the kernel reported as failed (not sent, not counted)
    missed: int | None = None  # hook runs the kernel skipped (another BPF program was active); None: not counted

    @property
    def rate(self) -> float | None:
        return retransmit_rate(self.counters)

    def merge(self, other: RetransmitsSnapshot) -> RetransmitsSnapshot:
        counters = dict(self.counters)
        for name, value in other.counters.items():
            counters[name] = counters.get(name, 0) + value
        return RetransmitsSnapshot(
            self.source,
            self.lost_events + other.lost_events,
            self.flows + other.flows,
            tuple(sorted(self.events + other.events, key=lambda e: e.time)),
            counters,
            "".join(sorted(set(self.kinds) | set(other.kinds), key="RSL".index)),
            self.dropped + other.dropped,
            self.failed + other.failed,
            None if self.missed is None and other.missed is None else (self.missed or 0) + (other.missed or 0),
        )

    def to_record(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "kinds": self.kinds,
            "lost_events": self.lost_events,
            "dropped": self.dropped,
            "failed": self.failed,
            "missed": self.missed,
            "flows": [f.to_record() for f in self.flows],
            "events": [e.to_record() for e in self.events],
            "counters": dict(self.counters),
        }

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> RetransmitsSnapshot:
        return cls(
            source=str(data.get("source", "")),
            lost_events=int(data.get("lost_events", 0)),
            flows=tuple(RetransmitFlow.from_record(f) for f in data.get("flows", [])),
            events=tuple(RetransmitEvent.from_record(e) for e in data.get("events", [])),
            counters={str(k): int(v) for k, v in data.get("counters", {}).items()},
            kinds=str(data.get("kinds", "RS")),
            dropped=int(data.get("dropped", 0)),
            failed=int(data.get("failed", 0)),
            missed=None if data.get("missed") is None else int(data["missed"]),
        )
