"""Keeping Python's cyclic garbage collector off the frames the dashboard holds.

The rewind history keeps up to 200,000 rows, each a frozen dataclass the collector tracks,
and with 10,000 connections every interval adds ~16,000 more. CPython 3.11 re-scans its
whole old generation whenever a quarter of it is new: full collections of 85-230 ms about
one frame in three when recorded 10,000-connection frames were replayed through the app,
all of it wasted, since rows hold no reference cycles. So once a frame is kept, everything
alive is moved out of the collector's sight (gc.freeze(), which costs nothing per object),
and once a minute it is moved back and collected, so cyclic garbage from elsewhere
(Textual's widgets, events and tasks) still goes within a minute.

`nettop record` paces the collector the same way: the probes keep what they decoded of
10,000 sockets from one poll to the next (socket_io's cached rows), and without pacing
full collections of 50-190 ms fell in 3 or 4 of 10 polls at 10,000 loopback connections
(three runs).
"""

from __future__ import annotations

import gc
import time
from typing import Any, Callable

FULL_COLLECTION_SECONDS = 60.0


class CollectorPacing:
    """Young collections as usual; the rest of the heap scanned once per `full_every`."""

    def __init__(self, full_every: float = FULL_COLLECTION_SECONDS, clock: Callable[[], float] = time.monotonic,
                 collector: Any = gc) -> None:
        self.full_every = full_every
        self._clock = clock
        self._gc = collector
        self._last_full: float | None = None  # the first call collects: start-up garbage goes first
        self.full_collections = 0

    def frames_kept(self) -> None:
        """After the timeline took a frame (or a recording's frames), or `record` wrote one."""
        now = self._clock()
        if self._last_full is None or now - self._last_full >= self.full_every:
            self._gc.unfreeze()
            self._gc.collect()
            self._last_full = now
            self.full_collections += 1
        self._gc.freeze()

    def release(self) -> None:
        """Everything back in the collector's sight (the app is done with its frames)."""
        self._gc.unfreeze()
