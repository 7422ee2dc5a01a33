#!/usr/bin/env python3
"""Regenerate screenshots/*.svg from a recording (default: the shipped demo), at a fixed size.

One SVG per pane, each showing the same recorded moment. Usage:
  scripts/screenshots.py [--recording FILE] [--at SECONDS] [--size 120x36]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from nettop.app import NettopApp  # noqa: E402
from nettop.panes.registry import PANES  # noqa: E402
from nettop.replay import demo_path, open_replay  # noqa: E402
from nettop.timeline import Timeline  # noqa: E402


async def shoot(recording: str, at: float, size: tuple[int, int], folder: Path) -> list[Path]:
    source, frames, _ = open_replay(recording)
    app = NettopApp(source, timeline=Timeline(frames, max_frames=len(frames), max_rows=10**12),
                    replay=True, autopoll=False)
    written = []
    async with app.run_test(size=size) as pilot:
        await pilot.press("space")  # pause the replay
        # Walk up to the moment so panes with history (sparklines) have some.
        for _ in range(min(int(at), len(frames) - 1)):
            await pilot.press("full_stop")
        await pilot.pause()
        for number, spec in enumerate(PANES, start=1):
            await pilot.press(str(number))
            await pilot.pause()
            path = folder / f"{spec.key}.svg"
            app.save_screenshot(filename=path.name, path=str(folder))
            written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recording", default=demo_path())
    parser.add_argument("--at", type=float, default=45, help="intervals into the recording")
    parser.add_argument("--size", default="120x36")
    parser.add_argument("--output", type=Path, default=REPO / "screenshots")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    args.output.mkdir(parents=True, exist_ok=True)
    for path in asyncio.run(shoot(args.recording, args.at, (width, height), args.output)):
        print(path)


if __name__ == "__main__":
    main()
