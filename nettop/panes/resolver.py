"""Reverse DNS names for the host view, looked up off the UI thread with a bounded cache.

`name()` never blocks: it answers from the cache or queues a lookup for one daemon
thread (a slow resolver delays names, never frames, and never holds up exit). Failed
lookups are cached too, so an address without a name is asked about once per `ttl`.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections import OrderedDict
from typing import Callable


def gethostbyaddr(address: str) -> str | None:
    try:
        return socket.gethostbyaddr(address)[0]
    except (OSError, UnicodeError):
        return None


class Resolver:
    def __init__(
        self,
        lookup: Callable[[str], str | None] = gethostbyaddr,
        capacity: int = 1024,
        pending: int = 64,
        ttl: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lookup = lookup
        self.capacity = capacity
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._answered = threading.Condition(self._lock)
        self._cache: OrderedDict[str, tuple[float, str | None]] = OrderedDict()
        self._asked: set[str] = set()
        self._queue: queue.Queue[str] = queue.Queue(maxsize=pending)
        self._thread: threading.Thread | None = None

    def name(self, address: str) -> str | None:
        with self._lock:
            hit = self._cache.get(address)
            if hit is not None and hit[0] > self.clock():
                self._cache.move_to_end(address)
                return hit[1]
            if address in self._asked:
                return hit[1] if hit else None
            try:
                self._queue.put_nowait(address)
            except queue.Full:
                return None  # asked again at the next frame
            self._asked.add(address)
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="nettop-resolver", daemon=True)
                self._thread.start()
        return hit[1] if hit else None

    def _work(self) -> None:
        while True:
            address = self._queue.get()
            found = self.lookup(address)
            with self._lock:
                self._asked.discard(address)
                self._cache[address] = (self.clock() + self.ttl, found)
                self._cache.move_to_end(address)
                while len(self._cache) > self.capacity:
                    self._cache.popitem(last=False)
                self._answered.notify_all()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """For tests: until every queued lookup has been answered."""
        with self._answered:
            return self._answered.wait_for(lambda: not self._asked, timeout)
