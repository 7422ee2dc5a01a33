"""The recording format: JSON lines, one Frame per line, versioned. See docs/recording-format.md.

Reading is strict about what it cannot trust (a corrupt line, an unknown version: one-line
errors naming the line) and lenient about what it can (a last line cut short by a crash
or a full disk: replay up to the last complete interval, with a warning).
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass
from typing import IO, Any, Iterator

from nettop.errors import NettopError
from nettop.model.frame import Frame
from nettop.model.registry import SNAPSHOT_TYPES

FORMAT_VERSION = 1


class RecordingError(NettopError):
    """A recording nettop cannot replay; the message names the file and line."""


def frame_to_record(frame: Frame) -> dict[str, Any]:
    return {
        "version": FORMAT_VERSION,
        "time": round(frame.time, 6),
        "interval": round(frame.interval, 6),
        "panes": {key: snapshot.to_record() for key, snapshot in frame.panes.items()},
    }


def frame_from_record(data: dict[str, Any]) -> Frame:
    """Unknown pane keys are skipped, so newer recordings still replay what this version knows."""
    panes = {
        key: SNAPSHOT_TYPES[key].from_record(value)
        for key, value in data["panes"].items()
        if key in SNAPSHOT_TYPES
    }
    return Frame(time=float(data["time"]), interval=float(data["interval"]), panes=panes)


def write_frame(stream: IO[str], frame: Frame) -> None:
    stream.write(json.dumps(frame_to_record(frame), separators=(",", ":")) + "\n")
    stream.flush()


def open_for_writing(path: str) -> IO[str]:
    if path.endswith(".gz"):
        return gzip.open(path, "wt", encoding="utf-8")
    return open(path, "w", encoding="utf-8")


@dataclass
class LoadedRecording:
    frames: list[Frame]
    warning: str | None = None  # e.g. a truncated last line


def _lines(path: str) -> Iterator[tuple[str, bool]]:
    """(line, complete) pairs; a gzip stream cut short ends the iteration early."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as stream:
        try:
            for line in stream:
                yield line, line.endswith("\n")
        except (EOFError, zlib.error, gzip.BadGzipFile):
            yield "", False


def load_recording(path: str) -> LoadedRecording:
    frames: list[Frame] = []
    warning = None
    try:
        lines = list(_lines(path))
    except FileNotFoundError:
        raise RecordingError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordingError(f"{path}: cannot read: {exc}") from None
    for number, (line, complete) in enumerate(lines, start=1):
        if not line.strip():
            if not complete and number == len(lines):
                warning = f"{path}: truncated after line {number - 1}; replaying {len(frames)} intervals"
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            if not complete and number == len(lines):
                warning = f"{path}: line {number} is cut short; replaying the {len(frames)} complete intervals"
                break
            raise RecordingError(f"{path}: line {number} is not valid JSON") from None
        if not isinstance(data, dict) or "version" not in data:
            raise RecordingError(f"{path}: line {number} is not a nettop interval (no version)")
        if data["version"] != FORMAT_VERSION:
            raise RecordingError(
                f"{path}: line {number} has format version {data['version']!r}; this nettop reads version {FORMAT_VERSION}"
            )
        try:
            frames.append(frame_from_record(data))
        except (KeyError, TypeError, ValueError) as exc:
            raise RecordingError(f"{path}: line {number} is missing or has a bad field ({exc})") from None
    if not frames:
        raise RecordingError(f"{path}: no intervals recorded")
    return LoadedRecording(frames, warning)
