"""socket_io's two entry layouts against a known workload, interval by interval (real BPF).

"slots" (an mmap-able array read in place, two halves in turn) and "hash" (drained with a
batch lookup-and-delete) must count the same bytes and calls; the slots must start every
interval empty, whichever half it writes, and count what does not fit as dropped."""

from __future__ import annotations

import ctypes
import os
import socket

import pytest

from nettop.errors import ProbeUnavailable
from nettop.probes import socket_io
from nettop.probes.maps import IntervalSlots
from nettop.probes.socket_io import SocketIoProbe

pytestmark = pytest.mark.root


def started(layout: str | None = None, max_sockets: int = 1024) -> SocketIoProbe:
    probe = SocketIoProbe(layout=layout, max_sockets=max_sockets)
    probe.select()
    probe.start()
    probe.poll(1.0)  # what ran before the test
    return probe


def connected_pair() -> tuple[socket.socket, socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        accepted, _ = server.accept()
    return client, accepted


def send(client: socket.socket, peer: socket.socket, writes: int, size: int) -> None:
    """`writes` sends of `size` bytes, all of them read by the peer before returning."""
    for _ in range(writes):
        client.sendall(b"x" * size)
    received = 0
    while received < writes * size:
        received += len(peer.recv(1 << 16))


def own_tcp_rows(snapshots, *ports: int) -> dict[int, tuple[int, int]]:
    """Local port -> (rx, tx) of this process's connections on the given ports."""
    return {c.lport: (c.rx_bytes, c.tx_bytes) for c in snapshots["tcp"].connections
            if c.pid == os.getpid() and c.lport in ports}


@pytest.mark.parametrize("layout", ["slots", "hash"])
def test_each_interval_counts_its_own_writes_in_either_layout(layout):
    probe = started(layout)
    client, peer = connected_pair()
    ports = client.getsockname()[1], peer.getsockname()[1]
    try:
        assert probe.layout == layout
        for interval, writes in enumerate((100, 7, 30, 1)):  # four intervals: each half twice
            send(client, peer, writes, 1000 + interval)
            snapshots = probe.poll(1.0)
            sent = writes * (1000 + interval)
            assert own_tcp_rows(snapshots, *ports) == {ports[0]: (0, sent), ports[1]: (sent, 0)}
            (process,) = [p for p in snapshots["sizes"].processes if p.pid == os.getpid() and p.protocol == "tcp"]
            assert (process.write.bytes, process.write.count, process.read.bytes) == (sent, writes, sent)
            assert snapshots["tcp"].dropped == 0
        assert own_tcp_rows(probe.poll(1.0), *ports) == {}  # a quiet interval has no rows
    finally:
        client.close()
        peer.close()
        probe.close()


def test_slots_that_do_not_fit_are_dropped_and_the_next_interval_starts_empty():
    """Sixteen slots a half: room for the machine's other sockets beside one test pair, so
    only a half left full (its counter or hash not reset) can keep the pair out."""
    probe = started("slots", max_sockets=16)
    pairs = [connected_pair() for _ in range(12)]  # 24 sockets for 16 slots
    try:
        for client, peer in pairs:
            send(client, peer, 5, 100)
        full = probe.poll(1.0)
        assert len(full["tcp"].connections) <= 16 and full["tcp"].dropped >= 8
        for _ in range(3):  # both halves again: their counters and hashes were reset
            client, peer = pairs[-1]
            send(client, peer, 3, 200)
            snapshots = probe.poll(1.0)
            ports = client.getsockname()[1], peer.getsockname()[1]
            assert own_tcp_rows(snapshots, *ports) == {ports[0]: (0, 600), ports[1]: (600, 0)}
            assert snapshots["tcp"].dropped == 0
    finally:
        for client, peer in pairs:
            client.close()
            peer.close()
        probe.close()


def keys_in(fd: int, key_size: int) -> int:
    from bcc.libbcc import lib

    key, count = (ctypes.c_ubyte * key_size)(), 0
    previous = None
    while lib.bpf_get_next_key(fd, previous, key) == 0:
        count += 1
        previous = bytes(key)
    return count


@pytest.mark.parametrize("reuse_below", [256, 0], ids=["hash kept", "hash replaced"])
def test_a_cleaned_half_is_empty_whether_its_hash_is_kept_or_replaced(monkeypatch, reuse_below):
    """A half with few claimed slots keeps its hash and has each slot's key deleted; a fuller
    one (here: any) gets a new hash. Either way the half comes back with no key, no claimed
    slot and zeroed slots, and counts the next interval right."""
    monkeypatch.setattr(IntervalSlots, "REUSE_BELOW", reuse_below)
    probe = started("slots")
    slots = probe._slots
    client, peer = connected_pair()
    ports = client.getsockname()[1], peer.getsockname()[1]
    try:
        for interval in range(4):  # each half cleaned twice
            send(client, peer, 10, 100 + interval)
            written, index = slots.half, slots._index_fds[slots.half]
            assert keys_in(index, slots.key_size) >= 2  # the pair's two sockets at least
            snapshots = probe.poll(1.0)
            assert own_tcp_rows(snapshots, *ports) == {ports[0]: (0, 1000 + 10 * interval),
                                                       ports[1]: (1000 + 10 * interval, 0)}
            slots._cleaning.result()
            assert (slots._index_fds[written] == index) == (reuse_below > 0)
            assert keys_in(slots._index_fds[written], slots.key_size) == 0
            assert slots._claimed[ctypes.c_int(written)].value == 0
            start = written * slots.capacity * slots.slot_size
            assert slots._map[start : start + 4 * slots.slot_size] == bytes(4 * slots.slot_size)
    finally:
        client.close()
        peer.close()
        probe.close()


def test_a_kernel_without_mmap_able_arrays_gets_the_hash(monkeypatch):
    real_load = socket_io.load_bpf

    def old_kernel(text, *args):
        if "BPF_F_MMAPABLE" in text:
            raise ProbeUnavailable("BPF compile/load failed: invalid argument")
        return real_load(text, *args)

    monkeypatch.setattr(socket_io, "load_bpf", old_kernel)
    probe = started()
    client, peer = connected_pair()
    try:
        assert probe.layout == "hash"
        send(client, peer, 10, 500)
        ports = client.getsockname()[1], peer.getsockname()[1]
        assert own_tcp_rows(probe.poll(1.0), *ports) == {ports[0]: (0, 5000), ports[1]: (5000, 0)}
    finally:
        client.close()
        peer.close()
        probe.close()
