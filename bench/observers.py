"""What runs beside a workload: nothing (bare), nettop with every pane, or a tool users would
pick instead. Each is started, waited for until it really watches, measured, and stopped.
"""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ContextManager, Iterator

from common import NETTOP, PYTHON, Tool, exceptions_in

DAY = 86400


@dataclass
class Watching:
    """A running observer: the pid whose CPU is charged to it and where its output goes."""

    pid: int | None
    tool: Tool | None = None

    def problems(self) -> list[str]:
        return exceptions_in(self.tool.output()) if self.tool else []


@dataclass(frozen=True)
class Observer:
    key: str
    title: str
    kind: str  # "bare", "nettop", "capture" (copies packets to user space), "bpf" (BCC tool)
    start: Callable[[], ContextManager[Watching]]


@contextmanager
def nothing() -> Iterator[Watching]:
    yield Watching(pid=None)


def nettop_record(interval: float = 1.0, output: str = "/dev/null", duration: float = DAY,
                  probes: str | None = None) -> Callable:
    @contextmanager
    def start() -> Iterator[Watching]:
        argv = [NETTOP, "record", "--interval", f"{interval:g}", "--duration", f"{duration:g}", "--output", output,
                *(["--probes", probes] if probes else [])]
        with Tool(argv) as tool:
            tool.wait_for(r"^nettop: recording", timeout=120)
            yield Watching(tool.pid, tool)

    return start


def waits_for(argv: list[str], ready: str, settle: float = 0.0) -> Callable:
    """A tool in the foreground whose output line `ready` says it is watching."""

    @contextmanager
    def start() -> Iterator[Watching]:
        with Tool(argv) as tool:
            tool.wait_for(ready, timeout=120)
            time.sleep(settle)
            yield Watching(tool.pid, tool)

    return start


@contextmanager
def iptraf_ng() -> Iterator[Watching]:
    """iptraf-ng needs a terminal unless it forks into the background (-B): find the daemon by
    the log file only this run uses, and stop exactly that pid."""
    with tempfile.TemporaryDirectory(prefix="nettop-bench-iptraf-") as tmp:
        log = str(Path(tmp) / "iptraf.log")
        Tool(["iptraf-ng", "-i", "lo", "-B", "-L", log]).wait(timeout=10)
        pid = None
        deadline = time.monotonic() + 10
        while pid is None and time.monotonic() < deadline:
            for entry in Path("/proc").iterdir():
                try:
                    if entry.name.isdigit() and log.encode() in (entry / "cmdline").read_bytes():
                        pid = int(entry.name)
                except OSError:
                    continue
            time.sleep(0.1)
        if pid is None:
            raise RuntimeError("iptraf-ng did not start in the background")
        try:
            while not Path(log).exists() or "started" not in Path(log).read_text(errors="replace"):
                time.sleep(0.1)
            yield Watching(pid)
        finally:
            os.kill(pid, 15)
            for _ in range(50):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.1)


OBSERVERS: tuple[Observer, ...] = (
    Observer("bare", "bare (nothing watching)", "bare", nothing),
    Observer("nettop", "nettop record, all panes", "nettop", nettop_record()),
    Observer("iftop", "iftop -t -i lo", "capture",
             waits_for(["iftop", "-t", "-n", "-N", "-P", "-B", "-i", "lo"], r"^interface: lo", settle=1.0)),
    Observer("nethogs", "nethogs -t lo", "capture",
             waits_for(["nethogs", "-t", "-a", "-d", "1", "lo"], r"^Refreshing:")),
    Observer("iptraf", "iptraf-ng -i lo -B", "capture", iptraf_ng),
    Observer("minimal", "minimal BCC program, bytes per PID on sock_*_length", "bpf",
             waits_for(["/usr/bin/python3", str(Path(__file__).with_name("minimal_sock.py"))], r"^Tracing")),
    Observer("nettop-sockets", "nettop record --probes socket_io,retransmits,tcp_info", "nettop",
             nettop_record(probes="socket_io,retransmits,tcp_info")),
    Observer("empty-device-hooks", "empty programs on the netdev probe's six device tracepoints", "bpf",
             waits_for([PYTHON, str(Path(__file__).with_name("empty_hooks.py"))], r"^Tracing")),
    Observer("tcpretrans", "tcpretrans-bpfcc", "bpf",
             waits_for(["/usr/sbin/tcpretrans-bpfcc"], r"^Tracing retransmits|^TIME")),
    Observer("tcpstates", "tcpstates-bpfcc", "bpf", waits_for(["/usr/sbin/tcpstates-bpfcc"], r"^SKADDR")),
)


def nettop_with(probes: str) -> Observer:
    """`nettop:netdev+socket_io`: nettop recording only these probes, to see what each costs."""
    names = probes.replace("+", ",")
    return Observer(f"nettop:{probes}", f"nettop record --probes {names}", "nettop", nettop_record(probes=names))


def chosen(keys: str | None) -> tuple[Observer, ...]:
    """Observers by key (bare always comes first); `nettop:A+B` runs nettop with probes A and B."""
    if not keys:
        return OBSERVERS
    known = {o.key: o for o in OBSERVERS}
    out = [known["bare"]]
    for key in keys.split(","):
        if key.startswith("nettop:"):
            out.append(nettop_with(key.split(":", 1)[1]))
        elif key in known:
            out.append(known[key])
        else:
            raise SystemExit(f"bench: no observer {key} (there are: {', '.join(known)}, nettop:PROBE+PROBE)")
    return tuple(dict.fromkeys(out))
