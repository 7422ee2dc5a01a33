"""Log2 histograms drawn the way bpftrace's hist() prints them, as a Rich renderable.

    [64, 128)           1000 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
    [128, 256)             0 |                                                    |
    [4K, 8K)             500 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |

Empty buckets between the first and last non-empty one are shown, as bpftrace does, so
the gaps of a bimodal distribution are visible. The bar narrows to fit the width it is
given; at 80 columns it is bpftrace's 52 characters.
"""

from __future__ import annotations

from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

from nettop.model.histogram import Histogram, log2_bounds, log2_slot
from nettop.panes.text import inert

LABEL_WIDTH = 16
COUNT_WIDTH = 8
MAX_BAR = 52
MIN_BAR = 8
_SUFFIXES = ((1 << 60, "E"), (1 << 50, "P"), (1 << 40, "T"), (1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K"))


def power_label(value: int) -> str:
    """1024 -> 1K, 65536 -> 64K, 1000 -> 1000: suffixes only where exact, as bpftrace."""
    for size, suffix in _SUFFIXES:
        if value >= size and value % size == 0:
            return f"{value // size}{suffix}"
    return str(value)


def bucket_label(low: int, high: int) -> str:
    if high - low == 1:
        return f"[{power_label(low)}]"
    return f"[{power_label(low)}, {power_label(high)})"


def filled_buckets(histogram: Histogram) -> list[tuple[int, int, int]]:
    """Every log2 bucket from the first non-empty to the last, zeros included."""
    if not histogram.buckets:
        return []
    counts = {log2_slot(lo): n for lo, _, n in histogram.buckets}
    first, last = min(counts), max(counts)
    return [(*log2_bounds(slot), counts.get(slot, 0)) for slot in range(first, last + 1)]


def bar_width(width: int) -> int:
    return max(MIN_BAR, min(MAX_BAR, width - LABEL_WIDTH - COUNT_WIDTH - 3))


def hist_lines(histogram: Histogram, width: int = 80) -> list[str]:
    """The text of the histogram, one string per bucket, each at most `width` characters
    (for widths of at least LABEL_WIDTH + COUNT_WIDTH + 3 + MIN_BAR)."""
    rows = filled_buckets(histogram)
    if not rows:
        return []
    bar = bar_width(width)
    peak = max(n for _, _, n in rows)
    lines = []
    for low, high, n in rows:
        filled = (n * bar) // peak if peak else 0
        label = bucket_label(low, high)
        lines.append(f"{label:<{LABEL_WIDTH}}{n:>{COUNT_WIDTH}} |{'@' * filled:<{bar}}|")
    return lines


class HistogramView:
    """A titled histogram; renders to the console's width (see hist_lines)."""

    def __init__(self, histogram: Histogram, title: str | Text = "", empty: str = "(none)") -> None:
        self.histogram = histogram
        self.title = title
        self.empty = empty

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if self.title:
            title = self.title if isinstance(self.title, Text) else inert(self.title, "bold")
            title.overflow = "ellipsis"
            yield title
        lines = hist_lines(self.histogram, options.max_width)
        if not lines:
            yield Text(f"  {self.empty}", style="dim")
        for line in lines:
            yield Text(line, no_wrap=True, overflow="crop")


def render_plain(renderable, width: int = 80) -> str:
    """What a renderable shows at `width` columns, as plain text (for tests and `--ebpf`-style dumps)."""
    console = Console(width=width, record=True, color_system=None, file=_Null())
    console.print(renderable)
    return console.export_text()


class _Null:
    def write(self, _: str) -> int:
        return 0

    def flush(self) -> None:
        pass
