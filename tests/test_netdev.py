"""netdev_sizes without root: the generated C per event source, and the drain's arithmetic."""

from __future__ import annotations

import re

import pytest

from nettop.btf import running_kernel_btf
from nettop.probes.base import choose_source
from nettop.probes.netdev_sizes import (
    KPROBE,
    POINTS,
    SLOTS,
    TRACEPOINT,
    _STATS,
    bpf_text,
    device_sizes,
    merge_cpu_values,
)

needs_btf = pytest.mark.skipif(running_kernel_btf() is None, reason="no kernel BTF")


@needs_btf
@pytest.mark.parametrize("source", ["tracepoint", "kprobe"])
def test_bpf_text_per_source(source):
    text = bpf_text(source, max_devices=77)
    btf = running_kernel_btf()
    assert "BPF_PERCPU_HASH(stats, u64, struct dev_stats, 77)" in text
    assert f"#define OFF_SKB_DEV {btf.offsetof('sk_buff', 'dev')}" in text
    assert f"#define OFF_NET_NS_INUM {btf.offsetof('net', 'ns.inum')}" in text
    code = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    assert not re.search(r"\b(skb|dev|net)->", code)  # kernel structs only through BTF offsets
    functions = set(re.findall(r"TRACEPOINT_PROBE\(net, (\w+)\)", text))
    kprobed = set(re.findall(r"int kprobe__(\w+)\(", text))
    if source == "tracepoint":
        assert functions == {h.target.split(":")[1] for h in TRACEPOINT.hooks}
        assert not kprobed and "OFF_SKB_LEN" not in text
    else:
        assert kprobed == {h.target for h in KPROBE.hooks} and not functions
        assert f"#define OFF_SKB_LEN {btf.offsetof('sk_buff', 'len')}" in text


def test_bpf_text_without_btf_falls_back_to_header_offsets(monkeypatch):
    monkeypatch.setattr("nettop.probes.layout.running_kernel_btf", lambda: None)
    assert "#define OFF_DEV_IFINDEX offsetof(struct net_device, ifindex)" in bpf_text("tracepoint")


def test_value_layout_is_a_multiple_of_eight():
    assert _STATS.size % 8 == 0  # per-CPU map values must be


def test_source_choice_names_what_is_missing(monkeypatch):
    monkeypatch.setattr("nettop.kernel.tracepoint_exists", lambda c, e: e != "napi_gro_receive_entry")
    monkeypatch.setattr("nettop.kernel.kprobe_exists", lambda f: False)
    with pytest.raises(Exception) as info:
        choose_source((TRACEPOINT, KPROBE))
    assert "napi_gro_receive_entry" in str(info.value) and "kprobe" in str(info.value)


def cpu_value(bytes_=(0, 0, 0, 0), errors=(0, 0, 0, 0), slots=None, ifindex=0, netns=0, name=b""):
    hist = [0] * (4 * SLOTS)
    for (point, slot), n in (slots or {}).items():
        hist[POINTS.index(point) * SLOTS + slot] = n
    return _STATS.unpack(_STATS.pack(*bytes_, *errors, *hist, ifindex, netns, name.ljust(16, b"\0")))


def test_per_cpu_values_sum_and_keep_the_creators_metadata():
    first = cpu_value(bytes_=(0, 2084, 0, 0), slots={("stack_send", 11): 2}, ifindex=7, netns=99, name=b"veth0")
    second = cpu_value(bytes_=(0, 65536, 0, 1042), errors=(0, 0, 0, 3),
                       slots={("stack_send", 17): 1, ("nic_send", 11): 1})
    device = device_sizes(merge_cpu_values([second, first]))
    assert (device.ifname, device.ifindex, device.netns) == ("veth0", 7, 99)
    assert device.stack_send.count == 3 and device.stack_send.bytes == 2084 + 65536
    assert device.stack_send.histogram.buckets == ((1024, 2048, 2), (65536, 131072, 1))
    assert (device.nic_send.count, device.nic_send.errors) == (1, 3)
    assert device.stack_recv.count == device.nic_recv.count == 0


def test_entry_without_metadata_is_skipped():
    assert device_sizes(merge_cpu_values([cpu_value(slots={("nic_recv", 3): 1})])) is None
