"""The panes the app shows, in tab order. A pane is a widget with `show(snapshot, interval)`.

Optional pane methods the app routes its keys to, when the active pane has them:
`cycle_sort()`, `reverse_sort()`, `set_filter(text)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from textual.widget import Widget

from nettop.panes.queues import QueuesPane
from nettop.panes.retransmits import RetransmitsPane
from nettop.panes.sizes import SizesPane
from nettop.panes.tcp import TcpPane


@dataclass(frozen=True)
class PaneSpec:
    key: str  # the snapshot key under Frame.panes and in recordings
    title: str
    factory: Callable[[], Widget]


PANES: tuple[PaneSpec, ...] = (
    PaneSpec("tcp", "TCP", TcpPane),
    PaneSpec("sizes", "Sizes", SizesPane),
    PaneSpec("retransmits", "Retransmits", RetransmitsPane),
    PaneSpec("queues", "Queues", QueuesPane),
)
