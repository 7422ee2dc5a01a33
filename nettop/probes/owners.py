"""Which process owns a kernel socket, learned where the kernel runs in process context.

Retransmits and many other TCP events fire in softirq or timer context, where the task on
the CPU is whoever was interrupted. Probes that see sockets in process context (socket_io's
send/recv, a connect()) note the owner here; probes that see softirq events look it up.
Only the sampler thread uses it.

Bounded in two generations rather than as an LRU: socket_io notes every active socket
every interval, and touching an ordered dict 16,000 times an interval was a third of its
poll with 10,000 connections (under cProfile), where one dict.update() of the interval's
owners is C work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping


@dataclass(frozen=True, slots=True)
class Owner:
    pid: int
    comm: str


class SocketOwners:
    """Sockets noted since the last turnover, and those of the generation before. Once the
    newer generation holds more than half the capacity it becomes the older, and the older
    is forgotten: a socket noted at least once a generation is never lost, one not noted
    during a whole generation is forgotten at the turnover that ends the next, and at most
    `capacity` plus one call's worth of sockets are kept."""

    def __init__(self, capacity: int = 65536) -> None:
        self.capacity = capacity
        self._newer: dict[int, Owner] = {}
        self._older: dict[int, Owner] = {}
        self.forgotten = 0

    def note(self, sock: int, pid: int, comm: str) -> None:
        self.note_all({sock: Owner(pid, comm)})

    def note_all(self, owners: Mapping[int, Owner]) -> None:
        self._newer.update(owners)
        if len(self._newer) > self.capacity // 2:
            self.forgotten += len(self._older.keys() - self._newer.keys())
            self._older, self._newer = self._newer, {}

    def lookup(self, sock: int) -> Owner | None:
        owner = self._newer.get(sock)
        return owner if owner is not None else self._older.get(sock)

    def __len__(self) -> int:
        return len(self._newer.keys() | self._older.keys())
