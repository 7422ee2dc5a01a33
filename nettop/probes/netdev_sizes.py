"""netdev_sizes: packet size histograms per network device at four points (the book's netsize).

Feeds the device section of the sizes pane. Comparing the points shows segmentation
offload at work: with TSO/GSO the stack hands a device 64 KiB packets that the NIC (or
the GSO layer just before it) cuts into MTU-sized frames; with GRO the NIC receives
frames that the stack sees merged.

Kernel hooks, best first:
  tracepoint  net:napi_gro_receive_entry (NIC receive), net:netif_receive_skb (stack
              receive), net:net_dev_queue (stack send), net:net_dev_xmit (NIC send,
              with net:net_dev_start_xmit to learn the device while the skb is
              still the driver's to read); all in Linux 4.x and later
  kprobe      napi_gro_receive, __netif_receive_skb, __dev_queue_xmit,
              dev_hard_start_xmit (generated and unit-tested; not runnable on the
              development machine, which has no kprobes). It misses packets received
              in lists (netif_receive_skb_list) and counts only the first packet of an
              xmit_more batch: a degraded mode.

The size is skb->len, as netsize.bt prints: the whole packet as the kernel holds it,
link-layer header included on the send side (it is pushed before net_dev_queue) and
excluded on the receive side (eth_type_trans pulled it), so one ping of 1000 bytes is
1042 at stack send and 1028 at stack receive on Ethernet. A GSO packet counts once,
with its full length.

Per packet and point: one 8-byte read (skb->dev) and one per-CPU hash update keyed by
the device pointer (plus a per-CPU array push/pop around the NIC send). The tracepoints' `name` is a __data_loc string: it is not copied per packet;
the device's ifindex, network namespace and name are read once per device per interval,
when its map entry is created. NIC sends the driver refused (rc != NETDEV_TX_OK; the
stack retries them) count as errors, not sizes. Map: --max-devices entries per
interval; packets of devices that do not fit are counted as dropped.

Overhead: see the closing note of the sizes pane work (64-byte TCP writes over loopback).

Example (the sizes pane's device section, veth, 1000-byte pings):
  stack_send   [1K, 2K)   10 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
  stack_recv   [1K, 2K)   10 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
"""

from __future__ import annotations

import struct
from typing import Any, Mapping

from nettop.model.histogram import Histogram
from nettop.model.sizes import DeviceSizes, IoSizes, SizesSnapshot
from nettop.probes.base import EventSource, Probe, kprobes, load_bpf, tracepoints
from nettop.probes.cbits import LOG2_SLOT_C
from nettop.probes.layout import Field, offset_defines

SLOTS = 32
DEFAULT_MAX_DEVICES = 1024

#: Map slot order of the four points; the C below uses the same numbers.
POINTS = ("stack_recv", "stack_send", "nic_recv", "nic_send")

TRACEPOINT = EventSource(
    "tracepoint",
    tracepoints(
        "net:netif_receive_skb",
        "net:net_dev_queue",
        "net:napi_gro_receive_entry",
        "net:net_dev_start_xmit",
        "net:net_dev_xmit",
    ),
)
KPROBE = EventSource("kprobe", kprobes("__netif_receive_skb", "__dev_queue_xmit", "napi_gro_receive", "dev_hard_start_xmit"))

DEVICE_FIELDS = (
    Field("OFF_SKB_DEV", "sk_buff", "dev"),
    Field("OFF_DEV_IFINDEX", "net_device", "ifindex"),
    Field("OFF_DEV_NAME", "net_device", "name"),
    Field("OFF_DEV_NET", "net_device", "nd_net"),
    Field("OFF_NET_NS_INUM", "net", "ns.inum"),
)
KPROBE_FIELDS = (Field("OFF_SKB_LEN", "sk_buff", "len"),)

# struct dev_stats, as laid out by the C below (little-endian, no padding: 584 bytes, a multiple of 8 as per-CPU values must be).
_STATS = struct.Struct(f"<4Q4I{4 * SLOTS}I2I16s")

_COMMON_C = LOG2_SLOT_C + r"""
#include <uapi/linux/ptrace.h>

#define SLOTS %(slots)d
#define STACK_RECV 0
#define STACK_SEND 1
#define NIC_RECV 2
#define NIC_SEND 3
%(offsets)s

struct dev_stats {
    u64 bytes[4];
    u32 errors[4];
    u32 hist[4 * SLOTS];  /* per point, SLOTS each: BCC's Python side cannot describe 2-D arrays */
    u32 ifindex;
    u32 netns;
    char name[16];
};

BPF_PERCPU_HASH(stats, u64, struct dev_stats, %(max_devices)d);
BPF_PERCPU_ARRAY(entry_template, struct dev_stats, 1);
BPF_PERCPU_ARRAY(dropped, u64, 1);

static __always_inline struct dev_stats *new_entry(u64 *key, void *dev)
{
    int zero = 0;
    struct dev_stats *tpl = entry_template.lookup(&zero);
    if (!tpl)
        return 0;
    void *net = 0;
    tpl->ifindex = 0;
    tpl->netns = 0;
    bpf_probe_read_kernel(&tpl->ifindex, 4, dev + OFF_DEV_IFINDEX);
    bpf_probe_read_kernel(&net, sizeof(net), dev + OFF_DEV_NET);
    if (net)
        bpf_probe_read_kernel(&tpl->netns, 4, net + OFF_NET_NS_INUM);
    bpf_probe_read_kernel_str(tpl->name, sizeof(tpl->name), dev + OFF_DEV_NAME);
    if (stats.update(key, tpl)) {
        u64 *lost = dropped.lookup(&zero);
        if (lost)
            (*lost)++;
        return 0;
    }
    return stats.lookup(key);
}

static __always_inline void account_dev(u64 dev, u32 len, int error, const int point)
{
    if (!dev)
        return;
    struct dev_stats *s = stats.lookup(&dev);
    if (!s) {
        s = new_entry(&dev, (void *)dev);
        if (!s)
            return;
    }
    if (error) {
        s->errors[point]++;
        return;
    }
    u32 slot = log2_slot(len, SLOTS);
    s->bytes[point] += len;
    s->hist[point * SLOTS + slot]++;
}

static __always_inline void account(void *skb, u32 len, int error, const int point)
{
    u64 dev = 0;
    bpf_probe_read_kernel(&dev, sizeof(dev), skb + OFF_SKB_DEV);
    account_dev(dev, len, error, point);
}
"""

_TRACEPOINT_C = r"""
TRACEPOINT_PROBE(net, netif_receive_skb)
{
    account(args->skbaddr, args->len, 0, STACK_RECV);
    return 0;
}

TRACEPOINT_PROBE(net, net_dev_queue)
{
    account(args->skbaddr, args->len, 0, STACK_SEND);
    return 0;
}

TRACEPOINT_PROBE(net, napi_gro_receive_entry)
{
    account((void *)args->skbaddr, args->len, 0, NIC_RECV);
    return 0;
}

/*
 * net_dev_xmit fires after the driver took the skb: it may be freed, or (veth) already
 * handed to the peer with skb->dev rewritten. So the device is noted just before, at
 * net_dev_start_xmit on the same CPU, on a small stack because a virtual device's
 * transmit (bond, vlan) nests the transmit of the device below it.
 */
#define XMIT_DEPTH 4
struct xmit_stack {
    u64 depth;
    u64 skb[XMIT_DEPTH];
    u64 dev[XMIT_DEPTH];
};
BPF_PERCPU_ARRAY(xmits, struct xmit_stack, 1);

TRACEPOINT_PROBE(net, net_dev_start_xmit)
{
    int zero = 0;
    struct xmit_stack *x = xmits.lookup(&zero);
    if (!x || x->depth >= XMIT_DEPTH)
        return 0;
    u32 top = x->depth & (XMIT_DEPTH - 1);
    x->skb[top] = (u64)args->skbaddr;
    x->dev[top] = 0;
    bpf_probe_read_kernel(&x->dev[top], sizeof(u64), (void *)args->skbaddr + OFF_SKB_DEV);
    x->depth++;
    return 0;
}

TRACEPOINT_PROBE(net, net_dev_xmit)
{
    int zero = 0;
    struct xmit_stack *x = xmits.lookup(&zero);
    if (!x || x->depth == 0)
        return 0;
    x->depth--;
    u32 top = x->depth & (XMIT_DEPTH - 1);
    if (x->skb[top] == (u64)args->skbaddr)
        account_dev(x->dev[top], args->len, args->rc != 0, NIC_SEND);
    return 0;
}
"""

_KPROBE_C = r"""
static __always_inline int kaccount(void *skb, const int point)
{
    u32 len = 0;
    bpf_probe_read_kernel(&len, sizeof(len), skb + OFF_SKB_LEN);
    account(skb, len, 0, point);
    return 0;
}

int kprobe____netif_receive_skb(struct pt_regs *ctx, void *skb) { return kaccount(skb, STACK_RECV); }
int kprobe____dev_queue_xmit(struct pt_regs *ctx, void *skb) { return kaccount(skb, STACK_SEND); }
int kprobe__napi_gro_receive(struct pt_regs *ctx, void *napi, void *skb) { return kaccount(skb, NIC_RECV); }
int kprobe__dev_hard_start_xmit(struct pt_regs *ctx, void *skb) { return kaccount(skb, NIC_SEND); }
"""


def bpf_text(source: str, max_devices: int = DEFAULT_MAX_DEVICES, btf=None) -> str:
    """The complete C program for one event source (shown by `nettop --ebpf`)."""
    fields = DEVICE_FIELDS + (KPROBE_FIELDS if source == "kprobe" else ())
    common = _COMMON_C % {"slots": SLOTS, "max_devices": max_devices, "offsets": offset_defines(fields, btf)}
    return common + (_KPROBE_C if source == "kprobe" else _TRACEPOINT_C)


def merge_cpu_values(per_cpu: list[tuple]) -> dict[str, Any]:
    """Sum the per-CPU copies of one device's entry; metadata from the CPU that created it."""
    bytes_ = [0] * 4
    errors = [0] * 4
    hist = [0] * (4 * SLOTS)
    meta = None
    for v in per_cpu:
        for i in range(4):
            bytes_[i] += v[i]
            errors[i] += v[4 + i]
        for i, n in enumerate(v[8 : 8 + 4 * SLOTS]):
            if n:
                hist[i] += n
        ifindex, netns, name = v[8 + 4 * SLOTS :]
        if meta is None and (ifindex or name.strip(b"\0")):
            meta = (ifindex, netns, name.split(b"\0", 1)[0].decode("utf-8", "replace"))
    return {"bytes": bytes_, "errors": errors, "hist": hist, "meta": meta}


def device_sizes(entry: dict[str, Any]) -> DeviceSizes | None:
    """One device's interval, or None for an entry whose metadata never arrived."""
    if entry["meta"] is None:
        return None
    ifindex, netns, name = entry["meta"]
    points = {}
    for i, point in enumerate(POINTS):
        histogram = Histogram.from_slots(entry["hist"][i * SLOTS : (i + 1) * SLOTS])
        points[point] = IoSizes(histogram.count, entry["bytes"][i], entry["errors"][i], histogram)
    return DeviceSizes(name or f"if{ifindex}", ifindex, netns, **points)


class NetdevSizesProbe(Probe):
    name = "netdev_sizes"
    panes = ("sizes",)
    sources = (TRACEPOINT, KPROBE)

    def __init__(self, forced_source: str | None = None, max_devices: int = DEFAULT_MAX_DEVICES) -> None:
        super().__init__(forced_source)
        self.max_devices = max_devices
        self._bpf = None
        self._dropped_total = 0

    def program_text(self) -> str:
        source = self.source or self.select()
        return bpf_text(source.name, self.max_devices)

    def start(self) -> None:
        self._bpf = load_bpf(self.program_text())  # BCC auto-attaches the named probe functions

    def poll(self, interval: float) -> Mapping[str, Any]:
        assert self._bpf is not None and self.source is not None
        merged: dict[tuple, DeviceSizes] = {}
        for _, value in self._bpf["stats"].items_lookup_and_delete_batch():
            device = device_sizes(merge_cpu_values([_STATS.unpack(bytes(v)) for v in value]))
            if device is not None:
                # A device freed and another allocated at the same address within one interval.
                merged[device.key] = merged[device.key].merge(device) if device.key in merged else device
        dropped_now = sum(self._bpf["dropped"].getvalue(0))
        dropped, self._dropped_total = dropped_now - self._dropped_total, dropped_now
        return {"sizes": SizesSnapshot(self.source.name, dropped, devices=tuple(merged.values()))}

    def close(self) -> None:
        if self._bpf is not None:
            self._bpf.cleanup()
            self._bpf = None
