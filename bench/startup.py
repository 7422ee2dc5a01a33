"""Startup as a user sees it: nettop in a real terminal (tmux), timed from launch to its first
frame and to each pane saying `live`; RSS once every pane is live.

`Dashboard` (the live app in a tmux session) is also what bench/scale.py measures CPU on.

Run as root: .venv/bin/python bench/startup.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time

from common import NETTOP, figure, rss_mb

from nettop.panes.registry import PANES


class Dashboard:
    """The live dashboard in a detached tmux session; `q` and then kill-session on exit."""

    def __init__(self, args: str = "", session: str = "nettop-bench", size: tuple[int, int] = (160, 40)) -> None:
        self.session = session
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        self.started = time.monotonic()
        subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", str(size[0]), "-y", str(size[1]),
                        f"exec {NETTOP} {args}"], check=True)
        out = subprocess.run(["tmux", "list-panes", "-t", session, "-F", "#{pane_pid}"],
                             capture_output=True, text=True, check=True)
        self.pid = int(out.stdout.split()[0])

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.session], capture_output=True, text=True).stdout

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.session, *keys])

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def wait_all_live(self, timeout: float = 60.0) -> tuple[float | None, dict[str, float], set[str]]:
        """Seconds to the first frame; per pane, seconds until it said `live` or `unavailable`;
        the unavailable ones. A pane's status shows only on its tab: the tabs are visited in turn,
        once the first frame is seen. Until then only the screen is read (~6 ms a capture): a
        visit of every tab takes ~0.2 s, and checking for the first frame once per visit had
        rounded it up to the next visit (its runs fell near 0.6, 0.8 and 1.03 s)."""
        first_frame = None
        live: dict[str, float] = {}
        unavailable: set[str] = set()
        while first_frame is None and self.elapsed() < timeout:
            if "nettop " in (screen := self.screen()) and "interval" in screen:
                first_frame = self.elapsed()
            else:
                time.sleep(0.005)
        while self.elapsed() < timeout:
            for number, spec in enumerate(PANES, start=1):
                if spec.key in live:
                    continue
                self.keys(str(number))
                time.sleep(0.02)
                text = self.screen()
                if f"{spec.title}: live" in text:
                    live[spec.key] = self.elapsed()
                elif f"{spec.title}: unavailable" in text:
                    live[spec.key] = self.elapsed()
                    unavailable.add(spec.key)
            if len(live) == len(PANES):
                break
            time.sleep(0.02)
        self.show_tab(1)
        return first_frame, live, unavailable

    def visible_pane(self) -> str | None:
        """The pane whose tab is shown, by its status line (`TCP: live ...`), which only the
        shown tab draws."""
        for line in self.screen().splitlines():
            for spec in PANES:
                if line.lstrip().startswith(f"{spec.title}: "):
                    return spec.key
        return None

    def show_tab(self, number: int, timeout: float = 10.0) -> None:
        """Open a tab and wait until it shows and stays: the dashboard's cost depends on the
        tab shown (only the visible pane is drawn). Under load the app reads keys late, so a
        tab key sent earlier (wait_all_live visits every tab) can switch away after this one
        seemed to show; checking once let the scale bench measure the Queues tab while it
        meant the TCP tab."""
        spec = PANES[number - 1]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.keys(str(number))
            time.sleep(0.3)
            if self.visible_pane() == spec.key:
                time.sleep(1.0)
                if self.visible_pane() == spec.key:
                    return
        raise RuntimeError(f"the dashboard did not open its {spec.title} tab")

    def close(self) -> None:
        self.keys("q")
        for _ in range(50):
            if subprocess.run(["tmux", "has-session", "-t", self.session], capture_output=True).returncode:
                return
            time.sleep(0.1)
        subprocess.run(["tmux", "kill-session", "-t", self.session], capture_output=True)

    def __enter__(self) -> "Dashboard":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def one_run() -> dict:
    with Dashboard(session="nettop-bench-startup") as dashboard:
        first_frame, settled, unavailable = dashboard.wait_all_live()
        rss = rss_mb(dashboard.pid)
    return {
        "first_frame_s": first_frame,
        "live_s": {k: v for k, v in settled.items() if k not in unavailable},
        "all_live_s": max(settled.values()) if len(settled) == len(PANES) else None,
        "unavailable": sorted(unavailable),
        "rss_mb": rss,
    }


def measure(runs: int) -> dict:
    results = [one_run() for _ in range(runs)]
    return {
        "runs": runs,
        "first_frame_s": figure([r["first_frame_s"] for r in results]),
        "all_live_s": figure([r["all_live_s"] for r in results]),
        "rss_mb": figure([r["rss_mb"] for r in results], 1),
        "pane_live_s": {
            spec.key: figure([r["live_s"].get(spec.key) for r in results]) for spec in PANES
        },
        "unavailable": sorted({k for r in results for k in r["unavailable"]}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(measure(args.runs), indent=2))


if __name__ == "__main__":
    main()
