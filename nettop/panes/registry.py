"""The panes the app shows, in tab order. A pane is a widget with `show(snapshot, interval)`.

Optional pane methods the app routes its keys to, when the active pane has them:
`cycle_sort()`, `reverse_sort()`, `set_filter(text)`.

Panes that keep history (sparklines, cumulative sums) also implement
`observe(snapshot, interval)`, called once for every new interval in time order even while
the display is paused, and `reset_history()`, called when the display jumps in time
(seeking a replay, returning to live); `show()` then only draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from textual.widget import Widget

from nettop.model.frame import Frame
from nettop.panes.hosts import HostsPane
from nettop.panes.queues import QueuesPane
from nettop.panes.retransmits import RetransmitsPane
from nettop.panes.sizes import SizesPane
from nettop.panes.tcp import TcpPane
from nettop.panes.wifi import WifiPane


@dataclass(frozen=True)
class PaneSpec:
    key: str  # the snapshot key under Frame.panes and in recordings
    title: str
    factory: Callable[[], Widget]
    snapshot_key: str | None = None  # whose probe status the pane shows, when not its own key
    whole_frame: bool = False  # show() gets the whole Frame: for panes that join several snapshots

    @property
    def status_key(self) -> str:
        return self.snapshot_key or self.key

    def data(self, frame: Frame) -> Any:
        """What this pane's show() is given from a frame."""
        return frame if self.whole_frame else frame.panes.get(self.status_key)


PANES: tuple[PaneSpec, ...] = (
    PaneSpec("tcp", "TCP", TcpPane),
    PaneSpec("hosts", "Hosts", HostsPane, snapshot_key="tcp", whole_frame=True),
    PaneSpec("sizes", "Sizes", SizesPane),
    PaneSpec("retransmits", "Retransmits", RetransmitsPane),
    PaneSpec("queues", "Queues", QueuesPane),
    PaneSpec("wifi", "WiFi", WifiPane),
)
