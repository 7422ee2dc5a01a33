"""FixedLine: a Static whose height does not follow its content (a one-line summary, the
top line, the time bar), so a new text repaints it without laying out the screen again.
Static.update() lays out by default: with nine such lines updated every interval (these
three kinds and six pane status lines), that was a layout and a repaint of every widget on
the screen each frame.

The same text is not drawn again: the top line and the time bar are rewritten twice a
second between frames (for the panes' states), and usually say what they said before."""

from __future__ import annotations

from rich.text import Text
from textual.visual import VisualType
from textual.widgets import Static


class FixedLine(Static):
    """Give it a fixed height in the CSS (the .pane-summary, #topline and #timebar rules)."""

    def update(self, content: VisualType = "", *, layout: bool = False) -> None:
        if not layout and same_text(content, self.content):
            return
        super().update(content, layout=layout)


def same_text(new: VisualType, shown: VisualType) -> bool:
    """Equal strings, or Rich Texts equal in text, spans and base style (Text's == leaves out
    the base style). Anything else is drawn again: Textual's Content compares text only."""
    if isinstance(new, str) and isinstance(shown, str):
        return new == shown
    if isinstance(new, Text) and isinstance(shown, Text):
        return new == shown and new.style == shown.style and new.justify == shown.justify
    return False
