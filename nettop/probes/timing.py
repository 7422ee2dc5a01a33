"""What the two queue-latency probes (qdisc_latency, netdev's transmit latency) share: one
per-CPU stats layout, the BPF C that fills it, and the Python that drains it.

Both time an skb between two events, keyed by its address in a bounded LRU hash (so an
skb that never reaches the second event — dropped, purged, forwarded — cannot hold its
slot forever: the LRU map evicts the oldest start when full). Samples go into a log2
histogram of microseconds, weighted by the packets the skb carries (GSO segments count
as `tc` counts them), plus the exact maximum.
"""

from __future__ import annotations

import struct
from typing import Any

from nettop.model.histogram import Histogram
from nettop.model.queues import Latency
from nettop.probes.addresses import kernel_text
from nettop.probes.cbits import LOG2_SLOT_C, READ_PAIR_C
from nettop.probes.layout import Field
from nettop.probes.maps import BatchDrainer

SLOTS = 32
DEFAULT_MAX_ENTRIES = 1024  # qdiscs or devices per interval
DEFAULT_MAX_INFLIGHT = 16384  # skbs between their two events at once

COUNTER_DROPPED = 0  # stats entries that did not fit in the map
COUNTER_MISSED = 1  # second events whose start is unknown and that no entry can take

DEVICE_FIELDS = (
    Field("OFF_DEV_IFINDEX", "net_device", "ifindex"),
    Field("OFF_DEV_NAME", "net_device", "name"),
    Field("OFF_DEV_NET", "net_device", "nd_net"),
    Field("OFF_NET_NS_INUM", "net", "ns.inum"),
)
SKB_FIELDS = (
    Field("OFF_SKB_NEXT", "sk_buff", "next"),
    Field("OFF_SKB_DEV", "sk_buff", "dev"),
    Field("OFF_SKB_TSTAMP", "sk_buff", "tstamp"),
    Field("OFF_SKB_HEAD", "sk_buff", "head"),
    Field("OFF_SKB_END", "sk_buff", "end"),
    Field("OFF_SHINFO_GSO_SIZE", "skb_shared_info", "gso_size"),
    Field("OFF_SHINFO_GSO_SEGS", "skb_shared_info", "gso_segs"),
)

# struct lat_stats below: 184 bytes, a multiple of 8 as per-CPU values must be.
STATS = struct.Struct(f"<3Q{SLOTS}I4I16s")

TYPES_C = LOG2_SLOT_C + READ_PAIR_C + r"""
#include <uapi/linux/ptrace.h>

#define SLOTS %(slots)d
%(offsets)s

struct lat_stats {
    u64 other;    /* qdisc: skbs dequeued with no start time; device: packets sent */
    u64 inherited;  /* qdisc: packets timed from the skb->tstamp they inherited (see qdisc_latency) */
    u64 max_ns;
    u32 hist[SLOTS];  /* packets per log2 microsecond slot */
    u32 ifindex;
    u32 netns;
    u32 handle;
    u32 parent;
    char name[16];
};

static __always_inline void read_device(struct lat_stats *tpl, void *dev)
{
    void *net = 0;
    if (!dev)
        return;
    bpf_probe_read_kernel(&tpl->ifindex, 4, dev + OFF_DEV_IFINDEX);
    bpf_probe_read_kernel_str(tpl->name, sizeof(tpl->name), dev + OFF_DEV_NAME);
    bpf_probe_read_kernel(&net, sizeof(net), dev + OFF_DEV_NET);
    if (net)
        bpf_probe_read_kernel(&tpl->netns, 4, net + OFF_NET_NS_INUM);
}

static __always_inline void add_sample(struct lat_stats *s, u64 delta_ns, u32 packets)
{
    u64 us = delta_ns / 1000;
    u32 slot = log2_slot(us, SLOTS);
    s->hist[slot] += packets;
    if (delta_ns > s->max_ns)
        s->max_ns = delta_ns;
}

/* Packets as tc counts them: a GSO skb counts once per segment. Assumes a 64-bit kernel,
 * where sk_buff.end is an offset from head (the shared info lies at head + end). */
static __always_inline u32 shinfo_packets(u64 head, u32 end)
{
    u16 gso_size = 0, gso_segs = 0;
    read_pair((void *)(head + end), OFF_SHINFO_GSO_SIZE, &gso_size, 2, OFF_SHINFO_GSO_SEGS, &gso_segs, 2);
    return gso_size && gso_segs ? gso_segs : 1;
}

static __always_inline u32 skb_packets(void *skb)
{
    u64 head = 0;
    u32 end = 0;
    read_pair(skb, OFF_SKB_HEAD, &head, sizeof(head), OFF_SKB_END, &end, sizeof(end));
    return shinfo_packets(head, end);
}
"""

MAPS_C = r"""
#define COUNTER_DROPPED %(dropped)d
#define COUNTER_MISSED %(missed)d

BPF_PERCPU_HASH(stats, u64, struct lat_stats, %(max_entries)d);
BPF_PERCPU_ARRAY(entry_template, struct lat_stats, 1);
BPF_PERCPU_ARRAY(counters, u64, 2);

static __always_inline void count(int which)
{
    u64 *n = counters.lookup(&which);
    if (n)
        (*n)++;
}

static __always_inline struct lat_stats *blank_entry(void)
{
    int zero = 0;
    struct lat_stats *tpl = entry_template.lookup(&zero);
    if (tpl)
        __builtin_memset(tpl, 0, sizeof(*tpl));
    return tpl;
}

static __always_inline struct lat_stats *insert(u64 *key, struct lat_stats *tpl)
{
    if (stats.update(key, tpl)) {
        count(COUNTER_DROPPED);
        return 0;
    }
    return stats.lookup(key);
}
"""


def types_c(offsets: str) -> str:
    """struct lat_stats and the helpers that fill one, without any map (netdev embeds it in its own entry)."""
    return TYPES_C % {"slots": SLOTS, "offsets": offsets}


def common_c(offsets: str, max_entries: int) -> str:
    """types_c plus one per-CPU stats map of lat_stats and its counters (qdisc_latency)."""
    return types_c(offsets) + MAPS_C % {"dropped": COUNTER_DROPPED, "missed": COUNTER_MISSED, "max_entries": max_entries}


def merge_cpu_values(per_cpu: list[tuple]) -> dict[str, Any]:
    """Sum one entry's per-CPU copies; identity from the CPU that created it."""
    other = 0
    inherited = 0
    max_ns = 0
    hist = [0] * SLOTS
    meta = None
    for v in per_cpu:
        other += v[0]
        inherited += v[1]
        max_ns = max(max_ns, v[2])
        for i, n in enumerate(v[3 : 3 + SLOTS]):
            if n:
                hist[i] += n
        ifindex, netns, handle, parent, name = v[3 + SLOTS :]
        if meta is None and (ifindex or name.strip(b"\0")):
            meta = (ifindex, netns, handle, parent, kernel_text(name))
    return {"other": other, "inherited": inherited, "max_ns": max_ns, "hist": hist, "meta": meta}


def latency_of(entry: dict[str, Any]) -> Latency:
    histogram = Histogram.from_slots(entry["hist"])
    return Latency(histogram, entry["max_ns"] / 1000 if histogram.count else None)


def drain_entries(drainer: BatchDrainer) -> list[tuple[int, dict[str, Any]]]:
    """A loaded program's stats map (its BatchDrainer), emptied: (key, per-CPU values merged) per entry."""
    return [
        (int.from_bytes(key, "little"), merge_cpu_values([STATS.unpack(v) for v in copies]))
        for key, copies in drainer.drain().per_cpu_items()
    ]
