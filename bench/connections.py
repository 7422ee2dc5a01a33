"""Load for the benches: many long-lived TCP connections that trickle bytes, or a churn of
short-lived ones.

Modes (the two ends of long-lived connections are two processes, as the file limit here is
20,000 per process; each costs well under a core for 10,000 connections):
  serve   accept --count connections on --host:--port (in a test host's namespace, or lo)
  connect open --count connections to --host:--port
  churn   open, write, read and close loopback connections as fast as it can
Each connection writes `--size` bytes every `--period` seconds; the ends in this process
read what arrives. A line `N connections open` on stdout says the load is running.

Run: .venv/bin/python bench/connections.py serve --port 6000 --count 1000 &
     .venv/bin/python bench/connections.py connect --port 6000 --count 1000
"""

from __future__ import annotations

import argparse
import errno
import resource
import socket
import time
from contextlib import ExitStack, contextmanager
from typing import Iterator

from common import PYTHON, Tool

from nettop.testhosts import test_host

SCRIPT = __file__


def raise_fd_limit(count: int) -> None:
    """Room for `count` sockets (root may raise the hard limit too)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = count + 100
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, max(hard, need)))


def listen(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(4096)
    return listener


def accept(listener: socket.socket, count: int) -> list[socket.socket]:
    accepted = []
    for _ in range(count):
        conn, _ = listener.accept()
        conn.setblocking(False)
        accepted.append(conn)
    return accepted


def connect(address: tuple[str, int], count: int, batch: int = 500) -> list[socket.socket]:
    """In batches, so a listener in another process keeps up with its accept queue."""
    out = []
    while len(out) < count:
        for _ in range(min(batch, count - len(out))):
            out.append(socket.create_connection(address, timeout=10))
        for s in out[-batch:]:
            s.setblocking(False)
    return out


def trickle(sockets: list[socket.socket], seconds: float, size: int = 64, period: float = 0.5) -> int:
    """Every socket sends `size` bytes every `period` and reads what came; returns calls made."""
    payload = b"x" * size
    calls = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        start = time.monotonic()
        for s in sockets:
            try:
                s.send(payload)
            except (BlockingIOError, ConnectionError):
                pass
        for s in sockets:
            try:
                s.recv(65536)
            except (BlockingIOError, ConnectionError):
                pass
        calls += 2 * len(sockets)
        time.sleep(max(0.0, period - (time.monotonic() - start)))
    return calls


def churn(seconds: float, size: int = 64) -> tuple[int, int]:
    """Short-lived loopback connections, back to back; returns (completed, failed).

    The accepting side closes first, so TIME_WAIT lands there and the client's ephemeral
    ports are free at once."""
    listener = listen()
    address = listener.getsockname()
    payload = b"x" * size
    done = failed = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            client = socket.create_connection(address, timeout=5)
            server, _ = listener.accept()
            client.sendall(payload)
            server.recv(size)
            server.sendall(payload)
            server.close()
            client.recv(size)
            client.close()
            done += 1
        except OSError as exc:
            failed += 1
            if exc.errno not in (errno.EADDRNOTAVAIL, errno.ECONNRESET, errno.ETIMEDOUT, None):
                raise
    return done, failed


def _ends(stack: ExitStack, count: int, host: str, port: int, seconds: float, period: float, netns=None) -> None:
    args = ["--count", str(count), "--host", host, "--port", str(port), "--seconds", f"{seconds:g}",
            "--period", f"{period:g}"]
    prefix = ["ip", "netns", "exec", netns.name] if netns else []
    server = stack.enter_context(Tool([*prefix, PYTHON, SCRIPT, "serve", *args]))
    server.wait_for("^listening", timeout=30)
    client = stack.enter_context(Tool([PYTHON, SCRIPT, "connect", *args]))
    for end in (server, client):
        end.wait_for("connections open", timeout=120)


@contextmanager
def loopback_load(count: int, seconds: float, period: float = 1.0, port: int = 6201) -> Iterator[None]:
    """`count` trickling loopback connections for `seconds` (a serve and a connect process)."""
    with ExitStack() as stack:
        _ends(stack, count, "127.0.0.1", port, seconds, period)
        yield


@contextmanager
def test_host_load(count: int, seconds: float, hosts: int = 4, period: float = 1.0, port: int = 6202) -> Iterator[list]:
    """`count` trickling connections spread over `hosts` test hosts in network namespaces."""
    with ExitStack() as stack:
        made = [stack.enter_context(test_host()) for _ in range(hosts)]
        for index, host in enumerate(made):
            share = count // hosts + (1 if index < count % hosts else 0)
            _ends(stack, share, host.ip, port, seconds, period, netns=host)
        yield made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("serve", "connect", "churn"))
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--period", type=float, default=0.5)
    args = parser.parse_args()
    if args.mode == "churn":
        done, failed = churn(args.seconds, args.size)
        print(f"churn: {done} connections ({done / args.seconds:.0f}/s), {failed} failed", flush=True)
        return
    raise_fd_limit(args.count)
    if args.mode == "serve":
        listener = listen(args.host, args.port)
        print("listening", flush=True)
        sockets = accept(listener, args.count)
    else:
        sockets = connect((args.host, args.port), args.count)
    print(f"{len(sockets)} connections open", flush=True)
    trickle(sockets, args.seconds, args.size, args.period)


if __name__ == "__main__":
    main()
