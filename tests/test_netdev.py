"""netdev without root: the generated C per event source, and the drain's arithmetic for both panes."""

from __future__ import annotations

import re

import pytest

from nettop.btf import running_kernel_btf
from nettop.model.histogram import log2_slot
from nettop.probes import netdev
from nettop.probes.base import choose_source
from nettop.probes.netdev import (
    ENTRY_SIZE,
    HARDWARE,
    KPROBE,
    POINTS,
    RAW_TRACEPOINT,
    SIZES,
    SLOTS,
    TP_BTF,
    TRACEPOINT,
    NetdevProbe,
    bpf_text,
    build_snapshots,
    merge_entry,
)
from nettop.probes.timing import STATS

needs_btf = pytest.mark.skipif(running_kernel_btf() is None, reason="no kernel BTF")


def functions(text: str) -> tuple[set[str], set[str], set[str], set[str]]:
    """(tracepoints, raw tracepoints, kprobed functions, BTF-typed tracepoints) the text attaches to."""
    traced = {f"{g}:{e}" for g, e in re.findall(r"(?<!RAW_)TRACEPOINT_PROBE\((\w+), (\w+)\)", text)}
    raw = set(re.findall(r"RAW_TRACEPOINT_PROBE\((\w+)\)", text))
    typed = set(re.findall(r"^TP_BTF_PROBE\((\w+)\)", text, flags=re.MULTILINE))
    return traced, raw, set(re.findall(r"int kprobe__(\w+)\(", text)), typed


@needs_btf
@pytest.mark.parametrize("source", ["tp_btf", "raw_tracepoint", "tracepoint", "kprobe"])
def test_bpf_text_per_source(source):
    text = bpf_text(source, max_devices=77, max_inflight=99)
    btf = running_kernel_btf()
    assert "BPF_PERCPU_HASH(devices, u64, struct dev_entry, 77)" in text
    assert 'BPF_F_TABLE("lru_hash", u64, struct start, starts, 99, BPF_F_NO_COMMON_LRU)' in text
    assert f"#define OFF_SKB_DEV {btf.offsetof('sk_buff', 'dev')}" in text
    assert f"#define OFF_NET_NS_INUM {btf.offsetof('net', 'ns.inum')}" in text
    code = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    assert not re.search(r"\b(skb|dev|net)->", code)  # kernel structs only through BTF offsets
    traced, raw, kprobed, typed = functions(text)
    if source == "tracepoint":
        assert traced == {h.target for h in TRACEPOINT.hooks} and not raw and not kprobed and not typed
        assert "OFF_SKB_LEN" not in text
    elif source == "tp_btf":
        assert typed == {h.target.split(":")[1] for h in TP_BTF.hooks} and not traced and not raw and not kprobed
        # fields of the typed skb are loads; the only helper read per transmit is the GSO one
        assert "BTF_FIELD(skb, OFF_SKB_DEV, u64), BTF_FIELD(skb, OFF_SKB_LEN, u32)" in text
        assert "skb_dev_len(" not in text and "SKB_SPAN_LOW" not in text and "ctx->args" not in text
    elif source == "raw_tracepoint":
        assert raw == {h.target.split(":")[1] for h in RAW_TRACEPOINT.hooks} and not traced and not kprobed and not typed
        assert "args->" not in text  # no tracepoint record: TP_PROTO arguments and BTF offsets only
        assert f"#define OFF_SKB_LEN {btf.offsetof('sk_buff', 'len')}" in text
    else:
        assert kprobed == {h.target for h in KPROBE.hooks} and not traced and not raw and not typed
        assert f"#define OFF_SKB_LEN {btf.offsetof('sk_buff', 'len')}" in text


def test_raw_tracepoint_arguments_follow_tp_proto(monkeypatch):
    monkeypatch.setattr("nettop.probes.layout.running_kernel_btf", lambda: None)
    text = bpf_text("raw_tracepoint")
    body = lambda hook: text[text.index(f"RAW_TRACEPOINT_PROBE({hook})"):].split("\n}\n", 1)[0]
    assert "handed_to_driver(skb, ctx->args[1], len, packets)" in body("net_dev_start_xmit")  # (skb, dev)
    xmit = body("net_dev_xmit")  # (skb, rc, dev, skb_len): only a refusal does work
    assert "if ((int)ctx->args[1])" in xmit and "refused(ctx->args[2], (u32)ctx->args[3])" in xmit
    assert "consumed((void *)ctx->args[0])" in body("consume_skb")
    assert "account_skb((void *)ctx->args[0], STACK_RECV)" in body("netif_receive_skb")
    # skb->dev and skb->len in one read: each bpf_probe_read_kernel is paid per packet
    assert "read_pair(skb, OFF_SKB_DEV, &dev, sizeof(dev), OFF_SKB_LEN, len, sizeof(*len))" in text


def test_sources_best_first(monkeypatch):
    monkeypatch.setattr("nettop.kernel.tracepoint_exists", lambda c, e: True)
    monkeypatch.setattr("nettop.kernel.btf_typedef_exists", lambda name: True)
    assert NetdevProbe().select().name == "tp_btf"
    assert NetdevProbe("tracepoint").select().name == "tracepoint"
    monkeypatch.setattr("nettop.kernel.btf_typedef_exists", lambda name: name != "btf_trace_net_dev_xmit")
    assert NetdevProbe().select().name == "raw_tracepoint"  # one event not typed: none is


def test_btf_typed_handlers_are_the_raw_ones_on_a_u64_array(monkeypatch):
    """The same handlers, so the two sources cannot drift apart; but ctx declared as the u64
    array it is, since BCC turns loads through pointers from ctx->args into helper reads."""
    monkeypatch.setattr("nettop.probes.layout.running_kernel_btf", lambda: None)
    raw, typed = bpf_text("raw_tracepoint"), bpf_text("tp_btf")
    handlers = lambda text, head: text[text.index(f"{head}(netif_receive_skb)"):]
    assert handlers(typed, "TP_BTF_PROBE") == handlers(raw, "RAW_TRACEPOINT_PROBE").replace(
        "RAW_TRACEPOINT_PROBE(", "TP_BTF_PROBE("
    ).replace("ctx->args[", "ctx[")
    assert "#define TP_BTF_PROBE(event) int tp_btf__##event(u64 *ctx)" in typed


HANDLERS = {
    "tp_btf": ("TP_BTF_PROBE(net_dev_queue)", "TP_BTF_PROBE(net_dev_start_xmit)", "handed_to_driver("),
    "raw_tracepoint": ("RAW_TRACEPOINT_PROBE(net_dev_queue)", "RAW_TRACEPOINT_PROBE(net_dev_start_xmit)", "handed_to_driver("),
    "tracepoint": ("TRACEPOINT_PROBE(net, net_dev_queue)", "TRACEPOINT_PROBE(net, net_dev_start_xmit)", "start_xmit("),
    "kprobe": ("int kprobe____dev_queue_xmit(", "int kprobe__dev_hard_start_xmit(", "handed_to_driver("),
}


@pytest.mark.parametrize("source", ["tp_btf", "raw_tracepoint", "tracepoint", "kprobe"])
def test_one_handler_per_hook_does_both_jobs(source, monkeypatch):
    """The shared hooks: sizes and transmit latency in the same function, no second program."""
    monkeypatch.setattr("nettop.probes.layout.running_kernel_btf", lambda: None)
    text = bpf_text(source)
    send, start, starts = HANDLERS[source]
    body = text[text.index(send):].split("\n}\n", 1)[0]
    assert "account" in body and "STACK_SEND" in body and "queued(" in body
    body = text[text.index(start):].split("\n}\n", 1)[0]
    assert starts in body
    assert text.count(send) == text.count(start) == 1


def test_bpf_text_without_btf_falls_back_to_header_offsets(monkeypatch):
    monkeypatch.setattr("nettop.probes.layout.running_kernel_btf", lambda: None)
    assert "#define OFF_DEV_IFINDEX offsetof(struct net_device, ifindex)" in bpf_text("tracepoint")
    with pytest.raises(ValueError):
        bpf_text("fentry")


def test_value_layout_is_a_multiple_of_eight():
    assert ENTRY_SIZE == 752 and ENTRY_SIZE % 8 == 0  # per-CPU map values must be


def test_source_choice_names_what_is_missing(monkeypatch):
    monkeypatch.setattr("nettop.kernel.tracepoint_exists", lambda c, e: e != "napi_gro_receive_entry")
    monkeypatch.setattr("nettop.kernel.kprobe_exists", lambda f: False)
    with pytest.raises(Exception) as info:
        choose_source((TRACEPOINT, KPROBE))
    assert "napi_gro_receive_entry" in str(info.value) and "kprobe" in str(info.value)


def cpu_value(bytes_=(0, 0, 0, 0), errors=(0, 0, 0, 0), slots=None, tx_packets=0, tx_slots=None, max_ns=0,
              ifindex=0, netns=0, name=b"", hardware=0):
    """One CPU's copy of a struct dev_entry, as the map returns it."""
    hist = [0] * (4 * SLOTS)
    for (point, slot), n in (slots or {}).items():
        hist[POINTS.index(point) * SLOTS + slot] = n
    tx_hist = [0] * SLOTS
    for slot, n in (tx_slots or {}).items():
        tx_hist[slot] = n
    tx = STATS.pack(tx_packets, 0, max_ns, *tx_hist, ifindex, netns, 0, 0, name.ljust(16, b"\0"))
    return tx + SIZES.pack(*bytes_, *errors, *hist) + HARDWARE.pack(hardware)


def test_per_cpu_values_sum_into_both_parts_with_the_creators_identity():
    first = cpu_value(bytes_=(0, 2084, 0, 0), slots={("stack_send", 11): 2}, tx_packets=2,
                      ifindex=7, netns=99, name=b"veth0", hardware=1)
    second = cpu_value(bytes_=(0, 65536, 0, 1042), errors=(0, 0, 0, 3),
                       slots={("stack_send", 17): 1, ("nic_send", 11): 1}, tx_packets=44,
                       tx_slots={log2_slot(12): 40}, max_ns=20_000)
    snaps = build_snapshots([merge_entry([second, first])], "tracepoint", dropped=1)
    (device,) = snaps["sizes"].devices
    assert (device.ifname, device.ifindex, device.netns) == ("veth0", 7, 99)
    assert device.stack_send.count == 3 and device.stack_send.bytes == 2084 + 65536
    assert device.stack_send.histogram.buckets == ((1024, 2048, 2), (65536, 131072, 1))
    assert (device.nic_send.count, device.nic_send.errors) == (1, 3)
    assert device.stack_recv.count == device.nic_recv.count == 0
    (tx,) = snaps["queues"].devices
    assert (tx.ifname, tx.ifindex, tx.netns, tx.packets, tx.hardware) == ("veth0", 7, 99, 46, True)
    assert tx.latency.histogram.buckets == ((8, 16, 40),) and tx.latency.max_us == 20.0  # 12 µs
    assert snaps["sizes"].dropped == snaps["queues"].dropped == 1
    assert snaps["sizes"].source == snaps["queues"].source == "tracepoint"


def test_each_pane_gets_only_the_devices_its_part_saw():
    receive_only = cpu_value(slots={("stack_recv", 6): 5}, ifindex=2, name=b"eth0")
    consumed_only = cpu_value(tx_slots={3: 1}, max_ns=9_000, ifindex=3, name=b"eth1")
    snaps = build_snapshots([merge_entry([receive_only]), merge_entry([consumed_only])], "kprobe")
    assert [d.ifname for d in snaps["sizes"].devices] == ["eth0"]
    assert [(d.ifname, d.packets, d.latency.count) for d in snaps["queues"].devices] == [("eth1", 0, 1)]


def test_device_reallocated_at_one_address_merges_and_no_identity_is_skipped():
    a = cpu_value(slots={("nic_recv", 3): 1}, tx_packets=1, ifindex=4, name=b"")
    b = cpu_value(slots={("nic_recv", 3): 2}, tx_packets=2, ifindex=4, name=b"")
    nameless = cpu_value(slots={("nic_recv", 3): 9}, tx_packets=9)
    snaps = build_snapshots([merge_entry([a]), merge_entry([b]), merge_entry([nameless])], "tracepoint")
    (sizes,) = snaps["sizes"].devices
    (tx,) = snaps["queues"].devices
    assert (sizes.ifname, sizes.nic_recv.count, tx.packets) == ("if4", 3, 3)
    assert not tx.hardware  # no CPU's copy says hardware: a virtual device, transmits not timed


def test_module_docstring():
    for words in ("Kernel hooks", "Overhead", "Example", "consume_skb", "napi_gro_receive_entry", "Linux"):
        assert words in netdev.__doc__
