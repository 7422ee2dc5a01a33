"""Time in qdiscs and in device transmit, per qdisc and per device, over one interval.

Two probes feed this one snapshot (qdisc_latency, and netdev for devices); the sampler combines
them with `merge()`. Latency histograms are log2 in microseconds and count packets as
`tc` does (a GSO packet counts once per segment; each segment waited as long as it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nettop.model.histogram import Histogram

PERCENTILES = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99))


@dataclass(frozen=True, slots=True)
class Latency:
    """One interval's latency distribution; `max_us` is the exact largest sample."""

    histogram: Histogram = Histogram()
    max_us: float | None = None

    @property
    def count(self) -> int:
        return self.histogram.count

    def percentile(self, fraction: float) -> float | None:
        """Interpolated inside its log2 bucket, and never above the exact maximum."""
        value = self.histogram.percentile(fraction)
        if value is None or self.max_us is None:
            return value
        return min(value, self.max_us)

    def merge(self, other: Latency) -> Latency:
        maxima = [m for m in (self.max_us, other.max_us) if m is not None]
        return Latency(self.histogram.merge(other.histogram), max(maxima) if maxima else None)

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"buckets": self.histogram.to_record()}
        for name, fraction in PERCENTILES:
            value = self.percentile(fraction)
            record[name] = None if value is None else round(value, 3)
        record["max"] = None if self.max_us is None else round(self.max_us, 3)
        return record

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> Latency:
        maximum = data.get("max")
        return cls(Histogram.from_record(data.get("buckets", [])), None if maximum is None else float(maximum))


@dataclass(frozen=True, slots=True)
class QdiscStats:
    """The qdisc's own netlink counters: deltas over the interval, except backlog (a level)."""

    sent_packets: int = 0
    sent_bytes: int = 0
    drops: int = 0
    overlimits: int = 0
    requeues: int = 0
    backlog_bytes: int = 0  # at the end of the interval
    backlog_packets: int = 0

    def to_record(self) -> dict[str, Any]:
        return {
            "sent_packets": self.sent_packets,
            "sent_bytes": self.sent_bytes,
            "drops": self.drops,
            "overlimits": self.overlimits,
            "requeues": self.requeues,
            "backlog_bytes": self.backlog_bytes,
            "backlog_packets": self.backlog_packets,
        }

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> QdiscStats:
        return cls(**{k: int(data.get(k, 0)) for k in cls.__dataclass_fields__})


@dataclass(frozen=True, slots=True)
class QdiscQueue:
    """One qdisc, named as `tc` names it: kind and handle on a device."""

    ifname: str
    ifindex: int
    kind: str  # "tbf", "htb", "noqueue", ... ("?" when netlink does not know it: another netns)
    handle: str  # "8001:"
    parent: str  # "root", "1:10", ...
    packets: int = 0  # packets dequeued with a known enqueue time (the histogram's total)
    missed: int = 0  # skbs dequeued with no enqueue time: enqueued before attach, evicted, or requeued
    inherited: int = 0  # of `packets`, those timed from the skb->tstamp they carried (tbf's GSO segments)
    latency: Latency = Latency()
    stats: QdiscStats | None = None  # None when netlink does not list it

    @property
    def key(self) -> tuple:
        return (self.ifindex, self.ifname, self.handle, self.parent)

    @property
    def label(self) -> str:
        return f"{self.kind} {self.handle}"

    @property
    def queueless(self) -> bool:
        return self.kind == "noqueue"

    def merge(self, other: QdiscQueue) -> QdiscQueue:
        return QdiscQueue(
            self.ifname,
            self.ifindex,
            self.kind if self.kind != "?" else other.kind,
            self.handle,
            self.parent,
            self.packets + other.packets,
            self.missed + other.missed,
            self.inherited + other.inherited,
            self.latency.merge(other.latency),
            self.stats or other.stats,
        )

    def to_record(self) -> dict[str, Any]:
        return {
            "ifname": self.ifname,
            "ifindex": self.ifindex,
            "kind": self.kind,
            "handle": self.handle,
            "parent": self.parent,
            "packets": self.packets,
            "missed": self.missed,
            "inherited": self.inherited,
            "latency_us": self.latency.to_record(),
            "stats": None if self.stats is None else self.stats.to_record(),
        }

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> QdiscQueue:
        stats = data.get("stats")
        return cls(
            str(data["ifname"]),
            int(data.get("ifindex", 0)),
            str(data["kind"]),
            str(data["handle"]),
            str(data["parent"]),
            int(data.get("packets", 0)),
            int(data.get("missed", 0)),
            int(data.get("inherited", 0)),
            Latency.from_record(data.get("latency_us", {})),
            None if stats is None else QdiscStats.from_record(stats),
        )


@dataclass(frozen=True, slots=True)
class DeviceLatency:
    """nettxlat for one device: from handing a packet to the driver until it is freed."""

    ifname: str
    ifindex: int
    netns: int = 0
    packets: int = 0  # packets handed to the driver (GSO segments counted)
    latency: Latency = Latency()  # those whose skb was consumed in the interval
    hardware: bool = True  # False: a virtual device (lo, veth, bridge), whose transmits are not timed

    @property
    def key(self) -> tuple:
        return (self.netns, self.ifindex, self.ifname)

    def merge(self, other: DeviceLatency) -> DeviceLatency:
        return DeviceLatency(
            self.ifname, self.ifindex, self.netns, self.packets + other.packets, self.latency.merge(other.latency),
            self.hardware and other.hardware,
        )

    def to_record(self) -> dict[str, Any]:
        return {
            "ifname": self.ifname,
            "ifindex": self.ifindex,
            "netns": self.netns,
            "packets": self.packets,
            "latency_us": self.latency.to_record(),
            "hardware": self.hardware,
        }

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> DeviceLatency:
        return cls(
            str(data["ifname"]),
            int(data.get("ifindex", 0)),
            int(data.get("netns", 0)),
            int(data.get("packets", 0)),
            Latency.from_record(data.get("latency_us", {})),
            bool(data.get("hardware", True)),
        )


def _join_sources(a: str, b: str) -> str:
    parts = [p for p in (*a.split("+"), *b.split("+")) if p]
    return "+".join(dict.fromkeys(parts))


@dataclass(frozen=True, slots=True)
class QueuesSnapshot:
    source: str  # event sources of the probes that fed it, joined with "+" when they differ
    dropped: int = 0  # qdisc/device entries lost to a full kernel map
    missed: int = 0  # dequeues (and for devices, nothing) that found no start time
    qdiscs: tuple[QdiscQueue, ...] = field(default_factory=tuple)
    devices: tuple[DeviceLatency, ...] = field(default_factory=tuple)

    def merge(self, other: QueuesSnapshot) -> QueuesSnapshot:
        return QueuesSnapshot(
            _join_sources(self.source, other.source),
            self.dropped + other.dropped,
            self.missed + other.missed,
            _merge_keyed(self.qdiscs, other.qdiscs),
            _merge_keyed(self.devices, other.devices),
        )

    def to_record(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "dropped": self.dropped,
            "missed": self.missed,
            "qdiscs": [q.to_record() for q in self.qdiscs],
            "devices": [d.to_record() for d in self.devices],
        }

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> QueuesSnapshot:
        return cls(
            str(data.get("source", "")),
            int(data.get("dropped", 0)),
            int(data.get("missed", 0)),
            tuple(QdiscQueue.from_record(q) for q in data.get("qdiscs", [])),
            tuple(DeviceLatency.from_record(d) for d in data.get("devices", [])),
        )


def _merge_keyed(a: tuple, b: tuple) -> tuple:
    merged: dict = {}
    for item in (*a, *b):
        merged[item.key] = merged[item.key].merge(item) if item.key in merged else item
    return tuple(merged.values())
