"""Startup as a user sees it: nettop in a real terminal (tmux), timed from launch to
its first frame, and to each pane saying `live`; RSS once every pane is live.

Run as root: .venv/bin/python bench/startup.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from nettop.panes.registry import PANES  # noqa: E402

SESSION = "nettop-bench-startup"


def capture() -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", SESSION], capture_output=True, text=True).stdout


def nettop_pid() -> int | None:
    out = subprocess.run(["tmux", "list-panes", "-t", SESSION, "-F", "#{pane_pid}"], capture_output=True, text=True)
    return int(out.stdout.split()[0]) if out.stdout.strip() else None


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def one_run(timeout: float = 60.0) -> dict:
    subprocess.run(["tmux", "kill-session", "-t", SESSION], capture_output=True)
    start = time.monotonic()
    subprocess.run(["tmux", "new-session", "-d", "-s", SESSION, "-x", "160", "-y", "40",
                    f"exec {REPO}/.venv/bin/nettop"], check=True)
    first_frame = None
    live: dict[str, float] = {}
    seen_panes: set[str] = set()
    try:
        while time.monotonic() - start < timeout:
            screen = capture()
            now = time.monotonic() - start
            if first_frame is None and "nettop " in screen and "interval" in screen:
                first_frame = now
            # Each pane's status line is visible only on its tab: visit them in turn.
            for number, spec in enumerate(PANES, start=1):
                if spec.key in live:
                    continue
                subprocess.run(["tmux", "send-keys", "-t", SESSION, str(number)])
                time.sleep(0.02)
                text = capture()
                if f"{spec.title}: live" in text:
                    live[spec.key] = time.monotonic() - start
                elif f"{spec.title}: unavailable" in text:
                    live[spec.key] = float("nan")
                seen_panes.add(spec.key)
            if first_frame is not None and len(live) == len(PANES):
                break
            time.sleep(0.02)
        pid = nettop_pid()
        rss = rss_mb(pid) if pid else 0.0
    finally:
        subprocess.run(["tmux", "send-keys", "-t", SESSION, "q"])
        time.sleep(0.5)
        subprocess.run(["tmux", "kill-session", "-t", SESSION], capture_output=True)
    return {"first_frame_s": first_frame, "live_s": live, "all_live_s": max(live.values(), default=None),
            "rss_mb": round(rss, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = [one_run() for _ in range(args.runs)]
    summary = {
        "first_frame_s": [round(r["first_frame_s"], 3) for r in runs],
        "all_live_s": [round(r["all_live_s"], 3) for r in runs],
        "rss_mb": [r["rss_mb"] for r in runs],
        "per_pane_live_s_median": {k: round(statistics.median(r["live_s"][k] for r in runs), 3) for k in runs[0]["live_s"]},
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
