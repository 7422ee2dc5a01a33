"""nettxlat: device transmit latency, from handing a packet to the driver until it is freed.

The book's nettxlat(-dev).bt: the time from net:net_dev_start_xmit to skb:consume_skb,
which on a NIC is the transmit completion (the driver frees the skb once the hardware
sent it). Timestamps are deleted on net:net_dev_queue, as the book does, so that an skb
address reused for a new packet never inherits an old start.

Kernel hooks, best first:
  tracepoint  net:net_dev_start_xmit (Linux 4.x), net:net_dev_queue, skb:consume_skb
  kprobe      dev_hard_start_xmit (first skb of an xmit_more list only), __dev_queue_xmit,
              consume_skb (generated and unit-tested; not runnable on the development
              machine, which has no kprobes)

consume_skb fires for every skb freed on the machine (received ones included): that path
is one LRU hash lookup, which usually misses. An skb that is never consumed (dropped with
kfree_skb, or handed on: a veth forwards it to its peer, where it is freed by whoever
receives it, so on a veth the "transmit" ends when the peer's stack is done with it)
keeps its start until the LRU map evicts it or its address is reused.

`packets` are the packets handed to the driver (GSO segments counted); the histogram
counts those whose skb was consumed within the interval.

Overhead: start_xmit is an LRU update and a per-CPU hash lookup; net_dev_queue an LRU
delete; consume_skb an LRU lookup. Measured: see the Queues pane report.

Example (`nettop record`):
  "devices": [{"ifname": "eth0", "packets": 912, "latency_us": {"p50": 14.2, "p99": 61.0, ...}}]
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from nettop.model.queues import DeviceLatency, QueuesSnapshot
from nettop.probes.base import EventSource, Probe, kprobes, load_bpf, tracepoints
from nettop.probes.layout import offset_defines
from nettop.probes.timing import (
    DEFAULT_MAX_ENTRIES,
    DEFAULT_MAX_INFLIGHT,
    DEVICE_FIELDS,
    SKB_FIELDS,
    Drain,
    common_c,
    latency_of,
)

TRACEPOINT = EventSource(
    "tracepoint", tracepoints("net:net_dev_start_xmit", "net:net_dev_queue", "skb:consume_skb")
)
KPROBE = EventSource("kprobe", kprobes("dev_hard_start_xmit", "__dev_queue_xmit", "consume_skb"))

_COMMON_C = r"""
struct start {
    u64 ts;
    u64 dev;
    u64 packets;
};
/* Per-CPU LRU lists (BPF_F_NO_COMMON_LRU): no global LRU lock on the hot path. */
BPF_F_TABLE("lru_hash", u64, struct start, starts, %(max_inflight)d, BPF_F_NO_COMMON_LRU);

static __always_inline struct lat_stats *device_entry(u64 dev)
{
    struct lat_stats *s = stats.lookup(&dev);
    if (s)
        return s;
    struct lat_stats *tpl = blank_entry();
    if (!tpl)
        return 0;
    read_device(tpl, (void *)dev);
    return insert(&dev, tpl);
}

static __always_inline void started(void *skb, u32 packets)
{
    u64 key = (u64)skb;
    struct start st = {.ts = bpf_ktime_get_ns(), .packets = packets};
    bpf_probe_read_kernel(&st.dev, sizeof(st.dev), skb + OFF_SKB_DEV);
    if (!st.dev)
        return;
    starts.update(&key, &st);
    struct lat_stats *s = device_entry(st.dev);
    if (s)
        s->other += packets;
}

static __always_inline void queued(void *skb)
{
    u64 key = (u64)skb;
    if (starts.lookup(&key))  /* a lookup is lock-free; a delete of a missing key is not */
        starts.delete(&key);
}

static __always_inline void consumed(void *skb)
{
    u64 key = (u64)skb;
    struct start *st = starts.lookup(&key);
    if (!st)
        return;
    u64 delta = bpf_ktime_get_ns() - st->ts;
    u64 dev = st->dev;
    u32 packets = st->packets;
    starts.delete(&key);
    struct lat_stats *s = device_entry(dev);
    if (s)
        add_sample(s, delta, packets);
}
"""

_TRACEPOINT_C = r"""
TRACEPOINT_PROBE(net, net_dev_start_xmit)
{
    u32 packets = args->gso_size && args->gso_segs ? args->gso_segs : 1;
    started((void *)args->skbaddr, packets);
    return 0;
}

TRACEPOINT_PROBE(net, net_dev_queue)
{
    queued(args->skbaddr);
    return 0;
}

TRACEPOINT_PROBE(skb, consume_skb)
{
    consumed(args->skbaddr);
    return 0;
}
"""

_KPROBE_C = r"""
int kprobe__dev_hard_start_xmit(struct pt_regs *ctx, void *skb) { started(skb, skb_packets(skb)); return 0; }
int kprobe____dev_queue_xmit(struct pt_regs *ctx, void *skb) { queued(skb); return 0; }
int kprobe__consume_skb(struct pt_regs *ctx, void *skb) { consumed(skb); return 0; }
"""


def bpf_text(
    source: str, max_entries: int = DEFAULT_MAX_ENTRIES, max_inflight: int = DEFAULT_MAX_INFLIGHT, btf=None
) -> str:
    """The complete C program for one event source (`nettop --ebpf` prints it)."""
    text = common_c(offset_defines(DEVICE_FIELDS + SKB_FIELDS, btf), max_entries)
    text += _COMMON_C % {"max_inflight": max_inflight}
    if source == "tracepoint":
        return text + _TRACEPOINT_C
    if source == "kprobe":
        return text + _KPROBE_C
    raise ValueError(f"unknown source {source}")


def build_snapshot(entries: Iterable[dict[str, Any]], source: str, dropped: int = 0) -> QueuesSnapshot:
    devices: dict[tuple, DeviceLatency] = {}
    for entry in entries:
        if entry["meta"] is None:
            continue
        ifindex, netns, _, _, name = entry["meta"]
        device = DeviceLatency(name or f"if{ifindex}", ifindex, netns, entry["other"], latency_of(entry))
        # A device freed and another allocated at the same address within one interval.
        devices[device.key] = devices[device.key].merge(device) if device.key in devices else device
    return QueuesSnapshot(source, dropped, devices=tuple(devices.values()))


class NetTxLatencyProbe(Probe):
    name = "nettxlat"
    panes = ("queues",)
    sources = (TRACEPOINT, KPROBE)

    def __init__(self, forced_source: str | None = None, max_inflight: int = DEFAULT_MAX_INFLIGHT) -> None:
        super().__init__(forced_source)
        self.max_inflight = max_inflight
        self._bpf = None
        self._drain = Drain()

    def program_text(self) -> str:
        source = self.source or self.select()
        return bpf_text(source.name, max_inflight=self.max_inflight)

    def start(self) -> None:
        self._bpf = load_bpf(self.program_text())

    def poll(self, interval: float) -> Mapping[str, Any]:
        assert self._bpf is not None and self.source is not None
        entries = [entry for _, entry in self._drain.entries(self._bpf)]
        dropped, _ = self._drain.counters(self._bpf)
        return {"queues": build_snapshot(entries, self.source.name, dropped)}

    def close(self) -> None:
        if self._bpf is not None:
            self._bpf.cleanup()
            self._bpf = None
