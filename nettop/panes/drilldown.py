"""The pure half of the host view and the socket detail: grouping, joins, bounded history.

The host view groups the TCP pane's connections by remote host, local process or remote
port; retransmits come from the retransmits pane's flows when that pane is live, else
from the tcp_info probe's per-socket counters. Everything here is a function of frames,
so a replayed recording gives the same rows as the live run did.
"""

from __future__ import annotations

import functools
import heapq
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Iterable

from nettop.model.frame import Frame
from nettop.panes.text import endpoint, rate, sparkline

GROUPINGS = ("host", "process", "port")
GROUPING_TITLES = {"host": "remote host", "process": "local process", "port": "remote port"}
WINDOW_SECONDS = 60.0
SPARK_WIDTH = 12
HISTORY_KEYS = 4096

Endpoints = tuple[str, int, str, int]  # laddr, lport, raddr, rport


SERVICES_FILE = "/etc/services"


@functools.lru_cache(maxsize=1)
def _tcp_services(path: str = SERVICES_FILE) -> dict[int, str]:
    """/etc/services' TCP names by port, read once: getservbyport reads the whole file per
    call, and 10,000 connections bring as many remote ports every interval."""
    names: dict[int, str] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.split("#", 1)[0].split()
                if len(fields) >= 2 and fields[1].endswith("/tcp"):
                    port = fields[1][:-4]
                    if port.isdigit():
                        names.setdefault(int(port), fields[0])
    except OSError:
        pass
    return names


def service_name(port: int) -> str:
    """/etc/services' name for a TCP port (a file, never the network), or ""."""
    return _tcp_services().get(port, "")


@dataclass(frozen=True)
class Selector:
    """Which sockets a detail view shows: one group of the host view, or one connection."""

    grouping: str  # "host", "process", "port" or "socket"
    key: str
    label: str
    endpoints: Endpoints | None = None  # for grouping "socket"

    @classmethod
    def for_connection(cls, connection: Any) -> Selector:
        ends = (connection.laddr, connection.lport, connection.raddr, connection.rport)
        label = f"{endpoint(connection.laddr, connection.lport)} -> {endpoint(connection.raddr, connection.rport)}"
        return cls("socket", str(ends), label, ends)

    def matches(self, pid: int | None, ends: Endpoints) -> bool | None:
        """True/False, or None when it cannot tell (a process group and no known owner)."""
        if self.grouping == "host":
            return ends[2] == self.key
        if self.grouping == "port":
            return str(ends[3]) == self.key
        if self.grouping == "socket":
            return ends == self.endpoints
        if pid is None:
            return None
        return str(pid) == self.key


def endpoints_of(item: Any) -> Endpoints:
    return (item.laddr, item.lport, item.raddr, item.rport)


@dataclass
class GroupRow:
    key: str
    label: str
    connections: int = 0
    rx_bytes: int = 0
    tx_bytes: int = 0
    processes: dict[int, str] = field(default_factory=dict)  # pid -> comm
    hosts: set | frozenset = field(default_factory=set)
    retransmits: int = 0  # segments, this interval

    @property
    def total_bytes(self) -> int:
        return self.rx_bytes + self.tx_bytes


def owners(frame: Frame) -> dict[Endpoints, tuple[int, str]]:
    """Who owns each connection of this interval (the TCP pane's pid/comm)."""
    tcp = frame.panes.get("tcp")
    return {(laddr, lport, raddr, rport): (pid, comm)
            for (pid, comm, _, laddr, lport, raddr, rport), _, _ in (tcp.identities() if tcp else ())}


def retransmit_segments(frame: Frame) -> list[tuple[Endpoints, int | None, int]]:
    """(endpoints, pid or None, segments) retransmitted this interval, from the
    retransmits pane when live, else from the tcp_info probe's counters."""
    flows = frame.panes.get("retransmits")
    if flows is not None:
        return [(endpoints_of(f), f.pid, f.segments) for f in flows.flows]
    sockets = frame.panes.get("sockets")
    return [(s.endpoints, None, s.retrans_delta) for s in (sockets.sockets if sockets else ()) if s.retrans_delta]


#: what each grouping groups the TCP pane's connections by (TcpSnapshot.groups())
GROUPED_BY = {"host": "raddr", "process": "pid", "port": "rport"}


def build_groups(frame: Frame, grouping: str) -> dict[str, GroupRow]:
    """One grouping of one frame's connections (the host view builds only the one shown:
    three groupings of 16,000 connections were most of the UI's time)."""
    tcp = frame.panes.get("tcp")
    groups: dict[str, GroupRow] = {}
    for group in tcp.groups(GROUPED_BY[grouping]) if tcp else ():
        key = str(group.key)
        comm = group.processes.get(group.key, "") if grouping == "process" else ""
        groups[key] = GroupRow(key, group_label(key, grouping, comm), group.sockets, group.rx_bytes,
                               group.tx_bytes, group.processes, group.hosts)  # not copied: never changed
    retransmits = retransmit_segments(frame)
    known = owners(frame) if retransmits else {}
    for ends, pid, segments in retransmits:
        if pid is None and ends in known:
            pid = known[ends][0]
        if grouping == "host":
            key = ends[2]
        elif grouping == "port":
            key = str(ends[3])
        elif pid is not None:
            key = str(pid)
        else:
            continue
        if key not in groups:
            comm = known.get(ends, (None, ""))[1]
            groups[key] = GroupRow(key, group_label(key, grouping, comm))
            groups[key].hosts.add(ends[2])
        groups[key].retransmits += segments
    return groups


def group_label(key: str, grouping: str, comm: str = "") -> str:
    if grouping == "process":
        return f"{key} {comm}".strip()
    if grouping == "port":
        name = service_name(int(key))
        return f"{key} ({name})" if name else key
    return key


class TrafficHistory:
    """Per-key (time, rx/s, tx/s, retransmits) over the last `window` seconds, bounded in
    keys (least recently active forgotten first) and in samples per key.

    Keys are kept in order of their latest sample, so advancing the clock only visits the
    keys that went quiet; a live key drops its samples older than the window as it gets a
    new one (4,096 sockets keeping 240 samples each instead of 60 was ~70 MB)."""

    def __init__(self, window: float = WINDOW_SECONDS, capacity: int = HISTORY_KEYS, per_key: int = 240) -> None:
        self.window = window
        self.capacity = capacity
        self.per_key = per_key
        self._samples: OrderedDict[Any, deque] = OrderedDict()
        self.now = 0.0

    def clear(self) -> None:
        self._samples.clear()
        self.now = 0.0

    def add(self, key: Any, when: float, rx_rate: float, tx_rate: float, retransmits: int = 0) -> None:
        samples = self._samples.get(key)
        if samples is None:
            samples = self._samples[key] = deque(maxlen=self.per_key)
        else:
            self._samples.move_to_end(key)
            horizon = when - self.window
            while samples and samples[0][0] <= horizon:
                samples.popleft()
        samples.append((when, rx_rate, tx_rate, retransmits))
        while len(self._samples) > self.capacity:
            self._samples.popitem(last=False)

    def advance(self, now: float) -> None:
        """Forget keys with no sample in the window; time going backwards (a replay jump) clears."""
        if now < self.now:
            self.clear()
        self.now = now
        horizon = now - self.window
        samples = self._samples
        while samples:
            oldest_key = next(iter(samples))
            if samples[oldest_key][-1][0] > horizon:
                break
            del samples[oldest_key]

    def keys(self) -> list:
        return list(self._samples)

    def forget(self, keys: Iterable[Any]) -> None:
        for key in list(keys):
            self._samples.pop(key, None)

    def __contains__(self, key: Any) -> bool:
        return key in self._samples

    def _recent(self, key: Any) -> list[tuple]:
        horizon = self.now - self.window
        return [s for s in self._samples.get(key, ()) if s[0] > horizon]

    def retransmits(self, key: Any) -> int:
        return sum(s[3] for s in self._recent(key))

    def spark(self, key: Any, width: int = SPARK_WIDTH) -> str:
        """The last window as `width` bins of mean RX+TX rate, oldest left."""
        bins = [0.0] * width
        counts = [0] * width
        start = self.now - self.window
        for when, rx, tx, _ in self._recent(key):
            index = min(width - 1, max(0, int((when - start) / self.window * width)))
            bins[index] += rx + tx
            counts[index] += 1
        return sparkline([b / n if n else 0.0 for b, n in zip(bins, counts)])


def busiest(items: Collection, limit: int, total: Callable[[Any], Any]) -> Iterable:
    """The items, only the `limit` largest by `total` when there are more: adding more keys
    than a history holds would only evict the ones just added."""
    if len(items) <= limit:
        return items
    return heapq.nlargest(limit, items, key=total)


def record_groups(frame: Frame, grouping: str, rows: dict[str, GroupRow], hosts: TrafficHistory) -> None:
    """Add one frame's group rates (one grouping) to the group history, busiest first."""
    for key, row in busiest(rows.items(), hosts.capacity, lambda item: (item[1].total_bytes, item[1].retransmits)):
        hosts.add((grouping, key), frame.time, rate(row.rx_bytes, frame.interval),
                  rate(row.tx_bytes, frame.interval), row.retransmits)


def recent_frames(timeline: Any, now: float, window: float = WINDOW_SECONDS) -> list[Frame]:
    """The frames the app still holds from the `window` seconds up to `now`, oldest first
    (a replay's frames ahead of its cursor are left out): a grouping or a detail view
    opened now gets its last minute from them rather than from histories kept for every
    socket, every interval (at 10,000 connections that was ~30 ms a frame)."""
    recent = []
    for index in range(len(timeline) - 1, -1, -1):
        frame = timeline.frame_at(index)
        if frame.time > now:
            continue
        if frame.time <= now - window:
            break
        recent.append(frame)
    recent.reverse()
    return recent


def matches_filter(row: GroupRow, text: str) -> bool:
    text = text.strip().lower()
    if not text:
        return True
    haystack: Iterable[str] = (row.key, row.label, *row.processes.values(), *map(str, row.processes), *row.hosts)
    return any(text in h.lower() for h in haystack)
