"""Which process owns a kernel socket, learned where the kernel runs in process context.

Retransmits and many other TCP events fire in softirq or timer context, where the task on
the CPU is whoever was interrupted. Probes that see sockets in process context (socket_io's
send/recv, a connect()) note the owner here; probes that see softirq events look it up.
Only the sampler thread uses it.

socket_io notes every active socket every interval (16,384 at 10,000 loopback connections)
and the retransmits pane looks up a handful. So an interval's owners are kept as it drained
them, as columns (OwnerColumns): noting them is a copy, the first lookup sorts them by
socket and each lookup is a binary search, where building a dict of Owner objects was ~14 ms
of each poll (py-spy, live).

Bounded in two generations rather than as an LRU: once the newer generation holds more than
half the capacity it becomes the older, and the older is forgotten. A quiet server notes a
few sockets an interval, so a generation could hold thousands of small column sets (~600
bytes each, and a lookup searches each: after 16,000 intervals of two sockets, 12 MB and 37
ms a missed lookup, measured); past MERGE_ABOVE they are merged into one (then 0.4 MB and
0.01-0.09 ms).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from nettop.probes.addresses import kernel_text


@dataclass(frozen=True, slots=True)
class Owner:
    pid: int
    comm: str


class OwnerColumns:
    """One interval's (socket, pid, comm) as numpy columns, sorted by socket at the first
    lookup. The comm stays the kernel's raw bytes until a lookup asks for it. A socket with
    two owners (two entries) answers with one of them, as a dict of the same entries would."""

    def __init__(self, sockets: Any, pids: Any, comms: Any) -> None:
        # copied, so two generations of owners do not keep each drain's bytes (5.5 MB at
        # 16,384 entries) alive through views of them; sorted at the first lookup: only
        # retransmits look owners up, and sorting 16,384 entries each interval for none took
        # ~2 ms of socket_io's poll
        self.sockets, self._pids, self._comms = sockets.copy(), pids.copy(), comms.copy()
        self._sorted = False

    def _sort(self) -> None:
        order = self.sockets.argsort(kind="stable")
        self.sockets, self._pids, self._comms = self.sockets[order], self._pids[order], self._comms[order]
        self._sorted = True

    @classmethod
    def merged(cls, newest_first: Sequence[OwnerColumns]) -> OwnerColumns:
        """One set answering as the list did, each socket once: its first set's owner."""
        import numpy as np

        sockets = np.concatenate([noted.sockets for noted in newest_first])
        order = sockets.argsort(kind="stable")  # equal sockets keep the list's order
        ordered = sockets[order]
        first = order[_run_starts(ordered)]
        merged = cls(sockets[first], np.concatenate([noted._pids for noted in newest_first])[first],
                     np.concatenate([noted._comms for noted in newest_first])[first])
        merged._sorted = True
        return merged

    @classmethod
    def of(cls, owners: Iterable[tuple[int, int, str]]) -> OwnerColumns:
        """From (socket, pid, comm) triples: the few a test or another probe notes."""
        import numpy as np

        triples = list(owners)
        return cls(np.array([sock for sock, _, _ in triples], np.uint64), np.array([pid for _, pid, _ in triples], np.uint32),
                   np.array([comm.encode() for _, _, comm in triples], "S16"))

    def __len__(self) -> int:
        return len(self.sockets)

    def get(self, sock: int) -> Owner | None:
        if not self._sorted:
            self._sort()
        target = self.sockets.dtype.type(sock)  # an address above 2^63 compared as uint64, not float
        i = int(self.sockets.searchsorted(target))
        if i == len(self.sockets) or self.sockets[i] != target:
            return None
        return Owner(int(self._pids[i]), kernel_text(bytes(self._comms[i])))


class SocketOwners:
    """Sockets noted since the last turnover, and those of the generation before: a socket
    noted at least once a generation is never lost, one not noted during a whole generation
    is forgotten at the turnover that ends the next, and at most `capacity` plus one call's
    worth of entries are kept. Later notes answer before earlier ones."""

    MERGE_ABOVE = 16  # column sets in the newer generation beyond which they are merged into one

    def __init__(self, capacity: int = 65536) -> None:
        self.capacity = capacity
        self._newer: list[OwnerColumns] = []
        self._older: list[OwnerColumns] = []
        self._newer_entries = 0
        self.forgotten = 0

    def note(self, sock: int, pid: int, comm: str) -> None:
        self.note_all(OwnerColumns.of([(sock, pid, comm)]))

    def note_all(self, owners: OwnerColumns) -> None:
        if not len(owners):
            return
        self._newer.append(owners)
        self._newer_entries += len(owners)
        if self._newer_entries > self.capacity // 2:
            self.forgotten += _count_missing(self._older, self._newer)
            self._older, self._newer, self._newer_entries = self._newer, [], 0
        elif len(self._newer) > self.MERGE_ABOVE:
            self._newer = [OwnerColumns.merged(self._newer[::-1])]

    @property
    def column_sets(self) -> int:
        """How many column sets a lookup may search (merging keeps it at most 2 * (MERGE_ABOVE + 1))."""
        return len(self._newer) + len(self._older)

    def lookup(self, sock: int) -> Owner | None:
        for noted in (*reversed(self._newer), *reversed(self._older)):
            owner = noted.get(sock)
            if owner is not None:
                return owner
        return None

    def __len__(self) -> int:
        return len(_distinct(self._newer + self._older))


def _distinct(generation: list[OwnerColumns]) -> Any:
    """A generation's sockets, sorted, without repeats. By sort: numpy 2.4's np.unique and
    np.isin took 8-30 ms for 50,000 uint64 here, where a sort takes ~1."""
    import numpy as np  # socket_io has imported it by the time its owners turn over

    ordered = np.sort(np.concatenate([noted.sockets for noted in generation] or [np.zeros(0, np.uint64)]))
    return ordered[_run_starts(ordered)]


def _run_starts(ordered: Any) -> Any:
    """A mask of each value's first place in a sorted array."""
    import numpy as np

    return np.concatenate(([True], ordered[1:] != ordered[:-1])) if len(ordered) else np.zeros(0, bool)


def _count_missing(older: list[OwnerColumns], newer: list[OwnerColumns]) -> int:
    """Distinct sockets of `older` not in `newer` (at a turnover with 10,000 connections,
    ~50,000 against ~50,000)."""
    was, now = _distinct(older), _distinct(newer)
    if not len(now):
        return len(was)
    at = now.searchsorted(was).clip(max=len(now) - 1)
    return int((now[at] != was).sum())
