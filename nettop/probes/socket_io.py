"""socket_io: bytes and I/O sizes per socket and process, one BPF program for two panes.

Feeds the TCP throughput pane (tcptop) and the socket sizes pane (socksize). Both hook
the same per-syscall events, so they share one program and one map lookup per event:
the hot path is a hash lookup keyed by (socket, process) and a few atomic adds.

Kernel hooks, best first:
  raw_tracepoint  sock_send_length, sock_recv_length (Linux 6.3+; process context): no trace
              record is filled per call; family and protocol are read from the socket once
              per entry instead
  tracepoint  sock:sock_send_length, sock:sock_recv_length, the same events as perf
              tracepoints (their record carries family and protocol)
  kprobe      __sock_sendmsg (or sock_sendmsg before it existed) and sock_recvmsg, entry and
              return (the book's socksize route). Kernels with __sock_sendmsg (6.1.56+, 6.6+)
              send user data through it and leave sock_sendmsg to in-kernel callers; hooking
              it counts the same calls as the tracepoints (checked on Debian's 6.1 in the VM);
              family and protocol read once per entry, as on the raw route
Socket addresses are read once per socket per interval, at offsets from the running
kernel's BTF (never through the installed headers, which may be for another kernel).

Overhead: one hash lookup and two atomic adds (bytes, one histogram slot) per send/recv
syscall; the calls are the histogram's sum, not a third counter (that add cost ~25 ns of
~230 per event in bench/hook_cost.py here). 100-310 ns of BPF run time per call measured on
loopback (docs/benchmarks.md). Entries: one (336 bytes, and its 16-byte key) per active
(socket, pid) per interval, bounded by --max-sockets; entries that do not fit are counted as
dropped. Two layouts, best first:
  slots   an mmap-able array of two halves that BPF fills in turn, a hash per half from key to
          slot (Linux 5.12+: fetch-and-add, mmap-able arrays): the poll copies the half that
          just ended from shared memory, ~2.5 ms of CPU for 16,384 entries with its cleaning
          (nettop/probes/maps.py: IntervalSlots); 15.1 MB of kernel memory at 16,384
  hash    one hash drained with a batch lookup-and-delete, 9-14 ms for the same entries;
          6.5 MB of kernel memory, and a 5.5 MB buffer in the process to drain it into
The poll reads the entries as numpy columns (nettop/probes/socket_columns.py): 16,384 in ~6
ms on the development machine (bench/NOTES.md).

Example (the TCP pane):
  PID    COMM     LADDR:LPORT        RADDR:RPORT        RX_KB  TX_KB
  4123   iperf3   127.0.0.1:5201     127.0.0.1:40212    1048576     0
"""

from __future__ import annotations

import socket
import struct
from typing import Any, Mapping

from nettop.errors import ProbeUnavailable
from nettop.probes.base import EventSource, Probe, kprobes, load_bpf, raw_tracepoints, tracepoints
from nettop.probes.cbits import DROPPED_C, LOG2_SLOT_C
from nettop.probes.maps import BatchDrainer, IntervalSlots
from nettop.probes.layout import SOCK_ADDRESS_FIELDS, Field, offset_defines
from nettop.probes.owners import SocketOwners

SLOTS = 32
DEFAULT_MAX_SOCKETS = 16384
RAW_TRACEPOINT = EventSource("raw_tracepoint", raw_tracepoints("sock:sock_send_length", "sock:sock_recv_length"))
TRACEPOINT = EventSource("tracepoint", tracepoints("sock:sock_send_length", "sock:sock_recv_length"))
KPROBE = EventSource("kprobe", kprobes("__sock_sendmsg", "sock_recvmsg"))
KPROBE_BEFORE_6_6 = EventSource("kprobe", kprobes("sock_sendmsg", "sock_recvmsg"))

KPROBE_FIELDS = (
    Field("OFF_SOCKET_SK", "socket", "sk"),
    Field("OFF_SK_PROTOCOL", "sock", "sk_protocol"),
)

PROTOCOLS = {socket.IPPROTO_TCP: "tcp", socket.IPPROTO_UDP: "udp"}

# struct sock_stats, as laid out by the C below (little-endian, no padding): the counters
# and histogram (summed per process: socket_columns), then the metadata written once per entry.
BODY = struct.Struct(f"<2Q2I{2 * SLOTS}I")  # bytes rx/tx, errors rx/tx, rx slots, tx slots
META = struct.Struct("<16s16sHHHH16s")  # laddr, raddr, lport, rport, family, protocol, comm
VALUE_SIZE = BODY.size + META.size
KEY = struct.Struct("<QI4x")  # struct sock_key: socket, tgid
SLOT_SIZE = VALUE_SIZE + KEY.size  # struct sock_slot: the value, then its key
LAYOUTS = ("slots", "hash")  # best first: see _SLOT_ENTRIES_C

_COMMON_C = r"""
#include <uapi/linux/ptrace.h>
#include <linux/socket.h>
#include <uapi/asm-generic/errno-base.h>

#define SLOTS %(slots)d
#define MAX_SOCKETS %(max_sockets)d
#define DIR_RX 0
#define DIR_TX 1
#ifndef AF_UNIX
#define AF_UNIX 1
#endif
%(offsets)s
%(log2_slot)s
struct sock_key {
    u64 sk;
    u32 tgid;
    u32 pad;
};

struct sock_stats {
    u64 bytes[2];
    u32 errors[2];        /* calls are not counted apart: each successful one adds to one slot */
    u32 hist[2 * SLOTS];  /* rx slots, then tx (BCC's Python side cannot describe 2-D arrays);
                             userspace sums the counters and these as lanes of one integer */
    u8 laddr[16];
    u8 raddr[16];
    u16 lport;
    u16 rport;
    u16 family;
    u16 protocol;
    char comm[16];
};

%(dropped)s
/* An entry's metadata, written once when it is created. */
static __always_inline void fill_entry(struct sock_stats *s, void *sk, int family, int protocol)
{
#ifdef OFF_SK_PROTOCOL
    if (family < 0) {  /* raw tracepoint, kprobe: read once per socket, not per call */
        u16 f = 0, p = 0;
        bpf_probe_read_kernel(&f, 2, sk + OFF_SKC_FAMILY);
        bpf_probe_read_kernel(&p, 2, sk + OFF_SK_PROTOCOL);
        family = f;
        protocol = p;
    }
#endif
    __builtin_memset(s->laddr, 0, sizeof(s->laddr));
    __builtin_memset(s->raddr, 0, sizeof(s->raddr));
    s->lport = 0;
    s->rport = 0;
    s->protocol = protocol;
    bpf_get_current_comm(&s->comm, sizeof(s->comm));
    if (family == AF_INET) {
        bpf_probe_read_kernel(s->laddr, 4, sk + OFF_SKC_RCV_SADDR);
        bpf_probe_read_kernel(s->raddr, 4, sk + OFF_SKC_DADDR);
    } else if (family == AF_INET6) {
        bpf_probe_read_kernel(s->laddr, 16, sk + OFF_SKC_V6_RCV_SADDR);
        bpf_probe_read_kernel(s->raddr, 16, sk + OFF_SKC_V6_DADDR);
    }
    if (family == AF_INET || family == AF_INET6) {
        u16 dport = 0;
        bpf_probe_read_kernel(&s->lport, 2, sk + OFF_SKC_NUM);
        bpf_probe_read_kernel(&dport, 2, sk + OFF_SKC_DPORT);
        s->rport = ntohs(dport);
    }
    s->family = family;  /* last: userspace leaves out entries whose family is still 0 */
}
%(entries)s
/* family and protocol -1: not known to the caller; fill_entry() reads them from the socket. */
static __always_inline void account(void *sk, int family, int protocol, int ret, int flags, const int dir)
{
    if (dir == DIR_RX && (flags & MSG_PEEK))
        return;  /* peeked data is read again later: count it once, when consumed */
    struct sock_key key = {.sk = (u64)sk, .tgid = bpf_get_current_pid_tgid() >> 32};
    struct sock_stats *s = entry_of(&key, sk, family, protocol);
    if (!s)
        return;
    if (ret < 0) {
        __sync_fetch_and_add(&s->errors[dir], 1);
        return;
    }
    u32 slot = log2_slot(ret, SLOTS);
    __sync_fetch_and_add(&s->bytes[dir], ret);
    __sync_fetch_and_add(&s->hist[dir * SLOTS + slot], 1);
}
"""

# Where each interval's entries live. "slots" where the kernel has mmap-able arrays and
# atomic fetch-and-add (Linux 5.12+), read in place (nettop/probes/maps.py: IntervalSlots);
# "hash" otherwise, drained with a batch lookup-and-delete.
_HASH_ENTRIES_C = r"""
/* A shared hash with atomic adds, not a per-CPU one: a socket is rarely used on two CPUs at
 * once, and per-CPU copies would make every drain scale with the number of CPUs. */
BPF_HASH(stats, struct sock_key, struct sock_stats, MAX_SOCKETS);
BPF_PERCPU_ARRAY(entry_template, struct sock_stats, 1);

static __always_inline struct sock_stats *entry_of(struct sock_key *key, void *sk, int family, int protocol)
{
    struct sock_stats *s = stats.lookup(key);
    if (s)
        return s;
    int zero = 0;
    struct sock_stats *tpl = entry_template.lookup(&zero);
    if (!tpl)
        return 0;
    fill_entry(tpl, sk, family, protocol);
    int err = stats.insert(key, tpl);
    if (err && err != -EEXIST) {  /* -EEXIST: another CPU inserted it first, use theirs */
        count_dropped();
        return 0;
    }
    return stats.lookup(key);
}
"""

_SLOT_ENTRIES_C = r"""
#ifndef BPF_F_MMAPABLE
#define BPF_F_MMAPABLE (1U << 10)
#endif
/* Two halves of slots, one written while userspace reads the other in place (mmap): an
 * interval's entries are never copied out through the kernel. A hash per half says which
 * slot is a (socket, process)'s; `epoch` says which half is being written. */
struct sock_slot {
    struct sock_stats stats;
    struct sock_key key;
};
BPF_F_TABLE("array", u32, struct sock_slot, slots, 2 * MAX_SOCKETS, BPF_F_MMAPABLE);
BPF_ARRAY(epoch, u32, 1);
BPF_ARRAY(claimed, u64, 2);  /* slots handed out in each half this interval */
BPF_HASH(slot_index, struct sock_key, u32, MAX_SOCKETS);  /* the template of each half's hash */
BPF_ARRAY_OF_MAPS(slot_indexes, "slot_index", 2);

static __always_inline struct sock_stats *entry_of(struct sock_key *key, void *sk, int family, int protocol)
{
    int zero = 0;
    u32 *writing = epoch.lookup(&zero);
    if (!writing)
        return 0;
    u32 half = *writing & 1;
    void *index = slot_indexes.lookup(&half);
    if (!index)
        return 0;
    u32 *found = bpf_map_lookup_elem(index, key);
    struct sock_slot *s;
    if (found) {
        s = slots.lookup(found);
        return s ? &s->stats : 0;
    }
    u64 *next = claimed.lookup(&half);
    if (!next)
        return 0;
    u64 n = __sync_fetch_and_add(next, 1);
    if (n >= MAX_SOCKETS) {
        count_dropped();
        return 0;
    }
    u32 i = half * MAX_SOCKETS + (u32)n;
    int err = bpf_map_update_elem(index, key, &i, BPF_NOEXIST);
    if (err) {
        if (err != -EEXIST) {
            count_dropped();
            return 0;
        }
        /* another CPU claimed this (socket, process) first: use its slot, leave this one
         * empty (family 0, skipped) */
        found = bpf_map_lookup_elem(index, key);
        s = found ? slots.lookup(found) : 0;
        return s ? &s->stats : 0;
    }
    s = slots.lookup(&i);
    if (!s)
        return 0;
    s->key = *key;
    fill_entry(&s->stats, sk, family, protocol);
    return &s->stats;
}
"""

_TRACEPOINT_C = r"""
TRACEPOINT_PROBE(sock, sock_send_length)
{
    account(args->sk, args->family, args->protocol, args->ret, args->flags, DIR_TX);
    return 0;
}

TRACEPOINT_PROBE(sock, sock_recv_length)
{
    account(args->sk, args->family, args->protocol, args->ret, args->flags, DIR_RX);
    return 0;
}
"""

# TP_PROTO(struct sock *sk, int ret, int flags) for both. A raw tracepoint skips the
# trace record the perf tracepoint fills on every call, and is cheaper per syscall.
_RAW_TRACEPOINT_C = r"""
RAW_TRACEPOINT_PROBE(sock_send_length)
{
    account((void *)ctx->args[0], -1, -1, (int)ctx->args[1], (int)ctx->args[2], DIR_TX);
    return 0;
}

RAW_TRACEPOINT_PROBE(sock_recv_length)
{
    account((void *)ctx->args[0], -1, -1, (int)ctx->args[1], (int)ctx->args[2], DIR_RX);
    return 0;
}
"""

_KPROBE_C = r"""
struct call_args {
    u64 sk;
    int flags;
};
BPF_HASH(calls_in_flight, u32, struct call_args, 10240);

static __always_inline int remember(void *sock, int flags)
{
    struct call_args a = {.flags = flags};
    u32 tid = bpf_get_current_pid_tgid();
    bpf_probe_read_kernel(&a.sk, sizeof(a.sk), sock + OFF_SOCKET_SK);
    calls_in_flight.update(&tid, &a);
    return 0;
}

static __always_inline int finish(struct pt_regs *ctx, const int dir)
{
    u32 tid = bpf_get_current_pid_tgid();
    struct call_args *a = calls_in_flight.lookup(&tid);
    if (!a)
        return 0;
    void *sk = (void *)a->sk;
    int flags = a->flags;
    calls_in_flight.delete(&tid);
    account(sk, -1, -1, PT_REGS_RC(ctx), flags, dir);  /* family and protocol read once per socket */
    return 0;
}

/* attached by SocketIoProbe.start() to %(send)s and sock_recvmsg */
int on_send_entry(struct pt_regs *ctx, void *sock) { return remember(sock, 0); }
int on_send_return(struct pt_regs *ctx) { return finish(ctx, DIR_TX); }
int on_recv_entry(struct pt_regs *ctx, void *sock, void *msg, int flags) { return remember(sock, flags); }
int on_recv_return(struct pt_regs *ctx) { return finish(ctx, DIR_RX); }
"""

#: kretprobe instances per hook: recvmsg blocks, and each caller inside it holds one; the
#: kernel's default (10 on a 2-CPU machine) silently misses returns on a busy server.
KRETPROBE_MAXACTIVE = 4096


def bpf_text(source: str, max_sockets: int = DEFAULT_MAX_SOCKETS, btf=None, send_function: str = "__sock_sendmsg",
             layout: str = "slots") -> str:
    """The complete C program for one event source and entry layout (shown by `nettop --ebpf`)."""
    fields = SOCK_ADDRESS_FIELDS + (KPROBE_FIELDS if source in ("kprobe", "raw_tracepoint") else ())
    common = _COMMON_C % {
        "slots": SLOTS, "max_sockets": max_sockets, "offsets": offset_defines(fields, btf), "log2_slot": LOG2_SLOT_C,
        "dropped": DROPPED_C,
        "entries": {"slots": _SLOT_ENTRIES_C, "hash": _HASH_ENTRIES_C}[layout],
    }
    handlers = {"raw_tracepoint": _RAW_TRACEPOINT_C, "tracepoint": _TRACEPOINT_C}
    return common + (_KPROBE_C % {"send": send_function} if source == "kprobe" else handlers[source])


def protocol_name(family: int, protocol: int) -> str:
    if family == socket.AF_UNIX:
        return "unix"
    return PROTOCOLS.get(protocol, "other")


class SocketIoProbe(Probe):
    name = "socket_io"
    panes = ("tcp", "sizes")
    sources = (RAW_TRACEPOINT, TRACEPOINT, KPROBE, KPROBE_BEFORE_6_6)

    def __init__(
        self,
        forced_source: str | None = None,
        max_sockets: int = DEFAULT_MAX_SOCKETS,
        owners: SocketOwners | None = None,
        layout: str | None = None,
    ) -> None:
        super().__init__(forced_source)
        self.max_sockets = max_sockets
        self.owners = owners if owners is not None else SocketOwners()
        self.layout = layout  # "slots" or "hash" (LAYOUTS); None: the best that loads
        self._decoder = None
        self._slots: IntervalSlots | None = None

    def program_text(self, layout: str | None = None) -> str:
        source = self.source or self.select()
        return bpf_text(source.name, self.max_sockets, send_function=source.hooks[0].target,
                        layout=layout or self.layout or LAYOUTS[0])

    def start(self) -> None:
        try:  # numpy: imported here, in the attach thread, off the first frame's path
            from nettop.probes.socket_columns import SocketDecoder
        except ImportError as exc:
            raise ProbeUnavailable(f"numpy is missing ({exc}): reinstall nettop with its dependencies") from exc
        self._decoder = SocketDecoder()
        layouts = (self.layout,) if self.layout else LAYOUTS
        for layout in layouts:
            try:
                self._load(layout)
                break
            except ProbeUnavailable:
                self.close()
                if layout == layouts[-1]:
                    raise
            except OSError as exc:  # mapping the slots, or creating a half's hash
                self.close()
                if layout == layouts[-1]:
                    raise ProbeUnavailable(f"socket map: {exc.strerror or exc}") from exc
            # before Linux 5.12 (no mmap-able arrays or fetch-and-add) the slots fail: the hash
        self.layout = layout

    def _load(self, layout: str) -> None:
        self._bpf = load_bpf(self.program_text(layout))  # BCC auto-attaches tracepoint handlers
        if self.source is not None and self.source.name == "kprobe":
            send, recv = (h.target for h in self.source.hooks)
            hooks = ((send, "on_send_entry", "on_send_return"), (recv, "on_recv_entry", "on_recv_return"))
            for function, entry, ret in hooks:
                self._bpf.attach_kprobe(event=function.encode(), fn_name=entry.encode())
                self._bpf.attach_kretprobe(event=function.encode(), fn_name=ret.encode(), maxactive=KRETPROBE_MAXACTIVE)
        if layout == "slots":
            bpf = self._bpf
            self._slots = IntervalSlots(bpf["slots"], bpf["epoch"], bpf["claimed"], bpf["slot_indexes"], bpf["slot_index"])
        else:
            self._drainer = BatchDrainer(self._bpf["stats"])

    def poll(self, interval: float) -> Mapping[str, Any]:
        assert self._bpf is not None and self.source is not None and self._decoder is not None
        source = self.source.name
        if self._slots is not None:
            taken = self._slots.take()
            snapshots = self._decoder.slot_snapshots(taken, source, self.counter_delta("dropped"))
        else:
            drained = self._drainer.drain()
            snapshots = self._decoder.snapshots(drained.keys, drained.values, drained.count, source,
                                                self.counter_delta("dropped"))
        self.owners.note_all(self._decoder.owners)
        return snapshots

    def close(self) -> None:
        if self._slots is not None:
            self._slots.close()
            self._slots = None
        super().close()
