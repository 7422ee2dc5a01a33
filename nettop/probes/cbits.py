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
