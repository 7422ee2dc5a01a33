"""Cost of one interval: the poll (drain + snapshot of every probe) and the UI update.

The poll is timed on a real LiveSource in this process while the load runs in others. The
frames it returned are then fed to the app headless (`NettopApp(source, autopoll=False)`,
`accept_frame` in `run_test`, with the collector pacing `nettop` uses: nettop/heap.py),
timing each update: accept_frame (every pane's observe, the visible pane's show) plus one
`pilot.pause()` (layout and render of the visible tab), once with the TCP pane visible and
once with the hosts view; and that pane's show() alone. Three figures per update:
- `update_*_visible`: wall time from accept_frame until the last screen update it caused
  has been painted (Textual's `_display`, where the headless app also renders the update to
  the terminal text a real terminal would be sent, as the terminal driver does); it includes
  the wait for Textual's next screen refresh (at most 60 a second);
- `update_*_visible_cpu`: this process's CPU time over the whole pause;
- `update_*_visible_settled`: wall time until `pilot.pause()` returned. The pilot decides the
  app is idle by sleeping in 20 ms steps until one passes with under 1 ms of CPU, so this
  overstates the update by one or two such steps; kept to compare with runs before
  commit 9f722f3, which reported it as the update time.

Run as root: .venv/bin/python bench/poll_cost.py --connections 10000 --polls 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from common import figure, log, percentile
from connections import loopback_load

from nettop.model.frame import Frame
from nettop.probes.base import ProbeState
from nettop.probes.registry import build_probes
from nettop.sampler import LiveSource

UI_PANES = ("tcp", "hosts")


def poll_frames(polls: int, interval: float) -> tuple[list[float], list[Frame], dict]:
    """ms per poll, the frames, and the statuses the probes ended with; the collector paced
    as `nettop` and `nettop record` pace it (nettop/heap.py)."""
    from nettop.heap import CollectorPacing

    source = LiveSource(build_probes())
    heap = CollectorPacing()
    try:
        source.start()
        source.wait_attached()
        source.poll()
        times, frames = [], []
        next_poll = time.monotonic() + interval
        for _ in range(polls):
            time.sleep(max(0.0, next_poll - time.monotonic()))
            next_poll += interval
            started = time.perf_counter()
            frames.append(source.poll())
            times.append((time.perf_counter() - started) * 1000)
            heap.frames_kept()
        return times, frames, source.statuses()
    finally:
        heap.release()
        source.close()


async def _ui_times(frames: list[Frame], statuses: dict, size: tuple[int, int], visible: str) -> dict:
    """A fresh app per visible tab, so each pass starts from the same history. The first
    frame primes it untimed (the first frame kept collects the start-up heap, once); the
    collector's once-a-minute full collection is timed on its own after the others."""
    from tests.fakes import ScriptedSource, show_pane

    from nettop.app import NettopApp
    from nettop.heap import FULL_COLLECTION_SECONDS, CollectorPacing

    now = [0.0]
    heap = CollectorPacing(clock=lambda: now[0])  # as `nettop` runs it, on a clock the bench moves
    app = NettopApp(ScriptedSource(statuses=statuses), autopoll=False, heap=heap)
    shows: list[float] = []
    painted, settled, cpu = [], [], []
    async with app.run_test(size=size) as pilot:
        await show_pane(pilot, visible)
        pane = app.pane(visible)  # only the visible pane is drawn each interval
        app.accept_frame(frames[0])
        await pilot.pause()
        pane.show = _timed(pane.show, shows)
        last_paint = _paint_like_a_terminal(app)
        for frame in frames[1:]:
            started, cpu_started = time.perf_counter(), time.process_time()
            last_paint[0] = started
            app.accept_frame(frame)
            await pilot.pause()
            settled.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - cpu_started) * 1000)
            painted.append((last_paint[0] - started) * 1000)
        now[0] += FULL_COLLECTION_SECONDS
        started = time.perf_counter()
        heap.frames_kept()
        collection = (time.perf_counter() - started) * 1000
    return {f"update_{visible}_visible": painted, f"update_{visible}_visible_cpu": cpu,
            f"update_{visible}_visible_settled": settled, f"show_{visible}": shows, "full_collection": [collection]}


def _paint_like_a_terminal(app) -> list[float]:
    """Make the headless app turn each screen update (a CompositorUpdate, or None: nothing
    to draw) into terminal text, as the terminal driver does before writing it (headless,
    Textual skips that step), and note when the last one finished: [perf_counter]."""
    last_paint = [0.0]
    display = app._display

    def display_and_render(screen, update) -> None:
        display(screen, update)
        if update is not None:
            update.render_segments(app.console)
            last_paint[0] = time.perf_counter()

    app._display = display_and_render
    return last_paint


def _timed(show, into: list[float]):
    def timed(*args):
        started = time.perf_counter()
        show(*args)
        into.append((time.perf_counter() - started) * 1000)

    return timed


def ui_times(frames: list[Frame], statuses: dict, size: tuple[int, int] = (160, 50)) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for visible in UI_PANES:
        for key, values in asyncio.run(_ui_times(frames, statuses, size, visible)).items():
            out.setdefault(key, []).extend(values)
    return out


def p50_p99(values: list[float]) -> dict:
    return {"p50": round(percentile(values, 0.5), 2), "p99": round(percentile(values, 0.99), 2),
            "max": round(max(values), 2), "n": len(values)}


def measure(polls: int, interval: float = 1.0) -> dict:
    """With the load already running: poll and UI figures in ms, and the table sizes seen."""
    log(f"poll cost: {polls} polls at {interval:g}s")
    polled, frames, statuses = poll_frames(polls, interval)
    rows = [len(f.panes["tcp"].connections) if "tcp" in f.panes else 0 for f in frames]
    for pane, status in sorted(statuses.items()):
        if status.state is not ProbeState.LIVE:  # say so: a figure without its pane measures less
            log(f"poll cost: {pane} {status.state.name.lower()}: {status.reason}")
    dropped = [f.panes["tcp"].dropped if "tcp" in f.panes else 0 for f in frames]  # map full: --max-sockets
    log("poll cost: the same frames through the UI, headless")
    ui = ui_times(frames, statuses)
    worst_update = [max(ui[f"update_{key}_visible"][i] for key in UI_PANES) for i in range(len(frames) - 1)]  # wall
    return {
        "tcp_rows": figure(rows, 0),
        "tcp_dropped": figure(dropped, 0),
        "poll_ms": p50_p99(polled),
        **{f"{key}_ms": p50_p99(values) for key, values in ui.items()},
        "poll_plus_update_ms": p50_p99([p + u for p, u in zip(polled[1:], worst_update)]),  # frame 0 primed the UI
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--polls", type=int, default=20)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    with loopback_load(args.connections, seconds=args.polls * args.interval + 120):
        print(json.dumps(measure(args.polls, args.interval), indent=2))


if __name__ == "__main__":
    main()
