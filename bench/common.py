"""What every bench shares: figures over repeated runs, a process's CPU and RSS, the kernel's
BPF run-time statistics, and background tools that die with the bench.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

REPO = Path(__file__).resolve().parent.parent
NETTOP = str(REPO / ".venv" / "bin" / "nettop")
PYTHON = str(REPO / ".venv" / "bin" / "python")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
BPF_STATS_SYSCTL = Path("/proc/sys/kernel/bpf_stats_enabled")

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def figure(values: Sequence[float], digits: int = 3) -> dict:
    """min/median/max of repeated runs, with the runs themselves."""
    values = [v for v in values if v is not None]
    if not values:
        return {"n": 0}
    return {
        "min": round(min(values), digits),
        "median": round(statistics.median(values), digits),
        "max": round(max(values), digits),
        "n": len(values),
        "runs": [round(v, digits) for v in values],
    }


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (p99 of 30 samples is the largest: no interpolation flattering it)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))
    return ordered[int(rank) - 1]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- one process's cost ------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of the process so far."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class CpuMeter:
    """CPU% of one core used by a process between start() and stop()."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._cpu = cpu_seconds(pid)
        self._wall = time.monotonic()

    def percent(self) -> float:
        return 100 * (cpu_seconds(self.pid) - self._cpu) / max(time.monotonic() - self._wall, 1e-9)


# -- the kernel's BPF run-time statistics ------------------------------------


@contextmanager
def bpf_stats_enabled() -> Iterator[None]:
    """kernel.bpf_stats_enabled=1 for the block only; the previous value comes back on every exit."""
    previous = BPF_STATS_SYSCTL.read_text().strip()
    BPF_STATS_SYSCTL.write_text("1")
    try:
        yield
    finally:
        BPF_STATS_SYSCTL.write_text(previous)


def bpf_prog_ids(pid: int) -> set[int]:
    """Ids of the BPF programs a process holds open (bpftool here cannot show owner pids)."""
    ids = set()
    fd_dir = Path(f"/proc/{pid}/fdinfo")
    for info in fd_dir.iterdir():
        try:
            match = re.search(r"^prog_id:\s+(\d+)", info.read_text(), re.M)
        except OSError:
            continue
        if match:
            ids.add(int(match.group(1)))
    return ids


def bpf_prog_runtime(ids: set[int]) -> dict[int, dict]:
    """run_time_ns and run_cnt per program, from `bpftool prog show -j`."""
    out = subprocess.run(["bpftool", "prog", "show", "-j"], check=True, capture_output=True, text=True).stdout
    return {
        p["id"]: {
            "name": p.get("name", "?"),
            "type": p.get("type", ""),
            "tag": p.get("tag", ""),
            "run_time_ns": p.get("run_time_ns", 0),
            "run_cnt": p.get("run_cnt", 0),
        }
        for p in json.loads(out)
        if p["id"] in ids
    }


def program_label(name: str, tag: str, duplicated: bool, prog_type: str = "") -> str:
    """`net:net_dev_queue`, with the program's tag when two programs hook the same event
    (the tag hashes the instructions, so it is the same from run to run). BCC names a raw
    tracepoint program by its event alone where that fits the kernel's 15 characters
    (`net_dev_xmit`), so the program's type says it is raw. A BTF-typed tracepoint program
    (type tracing) is named by nettop with its event cut to 15 characters."""
    match = re.fullmatch(r"tracepoint__(\w+?)__(\w+)", name)
    raw = re.fullmatch(r"raw_tracepoint__(\w+)", name)
    if match:
        label = f"{match.group(1)}:{match.group(2)}"
    elif raw or prog_type == "raw_tracepoint":
        label = f"{raw.group(1) if raw else name} (raw)"
    elif prog_type == "tracing":
        from nettop.probes.netdev import TP_BTF

        events = [hook.target.split(":", 1)[1] for hook in TP_BTF.hooks]
        label = f"{next((e for e in events if e.startswith(name)), name)} (tp_btf)"
    else:
        label = name
    return f"{label} [{tag[:6]}]" if duplicated else label


def bpf_runtime_delta(before: dict[int, dict], after: dict[int, dict], seconds: float) -> dict:
    """Per program: events and ns per event; in total: CPU-seconds and % of one core."""
    names = [p["name"] for p in after.values()]
    programs = {}
    total_ns = 0
    for prog_id, end in after.items():
        start = before.get(prog_id, {"run_time_ns": 0, "run_cnt": 0})
        ns, count = end["run_time_ns"] - start["run_time_ns"], end["run_cnt"] - start["run_cnt"]
        total_ns += ns
        label = program_label(end["name"], end["tag"], names.count(end["name"]) > 1, end.get("type", ""))
        programs[label] = {"events_per_s": count / seconds, "ns_per_event": ns / count if count else None}
    return {"programs": programs, "cpu_seconds": total_ns / 1e9, "core_percent": 100 * total_ns / 1e9 / seconds}


# -- background tools --------------------------------------------------------

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Tool:
    """A background process that is killed if the bench dies; its output lines are kept."""

    def __init__(self, argv: Sequence[str], cpu: int | None = None, env: dict | None = None) -> None:
        if cpu is not None:
            argv = ["taskset", "-c", str(cpu), *argv]
        self.argv = list(argv)
        self.process = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            preexec_fn=_die_with_parent,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        self.pid = self.process.pid
        self.lines: list[str] = []
        self._lock = threading.RLock()
        self._seen = threading.Condition(self._lock)
        self._readers = [
            threading.Thread(target=self._read, args=(stream,), daemon=True)
            for stream in (self.process.stdout, self.process.stderr)
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream) -> None:
        for line in stream:
            with self._seen:
                self.lines.append(line.rstrip("\n"))
                if len(self.lines) > 20000:
                    del self.lines[1000:11000]  # a chatty tool keeps its start and its end
                self._seen.notify_all()
        with self._seen:
            self._seen.notify_all()

    def wait_for(self, pattern: str, timeout: float = 60.0) -> str:
        """The first output line matching `pattern`; raises if the tool exits or times out first."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._seen:
            while True:
                for line in self.lines:
                    if regex.search(line):
                        return line
                if self.process.poll() is not None and not any(r.is_alive() for r in self._readers):
                    raise RuntimeError(f"{self.argv[0]} exited ({self.process.returncode}): {self.tail()}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{' '.join(self.argv)}: no {pattern!r} within {timeout}s: {self.tail()}")
                self._seen.wait(min(remaining, 0.5))

    def tail(self, count: int = 5) -> str:
        with self._lock:
            return " | ".join(self.lines[-count:])

    def output(self) -> list[str]:
        with self._lock:
            return list(self.lines)

    def wait(self, timeout: float | None = None) -> int:
        code = self.process.wait(timeout)
        for reader in self._readers:
            reader.join(timeout=2)
        return code

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.wait()

    def __enter__(self) -> "Tool":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def exceptions_in(lines: Sequence[str]) -> list[str]:
    """Lines that show a Python exception or a failed probe (nettop must never print one)."""
    pattern = re.compile(r"Traceback|Error|Exception|poll failed")
    return [line for line in lines if pattern.search(line)]
