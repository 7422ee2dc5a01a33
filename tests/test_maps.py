"""The batch drainer against the kernel's answers, including a map that refills as it drains."""

from __future__ import annotations

import ctypes as ct
import errno

import pytest

from nettop.probes.maps import BatchDrainer, Drained


class Table:
    """What BatchDrainer reads of a BCC table."""

    map_fd = 3
    Key = ct.c_uint64
    Leaf = ct.c_uint64
    max_entries = 8


class KernelAnswers:
    """bpf_lookup_and_delete_batch as scripted calls: (entries copied, result, errno)."""

    def __init__(self, *answers: tuple[int, int, int]) -> None:
        self.answers = list(answers)
        self.calls = 0

    def bpf_lookup_and_delete_batch(self, fd, in_batch, out_batch, keys, values, count):
        copied, result, error = self.answers[self.calls]
        self.calls += 1
        count._obj.value = copied
        ct.set_errno(error)
        return result


def drainer(*answers) -> tuple[BatchDrainer, KernelAnswers]:
    kernel = KernelAnswers(*answers)
    return BatchDrainer(Table(), lib=kernel), kernel


def test_a_map_that_refills_while_drained_returns_what_was_drained():
    # 6 entries, then a bucket that does not fit in the 2 slots left: ENOSPC with nothing copied
    table, kernel = drainer((6, 0, 0), (0, -1, errno.ENOSPC))
    drained = table.drain()
    assert drained.count == 6 and len(drained.keys) == 48 and kernel.calls == 2


def test_the_whole_map_walked_ends_the_drain_and_other_errors_are_raised():
    table, _ = drainer((3, -1, errno.ENOENT))
    assert table.drain().count == 3
    table, _ = drainer((0, -1, errno.ENOSPC))  # no room even for the first bucket: a real error
    with pytest.raises(OSError, match="No space left"):
        table.drain()
    table, _ = drainer((0, -1, errno.EINVAL))
    with pytest.raises(OSError, match="Invalid argument"):
        table.drain()


def test_entries_come_apart_by_key_and_per_cpu_maps_by_cpu():
    drained = Drained(2, keys=b"k1k2", values=b"aAbB" + b"cCdD", key_size=2, value_size=4, cpus=2)
    assert drained.items() == [(b"k1", b"aAbB"), (b"k2", b"cCdD")]
    assert drained.per_cpu_items() == [(b"k1", [b"aA", b"bB"]), (b"k2", [b"cC", b"dD"])]
    assert Drained(0, b"", b"", 2, 4).items() == []


def test_a_per_cpu_tables_copies_are_counted_from_bcc():
    class PerCpuTable(Table):
        Leaf = ct.c_uint64 * 4
        total_cpu = 4

    drained = BatchDrainer(PerCpuTable(), lib=KernelAnswers((1, -1, errno.ENOENT))).drain()
    assert (drained.value_size, drained.cpus) == (32, 4) and len(drained.per_cpu_items()[0][1]) == 4
