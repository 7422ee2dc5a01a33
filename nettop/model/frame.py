"""One interval of every pane's data: the unit the sampler, the UI and recordings share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol


class PaneSnapshot(Protocol):
    def to_record(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Frame:
    time: float  # unix seconds at the end of the interval
    interval: float  # seconds the interval actually lasted
    panes: Mapping[str, PaneSnapshot] = field(default_factory=dict)
