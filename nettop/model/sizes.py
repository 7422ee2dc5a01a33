"""Socket I/O sizes per process (socksize) and packet sizes per device (netsize)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nettop.model.histogram import Histogram


@dataclass(frozen=True, slots=True)
class IoSizes:
    count: int = 0
    bytes: int = 0
    errors: int = 0  # calls that returned an error: not sizes
    histogram: Histogram = Histogram()

    def merge(self, other: IoSizes) -> IoSizes:
        return IoSizes(
            self.count + other.count,
            self.bytes + other.bytes,
            self.errors + other.errors,
            self.histogram.merge(other.histogram),
        )

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


@dataclass(frozen=True, slots=True)
class SocketSizesSnapshot:
    source: str
    dropped: int
    processes: tuple[ProcessSizes, ...] = ()

    def to_record(self) -> dict[str, Any]:
        return {"source": self.source, "dropped": self.dropped, "processes": [p.to_record() for p in self.processes]}

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> SocketSizesSnapshot:
        return cls(
            str(data.get("source", "")),
            int(data.get("dropped", 0)),
            tuple(ProcessSizes.from_record(p) for p in data.get("processes", [])),
        )
