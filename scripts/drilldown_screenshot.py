#!/usr/bin/env python3
"""screenshots/drilldown.svg: the host view's first row opened into its sockets, from a recording.

Usage: scripts/drilldown_screenshot.py --recording FILE [--at INTERVALS] [--row N] [--size 120x36]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from nettop.app import NettopApp  # noqa: E402
from nettop.replay import demo_path, open_replay  # noqa: E402
from nettop.timeline import Timeline  # noqa: E402


async def shoot(recording: str, at: int, row: int, size: tuple[int, int], folder: Path) -> Path:
    source, frames, _ = open_replay(recording)
    app = NettopApp(source, timeline=Timeline(frames, max_frames=len(frames), max_rows=10**12),
                    replay=True, autopoll=False)
    async with app.run_test(size=size) as pilot:
        await pilot.press("space")  # pause the replay, then walk to the moment
        for _ in range(min(at, len(frames) - 1)):
            await pilot.press("full_stop")
        app.action_pane("hosts")
        await pilot.pause()
        app.query_one("#hosts-table").focus()
        for _ in range(row):
            await pilot.press("down")
        await pilot.press("enter")
        await pilot.press("full_stop")  # one more interval with the detail open
        await pilot.pause()
        app.save_screenshot(filename="drilldown.svg", path=str(folder))
    return folder / "drilldown.svg"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recording", default=demo_path())
    parser.add_argument("--at", type=int, default=8, help="intervals into the recording")
    parser.add_argument("--row", type=int, default=0, help="host row to open (0: the busiest)")
    parser.add_argument("--size", default="120x36")
    parser.add_argument("--output", type=Path, default=REPO / "screenshots")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    args.output.mkdir(parents=True, exist_ok=True)
    print(asyncio.run(shoot(args.recording, args.at, args.row, (width, height), args.output)))


if __name__ == "__main__":
    main()
