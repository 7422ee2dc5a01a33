"""A process that writes and reads known sizes over TCP, UDP and a UNIX datagram socket.

Run as a script: `python sizes_workload.py PROTOCOL...`. Every write is one send() of a
known size and every read returns exactly that size: TCP reads use MSG_WAITALL on a
blocking socket (one recvmsg call, one tracepoint event), datagram reads get one whole
datagram. A reader thread in the same process drains while the main thread writes, so
the reads and the writes both belong to this PID. Prints "done" when finished.
"""

from __future__ import annotations

import socket
import sys
import threading

#: (size, count) per protocol. A UDP datagram cannot carry 64 KiB (65507 bytes at most
#: over IPv4), so UDP's big size is 65000: the [32K, 64K) bucket instead of [64K, 128K).
PLAN = {
    "tcp": ((100, 1000), (4096, 500), (65536, 100)),
    "udp": ((100, 1000), (4096, 500), (65000, 100)),
    "unix": ((100, 1000), (4096, 500), (65536, 100)),
}
BIG_BUFFER = 64 * 1024 * 1024


def pair(protocol: str) -> tuple[socket.socket, socket.socket]:
    """(writer, reader), both blocking."""
    if protocol == "tcp":
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        writer = socket.create_connection(listener.getsockname())
        reader, _ = listener.accept()
        listener.close()
        return writer, reader
    if protocol == "udp":
        reader = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        reader.setsockopt(socket.SOL_SOCKET, 33, BIG_BUFFER)  # SO_RCVBUFFORCE: no loss on loopback
        reader.bind(("127.0.0.1", 0))
        writer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        writer.connect(reader.getsockname())
        return writer, reader
    if protocol == "unix":
        writer, reader = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        writer.setsockopt(socket.SOL_SOCKET, 32, BIG_BUFFER)  # SO_SNDBUFFORCE: a 64 KiB datagram fits
        return writer, reader
    raise ValueError(protocol)


def run(protocol: str) -> None:
    writer, reader = pair(protocol)
    plan = PLAN[protocol]
    problems: list[str] = []

    def read_all() -> None:
        for size, count in plan:
            for _ in range(count):
                got = len(reader.recv(size, socket.MSG_WAITALL) if protocol == "tcp" else reader.recv(size + 1))
                if got != size:
                    problems.append(f"{protocol}: read {got}, wanted {size}")

    thread = threading.Thread(target=read_all)
    thread.start()
    for size, count in plan:
        payload = b"x" * size
        for _ in range(count):
            sent = writer.send(payload)
            if sent != size:
                problems.append(f"{protocol}: wrote {sent} of {size}")
    thread.join()
    writer.close()
    reader.close()
    if problems:
        raise SystemExit("; ".join(problems[:3]))


if __name__ == "__main__":
    for name in sys.argv[1:]:
        run(name)
    print("done", flush=True)
