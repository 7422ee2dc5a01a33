"""BTF-typed tracepoints: nettop loads and attaches them itself (BCC 0.26 cannot), so a
refusal, a fallback and a detach are nettop's to get right."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from nettop.btf import running_kernel_btf
from nettop.errors import ProbeUnavailable
from nettop.probes import btf_tracepoints as typed
from nettop.probes import netdev
from nettop.probes.base import load_bpf
from nettop.probes.netdev import NetdevProbe

needs_btf = pytest.mark.skipif(running_kernel_btf() is None, reason="no kernel BTF")


@needs_btf
def test_each_device_event_has_its_prototype_typedef():
    btf = running_kernel_btf()
    ids = {event: btf.typedef_id(typed.btf_type_name(event)) for event in netdev.HOOKS}
    assert all(isinstance(i, int) and i > 0 for i in ids.values()), ids
    assert len(set(ids.values())) == len(ids)
    assert btf.typedef_id("btf_trace_no_such_event") is None


def test_the_reason_is_the_verifiers_last_complaint():
    log = "0: R1=ctx() R10=fp0\n; return *(u32 *)(skb + 100000);\n1: (61) r0 = *(u32 *)(r1 +100000)\naccess beyond struct sk_buff at off 100000 size 4\nprocessed 2 insns (limit 1000000) max_states_per_insn 0\n\n"
    assert typed.verifier_reason(log) == "access beyond struct sk_buff at off 100000 size 4"
    assert typed.verifier_reason("") == "no verifier log"


def tracing_programs() -> set[int]:
    shown = json.loads(subprocess.run(["bpftool", "prog", "show", "-j"], check=True, capture_output=True, text=True).stdout)
    return {p["id"] for p in shown if p.get("type") == "tracing"}


def attached_links() -> set[int]:
    shown = json.loads(subprocess.run(["bpftool", "link", "show", "-j"], check=True, capture_output=True, text=True).stdout)
    return {link["prog_id"] for link in shown if link.get("type") == "raw_tracepoint"}


def released(programs: set[int], timeout: float = 5.0) -> bool:
    """Whether these programs are gone: the kernel frees a detached link's program after an
    RCU grace period, not at the close itself."""
    deadline = time.monotonic() + timeout
    while tracing_programs() & programs or attached_links() & programs:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.root
def test_a_program_the_verifier_refuses_says_why_in_one_line():
    bpf = load_bpf("int tp_btf__net_dev_queue(u64 *ctx) { return *(u32 *)((u8 *)ctx[0] + 100000); }")
    try:
        with pytest.raises(ProbeUnavailable) as refused:
            typed.attach(bpf, "net:net_dev_queue", running_kernel_btf())
    finally:
        bpf.cleanup()
    message = str(refused.value)
    assert message.startswith("BTF-typed tracepoint net:net_dev_queue: load failed: Permission denied: ")
    assert "sk_buff" in message and "\n" not in message


@pytest.mark.root
def test_close_detaches_every_program_it_attached():
    before = tracing_programs()
    probe = NetdevProbe()
    assert probe.select().name == "tp_btf"
    probe.start()
    try:
        ours = tracing_programs() - before
        assert len(ours) == len(netdev.HOOKS) == len(probe._links)
        assert ours <= attached_links()
    finally:
        probe.close()
    assert probe._links == [] and released(ours)


@pytest.mark.root
def test_a_kernel_that_refuses_the_typed_programs_gets_the_raw_ones(monkeypatch):
    """Another kernel's verifier may refuse a typed load; the probe then runs on raw
    tracepoints and says why, and nothing of the refused attempt stays attached. The broken
    read is net_dev_start_xmit's, so the three handlers before it were attached when it failed."""
    broken = netdev._TYPED_SKB_C.replace("*len = BTF_FIELD(skb, OFF_SKB_LEN, u32)", "*len = BTF_FIELD(skb, OFF_SKB_LEN + 100000, u32)")
    assert broken != netdev._TYPED_SKB_C
    monkeypatch.setattr(netdev, "_TYPED_SKB_C", broken)
    before = tracing_programs()
    probe = NetdevProbe()
    probe.select()
    probe.start()
    try:
        assert probe.source is netdev.RAW_TRACEPOINT and probe._links == []
        assert probe.note.startswith("raw_tracepoint, as BTF-typed tracepoint net:net_dev_start_xmit: load failed")
        assert released(tracing_programs() - before)
        assert probe.poll(1.0)["sizes"].source == "raw_tracepoint"
    finally:
        probe.close()
    forced = NetdevProbe("tp_btf")
    forced.select()
    with pytest.raises(ProbeUnavailable, match="load failed"):
        forced.start()
    assert forced._bpf is None and released(tracing_programs() - before)

