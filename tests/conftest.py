"""Shared fixtures. Tests marked `root` load real BPF programs and make real traffic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from netns import test_host  # noqa: E402

from nettop import kernel  # noqa: E402


def _root_problem() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    return kernel.bcc_problem() or kernel.headers_problem() or kernel.tracefs_problem()


def pytest_collection_modifyitems(config, items):
    problem = _root_problem()
    if problem is None:
        return
    skip = pytest.mark.skip(reason=f"real-BPF test: {problem}")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def host():
    """One test host in a fresh network namespace (see tests/netns.py)."""
    with test_host() as h:
        yield h


class Recording:
    """`nettop record` running as a real subprocess; `frames` once it has finished."""

    def __init__(self, process: subprocess.Popen, path: Path) -> None:
        self.process = process
        self.path = path
        self.frames: list[dict] = []

    def finish(self, timeout: float = 60) -> list[dict]:
        _, stderr = self.process.communicate(timeout=timeout)
        assert self.process.returncode == 0, stderr
        self.frames = [json.loads(line) for line in self.path.read_text().splitlines()]
        used = {f"{pane}={data['source']}" for f in self.frames for pane, data in f["panes"].items() if "source" in data}
        print(f"nettop sources: {' '.join(sorted(used))}")  # which path each probe took (tests/vm/summary.py)
        return self.frames


@contextmanager
def start_recording(tmp_path: Path, duration: float, *extra: str, interval: float = 0.5) -> Iterator[Recording]:
    """Start `nettop record` and return once its probes are attached."""
    path = tmp_path / "record.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "nettop", "record", "--duration", str(duration), "--interval", str(interval),
         "--output", str(path), *extra],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        said = []
        line = process.stderr.readline()
        while line and not line.startswith("nettop: recording"):
            said.append(line.rstrip())
            line = process.stderr.readline()
        assert line, f"nettop record ended before attaching (exit {process.wait()}): {said[-3:]}"
        yield Recording(process, path)
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)


@pytest.fixture
def recording(tmp_path):
    """Factory: `with recording(duration) as rec: ...; frames = rec.finish()`."""
    return lambda duration, *extra, **kw: start_recording(tmp_path, duration, *extra, **kw)
