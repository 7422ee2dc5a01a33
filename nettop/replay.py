"""Replaying a recording: a FrameSource whose frames are already there. No root, no BCC."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from nettop.model.frame import Frame
from nettop.probes.base import ProbeState, ProbeStatus
from nettop.recording import load_recording

DEMO_RECORDING = "demo.jsonl.gz"


def demo_path() -> str:
    return str(resources.files("nettop") / "data" / DEMO_RECORDING)


class ReplaySource:
    """Statuses say each pane is replayed from the recording, with the source it was recorded from."""

    def __init__(self, frames: list[Frame], name: str) -> None:
        self.frames = frames
        self.name = name
        sources: dict[str, str] = {}
        for frame in frames:
            for key, snapshot in frame.panes.items():
                sources.setdefault(key, getattr(snapshot, "source", "") or "recorded")
        self._statuses = {
            key: ProbeStatus(ProbeState.LIVE, f"replay of {Path(name).name}, recorded via {src}")
            for key, src in sources.items()
        }

    def start(self) -> None:
        pass

    def statuses(self) -> dict[str, ProbeStatus]:
        return dict(self._statuses)

    def poll(self) -> Frame:
        raise RuntimeError("a replay is not polled; the app steps its timeline")

    def close(self) -> None:
        pass


def open_replay(path: str) -> tuple[ReplaySource, list[Frame], str | None]:
    loaded = load_recording(path)
    return ReplaySource(loaded.frames, path), loaded.frames, loaded.warning
