"""Formatting shared by every pane, and the one way kernel-supplied strings reach the screen.

Process and interface names come from the kernel and from users; they may hold terminal
escape sequences or Rich markup. `inert()` returns a Text that renders them literally.
"""

from __future__ import annotations

from rich.text import Text

_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F]}


def printable(value: str) -> str:
    """Control characters (ESC, CR, BEL ...) shown as \\xNN; nothing reaches the terminal raw."""
    return value.translate(_CONTROL)


def inert(value: str, style: str = "") -> Text:
    """A Text that shows `value` as typed: no markup parsing, no escape sequences."""
    return Text(printable(value), style=style, no_wrap=True)


def human_bytes(n: float) -> str:
    """1023 B, 1.0 KiB, 12.3 MiB: IEC units, as `ip -h` prints them."""
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    value = float(n)
    for unit in units:
        if abs(value) < 1024 or unit == units[-1]:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def rate(n_bytes: float, seconds: float) -> float:
    """Bytes per second; zero for an empty interval rather than a division error."""
    return n_bytes / seconds if seconds > 0 else 0.0


def human_rate(bytes_per_second: float) -> str:
    return f"{human_bytes(bytes_per_second)}/s"


def kb(n_bytes: int) -> str:
    """tcptop's RX_KB/TX_KB columns: whole kilobytes."""
    return str(n_bytes // 1024)


def endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


SPARK_BARS = " ▁▂▃▄▅▆▇█"


def sparkline(values: list[float], peak: float | None = None) -> str:
    """One character per value, scaled to `peak` (default: the largest); zero is a blank,
    any traffic at all at least the lowest bar."""
    top = max(values, default=0.0) if peak is None else peak
    if top <= 0:
        return " " * len(values)
    steps = len(SPARK_BARS) - 1
    return "".join(
        SPARK_BARS[0] if v <= 0 else SPARK_BARS[max(1, min(steps, round(steps * v / top)))] for v in values
    )
