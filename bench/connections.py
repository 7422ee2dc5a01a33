"""Open N loopback TCP connections and keep each one trickling bytes: load for the benches.

Uses selectors in one process, so 10,000 connections cost one core at most; each
connection writes `size` bytes every `period` seconds in both directions.
"""

from __future__ import annotations

import argparse
import resource
import selectors
import socket
import time


def open_pairs(count: int, port: int = 0) -> tuple[socket.socket, list[tuple[socket.socket, socket.socket]]]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 2 * count + 100)), hard))
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(4096)
    pairs = []
    for _ in range(count):
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
        client.setblocking(False)
        server.setblocking(False)
        pairs.append((client, server))
    return listener, pairs


def trickle(pairs, seconds: float, size: int = 64, period: float = 0.5) -> int:
    """Each connection sends `size` bytes each way every `period`; returns calls made."""
    payload = b"x" * size
    calls = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        start = time.monotonic()
        for client, server in pairs:
            client.send(payload)
            server.send(payload)
            calls += 2
        for client, server in pairs:
            for s in (client, server):
                try:
                    s.recv(65536)
                    calls += 1
                except BlockingIOError:
                    pass
        time.sleep(max(0.0, period - (time.monotonic() - start)))
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    _, pairs = open_pairs(args.count)
    print(f"{len(pairs)} connections open", flush=True)
    trickle(pairs, args.seconds)


if __name__ == "__main__":
    main()
