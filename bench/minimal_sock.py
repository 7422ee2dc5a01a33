"""The issue's baseline: a minimal BCC program summing bytes per PID on sock:sock_send_length
and sock:sock_recv_length, nothing else. Run beside a workload (bench/observers.py) it
shows what one socket-hook program costs in the same run as nettop, so the per-event
targets compare against it rather than against a figure from another day.

Run as root: /usr/bin/python3 bench/minimal_sock.py  (prints "Tracing" once attached)
"""

from __future__ import annotations

import signal
import sys
import time

from bcc import BPF

PROGRAM = r"""
BPF_HASH(bytes_by_pid, u32, u64, 10240);

static __always_inline void add(int ret)
{
    if (ret <= 0)
        return;
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    u64 zero = 0;
    u64 *total = bytes_by_pid.lookup_or_try_init(&pid, &zero);
    if (total)
        __sync_fetch_and_add(total, ret);
}

TRACEPOINT_PROBE(sock, sock_send_length) { add(args->ret); return 0; }
TRACEPOINT_PROBE(sock, sock_recv_length) { add(args->ret); return 0; }
"""


def main() -> None:
    bpf = BPF(text=PROGRAM)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("Tracing", flush=True)
    table = bpf["bytes_by_pid"]
    while True:
        time.sleep(1)
        table.clear()  # a summary per second, as such a tool would print


if __name__ == "__main__":
    main()
