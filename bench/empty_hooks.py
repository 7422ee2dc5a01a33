"""The floor of a per-packet hook: programs that return at once, attached raw to the device
tracepoints the netdev probe uses (or to those named). Run beside a workload
(bench/observers.py), it shows what attaching a program to every packet costs before the
program does anything: the kernel's dispatch to it, paid per event whatever the body.

Run as root: .venv/bin/python bench/empty_hooks.py [net:net_dev_queue,...]  (prints "Tracing")
"""

from __future__ import annotations

import signal
import sys
import time

from bcc import BPF

from nettop.probes.netdev import HOOKS


def program(hooks: tuple[str, ...]) -> str:
    """One empty RAW_TRACEPOINT_PROBE per hook ("category:name")."""
    return "".join(f"RAW_TRACEPOINT_PROBE({hook.split(':', 1)[1]}) {{ return 0; }}\n" for hook in hooks)


def main() -> None:
    hooks = tuple(sys.argv[1].split(",")) if len(sys.argv) > 1 else HOOKS
    bpf = BPF(text=program(hooks))  # noqa: F841 -- BCC attaches the raw tracepoints by name; held until exit
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"Tracing {len(hooks)} hooks", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
