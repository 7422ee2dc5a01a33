"""A scripted FrameSource for UI tests: frames and statuses chosen by the test."""

from __future__ import annotations

from typing import Iterable, Mapping

from nettop.model.frame import Frame
from nettop.probes.base import ProbeState, ProbeStatus


class ScriptedSource:
    def __init__(self, frames: Iterable[Frame] = (), statuses: Mapping[str, ProbeStatus] | None = None) -> None:
        self.frames = list(frames)
        self.status = dict(statuses or {})
        self.started = False
        self.closed = False
        self.polls = 0

    def start(self) -> None:
        self.started = True

    def statuses(self) -> dict[str, ProbeStatus]:
        return dict(self.status)

    def poll(self) -> Frame:
        self.polls += 1
        if not self.frames:
            return Frame(time=0.0, interval=1.0, panes={})
        return self.frames.pop(0) if len(self.frames) > 1 else self.frames[0]

    def close(self) -> None:
        self.closed = True


def live(*panes: str, source: str = "tracepoint") -> dict[str, ProbeStatus]:
    return {pane: ProbeStatus(ProbeState.LIVE, source) for pane in panes}


async def show_pane(pilot, key: str) -> None:
    """Switch the dashboard to a pane's tab. The tabs activate their first tab once mounted,
    which would undo a switch made before that: pause first, then switch, then let it draw."""
    await pilot.pause()
    pilot.app.action_pane(key)
    await pilot.pause()
