"""Which process owns a kernel socket, learned where the kernel runs in process context.

Retransmits and many other TCP events fire in softirq or timer context, where the task on
the CPU is whoever was interrupted. Probes that see sockets in process context (socket_io's
send/recv, a connect()) note the owner here; probes that see softirq events look it up.
Bounded: least recently seen sockets are forgotten first. Only the sampler thread uses it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Owner:
    pid: int
    comm: str


class SocketOwners:
    def __init__(self, capacity: int = 65536) -> None:
        self.capacity = capacity
        self._owners: OrderedDict[int, Owner] = OrderedDict()
        self.forgotten = 0

    def note(self, sock: int, pid: int, comm: str) -> None:
        self._owners[sock] = Owner(pid, comm)
        self._owners.move_to_end(sock)
        while len(self._owners) > self.capacity:
            self._owners.popitem(last=False)
            self.forgotten += 1

    def lookup(self, sock: int) -> Owner | None:
        return self._owners.get(sock)

    def __len__(self) -> int:
        return len(self._owners)
