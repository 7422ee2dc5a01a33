"""Small pieces of BPF C shared by probes.

Each is written so the oldest verifier nettop supports (Debian 12's 6.1, tested in the VM
by tests/vm/) accepts it; clang's natural output for the same C passes only newer ones.
"""

LOG2_SLOT_C = r"""
/* The log2 histogram slot of v, in [0, slots) (slots: a power of two). The 6.1 verifier
 * loses the range of a clamped value once clang copies it, so the index is masked too; the
 * empty asm keeps clang from proving the mask redundant and dropping it. */
static __always_inline u32 log2_slot(u64 v, const u32 slots)
{
    u32 slot = v ? bpf_log2l(v) : 0;
    if (slot >= slots)
        slot = slots - 1;
    asm volatile("" : "+r"(slot));
    return slot & (slots - 1);
}
"""

READ_PAIR_C = r"""
/* Two fields of one kernel object in one bpf_probe_read_kernel when they lie within
 * READ_SPAN bytes of each other, else in two. Each read is a helper call, paid per packet by
 * the device hooks (skb->dev with skb->len: offsets 16 and 112 on 6.18); one read fewer took
 * ~20 ns off net_dev_queue and netif_receive_skb in bench/hook_cost.py. The offsets are
 * constants, so clang keeps one branch and the verifier sees a constant size. */
#define READ_SPAN 128
#define SPAN_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SPAN_MAX(a, b) ((a) > (b) ? (a) : (b))
static __always_inline void read_pair(void *base, u32 off_a, void *a, u32 size_a, u32 off_b, void *b, u32 size_b)
{
    u32 low = SPAN_MIN(off_a, off_b);
    u32 high = SPAN_MAX(off_a + size_a, off_b + size_b);
    if (high - low <= READ_SPAN) {
        u64 span[READ_SPAN / 8];
        if (bpf_probe_read_kernel(span, high - low, base + low)) {
            __builtin_memset(a, 0, size_a);
            __builtin_memset(b, 0, size_b);
            return;
        }
        __builtin_memcpy(a, (u8 *)span + (off_a - low), size_a);
        __builtin_memcpy(b, (u8 *)span + (off_b - low), size_b);
        return;
    }
    bpf_probe_read_kernel(a, size_a, base + off_a);
    bpf_probe_read_kernel(b, size_b, base + off_b);
}
"""

DROPPED_C = r"""
/* Events whose entry did not fit in a bounded map: a per-CPU counter never reset in the
 * kernel, read as a delta each interval (Probe.counter_delta("dropped")). */
BPF_PERCPU_ARRAY(dropped, u64, 1);

static __always_inline void count_dropped(void)
{
    int zero = 0;
    u64 *lost = dropped.lookup(&zero);
    if (lost)
        (*lost)++;
}
"""
