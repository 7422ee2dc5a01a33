"""Frames over time: the live rewind buffer and the replay position are the same thing.

Live, new frames are appended (oldest evicted past the bounds) and the cursor follows the
newest until the user pauses or scrubs. Replaying, the frames come from a file and the
cursor is moved by a play timer or by the user. Pure: no Textual, no clocks.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import Iterable

from nettop.model.frame import Frame
from nettop.model.tcp import ConnectionRows

DEFAULT_MAX_FRAMES = 600
#: ~230-300 bytes a row in memory: ~60 MB of rewind at most (12 frames of 10,000 connections,
#: the whole 600 frames below ~330 rows a frame); the RSS target is 300 MB with every pane
DEFAULT_MAX_ROWS = 200_000


def frame_rows(frame: Frame) -> int:
    """Rows a frame holds (every tuple field of every snapshot, and a live TCP snapshot's
    ConnectionRows, counted as the rows they can build): the memory bound's unit."""
    rows = 0
    for snapshot in frame.panes.values():
        if dataclasses.is_dataclass(snapshot):
            for f in dataclasses.fields(snapshot):
                value = getattr(snapshot, f.name)
                if isinstance(value, (tuple, ConnectionRows)):
                    rows += len(value)
    return rows + 1


class Timeline:
    def __init__(
        self, frames: Iterable[Frame] = (), max_frames: int = DEFAULT_MAX_FRAMES, max_rows: int = DEFAULT_MAX_ROWS
    ) -> None:
        self.max_frames = max_frames
        self.max_rows = max_rows
        self._frames: deque[Frame] = deque()
        self._rows: deque[int] = deque()
        self._total_rows = 0
        self.evicted = 0
        self.cursor: int | None = None  # None: follow the newest frame
        for frame in frames:
            self.append(frame)

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def following(self) -> bool:
        return self.cursor is None

    @property
    def index(self) -> int | None:
        if not self._frames:
            return None
        return len(self._frames) - 1 if self.cursor is None else self.cursor

    def append(self, frame: Frame) -> None:
        rows = frame_rows(frame)
        self._frames.append(frame)
        self._rows.append(rows)
        self._total_rows += rows
        while len(self._frames) > 1 and (len(self._frames) > self.max_frames or self._total_rows > self.max_rows):
            self._frames.popleft()
            self._total_rows -= self._rows.popleft()
            self.evicted += 1
            if self.cursor is not None:
                self.cursor = max(0, self.cursor - 1)

    def current(self) -> Frame | None:
        index = self.index
        return None if index is None else self._frames[index]

    def frame_at(self, index: int) -> Frame:
        return self._frames[index]

    def pin(self) -> None:
        """Stop following: the display holds the frame it shows now."""
        if self.cursor is None and self._frames:
            self.cursor = len(self._frames) - 1

    def follow(self) -> None:
        self.cursor = None

    def step(self, count: int) -> bool:
        """Move by `count` frames; False when already at that end."""
        if not self._frames:
            return False
        self.pin()
        target = max(0, min(len(self._frames) - 1, self.cursor + count))
        moved = target != self.cursor
        self.cursor = target
        return moved

    def seek_seconds(self, seconds: float) -> bool:
        """Jump to the frame nearest `seconds` away in recorded time."""
        current = self.current()
        if current is None:
            return False
        goal = current.time + seconds
        best = min(range(len(self._frames)), key=lambda i: abs(self._frames[i].time - goal))
        self.pin()
        moved = best != self.cursor
        self.cursor = best
        return moved

    def to_start(self) -> None:
        if self._frames:
            self.cursor = 0

    def to_end(self) -> None:
        if self._frames:
            self.cursor = len(self._frames) - 1

    @property
    def at_end(self) -> bool:
        index = self.index
        return index is None or index == len(self._frames) - 1

    def span(self) -> tuple[float, float] | None:
        if not self._frames:
            return None
        return self._frames[0].time, self._frames[-1].time
