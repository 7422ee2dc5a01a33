"""Socket I/O sizes per process (socksize) and packet sizes per device (netsize).

Two probes fill one snapshot: socket_io the processes, netdev the devices. The
sampler combines their halves with `SizesSnapshot.merge()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nettop.model.histogram import Histogram


@dataclass(frozen=True, slots=True)
class IoSizes:
    count: int = 0
    bytes: int = 0
    errors: int = 0  # calls that returned an error (or a refused transmit): not sizes
    histogram: Histogram = Histogram()

    def merge(self, other: IoSizes) -> IoSizes:
        return IoSizes(
            self.count + other.count,
            self.bytes + other.bytes,
            self.errors + other.errors,
            self.histogram.merge(other.histogram),
        )

    @property
    def average(self) -> float:
        return self.bytes / self.count if self.count else 0.0

    def to_record(self) -> dict[str, Any]:
        return {"count": self.count, "bytes": self.bytes, "errors": self.errors, "buckets": self.histogram.to_record()}

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> IoSizes:
        return cls(int(data["count"]), int(data["bytes"]), int(data["errors"]), Histogram.from_record(data["buckets"]))


@dataclass(frozen=True, slots=True)
class ProcessSizes:
    pid: int
    comm: str
    protocol: str  # "tcp", "udp", "unix" or "other"
    read: IoSizes
    write: IoSizes

    @property
    def key(self) -> tuple:
        return (self.pid, self.protocol)

    def merge(self, other: ProcessSizes) -> ProcessSizes:
        return ProcessSizes(self.pid, other.comm or self.comm, self.protocol,
                            self.read.merge(other.read), self.write.merge(other.write))

    def to_record(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "comm": self.comm,
            "protocol": self.protocol,
            "read": self.read.to_record(),
            "write": self.write.to_record(),
        }

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> ProcessSizes:
        return cls(
            int(data["pid"]),
            str(data["comm"]),
            str(data.get("protocol", "other")),
            IoSizes.from_record(data["read"]),
            IoSizes.from_record(data["write"]),
        )


#: The four places netsize measures a packet, in the order a packet meets them.
DEVICE_POINTS = ("nic_recv", "stack_recv", "stack_send", "nic_send")


@dataclass(frozen=True, slots=True)
class DeviceSizes:
    """Packet sizes (skb->len) at one device; `netns` tells apart equal ifindexes in two namespaces."""

    ifname: str
    ifindex: int = 0
    netns: int = 0  # network namespace inode number, as in /proc/<pid>/ns/net
    stack_recv: IoSizes = IoSizes()  # net:netif_receive_skb
    stack_send: IoSizes = IoSizes()  # net:net_dev_queue
    nic_recv: IoSizes = IoSizes()  # net:napi_gro_receive_entry
    nic_send: IoSizes = IoSizes()  # net:net_dev_xmit

    @property
    def key(self) -> tuple:
        return (self.netns, self.ifindex, self.ifname)

    def point(self, name: str) -> IoSizes:
        return getattr(self, name)

    def merge(self, other: DeviceSizes) -> DeviceSizes:
        return DeviceSizes(
            other.ifname or self.ifname,
            self.ifindex,
            self.netns,
            *(self.point(p).merge(other.point(p)) for p in ("stack_recv", "stack_send", "nic_recv", "nic_send")),
        )

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"ifname": self.ifname, "ifindex": self.ifindex, "netns": self.netns}
        record.update({p: self.point(p).to_record() for p in DEVICE_POINTS})
        return record

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> DeviceSizes:
        empty = {"count": 0, "bytes": 0, "errors": 0, "buckets": []}
        return cls(
            str(data["ifname"]),
            int(data.get("ifindex", 0)),
            int(data.get("netns", 0)),
            **{p: IoSizes.from_record(data.get(p, empty)) for p in DEVICE_POINTS},
        )


def _merge_rows(rows: tuple, more: tuple) -> tuple:
    combined: dict = {}
    for row in (*rows, *more):
        combined[row.key] = combined[row.key].merge(row) if row.key in combined else row
    return tuple(combined.values())


@dataclass(frozen=True, slots=True)
class SizesSnapshot:
    source: str
    dropped: int
    processes: tuple[ProcessSizes, ...] = ()
    devices: tuple[DeviceSizes, ...] = ()

    def merge(self, other: SizesSnapshot) -> SizesSnapshot:
        """One probe's half plus another's: sources joined with "+" when they differ."""
        sources = [s for s in dict.fromkeys((*self.source.split("+"), *other.source.split("+"))) if s]
        return SizesSnapshot(
            "+".join(sources),
            self.dropped + other.dropped,
            _merge_rows(self.processes, other.processes),
            _merge_rows(self.devices, other.devices),
        )

    def to_record(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "dropped": self.dropped,
            "processes": [p.to_record() for p in self.processes],
            "devices": [d.to_record() for d in self.devices],
        }

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> SizesSnapshot:
        return cls(
            str(data.get("source", "")),
            int(data.get("dropped", 0)),
            tuple(ProcessSizes.from_record(p) for p in data.get("processes", [])),
            tuple(DeviceSizes.from_record(d) for d in data.get("devices", [])),
        )


SocketSizesSnapshot = SizesSnapshot  # the name socket_io first used
