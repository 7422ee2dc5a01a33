"""The recording format: JSON lines, one Frame per line, versioned. See docs/recording-format.md."""

from __future__ import annotations

import json
from typing import IO, Any

from nettop.model.frame import Frame

FORMAT_VERSION = 1


def frame_to_record(frame: Frame) -> dict[str, Any]:
    return {
        "version": FORMAT_VERSION,
        "time": round(frame.time, 6),
        "interval": round(frame.interval, 6),
        "panes": {key: snapshot.to_record() for key, snapshot in frame.panes.items()},
    }


def write_frame(stream: IO[str], frame: Frame) -> None:
    stream.write(json.dumps(frame_to_record(frame), separators=(",", ":")) + "\n")
    stream.flush()
