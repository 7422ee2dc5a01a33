"""Panel: a multi-line view (a histogram, an event log, a detail) that is rewritten every
interval but usually keeps its height.

Static.update() lays the whole screen out again by default. At 10,000 connections, with the
Queues tab shown, that was a layout of every widget and a repaint of the screen each frame:
the queue detail's histogram was rewritten with the same number of lines. A Panel asks for
a layout only when its content's height at its width changes; otherwise it repaints itself.
"""

from __future__ import annotations

from rich.protocol import is_renderable
from textual.visual import VisualType
from textual.widgets import Static


class Panel(Static):
    """A Static for auto-height content; FixedLine is the one for a fixed CSS height."""

    def __init__(self, content: VisualType = "", **kwargs) -> None:
        super().__init__(content, **kwargs)
        self.lines_shown: int | None = None  # the content's height when last laid out, None: unknown

    def update(self, content: VisualType = "", *, layout: bool | None = None) -> None:
        height = self.height_of(content)
        if layout is None:
            layout = height is None or height != self.lines_shown
        self.lines_shown = height
        super().update(content, layout=layout)

    def height_of(self, content: VisualType) -> int | None:
        """Lines the content takes at the panel's width; None where that is not known
        cheaply (not laid out yet, or markup that Textual parses itself)."""
        width = self.content_region.width if self.is_mounted else 0
        if width <= 0 or isinstance(content, str) or not is_renderable(content):
            return None
        console = self.app.console
        return len(console.render_lines(content, console.options.update_width(width), pad=False))

