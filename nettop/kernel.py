"""What the running kernel and machine offer, checked without BCC or root where possible.

`doctor`, the probes' source selection and the CLI's start-up checks all ask here,
so the reasons a user reads are the same everywhere.
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path

TRACEFS_CANDIDATES = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))
CAP_PERFMON = 38
CAP_BPF = 39
CAP_SYS_ADMIN = 21


def tracefs() -> Path | None:
    """The mounted tracefs, or None (it is mounted on demand by scripts/setup-host.sh)."""
    for path in TRACEFS_CANDIDATES:
        if (path / "events").is_dir():
            return path
    return None


def tracepoint_exists(category: str, event: str) -> bool:
    root = tracefs()
    return root is not None and (root / "events" / category / event).is_dir()


def tracepoint_format(category: str, event: str) -> str | None:
    root = tracefs()
    if root is None:
        return None
    try:
        return (root / "events" / category / event / "format").read_text()
    except OSError:
        return None


def kprobes_supported() -> bool:
    root = tracefs()
    return root is not None and (root / "kprobe_events").exists()


@functools.cache
def _traceable_functions() -> frozenset[str]:
    root = tracefs()
    if root is None:
        return frozenset()
    try:
        text = (root / "available_filter_functions").read_text()
    except OSError:
        return frozenset()
    return frozenset(line.split()[0] for line in text.splitlines() if line)


def kprobe_exists(function: str) -> bool:
    """A kprobe can attach: the kernel has kprobes and the function is traceable."""
    return kprobes_supported() and function in _traceable_functions()


def effective_capabilities() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return 0


def can_trace() -> bool:
    """Root, or CAP_BPF with CAP_PERFMON (or CAP_SYS_ADMIN on older kernels)."""
    if os.geteuid() == 0:
        return True
    caps = effective_capabilities()
    has = lambda bit: bool(caps & (1 << bit))  # noqa: E731
    return (has(CAP_BPF) and has(CAP_PERFMON)) or has(CAP_SYS_ADMIN)


def privilege_problem() -> str | None:
    if can_trace():
        return None
    return "needs root (or CAP_BPF and CAP_PERFMON) to load BPF programs; run it with sudo"


def bcc_problem() -> str | None:
    try:
        import bcc  # noqa: F401
    except ImportError:
        return (
            "BCC is not installed for this Python: apt-get install python3-bpfcc, and use a venv "
            "made with --system-site-packages from /usr/bin/python3 (make run does both)"
        )
    except Exception as exc:  # a broken libbcc raises OSError and friends
        return f"BCC failed to load: {exc}"
    return None


def headers_problem(modules_root: Path = Path("/lib/modules"), kheaders: Path = Path("/sys/kernel/kheaders.tar.xz")) -> str | None:
    """BCC compiles with clang against kernel headers; it needs some, even mismatched ones."""
    release = platform.release()
    build = modules_root / release / "build"
    if (build / "include").is_dir():
        return None
    if kheaders.exists():
        return None
    return (
        f"no kernel headers for {release} (/lib/modules/{release}/build): "
        f"apt-get install linux-headers-{release}, or run make run to link the generic ones"
    )


def tracefs_problem() -> str | None:
    if tracefs() is not None:
        return None
    return "tracefs is not mounted: mount -t tracefs tracefs /sys/kernel/tracing"


def btf_available() -> bool:
    return Path("/sys/kernel/btf/vmlinux").exists()


def btf_typedef_exists(name: str) -> bool:
    """Whether the running kernel's BTF has a typedef `name` (btf_trace_<event>: its
    tracepoint can be attached BTF-typed)."""
    from nettop.btf import BtfError, running_kernel_btf

    try:
        btf = running_kernel_btf()
        return btf is not None and btf.typedef_id(name) is not None
    except BtfError:
        return False
