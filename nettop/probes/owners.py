"""Which process owns a kernel socket, learned where the kernel runs in process context.

Retransmits and many other TCP events fire in softirq or timer context, where the task on
the CPU is whoever was interrupted. Probes that see sockets in process context (socket_io's
send/recv, a connect()) note the owner here; probes that see softirq events look it up.
Only the sampler thread uses it.

socket_io notes every active socket every interval (16,384 at 10,000 loopback connections)
and the retransmits pane looks up a handful. So an interval's owners are kept as it drained
them, as columns sorted by socket (OwnerColumns): noting them is one sort, where building a
dict of Owner objects was ~14 ms of each poll (py-spy, live), and a lookup is a binary search.

Bounded in two generations rather than as an LRU: once the newer generation holds more than
half the capacity it becomes the older, and the older is forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Union

from nettop.probes.addresses import kernel_text


@dataclass(frozen=True, slots=True)
class Owner:
    pid: int
    comm: str


class OwnerColumns:
    """One interval's (socket, pid, comm) as numpy columns sorted by socket. The comm stays
    the kernel's raw bytes until a lookup asks for it. A socket with two owners (two
    entries) answers with one of them, as a dict of the same entries would."""

    def __init__(self, sockets: Any, pids: Any, comms: Any) -> None:
        order = sockets.argsort(kind="stable")
        self.sockets, self._pids, self._comms = sockets[order], pids[order], comms[order]

    def __len__(self) -> int:
        return len(self.sockets)

    def get(self, sock: int) -> Owner | None:
        target = self.sockets.dtype.type(sock)  # an address above 2^63 compared as uint64, not float
        i = int(self.sockets.searchsorted(target))
        if i == len(self.sockets) or self.sockets[i] != target:
            return None
        return Owner(int(self._pids[i]), kernel_text(bytes(self._comms[i])))

    def keys(self) -> list[int]:
        return self.sockets.tolist()


Noted = Union[Mapping[int, Owner], OwnerColumns]


class SocketOwners:
    """Sockets noted since the last turnover, and those of the generation before: a socket
    noted at least once a generation is never lost, one not noted during a whole generation
    is forgotten at the turnover that ends the next, and at most `capacity` plus one call's
    worth of entries are kept. Later notes answer before earlier ones."""

    def __init__(self, capacity: int = 65536) -> None:
        self.capacity = capacity
        self._newer: list[Noted] = []
        self._older: list[Noted] = []
        self._newer_entries = 0
        self.forgotten = 0

    def note(self, sock: int, pid: int, comm: str) -> None:
        self.note_all({sock: Owner(pid, comm)})

    def note_all(self, owners: Noted) -> None:
        if not len(owners):
            return
        self._newer.append(owners)
        self._newer_entries += len(owners)
        if self._newer_entries > self.capacity // 2:
            self.forgotten += _count_missing(self._older, self._newer)
            self._older, self._newer, self._newer_entries = self._newer, [], 0

    def lookup(self, sock: int) -> Owner | None:
        for noted in (*reversed(self._newer), *reversed(self._older)):
            owner = noted.get(sock)
            if owner is not None:
                return owner
        return None

    def __len__(self) -> int:
        return len(_distinct(_sockets(self._newer + self._older)))


def _sockets(generation: Iterable[Noted]) -> Any:
    """Every socket of a generation as one uint64 array, repeats included."""
    import numpy as np  # socket_io has imported it by the time its owners turn over

    arrays = [noted.sockets if isinstance(noted, OwnerColumns) else np.fromiter(noted.keys(), np.uint64, len(noted))
              for noted in generation]
    return np.concatenate(arrays) if arrays else np.zeros(0, np.uint64)


def _distinct(sockets: Any) -> Any:
    """Sorted, without repeats. By sort: numpy 2.4's np.unique and np.isin took 8-30 ms for
    50,000 uint64 here, where a sort takes ~1."""
    import numpy as np

    ordered = np.sort(sockets)
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))] if len(ordered) else ordered


def _count_missing(older: list[Noted], newer: list[Noted]) -> int:
    """Distinct sockets of `older` not in `newer` (at a turnover with 10,000 connections,
    ~50,000 against ~50,000)."""
    was, now = _distinct(_sockets(older)), _distinct(_sockets(newer))
    if not len(now):
        return len(was)
    at = now.searchsorted(was).clip(max=len(now) - 1)
    return int((now[at] != was).sum())
