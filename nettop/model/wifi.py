"""IEEE 802.11 scans over one interval: who asked, which channels were visited, what was heard.

A scan belongs to the interval in which it completed (`scans`). Scans still under way at
the end of an interval are listed apart (`in_progress`, `end` None, `duration_ms` so far)
and appear again, complete, in a later interval: a reader summing scans uses `scans` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

#: bands as the pane groups them; "other" is sub-GHz (S1G), 4.9 GHz public safety or 60 GHz
BANDS = ("2.4", "5", "6", "other")


def band_of(freq_mhz: int) -> str:
    """The band a centre frequency lies in (IEEE 802.11 channel plans)."""
    if 2400 <= freq_mhz <= 2500:
        return "2.4"
    if 5150 <= freq_mhz <= 5925:
        return "5"
    if 5925 < freq_mhz <= 7125:
        return "6"
    return "other"


@dataclass(frozen=True, slots=True)
class WifiChannel:
    """One channel visit, in visit order; `beacons` counts beacons and probe responses
    reported for BSSs on this frequency during the scan."""

    band: str
    freq_mhz: int
    beacon_found: bool
    at_ms: float = 0.0  # when the radio tuned to it, from the scan's start
    beacons: int = 0

    def to_record(self) -> dict[str, Any]:
        return {
            "band": self.band,
            "freq_mhz": self.freq_mhz,
            "beacon_found": self.beacon_found,
            "at_ms": round(self.at_ms, 3),
            "beacons": self.beacons,
        }

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> WifiChannel:
        freq = int(data["freq_mhz"])
        return cls(
            band=str(data.get("band", band_of(freq))),
            freq_mhz=freq,
            beacon_found=bool(data.get("beacon_found", False)),
            at_ms=float(data.get("at_ms", 0.0)),
            beacons=int(data.get("beacons", 0)),
        )


@dataclass(frozen=True, slots=True)
class WifiScan:
    """One scan on one radio. `pid`/`comm` are the task on the CPU when the scan was
    requested: the requester when that was a process (iw, wpa_supplicant, NetworkManager),
    a kernel worker for scans the kernel started itself; None when unknown."""

    device: str  # the interface (wlan0), or the radio (phy0) when no interface is known
    wiphy: str
    start: float  # unix seconds
    end: float | None  # None while the scan is under way
    duration_ms: float
    aborted: bool
    pid: int | None
    comm: str
    kind: str = ""  # "sw" (mac80211 walks the channels), "hw" (the device does), "" unknown
    channels: tuple[WifiChannel, ...] = ()

    @property
    def key(self) -> tuple[str, float]:
        return (self.wiphy, self.start)

    @property
    def beacon_channels(self) -> int:
        return sum(1 for c in self.channels if c.beacon_found)

    def to_record(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "wiphy": self.wiphy,
            "start": round(self.start, 6),
            "end": None if self.end is None else round(self.end, 6),
            "duration_ms": round(self.duration_ms, 3),
            "aborted": self.aborted,
            "pid": self.pid,
            "comm": self.comm,
            "kind": self.kind,
            "channels": [c.to_record() for c in self.channels],
        }

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> WifiScan:
        end = data.get("end")
        pid = data.get("pid")
        return cls(
            device=str(data["device"]),
            wiphy=str(data.get("wiphy", data["device"])),
            start=float(data["start"]),
            end=None if end is None else float(end),
            duration_ms=float(data.get("duration_ms", 0.0)),
            aborted=bool(data.get("aborted", False)),
            pid=None if pid is None else int(pid),
            comm=str(data.get("comm", "-")),
            kind=str(data.get("kind", "")),
            channels=tuple(WifiChannel.from_record(c) for c in data.get("channels", [])),
        )


@dataclass(frozen=True)
class WifiSnapshot:
    source: str
    lost_events: int  # events the bounded ring buffer could not take this interval
    scans: tuple[WifiScan, ...] = ()  # completed this interval, oldest first
    in_progress: tuple[WifiScan, ...] = ()  # under way at the end of the interval
    dropped: int = 0  # scans or channel visits left out by the probe's bounds

    def merge(self, other: WifiSnapshot) -> WifiSnapshot:
        return WifiSnapshot(
            self.source,
            self.lost_events + other.lost_events,
            tuple(sorted(self.scans + other.scans, key=lambda s: s.start)),
            self.in_progress + other.in_progress,
            self.dropped + other.dropped,
        )

    def to_record(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "lost_events": self.lost_events,
            "dropped": self.dropped,
            "scans": [s.to_record() for s in self.scans],
            "in_progress": [s.to_record() for s in self.in_progress],
        }

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> WifiSnapshot:
        return cls(
            source=str(data.get("source", "")),
            lost_events=int(data.get("lost_events", 0)),
            scans=tuple(WifiScan.from_record(s) for s in data.get("scans", [])),
            in_progress=tuple(WifiScan.from_record(s) for s in data.get("in_progress", [])),
            dropped=int(data.get("dropped", 0)),
        )
