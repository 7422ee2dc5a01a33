"""Draining BPF hash maps once per interval, cheaply, for every probe.

BCC's `items_lookup_and_delete_batch()` allocates max_entries keys and values on each call
and yields one ctypes object per entry; with 10,000 sockets that Python-level work is most
of a poll. It also raises when a full map refills faster than it drains, and the entries it
had already deleted are lost with the exception. Here the buffers are allocated once, the
kernel fills them in a few batch calls, and the caller gets plain bytes: all of them at once
to unpack with `struct.iter_unpack` in C (socket_io), or entry by entry (`items()`).
"""

from __future__ import annotations

import ctypes as ct
import errno
import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Drained:
    count: int
    keys: bytes  # count * key_size
    values: bytes  # count * value_size; a per-CPU map's value is every CPU's copy back to back
    key_size: int
    value_size: int
    cpus: int = 1  # copies of the value per entry: BCC's possible CPUs for a per-CPU map

    def items(self) -> list[tuple[bytes, bytes]]:
        """(key, value) per entry."""
        k, v = self.key_size, self.value_size
        return [(self.keys[i * k : (i + 1) * k], self.values[i * v : (i + 1) * v]) for i in range(self.count)]

    def per_cpu_items(self) -> list[tuple[bytes, list[bytes]]]:
        """(key, each CPU's copy of the value) per entry of a per-CPU map."""
        size = self.value_size // self.cpus
        return [(key, [value[c * size : (c + 1) * size] for c in range(self.cpus)]) for key, value in self.items()]


class BatchDrainer:
    """Look up and delete every entry of one BCC hash table (plain or per-CPU).

    A full map refills while it is drained (each deletion makes room for an event), so a
    drain can meet more entries than the buffers hold: the kernel then stops at a bucket
    that does not fit, and the next call, with less room than that bucket, fails with
    ENOSPC. What was drained is returned and the rest waits for the next interval (seen at
    10,000 loopback connections, 20,000 sockets for a 16,384-entry map; it had made the
    TCP pane unavailable)."""

    def __init__(self, table: Any, lib: Any = None) -> None:
        if lib is None:
            from bcc.libbcc import lib
        self._lib = lib
        self._fd = table.map_fd
        self.key_size = ct.sizeof(table.Key)
        self.value_size = ct.sizeof(table.Leaf)  # for per-CPU tables BCC's Leaf spans every CPU
        self.cpus = getattr(table, "total_cpu", 1)
        self.capacity = table.max_entries
        self._keys = (ct.c_ubyte * (self.key_size * self.capacity))()
        self._values = (ct.c_ubyte * (self.value_size * self.capacity))()

    def drain(self) -> Drained:
        batch = ct.c_uint32(0)
        count = ct.c_uint32(0)
        total = 0
        while total < self.capacity:
            count.value = self.capacity - total
            result = self._lib.bpf_lookup_and_delete_batch(
                self._fd,
                ct.byref(batch) if total else None,
                ct.byref(batch),
                ct.byref(self._keys, self.key_size * total),
                ct.byref(self._values, self.value_size * total),
                ct.byref(count),
            )
            error = ct.get_errno()
            total += count.value
            if result != 0:
                if error == errno.ENOSPC and total:
                    break  # the rest next interval: see the class docstring
                if error != errno.ENOENT:
                    raise OSError(error, f"BPF_MAP_LOOKUP_AND_DELETE_BATCH: {os.strerror(error)}")
                break  # ENOENT: the whole map was walked
            if count.value == 0:
                break  # no progress (a concurrent update filled one bucket): the rest next time
        return Drained(
            total,
            ct.string_at(self._keys, self.key_size * total),
            ct.string_at(self._values, self.value_size * total),
            self.key_size,
            self.value_size,
            self.cpus,
        )
