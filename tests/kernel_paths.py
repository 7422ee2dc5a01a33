"""Which event source a probe takes on the running kernel, for tests that assert it.

Debian 12's 6.1 has no sock:sock_send_length (Linux 6.3+), so socket_io runs on kprobes
there (tests/vm/) and on raw tracepoints on newer kernels.
"""

from nettop.probes.socket_io import RAW_TRACEPOINT


def kernel_socket_source() -> str:
    return "kprobe" if RAW_TRACEPOINT.missing_hooks() else "raw_tracepoint"
