"""socket_columns: socket_io's drained map as numpy columns, for the TCP and sizes panes.

Every interval the socket map hands back one entry per active (socket, process): 16,384 at
10,000 loopback connections. Decoding them entry by entry in Python (first as objects, then
as lists cut in C with a per-entry sum per process) took 25-42 ms for a recorded drain on the
development machine, where these numpy columns took 10-18 (bench/NOTES.md), and take 6-7 live
at 10,000 loopback connections (10.3 before) since the sums gather whole rows and the owners
are sorted only when looked up:
- each process's counters and histograms are summed with one sort and a sum over each
  process's run of rows;
- the TCP pane gets DrainedConnections: socket, pid and bytes as arrays and each entry's
  metadata as bytes. Rows are built only for those a pane asks for, and decoded once per
  socket (row_identity(), cached); the host view groups the columns (groups()).

Imported when the probe starts, in the thread that attaches it: numpy's import takes
~85-170 ms here, which the first frame does not wait for.
"""

from __future__ import annotations

import functools
import socket
import struct
from typing import Any, Iterator

import numpy as np

from nettop.model.histogram import Histogram
from nettop.model.sizes import IoSizes, ProcessSizes, SizesSnapshot
from nettop.model.tcp import ConnectionGroup, ConnectionRows, Identity, TcpConnection, TcpSnapshot
from nettop.probes.addresses import format_endpoint, kernel_text
from nettop.probes.owners import OwnerColumns
from nettop.probes.socket_io import BODY, KEY, META, SLOT_SIZE, SLOTS, VALUE_SIZE, protocol_name

_FAMILY = struct.calcsize("<16s16sHH")  # within the metadata: after laddr, raddr, lport, rport
#: struct sock_key
KEY_DTYPE = np.dtype({"names": ["socket", "tgid"], "formats": ["<u8", "<u4"], "offsets": [0, 8], "itemsize": KEY.size})
_LANES = BODY.size // 4  # the body as 32-bit lanes
#: struct sock_stats, with overlapping views: the body as 32-bit lanes (what is summed per
#: process), the byte counts as the 64-bit words they are, the metadata whole and in parts
_META_OFFSETS = {"family": _FAMILY, "protocol": _FAMILY + 2, "comm": META.size - 16}
_VALUE_FIELDS = {
    "names": ["lanes", "rx", "tx", "meta", "family", "protocol", "comm"],
    "formats": [("<u4", _LANES), "<u8", "<u8", f"V{META.size}", "<u2", "<u2", "S16"],
    "offsets": [0, 0, 8, BODY.size] + [BODY.size + _META_OFFSETS[k] for k in ("family", "protocol", "comm")],
}
VALUE_DTYPE = np.dtype({**_VALUE_FIELDS, "itemsize": VALUE_SIZE})
#: struct sock_slot (the "slots" layout): the value, then its key's socket and tgid
SLOT_DTYPE = np.dtype({
    "names": _VALUE_FIELDS["names"] + ["socket", "tgid"],
    "formats": _VALUE_FIELDS["formats"] + ["<u8", "<u4"],
    "offsets": _VALUE_FIELDS["offsets"] + [VALUE_SIZE, VALUE_SIZE + 8],
    "itemsize": SLOT_SIZE,
})
_IP = (socket.AF_INET, socket.AF_INET6)
#: one TCP row's metadata (struct sock_stats after its body): what the host view groups by
META_DTYPE = np.dtype({
    "names": ["raddr", "rport", "family", "comm"],
    "formats": ["V16", "<u2", "<u2", "S16"],
    "offsets": [struct.calcsize("<16s"), struct.calcsize("<16s16sH"), _FAMILY, META.size - 16],
    "itemsize": META.size,
})


@functools.lru_cache(maxsize=32768)
def row_identity(tgid: int, meta: bytes) -> Identity:
    """(pid, comm, family, laddr, lport, raddr, rport) of a TCP entry: the same bytes every
    interval, so decoded once per socket (bounded: ~2 sockets' worth per map entry)."""
    laddr_raw, raddr_raw, lport, rport, family, _, comm_raw = META.unpack(meta)
    fam, laddr = format_endpoint(family, laddr_raw)
    _, raddr = format_endpoint(family, raddr_raw)
    return tgid, kernel_text(comm_raw), fam, laddr, lport, raddr, rport


@functools.lru_cache(maxsize=32768)
def _row(tgid: int, meta: bytes, rx: int, tx: int) -> TcpConnection:
    """Cached as well: thousands of connections that trickle the same bytes each interval
    make the same rows (a hit costs a fifth of building a frozen row)."""
    return TcpConnection(*row_identity(tgid, meta), rx, tx)


class DrainedConnections(ConnectionRows):
    """The TCP pane's rows of one drain, as columns: socket, tgid, bytes (numpy arrays) and
    each entry's metadata (56 bytes), ~85 bytes a connection. top() sorts by the measure and
    then by socket address, so ties fall the same way every interval, and keeps its longest
    answer per measure: the TCP pane's 200 rows are then the head of tcp_info's 256."""

    def __init__(self, sockets: np.ndarray, tgids: np.ndarray, rx: np.ndarray, tx: np.ndarray, metas: bytes) -> None:
        self._sockets, self._tgids, self._rx, self._tx, self._metas = sockets, tgids, rx, tx, metas
        self._rows: tuple[TcpConnection, ...] | None = None
        self._tops: dict[tuple[str, bool], list[TcpConnection]] = {}

    def __len__(self) -> int:
        return len(self._sockets)

    def __getitem__(self, index):
        return self._all()[index]

    def __iter__(self):
        return iter(self._all())

    def __repr__(self) -> str:
        return f"DrainedConnections({len(self)} rows)"

    def _meta_of(self, i: int) -> bytes:
        return self._metas[i * META.size : (i + 1) * META.size]

    def row(self, i: int) -> TcpConnection:
        return _row(int(self._tgids[i]), self._meta_of(i), int(self._rx[i]), int(self._tx[i]))

    def _metas_each(self) -> list[bytes]:
        return np.frombuffer(self._metas, f"V{META.size}").tolist()  # one bytes object each, in C

    def _all(self) -> tuple[TcpConnection, ...]:
        if self._rows is None:
            self._rows = tuple(map(_row, self._tgids.tolist(), self._metas_each(), self._rx.tolist(), self._tx.tolist()))
        return self._rows

    def totals(self) -> tuple[int, int]:
        return int(self._rx.sum()), int(self._tx.sum())

    def identities(self) -> Iterator[tuple[Identity, int, int]]:
        return zip(map(row_identity, self._tgids.tolist(), self._metas_each()), self._rx.tolist(), self._tx.tolist())

    def top(self, measure: str, limit: int, reverse: bool = True) -> list[TcpConnection]:
        if len(self) <= limit:
            return list(self)
        kept = self._tops.get((measure, reverse))
        if kept is None or len(kept) < limit:
            values = {"rx": self._rx, "tx": self._tx, "total": self._rx + self._tx, "pid": self._tgids}[measure]
            ranks = values.astype(np.int64)  # per-interval bytes stay far below 2^63
            if reverse:
                ranks = -ranks
            # only rows that can make the cut are sorted: those ranked at or ahead of the
            # limit-th rank, all of its ties included. For the top 256 of 16,384 rows, 0.17-0.19 ms
            # where a lexsort of them all took 2.1-2.7 (distinct values, or 8 values repeated)
            cut = np.partition(ranks, limit - 1)[limit - 1]
            candidates = np.flatnonzero(ranks <= cut)
            order = candidates[np.lexsort((self._sockets[candidates], ranks[candidates]))][:limit]
            kept = self._tops[(measure, reverse)] = list(map(self.row, order.tolist()))
        return kept[:limit]


    def groups(self, by: str) -> list[ConnectionGroup]:
        """groups_of() over the columns: entries grouped by their raw key (the remote address's
        bytes and family, the tgid or the remote port), each raw key formatted once, and raw
        keys that format alike (an IPv4 address and its IPv4-mapped form) merged."""
        if not len(self):
            return []
        metas = np.frombuffer(self._metas, META_DTYPE)
        address_words = np.ascontiguousarray(metas["raddr"]).view("<u8").reshape(-1, 2)
        remote_codes, remote_firsts = group_codes(metas["family"], address_words[:, 0], address_words[:, 1])
        remote_names = [format_endpoint(family, raw)[1] for family, raw in
                        zip(metas["family"][remote_firsts].tolist(), metas["raddr"][remote_firsts].tolist())]
        if by == "raddr":
            codes, keys = remote_codes, remote_names
        else:
            column = self._tgids if by == "pid" else metas["rport"]
            codes, firsts = group_codes(column)
            keys = column[firsts].tolist()
        merged = {key: i for i, key in enumerate(dict.fromkeys(keys))}
        codes = np.array([merged[key] for key in keys], dtype=np.intp)[codes]
        count = len(merged)
        # in float64, exact while a group moves under 2^53 bytes (8 PiB) an interval
        rx, tx = (np.bincount(codes, weights=column, minlength=count).astype(np.uint64) for column in (self._rx, self._tx))
        sockets = np.bincount(codes[group_codes(codes, self._sockets)[1]], minlength=count).tolist()
        processes: list[dict[int, str]] = [{} for _ in range(count)]
        firsts = group_codes(codes, self._tgids)[1]
        for code, pid, comm in zip(codes[firsts].tolist(), self._tgids[firsts].tolist(), metas["comm"][firsts].tolist()):
            processes[code].setdefault(pid, kernel_text(comm))
        hosts: list[set[str]] = [set() for _ in range(count)]
        firsts = group_codes(codes, remote_codes)[1]
        for code, remote in zip(codes[firsts].tolist(), remote_codes[firsts].tolist()):
            hosts[code].add(remote_names[remote])
        return list(map(ConnectionGroup, merged, rx.tolist(), tx.tolist(), sockets, processes, map(frozenset, hosts)))


def group_codes(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A code per entry for each distinct tuple of the columns' values (0, 1, ... in sorted
    order), and the first entry of each code. One lexsort, where np.unique of a structured
    array of the same values compares them field by field (16 ms for 16,384 addresses)."""
    order = np.lexsort(columns[::-1])  # lexsort's last key sorts first; stable, so firsts are first
    new = np.zeros(len(order), dtype=bool)
    new[:1] = True
    for column in columns:
        ordered = column[order]
        new[1:] |= ordered[1:] != ordered[:-1]
    codes = np.empty(len(order), dtype=np.intp)
    codes[order] = np.cumsum(new) - 1
    return codes, order[new]


class SocketDecoder:
    """Drained map bytes into the TCP pane's rows, the sizes pane's per-process rows, and
    each socket's owner (for probes that see sockets outside process context)."""

    def __init__(self) -> None:
        self.owners = OwnerColumns.of(())  # the last interval's sockets and their owners

    def snapshots(self, keys: bytes, values: bytes, count: int, source: str, dropped: int) -> dict[str, Any]:
        """From a drained hash: keys and values back to back."""
        return self._snapshots(np.frombuffer(values, VALUE_DTYPE, count), np.frombuffer(keys, KEY_DTYPE, count),
                               source, dropped)

    def slot_snapshots(self, slots: bytes, source: str, dropped: int) -> dict[str, Any]:
        """From an interval's slots (IntervalSlots.take()): each entry with its key."""
        entries = np.frombuffer(slots, SLOT_DTYPE)
        return self._snapshots(entries, entries, source, dropped)

    def _snapshots(self, entries: np.ndarray, ids: np.ndarray, source: str, dropped: int) -> dict[str, Any]:
        written = entries["family"] != 0  # family 0: a CPU created the entry and has not written its metadata yet
        if not written.all():
            entries, ids = entries[written], ids[written]
        tgids, comms = ids["tgid"], entries["comm"]
        self.owners = OwnerColumns(ids["socket"], tgids, comms)
        processes = tuple(
            ProcessSizes(pid, kernel_text(comm), protocol, *_io_sizes(lanes))
            for (pid, protocol), (comm, lanes) in per_process_sums(tgids, entries).items()
        )
        family, rx, tx = entries["family"], entries["rx"], entries["tx"]
        tcp = np.isin(family, _IP) & (entries["protocol"] == socket.IPPROTO_TCP) & ((rx | tx) != 0)  # with traffic
        rows = DrainedConnections(ids["socket"][tcp], tgids[tcp], rx[tcp], tx[tcp], entries["meta"][tcp].tobytes())
        return {"tcp": TcpSnapshot(source, dropped, rows), "sizes": SizesSnapshot(source, dropped, processes)}


def per_process_sums(tgids: np.ndarray, entries: np.ndarray) -> dict[tuple[int, str], tuple[bytes, np.ndarray]]:
    """Each (pid, protocol)'s name (its process's last entry's, raw) and entries' bodies
    summed lane by lane, in 64 bits: one stable sort by (tgid, family, protocol), then one
    sum over each group's run of rows (faster here than np.add.reduceat, and linear in the
    groups where a mask per group is not). The rows are gathered as plain 32-bit words: a
    copy of whole rows, where one through the structured "lanes" field took 3.2 ms of 6.4
    for 16,384 entries (0.7 this way), and the names come from each group's last row, where
    np.unique over the pids took another 0.7."""
    if not len(entries):
        return {}
    groups = (tgids.astype(np.uint64) << 32) | (entries["family"].astype(np.uint64) << 16) | entries["protocol"]
    order = groups.argsort(kind="stable")
    ordered = groups[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    bounds = [*starts.tolist(), len(order)]
    words = np.ascontiguousarray(entries).view("<u4").reshape(len(entries), -1).take(order, axis=0)
    summed_of: dict[tuple[int, str], np.ndarray] = {}
    last_of: dict[int, int] = {}  # pid -> its last entry in drain order (the sort is stable)
    for group, start, end in zip(ordered[starts].tolist(), bounds, bounds[1:]):
        summed = words[start:end, :_LANES].sum(axis=0, dtype=np.uint64)
        pid = group >> 32
        last_of[pid] = max(last_of.get(pid, -1), int(order[end - 1]))
        process = (pid, protocol_name((group >> 16) & 0xFFFF, group & 0xFFFF))
        if process in summed_of:  # two families of one protocol (IPv4 and IPv6 TCP) are one row
            summed = summed + summed_of[process]
        summed_of[process] = summed
    comms = entries["comm"]
    return {process: (bytes(comms[last_of[process[0]]]), summed) for process, summed in summed_of.items()}


def _io_sizes(lanes: np.ndarray) -> tuple[IoSizes, IoSizes]:
    """(read, write) from summed lanes: bytes rx and tx are two 32-bit lanes each (low, high);
    the calls are the histogram's sum (the kernel adds each call to one slot and counts
    nothing else for it: one atomic add fewer per send and receive)."""
    c = lanes.tolist()
    total = (c[0] + (c[1] << 32), c[2] + (c[3] << 32))
    errors, slots = c[4:6], c[6:]
    per_direction = (slots[:SLOTS], slots[SLOTS:])
    return tuple(IoSizes(sum(s), total[d], errors[d], Histogram.from_slots(s)) for d, s in enumerate(per_direction))
