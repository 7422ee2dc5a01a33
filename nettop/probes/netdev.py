"""netdev: per network device, packet sizes at four points (the book's netsize) and
transmit latency (the book's nettxlat), from one BPF program.

Both watch the same per-packet device events; two programs on one tracepoint are both
paid by every packet, so each handler here does both jobs, keyed by one per-CPU entry
per device (the net_device pointer) holding both parts.

Sizes (the sizes pane's device section): comparing the points shows segmentation offload
at work: with TSO/GSO the stack hands a device 64 KiB packets that the NIC (or the GSO
layer just before it) cuts into MTU-sized frames; with GRO the NIC receives frames that
the stack sees merged. The size is skb->len, as netsize.bt prints: link-layer header
included on the send side (pushed before net_dev_queue), excluded on the receive side
(eth_type_trans pulled it), so one 1000-byte ping is 1042 at stack send and 1028 at stack
receive on Ethernet. A GSO packet counts once, with its full length. NIC sends the driver
refused (rc != NETDEV_TX_OK; the stack retries them) count as errors, not sizes.

Transmit latency (the queues pane's device rows): net:net_dev_start_xmit to
skb:consume_skb, which on a NIC is the transmit completion (the driver frees the skb once
the hardware sent it). Starts are deleted at net:net_dev_queue, as the book does, so an skb
address reused for a new packet never inherits an old start. An skb never consumed
(dropped with kfree_skb) keeps its start until the LRU map evicts it or its address is
reused. Only hardware devices (with a parent bus device: a NIC, virtio) are timed: lo, veth,
bridges and tunnels hand the skb to another stack, which frees it whenever its reader gets
to it, so the "latency" would time the receiver; skipping them saves an LRU update and a
delete per packet there, and until the first hardware transmit the stack-send and
consume_skb handlers skip their lookups too (the `armed` flag). `packets` are those handed
to the driver (GSO segments counted, whatever the driver answered); the histogram counts
those whose skb was consumed within the interval.

Kernel hooks, best first:
  tp_btf      the raw tracepoints' handlers, attached BTF-typed (btf_tracepoints; Linux
              5.5+): the skb argument is typed, so skb->dev, len, head and end are plain
              loads where a raw tracepoint pays a bpf_probe_read_kernel helper call for each
              read; only the GSO read (shared info at head + end) still takes one. A kernel
              that refuses the typed programs gets the raw ones (the probe's note says why).
  raw_tracepoint  the six tracepoints below, attached raw: arguments from TP_PROTO (skb;
              net_dev_start_xmit also dev, net_dev_xmit rc, dev and length), skb->len and
              GSO segments read at BTF offsets; sends counted at net_dev_start_xmit, and
              refused ones taken back at net_dev_xmit. Preferred because the kernel skips a perf
              tracepoint program whenever any other tracing program runs on that CPU (the
              per-CPU bpf_prog_active: receive and transmit completion in softirq on top of
              a socket probe), where a raw tracepoint program is guarded only against itself.
  tracepoint  net:napi_gro_receive_entry (NIC receive), net:netif_receive_skb (stack
              receive), net:net_dev_queue (stack send; ends a stale start),
              net:net_dev_start_xmit (start; notes the device while the skb is still the
              driver's to read), net:net_dev_xmit (NIC send: the driver took it or
              refused), skb:consume_skb (transmit done). Linux 4.x and later (BTF for
              offsets: 5.x).
  kprobe      napi_gro_receive, __netif_receive_skb, __dev_queue_xmit, dev_hard_start_xmit,
              consume_skb (generated and unit-tested; not runnable on the development
              machine, which has no kprobes). It misses packets received in lists
              (netif_receive_skb_list), counts only the first skb of an xmit_more batch, and
              cannot tell refused sends: a degraded mode.

Per event: receive points one read (skb->dev and skb->len together: read_pair, raw
tracepoints and kprobes; none BTF-typed) and one per-CPU hash update; stack send that plus,
once armed, an LRU lookup (and a store clearing a stale start). Transmits, BTF-typed and raw
tracepoints and kprobes: start_xmit counts the send where the driver gets it: two reads
(skb->len with head and end, then gso size with segments; BTF-typed, only the second), one
per-CPU hash update, whose entry also says whether the device is hardware, and for hardware
only an LRU lookup and an in-place rewrite (an update only for an address not yet in the
map); net_dev_xmit does nothing unless the driver refused the send (rc != 0, rare), which
it takes back out of the sizes and counts as an error. Perf tracepoints, whose net_dev_xmit record names no device: start_xmit reads the
device's parent too and pushes the skb and device on a per-CPU array, which net_dev_xmit
pops to update the device entry. consume_skb, once armed, one LRU lookup, which usually
misses. A device's ifindex, namespace, name and parent are read once per device per
interval, when its entry is created. Map: --max-devices entries per interval; packets of
devices that do not fit are counted as dropped, in both panes. The tracepoints'
__data_loc `name` is never copied.

Overhead: BPF run time per event (bench/hook_cost.py: 200,000 64-byte UDP datagrams to a
test host over a veth, kernel.bpf_stats_enabled; medians of 3 runs, three times; 2 cores, Linux 6.18).
Before, as two programs (netdev_sizes + nettxlat, times added), and then as one:
  net_dev_start_xmit   420-490 ns -> 180-195 ns   (in-place LRU rewrite, no device entry)
  net_dev_queue        365-380 ns -> 190-205 ns   (a stale start is cleared, not deleted)
  net_dev_xmit         ~100 ns, netif_receive_skb ~135 ns: unchanged (one program each before)
  skb:consume_skb      ~300 ns, both (every skb freed on the machine; most miss the LRU)
Timing hardware devices only (two runs of bench/overhead.py --observers nettop --workloads
rr64,writes64, before and after; medians of 3): net_dev_start_xmit 234 -> 188 ns and
net_dev_queue 208 -> 179 ns (pinned 64-byte request/response on lo), consume_skb 273 -> 76 ns
(64-byte writes on lo: nothing armed). The hook_cost.py figures above are from the first session.
Counting a raw-tracepoint send at start_xmit, not net_dev_xmit (hook_cost.py, the code before
and after in turn, three times, 2026-12-04, with each CPU describing the device in its own
copy of the entry): net_dev_xmit 114-118 -> 69-71 ns (its dispatch and a test of rc),
net_dev_start_xmit 182-187 -> 190-196, so a transmit 297-303 -> 259-267 ns; net_dev_queue
162-168 -> 163-168 and netif_receive_skb 153-157 -> 155-162 (their entry's one more test);
a packet through all five 681-695 -> 647-668 ns.
Raw against BTF-typed (hook_cost.py --source, medians of 3 runs each, 2026-12-04):
net_dev_queue 156 -> 116 ns, net_dev_start_xmit 182 -> 151, netif_receive_skb 148 -> 111;
net_dev_xmit (66-68) and consume_skb (64-65), which read no skb field, unchanged: a packet
through all five 616 -> 510 ns. Of each, ~70 ns is what bpf_stats itself adds (an empty
BTF-typed program on netif_receive_skb measured 68-75). On pinned 64-byte request/response
the difference did not show beyond the noise (bench/NOTES.md).
Each program also costs its dispatch, which bpf_stats does not count: one program per hook.

Example (poll records for the root end of a test host's veth, after ten 1000-byte UDP
datagrams to it and the five ICMP port-unreachable replies let through; a veth is virtual,
so its transmits are counted, not timed):
  sizes  {"ifname": "ntv1h", "ifindex": 462, "netns": 4026531833,
          "nic_recv": {"count": 0, "bytes": 0, "errors": 0, "buckets": []},
          "stack_recv": {"count": 5, "bytes": 2880, "errors": 0, "buckets": [[512, 1024, 5]]},
          "stack_send": {"count": 10, "bytes": 10420, "errors": 0, "buckets": [[1024, 2048, 10]]},
          "nic_send": {"count": 10, "bytes": 10420, "errors": 0, "buckets": [[1024, 2048, 10]]}}
  queues {"ifname": "ntv1h", "ifindex": 462, "netns": 4026531833, "packets": 10,
          "latency_us": {"buckets": [], "p50": null, "p90": null, "p99": null, "max": null},
          "hardware": false}
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from typing import Any

from nettop.model.histogram import Histogram
from nettop.model.queues import DeviceLatency, QueuesSnapshot
from nettop.model.sizes import DeviceSizes, IoSizes, SizesSnapshot
from nettop.probes.base import EventSource, Probe, btf_tracepoints, kprobes, raw_tracepoints, tracepoints
from nettop.probes.btf_tracepoints import HANDLER_C, as_btf_typed
from nettop.probes.cbits import DROPPED_C
from nettop.probes.layout import Field, offset_defines
from nettop.probes.maps import BatchDrainer
from nettop.probes.timing import (
    DEFAULT_MAX_INFLIGHT,
    DEVICE_FIELDS,
    SKB_FIELDS,
    SLOTS,
    STATS,
    latency_of,
    merge_cpu_values,
    types_c,
)

DEFAULT_MAX_DEVICES = 1024

#: Map slot order of the four size points; the C below uses the same numbers.
POINTS = ("stack_recv", "stack_send", "nic_recv", "nic_send")

HOOKS = (
    "net:netif_receive_skb",
    "net:net_dev_queue",
    "net:napi_gro_receive_entry",
    "net:net_dev_start_xmit",
    "net:net_dev_xmit",
    "skb:consume_skb",
)
TP_BTF = EventSource("tp_btf", btf_tracepoints(*HOOKS))
RAW_TRACEPOINT = EventSource("raw_tracepoint", raw_tracepoints(*HOOKS))
TRACEPOINT = EventSource("tracepoint", tracepoints(*HOOKS))
KPROBE = EventSource(
    "kprobe", kprobes("__netif_receive_skb", "__dev_queue_xmit", "napi_gro_receive", "dev_hard_start_xmit", "consume_skb")
)

SKB_LEN_FIELDS = (Field("OFF_SKB_LEN", "sk_buff", "len"),)
PARENT_FIELDS = (Field("OFF_DEV_PARENT", "net_device", "dev.parent"),)

# struct dev_entry after its leading struct lat_stats (timing.STATS): the sizes part, then
# whether the device is hardware (transmits timed), and whether this CPU's copy says so yet.
SIZES = struct.Struct(f"<4Q4I{4 * SLOTS}I")
HARDWARE = struct.Struct("<I4x")
ENTRY_SIZE = STATS.size + SIZES.size + HARDWARE.size  # 752: a multiple of 8, as per-CPU values must be

_COMMON_C = r"""
#define STACK_RECV 0
#define STACK_SEND 1
#define NIC_RECV 2
#define NIC_SEND 3

struct dev_entry {
    struct lat_stats tx;  /* transmit latency; other = packets handed to the driver; the device's identity */
    u64 bytes[4];         /* sizes, per point */
    u32 errors[4];
    u32 hist[4 * SLOTS];  /* per point, SLOTS each: BCC's Python side cannot describe 2-D arrays */
    u32 hardware;         /* a bus device below it: its transmits are timed */
    u32 known;            /* this CPU's copy holds the identity and hardware flag */
};

BPF_PERCPU_HASH(devices, u64, struct dev_entry, %(max_devices)d);
BPF_PERCPU_ARRAY(entry_template, struct dev_entry, 1);
%(dropped)s
struct start {
    u64 ts;
    u64 dev;
    u64 packets;
};
/* Per-CPU LRU lists (BPF_F_NO_COMMON_LRU): no global LRU lock on the hot path. */
BPF_F_TABLE("lru_hash", u64, struct start, starts, %(max_inflight)d, BPF_F_NO_COMMON_LRU);
/* Set once the first hardware transmit is timed: until then `starts` is empty, and the
 * stack-send and consume_skb handlers skip their lookups (lo and veth never arm it). */
BPF_ARRAY(armed, u32, 1);

/* Hardware (a NIC, virtio) has a parent bus device; lo, veth, bridges, tunnels do not, and
 * their "transmit" hands the skb to another stack, so there is no completion to time. */
static __always_inline u32 is_hardware(u64 dev)
{
    u64 parent = 0;
    if (dev)
        bpf_probe_read_kernel(&parent, sizeof(parent), (void *)dev + OFF_DEV_PARENT);
    return parent != 0;
}

static __always_inline int is_armed(void)
{
    int zero = 0;
    u32 *on = armed.lookup(&zero);
    return on && *on;
}

/* A BPF update of a per-CPU hash fills only the creating CPU's copy of the entry and zeroes
 * the others', so another CPU finds the entry without the device's identity or hardware flag
 * (and would never time its sends): each CPU describes the device in its own copy once. */
static __always_inline void describe(struct dev_entry *e, u64 dev)
{
    read_device(&e->tx, (void *)dev);
    e->hardware = is_hardware(dev);
    e->known = 1;
}

/* Only the description (describe) is ever written to the template: the identity part is
 * cleared, the flags are rewritten. */
static __always_inline struct dev_entry *device_entry(u64 dev)
{
    struct dev_entry *e = devices.lookup(&dev);
    if (e) {
        if (!e->known)
            describe(e, dev);
        return e;
    }
    if (!dev)
        return 0;
    int zero = 0;
    struct dev_entry *tpl = entry_template.lookup(&zero);
    if (!tpl)
        return 0;
    __builtin_memset(&tpl->tx, 0, sizeof(tpl->tx));
    describe(tpl, dev);
    if (devices.update(&dev, tpl)) {
        count_dropped();
        return 0;
    }
    return devices.lookup(&dev);
}

static __always_inline void add_size(struct dev_entry *e, u32 len, int error, const int point)
{
    if (error) {
        e->errors[point]++;
        return;
    }
    u32 slot = log2_slot(len, SLOTS);
    e->bytes[point] += len;
    e->hist[point * SLOTS + slot]++;
}

static __always_inline u64 skb_dev(void *skb)
{
    u64 dev = 0;
    bpf_probe_read_kernel(&dev, sizeof(dev), skb + OFF_SKB_DEV);
    return dev;
}

static __always_inline void account_dev(u64 dev, u32 len, const int point)
{
    struct dev_entry *e = device_entry(dev);
    if (e)
        add_size(e, len, 0, point);
}

/* the perf tracepoints' record carries the length */
static __always_inline void account(void *skb, u32 len, const int point)
{
    account_dev(skb_dev(skb), len, point);
}

/* An skb address is soon reused; its old start (never consumed: veth, drops) is then
 * rewritten in place, lock-free, where an update would take the LRU's lock. The skb is the
 * driver's now, so no other CPU consumes this key meanwhile. Hardware devices only. */
static __always_inline void start_timing(void *skb, u64 dev, u32 packets)
{
    u64 key = (u64)skb;
    int zero = 0;
    u32 *on = armed.lookup(&zero);
    if (on && !*on)
        *on = 1;
    struct start *old = starts.lookup(&key);
    if (old) {
        old->ts = bpf_ktime_get_ns();
        old->dev = dev;
        old->packets = packets;
        return;
    }
    struct start st = {.ts = bpf_ktime_get_ns(), .dev = dev, .packets = packets};
    starts.update(&key, &st);
}

/* Raw tracepoints and kprobes: a send is counted as the driver gets it, where the device's
 * entry also says whether to time it (no read of its parent per packet). */
static __always_inline void handed_to_driver(void *skb, u64 dev, u32 len, u32 packets)
{
    struct dev_entry *e = device_entry(dev);
    if (!e)
        return;
    e->tx.other += packets;
    add_size(e, len, 0, NIC_SEND);
    if (e->hardware)
        start_timing(skb, dev, packets);
}

/* A new packet at an old address must not inherit a start: cleared, not deleted (a store,
 * where a delete takes the LRU's lock). */
static __always_inline void queued(void *skb)
{
    u64 key = (u64)skb;
    if (!is_armed())
        return;
    struct start *old = starts.lookup(&key);
    if (old)
        old->ts = 0;
}

static __always_inline void consumed(void *skb)
{
    u64 key = (u64)skb;
    if (!is_armed())
        return;
    struct start *st = starts.lookup(&key);
    if (!st || !st->ts)
        return;
    u64 delta = bpf_ktime_get_ns() - st->ts;
    u64 dev = st->dev;
    u32 packets = st->packets;
    starts.delete(&key);
    struct dev_entry *e = device_entry(dev);
    if (e)
        add_sample(&e->tx, delta, packets);
}
"""

_XMIT_C = r"""
/*
 * Perf tracepoints only (their net_dev_xmit record has no device): net_dev_xmit fires after
 * the driver took the skb: it may be freed, or (veth) already handed to the peer with
 * skb->dev rewritten. So the device is noted just before, at net_dev_start_xmit on the same
 * CPU, on a small stack because a virtual device's transmit (bond, vlan) nests the transmit
 * of the device below it. Every start_xmit is pushed (a device of 0 too) so that every
 * net_dev_xmit pops its own.
 */
#define XMIT_DEPTH 4
struct xmit_stack {
    u64 depth;
    u64 skb[XMIT_DEPTH];
    u64 dev[XMIT_DEPTH];
    u32 packets[XMIT_DEPTH];
};
BPF_PERCPU_ARRAY(xmits, struct xmit_stack, 1);

static __always_inline void start_xmit(void *skb, u64 dev, u32 packets)
{
    if (is_hardware(dev))
        start_timing(skb, dev, packets);
    int zero = 0;
    struct xmit_stack *x = xmits.lookup(&zero);
    if (!x || x->depth >= XMIT_DEPTH) {
        struct dev_entry *e = device_entry(dev);  /* no slot left: count the packets now */
        if (e)
            e->tx.other += packets;
        return;
    }
    u32 top = x->depth & (XMIT_DEPTH - 1);
    x->skb[top] = (u64)skb;
    x->dev[top] = dev;
    x->packets[top] = packets;
    x->depth++;
}

static __always_inline void xmit_done(void *skb, u32 len, int rc)
{
    int zero = 0;
    struct xmit_stack *x = xmits.lookup(&zero);
    if (!x || x->depth == 0)
        return;
    x->depth--;
    u32 top = x->depth & (XMIT_DEPTH - 1);
    if (x->skb[top] != (u64)skb)
        return;
    struct dev_entry *e = device_entry(x->dev[top]);
    if (!e)
        return;
    e->tx.other += x->packets[top];
    add_size(e, len, rc != 0, NIC_SEND);
}
"""

_TRACEPOINT_C = r"""
TRACEPOINT_PROBE(net, netif_receive_skb)
{
    account(args->skbaddr, args->len, STACK_RECV);
    return 0;
}

TRACEPOINT_PROBE(net, napi_gro_receive_entry)
{
    account((void *)args->skbaddr, args->len, NIC_RECV);
    return 0;
}

TRACEPOINT_PROBE(net, net_dev_queue)
{
    account(args->skbaddr, args->len, STACK_SEND);
    queued(args->skbaddr);
    return 0;
}

TRACEPOINT_PROBE(net, net_dev_start_xmit)
{
    void *skb = (void *)args->skbaddr;
    start_xmit(skb, skb_dev(skb), args->gso_size && args->gso_segs ? args->gso_segs : 1);
    return 0;
}

TRACEPOINT_PROBE(net, net_dev_xmit)
{
    xmit_done(args->skbaddr, args->len, args->rc);
    return 0;
}

TRACEPOINT_PROBE(skb, consume_skb)
{
    consumed(args->skbaddr);
    return 0;
}
"""

_SKB_DEV_LEN_C = r"""
/* skb->dev and skb->len in one read (read_pair): 16 and 112 on 6.18 */
static __always_inline u64 skb_dev_len(void *skb, u32 *len)
{
    u64 dev = 0;
    read_pair(skb, OFF_SKB_DEV, &dev, sizeof(dev), OFF_SKB_LEN, len, sizeof(*len));
    return dev;
}

static __always_inline void account_skb(void *skb, const int point)
{
    u32 len = 0;
    u64 dev = skb_dev_len(skb, &len);
    account_dev(dev, len, point);
}
"""

_SKB_LEN_PACKETS_C = r"""
/* A transmit's length and packets in two reads: skb->len, end and head in one where they
 * lie within READ_SPAN bytes (112, 188 and 192 on 6.18), then the GSO segments. The offsets
 * are constants, so clang keeps one branch. */
#define SKB_SPAN_LOW SPAN_MIN(OFF_SKB_LEN, SPAN_MIN(OFF_SKB_END, OFF_SKB_HEAD))
#define SKB_SPAN_HIGH SPAN_MAX(OFF_SKB_LEN + 4, SPAN_MAX(OFF_SKB_END + 4, OFF_SKB_HEAD + 8))
static __always_inline u32 skb_len_packets(void *skb, u32 *len)
{
    if (SKB_SPAN_HIGH - SKB_SPAN_LOW > READ_SPAN) {
        bpf_probe_read_kernel(len, sizeof(*len), skb + OFF_SKB_LEN);
        return skb_packets(skb);
    }
    u64 span[READ_SPAN / 8];
    u64 head = 0;
    u32 end = 0;
    if (bpf_probe_read_kernel(span, SKB_SPAN_HIGH - SKB_SPAN_LOW, skb + SKB_SPAN_LOW))
        return 1;
    __builtin_memcpy(len, (u8 *)span + (OFF_SKB_LEN - SKB_SPAN_LOW), sizeof(*len));
    __builtin_memcpy(&end, (u8 *)span + (OFF_SKB_END - SKB_SPAN_LOW), sizeof(end));
    __builtin_memcpy(&head, (u8 *)span + (OFF_SKB_HEAD - SKB_SPAN_LOW), sizeof(head));
    return shinfo_packets(head, end);
}
"""

_REFUSED_C = r"""
/* The driver refused a send counted at net_dev_start_xmit (rc != NETDEV_TX_OK: busy, and
 * the stack retries it, or dropped): taken back out of the sizes and counted as an error.
 * Both events run on one CPU, one after the other, so the per-CPU entry still holds the
 * send, unless a poll drained it in between: then nothing is taken back. */
static __always_inline void refused(u64 dev, u32 len)
{
    struct dev_entry *e = device_entry(dev);
    if (!e)
        return;
    u32 slot = log2_slot(len, SLOTS);
    if (e->bytes[NIC_SEND] >= len && e->hist[NIC_SEND * SLOTS + slot]) {
        e->bytes[NIC_SEND] -= len;
        e->hist[NIC_SEND * SLOTS + slot]--;
    }
    e->errors[NIC_SEND]++;
}
"""

_TYPED_SKB_C = r"""
/* BTF-typed: the skb's fields are loads; only the GSO read (typed_skb_packets) is a helper call. */
static __always_inline void account_skb(void *skb, const int point)
{
    account_dev(BTF_FIELD(skb, OFF_SKB_DEV, u64), BTF_FIELD(skb, OFF_SKB_LEN, u32), point);
}

static __always_inline u32 skb_len_packets(void *skb, u32 *len)
{
    *len = BTF_FIELD(skb, OFF_SKB_LEN, u32);
    return typed_skb_packets(skb);
}
"""

_RAW_TRACEPOINT_C = r"""
/* Arguments by TP_PROTO (include/trace/events/net.h, skb.h; the same in 6.1 and 6.18):
 * netif_receive_skb, net_dev_queue (skb); napi_gro_receive_entry (skb);
 * net_dev_start_xmit (skb, dev); net_dev_xmit (skb, rc, dev, skb_len);
 * consume_skb (skb[, location since 6.3]). */
RAW_TRACEPOINT_PROBE(netif_receive_skb)
{
    account_skb((void *)ctx->args[0], STACK_RECV);
    return 0;
}

RAW_TRACEPOINT_PROBE(napi_gro_receive_entry)
{
    account_skb((void *)ctx->args[0], NIC_RECV);
    return 0;
}

RAW_TRACEPOINT_PROBE(net_dev_queue)
{
    void *skb = (void *)ctx->args[0];
    account_skb(skb, STACK_SEND);
    queued(skb);
    return 0;
}

RAW_TRACEPOINT_PROBE(net_dev_start_xmit)
{
    void *skb = (void *)ctx->args[0];
    u32 len = 0;
    u32 packets = skb_len_packets(skb, &len);
    handed_to_driver(skb, ctx->args[1], len, packets);
    return 0;
}

/* Only a refusal has work to do: every other send was counted at net_dev_start_xmit. */
RAW_TRACEPOINT_PROBE(net_dev_xmit)
{
    if ((int)ctx->args[1])
        refused(ctx->args[2], (u32)ctx->args[3]);
    return 0;
}

RAW_TRACEPOINT_PROBE(consume_skb)
{
    consumed((void *)ctx->args[0]);
    return 0;
}
"""

_KPROBE_C = r"""
int kprobe____netif_receive_skb(struct pt_regs *ctx, void *skb) { account_skb(skb, STACK_RECV); return 0; }
int kprobe__napi_gro_receive(struct pt_regs *ctx, void *napi, void *skb) { account_skb(skb, NIC_RECV); return 0; }

int kprobe____dev_queue_xmit(struct pt_regs *ctx, void *skb)
{
    account_skb(skb, STACK_SEND);
    queued(skb);
    return 0;
}

int kprobe__dev_hard_start_xmit(struct pt_regs *ctx, void *skb)
{
    u32 len = 0;
    u64 dev = skb_dev_len(skb, &len);
    handed_to_driver(skb, dev, len, skb_packets(skb));
    return 0;
}

int kprobe__consume_skb(struct pt_regs *ctx, void *skb) { consumed(skb); return 0; }
"""


def bpf_text(
    source: str, max_devices: int = DEFAULT_MAX_DEVICES, max_inflight: int = DEFAULT_MAX_INFLIGHT, btf=None
) -> str:
    """The complete C program for one event source (`nettop --ebpf` prints it)."""
    if source not in ("tp_btf", "raw_tracepoint", "tracepoint", "kprobe"):
        raise ValueError(f"unknown source {source}")
    fields = DEVICE_FIELDS + PARENT_FIELDS + SKB_FIELDS + (SKB_LEN_FIELDS if source != "tracepoint" else ())
    text = types_c(offset_defines(fields, btf))
    text += _COMMON_C % {"max_devices": max_devices, "max_inflight": max_inflight, "dropped": DROPPED_C}
    if source == "kprobe":
        return text + _SKB_DEV_LEN_C + _KPROBE_C
    if source == "raw_tracepoint":
        return text + _SKB_DEV_LEN_C + _SKB_LEN_PACKETS_C + _REFUSED_C + _RAW_TRACEPOINT_C
    if source == "tp_btf":  # the raw tracepoints' handlers, BTF-typed
        return text + HANDLER_C + _TYPED_SKB_C + _REFUSED_C + as_btf_typed(_RAW_TRACEPOINT_C)
    return text + _XMIT_C + _TRACEPOINT_C


def merge_entry(per_cpu: Iterable[bytes]) -> tuple[dict[str, Any], dict[str, list[int]]]:
    """One device's per-CPU values summed: (transmit part as timing.merge_cpu_values gives it, sizes part)."""
    per_cpu = list(per_cpu)
    tx = merge_cpu_values([STATS.unpack_from(v) for v in per_cpu])
    sizes = {"bytes": [0] * 4, "errors": [0] * 4, "hist": [0] * (4 * SLOTS)}
    for v in per_cpu:
        values = SIZES.unpack_from(v, STATS.size)
        for part, start, count in (("bytes", 0, 4), ("errors", 4, 4), ("hist", 8, 4 * SLOTS)):
            total = sizes[part]
            for i, n in enumerate(values[start : start + count]):
                if n:
                    total[i] += n
    tx["hardware"] = any(HARDWARE.unpack_from(v, STATS.size + SIZES.size)[0] for v in per_cpu)
    return tx, sizes


def device_sizes(meta: tuple, sizes: dict[str, list[int]]) -> DeviceSizes | None:
    """The sizes part of one device's interval; None when no size point saw it."""
    if not any(sizes["hist"]) and not any(sizes["errors"]):
        return None
    ifindex, netns, _, _, name = meta
    points = {}
    for i, point in enumerate(POINTS):
        histogram = Histogram.from_slots(sizes["hist"][i * SLOTS : (i + 1) * SLOTS])
        points[point] = IoSizes(histogram.count, sizes["bytes"][i], sizes["errors"][i], histogram)
    return DeviceSizes(name or f"if{ifindex}", ifindex, netns, **points)


def device_latency(tx: dict[str, Any]) -> DeviceLatency | None:
    """The transmit part; None for a device that neither started nor finished a transmit."""
    latency = latency_of(tx)
    if not tx["other"] and not latency.count:
        return None
    ifindex, netns, _, _, name = tx["meta"]
    return DeviceLatency(name or f"if{ifindex}", ifindex, netns, tx["other"], latency, tx.get("hardware", True))


def _by_key(rows: Iterable) -> tuple:
    """Rows merged by device key: a device freed and another allocated at the same address within one interval."""
    merged: dict[tuple, Any] = {}
    for row in rows:
        if row is not None:
            merged[row.key] = merged[row.key].merge(row) if row.key in merged else row
    return tuple(merged.values())


def build_snapshots(entries: Iterable[tuple[dict, dict]], source: str, dropped: int = 0) -> dict[str, Any]:
    """The sizes pane's devices part and the queues pane's devices part of one interval."""
    known = [(tx, sizes) for tx, sizes in entries if tx["meta"] is not None]
    return {
        "sizes": SizesSnapshot(source, dropped, devices=_by_key(device_sizes(tx["meta"], s) for tx, s in known)),
        "queues": QueuesSnapshot(source, dropped, devices=_by_key(device_latency(tx) for tx, _ in known)),
    }


class NetdevProbe(Probe):
    name = "netdev"
    panes = ("sizes", "queues")
    sources = (TP_BTF, RAW_TRACEPOINT, TRACEPOINT, KPROBE)

    def __init__(
        self,
        forced_source: str | None = None,
        max_devices: int = DEFAULT_MAX_DEVICES,
        max_inflight: int = DEFAULT_MAX_INFLIGHT,
    ) -> None:
        super().__init__(forced_source)
        self.max_devices = max_devices
        self.max_inflight = max_inflight

    def program_text(self) -> str:
        source = self.source or self.select()
        return bpf_text(source.name, self.max_devices, self.max_inflight)

    def start(self) -> None:
        self.load_program()
        self._drainer = BatchDrainer(self._bpf["devices"])

    def poll(self, interval: float) -> Mapping[str, Any]:
        assert self._bpf is not None and self.source is not None
        entries = [merge_entry(copies) for _, copies in self._drainer.drain().per_cpu_items()]
        return build_snapshots(entries, self.source.name, self.counter_delta("dropped"))
