"""FixedLine: a Static whose height does not follow its content (a one-line summary, the
top line, the time bar), so a new text repaints it without laying out the screen again.
Static.update() lays out by default: with nine such lines updated every interval (these
three kinds and six pane status lines), that was a layout and a repaint of every widget on
the screen each frame.

The same text is not drawn again: the top line and the time bar are rewritten twice a
second between frames (for the panes' states), and usually say what they said before."""

from __future__ import annotations

from textual.visual import VisualType
from textual.widgets import Static


class FixedLine(Static):
    """Give it a fixed height in the CSS (the .pane-summary, #topline and #timebar rules)."""

    def update(self, content: VisualType = "", *, layout: bool = False) -> None:
        if not layout and type(content) is type(self.content) and content == self.content:
            return
        super().update(content, layout=layout)
