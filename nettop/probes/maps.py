"""Reading BPF maps once per interval, cheaply, for every probe: hash maps drained in
batches (BatchDrainer), and socket_io's entries read in place from shared memory
(IntervalSlots).

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


BPF_MAP_TYPE_HASH = 1


class IntervalSlots:
    """Read an interval's entries in place from a BPF array both the kernel and this process
    map, instead of copying them out through the kernel (socket_io's "slots" layout).

    The array has two halves of `capacity` slots. The BPF side writes the half `epoch`
    names, claiming slots in it through a counter (`claimed`) and a hash per half from key
    to slot (`indexes`, an array of maps). take() switches `epoch` to the other half and
    copies the old half's claimed slots (one memcpy). A program that read the old epoch may
    still be running for a few microseconds: what it adds after the copy is lost, as with a
    hash drain, where a program can add to an entry the drain has just deleted.

    The old half is then cleaned in a background thread, because the kernel returns from
    updating an array-of-maps element only after every BPF program that could still be
    running has finished (a synchronize_rcu(): 5-7 ms of waiting here idle; under load, a
    poll that waited for it took 20 ms p50 and 54 max of wall time for 9 of CPU). After
    that, nothing writes the half, and its hash is emptied: a half with few claimed slots
    (under REUSE_BELOW) keeps its hash, stored again into its element for the wait, and each
    claimed slot's key is deleted from it; a fuller half gets a new empty hash, since
    creating one (its 16,384 entries preallocated) costs less than that many deletions (~2
    us each: 400 keys took 1.0 ms, a new hash 0.6-0.7). Its claimed slots are then zeroed,
    its counter reset, and any key left in the hash (a late claim's, in a new one) deleted,
    so no key points at a slot of a past interval. The next take() waits for the cleaning
    before it switches back (it has had an interval to finish).

    Measured on the development machine, 16,384 entries of 352 bytes: ~2.5 ms of CPU a
    take() and its cleaning, where the batch lookup-and-delete of the same entries took
    9-14 (bench/NOTES.md). Nearly idle (a few claimed slots, thread time, p50 of 10): a
    cleaning 0.12-0.19 ms keeping the hash, 0.64-0.74 replacing it."""

    REUSE_BELOW = 256  # claimed slots under which a half's hash is emptied key by key, not replaced

    def __init__(self, slots: Any, epoch: Any, claimed: Any, indexes: Any, index_template: Any) -> None:
        """The BCC tables of the program; each half's hash is made like `index_template`,
        the hash its array of maps was declared with (the kernel refuses any other shape)."""
        import mmap
        from concurrent.futures import ThreadPoolExecutor

        from bcc.libbcc import lib

        self._lib = lib
        self._lib.bcc_create_map.restype = ct.c_int
        self._lib.bcc_create_map.argtypes = [ct.c_int, ct.c_char_p, ct.c_int, ct.c_int, ct.c_int, ct.c_int]
        self._epoch, self._claimed, self._indexes = epoch, claimed, indexes
        self.slot_size = ct.sizeof(slots.Leaf)
        self.key_offset = slots.Leaf.key.offset  # struct sock_slot: the value, then its key
        self.key_size = ct.sizeof(index_template.Key)
        self._index_value_size = ct.sizeof(index_template.Leaf)
        self.capacity = index_template.max_entries
        length = slots.max_entries * self.slot_size  # both halves
        self._map = mmap.mmap(slots.map_fd, length + (-length % mmap.PAGESIZE), mmap.MAP_SHARED,
                              mmap.PROT_READ | mmap.PROT_WRITE)
        self._address = ct.addressof(ct.c_char.from_buffer(self._map))  # for memset; the export ends here
        self._index_fds: list[int] = []
        try:
            for half in range(2):
                self._index_fds.append(self._new_index())
                indexes[ct.c_int(half)] = ct.c_int(self._index_fds[half])
        except Exception:
            self._close_maps()
            raise
        self.half = 0  # the half being written
        epoch[ct.c_int(0)] = ct.c_uint32(0)
        self._cleaner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nettop-slots")
        self._cleaning: Any = None  # the Future of the last half's cleaning

    def _new_index(self) -> int:
        fd = self._lib.bcc_create_map(BPF_MAP_TYPE_HASH, b"slot_index", self.key_size, self._index_value_size,
                                      self.capacity, 0)
        if fd < 0:
            raise OSError(-fd, f"creating a slot index map: {os.strerror(-fd)}")
        return fd

    def _region(self, half: int) -> tuple[int, int]:
        """(offset, length) of a half's claimed slots."""
        count = min(self._claimed[ct.c_int(half)].value, self.capacity)
        return half * self.capacity * self.slot_size, count * self.slot_size

    def take(self) -> bytes:
        """The slots claimed in the interval that just ended, back to back (slot_size each);
        entries not yet written have family 0, as the kernel leaves them."""
        if self._cleaning is not None:
            self._cleaning.result()  # the half about to be written again is clean (raises its error)
        old = self.half
        self.half = 1 - old
        self._epoch[ct.c_int(0)] = ct.c_uint32(self.half)
        start, length = self._region(old)
        taken = self._map[start : start + length]
        self._cleaning = self._cleaner.submit(self._clean, old)
        return taken

    def _clean(self, half: int) -> None:
        keep = self._claimed[ct.c_int(half)].value < self.REUSE_BELOW  # late claims may add a few
        index = self._index_fds[half] if keep else self._new_index()
        self._indexes[ct.c_int(half)] = ct.c_int(index)  # returns once no program can write the half
        start, length = self._region(half)  # late claims included
        if keep:  # every key in it is a claimed slot's, written by a program that has finished
            for key in self._claimed_keys(start, length):
                self._lib.bpf_delete_elem(index, key)
        else:
            os.close(self._index_fds[half])
            self._index_fds[half] = index
            self._delete_late_claims(index)
        ct.memset(self._address + start, 0, length)
        self._claimed[ct.c_int(half)] = ct.c_uint64(0)

    def _delete_late_claims(self, index: int) -> None:
        """Keys a program still claiming in the old half put into its new hash."""
        key = (ct.c_ubyte * self.key_size)()
        for _ in range(self.capacity):
            if self._lib.bpf_get_first_key(index, key, self.key_size) != 0:
                break
            self._lib.bpf_delete_elem(index, key)

    def _claimed_keys(self, start: int, length: int) -> list[bytes]:
        """The keys the claimed slots were written with; a slot left empty (its socket was
        claimed by another CPU first) has none."""
        empty = bytes(self.key_size)
        keys = (self._map[at : at + self.key_size]
                for at in range(start + self.key_offset, start + length, self.slot_size))
        return [key for key in keys if key != empty]

    def close(self) -> None:
        self._cleaner.shutdown(wait=True)
        self._close_maps()

    def _close_maps(self) -> None:
        for fd in self._index_fds:
            os.close(fd)
        self._index_fds = []
        self._map.close()
