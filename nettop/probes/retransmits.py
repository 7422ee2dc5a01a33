"""retransmits: who is retransmitting to whom (tcpretrans), beside the kernel's counters.

Kernel hooks, best first:
  raw_tracepoint  tcp_retransmit_skb (args sk, skb[, err 6.12+]), tcp_retransmit_synack (sk, req),
              inet_sock_set_state (sk, oldstate, newstate): the same three tracepoints, raw
              (4.17+); everything is read from sk/skb at offsets from the running kernel's BTF
  tracepoint  tcp:tcp_retransmit_skb (4.15+; `state` 4.16+, `err` 6.12+), tcp:tcp_retransmit_synack
              (4.16+), sock:inet_sock_set_state (4.16+) to learn socket owners
  kprobe      tcp_retransmit_skb, tcp_rtx_synack, tcp_set_state, inet_csk_listen_start,
              inet_csk_clone_lock (return): the book's tcpretrans route, for older kernels
  optional    kprobe tcp_send_loss_probe for `L` (tail-loss probe) events; where the kernel
              has no kprobes (as on the machine this was built on) the source says so
Event channel: a BPF ring buffer (5.8+) for the tracepoint sources, a perf buffer for the
kprobe one; events the channel cannot take are counted (`lost_events`).

Why raw tracepoints first: a perf-event tracepoint program (and a kprobe) is skipped when
any other such program is running on the CPU (the global per-CPU bpf_prog_active guard).
Retransmits fire in softirq, often on top of socket_io's send/recv program in process
context, and were lost that way (~3% of RetransSegs under a lossy bulk flow). A raw
tracepoint program is guarded only against itself (prog->active), so it is not skipped
for someone else's program. Skipped runs are still counted (`missed`, from the kernel's
recursion_misses).

Events vs segments: the tracepoint fires once per retransmitted skb, but an skb under
GSO/TSO carries many segments, and the kernel's RetransSegs counts segments. So each
event also carries skb_shinfo(skb)->gso_segs, read at offsets from the running kernel's
BTF (skb->head + skb->end, `end` being an offset on 64-bit kernels). Failed attempts
(tracepoint `err` != 0) were not sent and are counted apart.

The right process: retransmits run in softirq and timer context, so the task on the CPU
is not the owner. Owners come from two places: sockets born in process context
(SYN_SENT from connect(), LISTEN from listen()) are noted in a bounded LRU map by this
program, and sockets that did send/recv come from socket_io's SocketOwners. A socket
address reused by a newer socket since the event (its birth time changed) is never
attributed from the older socket's owner: it shows `-`.

Overhead: nothing on the data path. One hash update per retransmit and per TCP socket
birth (connect, listen, accept); measured here (6.18, bpf_stats, 2 cores): 1.0-1.9 us per
retransmitted skb (raw tracepoint; 1.2-1.8 us as a perf tracepoint). Maps: flows (bounded
by max_flows, overflow counted), socket births (LRU, max_socks), ring buffer (ring_pages pages).

Kernel counters: /proc/net/snmp and /proc/net/netstat are per network namespace; the
strip shows nettop's own namespace, while the BPF events cover every namespace.

Example (the Retransmits pane):
  PID    COMM     LADDR:LPORT        RADDR:RPORT         STATE        EVENTS  SEGS  LAST
  4123   iperf3   10.202.1.2:41802   10.202.1.1:5201     ESTABLISHED      31   360  12:00:03
  4200   curl     10.201.1.1:50312   10.201.1.2:8080     SYN_SENT          2     2  12:00:02
"""

from __future__ import annotations

import ctypes
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from nettop import kernel
from nettop.btf import Btf, BtfError, running_kernel_btf
from nettop.errors import ProbeUnavailable
from nettop.model.retransmits import (
    COUNTER_NAMES,
    KIND_LOSS_PROBE,
    KIND_RETRANSMIT,
    KIND_SYNACK,
    RetransmitEvent,
    RetransmitFlow,
    RetransmitsSnapshot,
)
from nettop.probes.addresses import format_endpoint, kernel_text
from nettop.probes.base import EventSource, Hook, Probe, kprobes, load_bpf, tracepoints
from nettop.probes.layout import SOCK_ADDRESS_FIELDS, Field, offset_defines
from nettop.probes.maps import BatchDrainer
from nettop.probes.owners import SocketOwners

DEFAULT_MAX_FLOWS = 8192
DEFAULT_MAX_SOCKS = 65536
DEFAULT_RING_PAGES = 64  # 256 KiB: ~2000 events per interval

TRACEPOINT_HOOKS = tracepoints("tcp:tcp_retransmit_skb", "tcp:tcp_retransmit_synack", "sock:inet_sock_set_state")
# a raw tracepoint exists wherever its tracepoint does (BPF_RAW_TRACEPOINT_OPEN, 4.17+)
RAW_TRACEPOINT = EventSource("raw_tracepoint", TRACEPOINT_HOOKS)
TRACEPOINT = EventSource("tracepoint", TRACEPOINT_HOOKS)
KPROBE = EventSource(
    "kprobe",
    kprobes("tcp_retransmit_skb", "tcp_rtx_synack", "tcp_set_state", "inet_csk_listen_start", "inet_csk_clone_lock"),
)
LOSS_PROBE_HOOK = Hook("kprobe", "tcp_send_loss_probe")

SKB_FIELDS = (
    Field("OFF_SKB_HEAD", "sk_buff", "head"),
    Field("OFF_SKB_END", "sk_buff", "end"),
    Field("OFF_SHINFO_GSO_SEGS", "skb_shared_info", "gso_segs"),
)
SOCK_STATE_FIELDS = (Field("OFF_SKC_STATE", "sock_common", "skc_state"),)

TCP_STATES = {
    1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2", 6: "TIME_WAIT",
    7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING", 12: "NEW_SYN_RECV",
}
KINDS = {1: KIND_RETRANSMIT, 2: KIND_SYNACK, 3: KIND_LOSS_PROBE}

# struct flow_key / flow_val / event / sock_info below, little-endian, no padding.
_FLOW_KEY = struct.Struct("<QHHI")
_FLOW_VAL = struct.Struct("<QQQQQQII16s16sHB5x16s")
_EVENT = struct.Struct("<QQQQ16s16sHHHBBIII16s")
_SOCK_INFO = struct.Struct("<QII16s")

_HEAD_C = r"""
#include <uapi/linux/ptrace.h>
#include <linux/socket.h>
#include <uapi/asm-generic/errno.h>

#define PROTO_TCP 6
/* TCP states, named apart from the kernel's enum so no header can clash */
#define ST_SYN_SENT 2
#define ST_SYN_RECV 3
#define ST_CLOSE 7
#define ST_LISTEN 10
#define KIND_R 1
#define KIND_S 2
#define KIND_L 3
#define COUNT_LOST 0
#define COUNT_DROPPED 1
#define COUNT_FAILED 2
%(offsets)s
%(skb_end)s

struct flow_key {
    u64 sk;
    u16 lport;
    u16 rport;
    u32 state;
};

struct flow_val {
    u64 events;
    u64 segments;
    u64 first_ns;
    u64 last_ns;
    u64 owner_sk;   /* the socket whose owner this flow belongs to (the listener for SYN-ACKs) */
    u64 born_ns;    /* owner socket's birth when last seen here: tells a reused address apart */
    u32 pid;        /* 0: not born in process context while we watched */
    u32 pad;
    u8 laddr[16];
    u8 raddr[16];
    u16 family;
    u8 kind;
    u8 pad2[5];
    char comm[16];
};

struct event {
    u64 ts;
    u64 sk;
    u64 owner_sk;
    u64 born_ns;
    u8 laddr[16];
    u8 raddr[16];
    u16 lport;
    u16 rport;
    u16 family;
    u8 state;
    u8 kind;
    u32 segs;
    u32 pid;
    u32 pad;
    char comm[16];
};

struct sock_info {
    u64 born_ns;
    u32 pid;
    u32 pad;
    char comm[16];
};

BPF_HASH(flows, struct flow_key, struct flow_val, %(max_flows)d);
BPF_TABLE("lru_hash", u64, struct sock_info, socks, %(max_socks)d);
BPF_PERCPU_ARRAY(counts, u64, 3);
%(channel_decl)s

static __always_inline void count(int which)
{
    u64 *c = counts.lookup(&which);
    if (c)
        (*c)++;
}

/* A TCP socket is born by connect() or listen() in its owner's process, or as a child of a
   listener in softirq (owner unknown until it does I/O). */
static __always_inline void note_birth(void *sk, int newstate)
{
    struct sock_info info = {.born_ns = bpf_ktime_get_ns()};
    if (newstate == ST_SYN_SENT || newstate == ST_LISTEN) {
        info.pid = bpf_get_current_pid_tgid() >> 32;
        bpf_get_current_comm(&info.comm, sizeof(info.comm));
    }
    u64 key = (u64)sk;
    socks.update(&key, &info);
}

static __always_inline void note_transition(void *sk, int oldstate, int newstate)
{
    if ((newstate == ST_SYN_SENT && oldstate == ST_CLOSE) || newstate == ST_LISTEN
        || (newstate == ST_SYN_RECV && oldstate == ST_LISTEN))
        note_birth(sk, newstate);
}

static __always_inline u32 skb_segments(void *skb)
{
    u16 segs = 0;
    void *shinfo = 0;
#if SKB_END_IS_OFFSET
    u32 end = 0;
    void *head = 0;
    bpf_probe_read_kernel(&end, sizeof(end), skb + OFF_SKB_END);
    bpf_probe_read_kernel(&head, sizeof(head), skb + OFF_SKB_HEAD);
    shinfo = head + end;
#else
    bpf_probe_read_kernel(&shinfo, sizeof(shinfo), skb + OFF_SKB_END);
#endif
    bpf_probe_read_kernel(&segs, sizeof(segs), shinfo + OFF_SHINFO_GSO_SEGS);
    return segs ? segs : 1;  /* gso_segs is 0 for an skb that was never split: one segment */
}

/* `e` has addresses, ports, family, state filled in; this adds the rest, emits it, and
   adds it to its flow (L events are log-only: the probe is not a retransmit). */
static __always_inline void account(void *ctx, struct event *e, void *sk, void *owner_sk, u8 kind, u32 segs)
{
    u64 now = bpf_ktime_get_ns();
    e->ts = now;
    e->sk = (u64)sk;
    e->owner_sk = (u64)owner_sk;
    e->kind = kind;
    e->segs = segs;
    struct sock_info *info = socks.lookup(&e->owner_sk);
    if (info) {
        e->born_ns = info->born_ns;
        e->pid = info->pid;
        __builtin_memcpy(e->comm, info->comm, sizeof(e->comm));
    }
    if (%(emit)s)
        count(COUNT_LOST);
    if (kind == KIND_L)
        return;

    struct flow_key key = {.sk = e->sk, .lport = e->lport, .rport = e->rport, .state = e->state};
    struct flow_val *f = flows.lookup(&key);
    if (!f) {
        struct flow_val fresh = {.first_ns = now, .owner_sk = e->owner_sk, .family = e->family};
        __builtin_memcpy(fresh.laddr, e->laddr, sizeof(fresh.laddr));
        __builtin_memcpy(fresh.raddr, e->raddr, sizeof(fresh.raddr));
        flows.insert(&key, &fresh);  /* fails if another CPU was first (fine) or the map is full */
        f = flows.lookup(&key);
        if (!f) {
            count(COUNT_DROPPED);
            return;
        }
    }
    __sync_fetch_and_add(&f->events, 1);
    __sync_fetch_and_add(&f->segments, segs);
    f->last_ns = now;
    f->kind = kind;
    f->born_ns = e->born_ns;
    if (e->pid) {
        f->pid = e->pid;
        __builtin_memcpy(f->comm, e->comm, sizeof(f->comm));
    }
}
"""

# Since 6.12 the tracepoint also fires for attempts that failed. Those that failed before the
# kernel counted them (still queued, window closed, no route, no memory) were not sent and are
# not in RetransSegs: they only count as `failed`. The rest (a local qdisc or device drop,
# -ENOBUFS) were counted by the kernel as retransmitted, so they are counted here too.
_ERR_CHECK_C = r"""
    int err = %(err)s;
    if (err == -EBUSY || err == -EAGAIN || err == -EINVAL || err == -EHOSTUNREACH || err == -ENOMEM) {
        count(COUNT_FAILED);
        return 0;
    }"""

_TRACEPOINT_C = r"""
static __always_inline void tp_addresses(struct event *e, u16 family, const u8 *s4, const u8 *d4,
                                         const u8 *s6, const u8 *d6)
{
    e->family = family;
    if (family == AF_INET) {
        bpf_probe_read_kernel(e->laddr, 4, s4);
        bpf_probe_read_kernel(e->raddr, 4, d4);
    } else {
        bpf_probe_read_kernel(e->laddr, 16, s6);
        bpf_probe_read_kernel(e->raddr, 16, d6);
    }
}

TRACEPOINT_PROBE(tcp, tcp_retransmit_skb)
{
%(err_check)s
    struct event e = {.lport = args->sport, .rport = args->dport, .state = args->state};
    tp_addresses(&e, args->family, args->saddr, args->daddr, args->saddr_v6, args->daddr_v6);
    account(args, &e, (void *)args->skaddr, (void *)args->skaddr, KIND_R, skb_segments((void *)args->skbaddr));
    return 0;
}

TRACEPOINT_PROBE(tcp, tcp_retransmit_synack)
{
    /* keyed by the request sock (one per embryonic connection), owned by the listener */
    struct event e = {.lport = args->sport, .rport = args->dport, .state = ST_SYN_RECV};
    tp_addresses(&e, args->family, args->saddr, args->daddr, args->saddr_v6, args->daddr_v6);
    account(args, &e, (void *)args->req, (void *)args->skaddr, KIND_S, 1);
    return 0;
}

TRACEPOINT_PROBE(sock, inet_sock_set_state)
{
    if (args->protocol != PROTO_TCP)
        return 0;
    note_transition((void *)args->skaddr, args->oldstate, args->newstate);
    return 0;
}
"""

# Arguments as the tracepoints' TP_PROTO: the raw program sees the kernel's own pointers.
_RAW_TRACEPOINT_C = r"""
RAW_TRACEPOINT_PROBE(tcp_retransmit_skb)
{
    void *sk = (void *)ctx->args[0];
%(err_check)s
    struct event e = {};
    sock_endpoints(&e, sk);
    account(ctx, &e, sk, sk, KIND_R, skb_segments((void *)ctx->args[1]));
    return 0;
}

RAW_TRACEPOINT_PROBE(tcp_retransmit_synack)
{
    /* keyed by the request sock (one per embryonic connection), owned by the listener;
       a request_sock starts with its sock_common */
    void *req = (void *)ctx->args[1];
    struct event e = {};
    sock_endpoints(&e, req);
    e.state = ST_SYN_RECV;
    account(ctx, &e, req, (void *)ctx->args[0], KIND_S, 1);
    return 0;
}

RAW_TRACEPOINT_PROBE(inet_sock_set_state)
{
    void *sk = (void *)ctx->args[0];
    u32 protocol = 0;
    bpf_probe_read_kernel(&protocol, sizeof(protocol), sk + SK_PROTOCOL_BYTE);
    if (((protocol >> SK_PROTOCOL_SHIFT) & SK_PROTOCOL_MASK) != PROTO_TCP)
        return 0;
    note_transition(sk, (int)ctx->args[1], (int)ctx->args[2]);
    return 0;
}
"""

_SOCK_ENDPOINTS_C = r"""
static __always_inline void sock_endpoints(struct event *e, void *sk)
{
    u16 family = 0, dport = 0;
    u8 state = 0;
    bpf_probe_read_kernel(&family, sizeof(family), sk + OFF_SKC_FAMILY);
    bpf_probe_read_kernel(&e->lport, sizeof(e->lport), sk + OFF_SKC_NUM);
    bpf_probe_read_kernel(&dport, sizeof(dport), sk + OFF_SKC_DPORT);
    bpf_probe_read_kernel(&state, sizeof(state), sk + OFF_SKC_STATE);
    e->rport = ntohs(dport);
    e->family = family;
    e->state = state;
    if (family == AF_INET) {
        bpf_probe_read_kernel(e->laddr, 4, sk + OFF_SKC_RCV_SADDR);
        bpf_probe_read_kernel(e->raddr, 4, sk + OFF_SKC_DADDR);
    } else {
        bpf_probe_read_kernel(e->laddr, 16, sk + OFF_SKC_V6_RCV_SADDR);
        bpf_probe_read_kernel(e->raddr, 16, sk + OFF_SKC_V6_DADDR);
    }
}
"""

_KPROBE_C = r"""
int kprobe__tcp_retransmit_skb(struct pt_regs *ctx, void *sk, void *skb)
{
    /* at entry: attempts that then fail are counted too (the tracepoint's err is not here) */
    struct event e = {};
    sock_endpoints(&e, sk);
    account(ctx, &e, sk, sk, KIND_R, skb_segments(skb));
    return 0;
}

int kprobe__tcp_rtx_synack(struct pt_regs *ctx, void *sk, void *req)
{
    struct event e = {};
    sock_endpoints(&e, req);  /* a request_sock starts with its sock_common */
    e.state = ST_SYN_RECV;
    account(ctx, &e, req, sk, KIND_S, 1);
    return 0;
}

int kprobe__tcp_set_state(struct pt_regs *ctx, void *sk, int newstate)
{
    u8 oldstate = 0;
    bpf_probe_read_kernel(&oldstate, sizeof(oldstate), sk + OFF_SKC_STATE);
    note_transition(sk, oldstate, newstate);
    return 0;
}

int kprobe__inet_csk_listen_start(struct pt_regs *ctx, void *sk)
{
    note_birth(sk, ST_LISTEN);
    return 0;
}

int kretprobe__inet_csk_clone_lock(struct pt_regs *ctx)
{
    void *child = (void *)PT_REGS_RC(ctx);
    if (child)
        note_birth(child, ST_SYN_RECV);
    return 0;
}
"""

_LOSS_PROBE_C = r"""
int kprobe__tcp_send_loss_probe(struct pt_regs *ctx, void *sk)
{
    struct event e = {};
    sock_endpoints(&e, sk);
    account(ctx, &e, sk, sk, KIND_L, 0);
    return 0;
}
"""

# (declaration, the call that emits `e`): BCC cannot expand map calls inside a macro
_CHANNELS = {
    "ringbuf": ("BPF_RINGBUF_OUTPUT(events, %(ring_pages)d);", "events.ringbuf_output(e, sizeof(*e), 0)"),
    "perf": ("BPF_PERF_OUTPUT(events);", "events.perf_submit(ctx, e, sizeof(*e))"),
}


def skb_end_define(btf: Btf | None) -> str:
    """`end` is an offset from `head` where NET_SKBUFF_DATA_USES_OFFSET (64-bit), else a pointer.

    BTF answers by the member's size; without BTF only the headers' config can say.
    """
    if btf is None:
        return (
            "#include <linux/skbuff.h>\n#ifdef NET_SKBUFF_DATA_USES_OFFSET\n#define SKB_END_IS_OFFSET 1\n"
            "#else\n#define SKB_END_IS_OFFSET 0\n#endif"
        )
    try:
        size = btf.member("sk_buff", "end").size
    except BtfError as exc:
        raise ProbeUnavailable(f"kernel BTF: {exc}") from exc
    return f"#define SKB_END_IS_OFFSET {1 if size == 4 else 0}"


def sk_protocol_defines(btf: Btf | None) -> str:
    """Where sock.sk_protocol lives: a u16 since 5.6, a bitfield before; read as a masked u32."""
    if btf is None:
        return (
            "#define SK_PROTOCOL_BYTE offsetof(struct sock, sk_protocol)\n#define SK_PROTOCOL_SHIFT 0\n"
            "#define SK_PROTOCOL_MASK 0xffff"
        )
    try:
        loc = btf.member("sock", "sk_protocol")
    except BtfError as exc:
        raise ProbeUnavailable(f"kernel BTF: {exc}") from exc
    bits = loc.bitfield_bits or loc.size * 8
    return (
        f"#define SK_PROTOCOL_BYTE {loc.bit_offset // 8}\n#define SK_PROTOCOL_SHIFT {loc.bit_offset % 8}\n"
        f"#define SK_PROTOCOL_MASK {(1 << bits) - 1:#x}"
    )


def tracepoint_has_err() -> bool:
    """Since 6.12 tcp:tcp_retransmit_skb also fires for attempts that failed, with `err`."""
    text = kernel.tracepoint_format("tcp", "tcp_retransmit_skb") or ""
    return "int err;" in text


def bpf_text(
    source: str,
    loss_probes: bool = False,
    has_err: bool = True,
    max_flows: int = DEFAULT_MAX_FLOWS,
    max_socks: int = DEFAULT_MAX_SOCKS,
    ring_pages: int = DEFAULT_RING_PAGES,
    btf: Btf | None = None,
) -> str:
    """The complete C program for one event source (shown by `nettop --ebpf`).

    The tracepoint sources use a ring buffer; the kprobe source is for kernels older than
    the tracepoints (4.15), which are older than ring buffers too, so it uses a perf buffer.
    """
    if btf is None:
        btf = running_kernel_btf()
    reads_sock = source in ("raw_tracepoint", "kprobe") or loss_probes
    fields = SOCK_ADDRESS_FIELDS + SKB_FIELDS + (SOCK_STATE_FIELDS if reads_sock else ())
    offsets = offset_defines(fields, btf)
    if source == "raw_tracepoint":
        offsets += "\n" + sk_protocol_defines(btf)
    declaration, emit = _CHANNELS["perf" if source == "kprobe" else "ringbuf"]
    head = _HEAD_C % {
        "offsets": offsets,
        "skb_end": skb_end_define(btf),
        "max_flows": max_flows,
        "max_socks": max_socks,
        "channel_decl": declaration % {"ring_pages": ring_pages},
        "emit": emit,
    }
    if source == "kprobe":
        body = _SOCK_ENDPOINTS_C + _KPROBE_C
    elif source == "raw_tracepoint":
        err_check = _ERR_CHECK_C % {"err": "(int)ctx->args[2]"} if has_err else ""
        body = _SOCK_ENDPOINTS_C + _RAW_TRACEPOINT_C % {"err_check": err_check}
    else:
        err_check = _ERR_CHECK_C % {"err": "args->err"} if has_err else ""
        body = _TRACEPOINT_C % {"err_check": err_check}
        if loss_probes:
            body += _SOCK_ENDPOINTS_C
    return head + body + (_LOSS_PROBE_C if loss_probes else "")


# -- kernel counters ------------------------------------------------------------------


def parse_counters(*texts: str) -> dict[str, int]:
    """Name -> value from /proc/net/snmp and /proc/net/netstat text (header line, value line)."""
    values: dict[str, int] = {}
    for text in texts:
        lines = text.splitlines()
        for names, numbers in zip(lines[::2], lines[1::2]):
            section, _, header = names.partition(":")
            if section not in ("Tcp", "TcpExt"):
                continue
            for name, number in zip(header.split(), numbers.partition(":")[2].split()):
                if name in COUNTER_NAMES:
                    values[name] = int(number)
    return values


def read_counters(proc: Path = Path("/proc/net")) -> dict[str, int]:
    """This process's network namespace's TCP counters."""
    texts = []
    for name in ("snmp", "netstat"):
        try:
            texts.append((proc / name).read_text())
        except OSError:
            continue
    return parse_counters(*texts)


def counter_deltas(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """Per-interval deltas, in strip order; a counter missing on either side is left out."""
    return {name: after[name] - before[name] for name in COUNTER_NAMES if name in before and name in after}


# -- owners and decoding ---------------------------------------------------------------


@dataclass(frozen=True)
class Owned:
    pid: int | None
    comm: str


UNKNOWN = Owned(None, "-")


def resolve_owner(
    pid: int, comm: str, owner_sk: int, born_then: int, born_now: int | None, owners: SocketOwners
) -> Owned:
    """Whose socket this was, or UNKNOWN: never a guess.

    pid/comm/born_then were captured in BPF at event time from the owner socket's birth
    (pid 0 when it was not born in process context while we watched). Otherwise socket_io's
    owner for that address is used, but only if no newer socket was born at the address
    since the event (`born_now`, the birth the map holds now, None if none).
    """
    if pid:
        return Owned(pid, comm)
    if (born_now or 0) != born_then:
        return UNKNOWN
    owner = owners.lookup(owner_sk)
    return Owned(owner.pid, owner.comm) if owner is not None else UNKNOWN


def _state(number: int) -> str:
    return TCP_STATES.get(number, str(number))


def decode_event(raw: bytes) -> dict[str, Any]:
    ts, sk, owner_sk, born, laddr, raddr, lport, rport, family, state, kind, segs, pid, _, comm = (
        _EVENT.unpack_from(raw)
    )
    return {
        "ts": ts, "sk": sk, "owner_sk": owner_sk, "born": born, "laddr": laddr, "raddr": raddr,
        "lport": lport, "rport": rport, "family": family, "state": state, "kind": kind,
        "segs": segs, "pid": pid, "comm": kernel_text(comm),
    }


def decode_flow(key: bytes, value: bytes) -> dict[str, Any]:
    sk, lport, rport, state = _FLOW_KEY.unpack_from(key)
    events, segments, _first, last, owner_sk, born, pid, _, laddr, raddr, family, kind, comm = (
        _FLOW_VAL.unpack_from(value)
    )
    return {
        "sk": sk, "lport": lport, "rport": rport, "state": state, "events": events,
        "segments": segments, "last_ns": last, "owner_sk": owner_sk, "born": born, "pid": pid,
        "laddr": laddr, "raddr": raddr, "family": family, "kind": kind, "comm": kernel_text(comm),
    }


def build_snapshot(
    flows: list[dict[str, Any]],
    events: list[dict[str, Any]],
    born_now: Callable[[int], int | None],
    owners: SocketOwners,
    to_wall: Callable[[int], float],
    source: str,
    kinds: str,
    counters: Mapping[str, int],
    lost: int = 0,
    dropped: int = 0,
    failed: int = 0,
    missed: int | None = None,
) -> RetransmitsSnapshot:
    """Decoded kernel rows into the pane's snapshot: owners resolved, addresses as text."""

    def owned(row: dict[str, Any]) -> Owned:
        return resolve_owner(row["pid"], row["comm"], row["owner_sk"], row["born"], born_now(row["owner_sk"]), owners)

    def endpoints(row: dict[str, Any]) -> tuple[int, str, str]:
        fam, laddr = format_endpoint(row["family"], row["laddr"])
        _, raddr = format_endpoint(row["family"], row["raddr"])
        return fam, laddr, raddr

    flow_rows = []
    for row in flows:
        who = owned(row)
        fam, laddr, raddr = endpoints(row)
        flow_rows.append(
            RetransmitFlow(
                who.pid, who.comm, fam, laddr, row["lport"], raddr, row["rport"], _state(row["state"]),
                row["events"], row["segments"], to_wall(row["last_ns"]),
            )
        )
    event_rows = []
    for row in sorted(events, key=lambda r: r["ts"]):
        who = owned(row)
        fam, laddr, raddr = endpoints(row)
        event_rows.append(
            RetransmitEvent(
                to_wall(row["ts"]), KINDS.get(row["kind"], "?"), who.pid, who.comm, fam, laddr, row["lport"],
                raddr, row["rport"], _state(row["state"]), row["segs"],
            )
        )
    flow_rows.sort(key=lambda f: (-f.segments, f.key))
    return RetransmitsSnapshot(
        source, lost, tuple(flow_rows), tuple(event_rows), dict(counters), kinds, dropped, failed, missed
    )


def program_misses(fd: int, btf: Btf | None) -> int | None:
    """Runs the kernel skipped because another BPF program was active on that CPU
    (bpf_prog_info.recursion_misses, offset from BTF): retransmits nobody saw. None where
    the kernel does not count them."""
    try:
        offset = btf.offsetof("bpf_prog_info", "recursion_misses") if btf else None
        size = btf.struct_size("bpf_prog_info") if btf else 0
    except BtfError:
        return None
    if offset is None:
        return None
    from bcc.libbcc import lib

    info = ctypes.create_string_buffer(size)
    length = ctypes.c_uint32(size)
    if lib.bpf_obj_get_info(fd, info, ctypes.byref(length)) != 0 or length.value < offset + 8:
        return None
    return struct.unpack_from("<Q", info.raw, offset)[0]


def monotonic_to_wall(now_mono_ns: int, now_wall: float) -> Callable[[int], float]:
    """bpf_ktime_get_ns() is CLOCK_MONOTONIC: map it to unix seconds at one instant."""
    return lambda ns: now_wall - (now_mono_ns - ns) / 1e9 if ns else 0.0


class RetransmitsProbe(Probe):
    name = "retransmits"
    panes = ("retransmits",)
    sources = (RAW_TRACEPOINT, TRACEPOINT, KPROBE)

    def __init__(
        self,
        forced_source: str | None = None,
        owners: SocketOwners | None = None,
        max_flows: int = DEFAULT_MAX_FLOWS,
        max_socks: int = DEFAULT_MAX_SOCKS,
        ring_pages: int = DEFAULT_RING_PAGES,
        counters: Callable[[], dict[str, int]] = read_counters,
    ) -> None:
        super().__init__(forced_source)
        self.owners = owners if owners is not None else SocketOwners()
        self.max_flows = max_flows
        self.max_socks = max_socks
        self.ring_pages = ring_pages
        self.loss_probes = False
        self._read_counters = counters
        self._pending: list[dict[str, Any]] = []
        self._last_counters: dict[str, int] = {}
        self._misses = 0
        self.base_source: str | None = None

    def select(self) -> EventSource:
        """Tail-loss probes need a kprobe; without one the note says so (doctor, pane status)."""
        chosen = super().select()
        self.base_source = chosen.name
        self.loss_probes = LOSS_PROBE_HOOK.exists()
        if not self.loss_probes:
            why = "not traceable" if kernel.kprobes_supported() else "this kernel has no kprobes"
            self.note = f"no L events: {LOSS_PROBE_HOOK} unavailable, {why}"
        return chosen

    @property
    def kinds(self) -> str:
        return "RSL" if self.loss_probes else "RS"

    def program_text(self) -> str:
        if self.source is None:
            self.select()
        return bpf_text(
            self.base_source or RAW_TRACEPOINT.name,
            self.loss_probes,
            has_err=tracepoint_has_err(),
            max_flows=self.max_flows,
            max_socks=self.max_socks,
            ring_pages=self.ring_pages,
        )

    def start(self) -> None:
        self._bpf = load_bpf(self.program_text())  # BCC attaches (RAW_)TRACEPOINT_PROBE and kprobe__ functions
        self._drainer = BatchDrainer(self._bpf["flows"])
        table = self._bpf["events"]
        if self.base_source == "kprobe":
            table.open_perf_buffer(self._on_event, page_cnt=self.ring_pages)
        else:
            table.open_ring_buffer(self._on_event)
        self._last_counters = self._read_counters()
        self._misses = self._count_misses() or 0

    def _count_misses(self) -> int | None:
        """Skipped runs of the retransmit hooks, summed (raw and perf tracepoint programs count them since 6.7)."""
        assert self._bpf is not None
        counts = [
            program_misses(function.fd, running_kernel_btf())
            for name, function in self._bpf.funcs.items()
            if b"retransmit" in name or b"rtx_synack" in name
        ]
        known = [c for c in counts if c is not None]
        return sum(known) if known else None

    def _on_event(self, _cpu_or_ctx, data, size) -> None:
        self._pending.append(decode_event(ctypes.string_at(data, size)))

    def _drain_events(self) -> list[dict[str, Any]]:
        assert self._bpf is not None
        if self.base_source == "kprobe":
            self._bpf.perf_buffer_poll(timeout=0)
        else:
            self._bpf.ring_buffer_consume()
        events, self._pending = self._pending, []
        return events

    def poll(self, interval: float) -> Mapping[str, Any]:
        assert self._bpf is not None
        events = self._drain_events()
        flows = [decode_flow(key, value) for key, value in self._drainer.drain().items()]
        socks = self._bpf["socks"]

        def born_now(sk: int) -> int | None:
            info = socks.get(socks.Key(sk))
            return None if info is None else _SOCK_INFO.unpack(bytes(info))[0]

        lost, dropped, failed = (self.counter_delta("counts", i) for i in range(3))
        misses_now = self._count_misses()
        missed = None if misses_now is None else misses_now - self._misses
        self._misses = misses_now or 0
        counters_now = self._read_counters()
        deltas = counter_deltas(self._last_counters, counters_now)
        self._last_counters = counters_now
        to_wall = monotonic_to_wall(time.monotonic_ns(), time.time())
        snapshot = build_snapshot(
            flows, events, born_now, self.owners, to_wall, self.base_source or "", self.kinds, deltas,
            lost, dropped, failed, missed,
        )
        return {"retransmits": snapshot}
