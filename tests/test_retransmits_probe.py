"""The retransmits probe's pure parts: BPF text per option, decoding, owners, counters."""

from __future__ import annotations

import ctypes
import re
import socket

import pytest

from nettop import kernel
from nettop.btf import MemberLocation, running_kernel_btf
from nettop.model.retransmits import RetransmitFlow, RetransmitsSnapshot
from nettop.probes import retransmits as rt
from nettop.probes.owners import SocketOwners

SNMP = """Ip: Forwarding DefaultTTL
Ip: 1 64
Tcp: RtoAlgorithm RtoMin OutSegs RetransSegs InErrs
Tcp: 1 200 1000 17 0
Udp: InDatagrams
Udp: 5
"""
NETSTAT = """TcpExt: SyncookiesSent TCPLossProbes TCPFastRetrans TCPSlowStartRetrans TCPTimeouts TCPSynRetrans
TcpExt: 0 2 11 3 1 4
IpExt: InNoRoutes
IpExt: 0
"""

needs_btf = pytest.mark.skipif(running_kernel_btf() is None, reason="no kernel BTF here")


# -- BPF text ------------------------------------------------------------------------


@needs_btf
@pytest.mark.parametrize("has_err", [True, False])
def test_tracepoint_text(has_err):
    text = rt.bpf_text("tracepoint", loss_probes=False, has_err=has_err, max_flows=123, ring_pages=16)
    assert "TRACEPOINT_PROBE(tcp, tcp_retransmit_skb)" in text
    assert "TRACEPOINT_PROBE(tcp, tcp_retransmit_synack)" in text
    assert "TRACEPOINT_PROBE(sock, inet_sock_set_state)" in text
    assert "BPF_RINGBUF_OUTPUT(events, 16);" in text and "events.ringbuf_output(e" in text
    assert "perf_submit" not in text and "kprobe__" not in text
    assert "BPF_HASH(flows, struct flow_key, struct flow_val, 123);" in text
    assert ("args->err" in text) is has_err
    btf = running_kernel_btf()
    assert f"#define OFF_SKB_END {btf.offsetof('sk_buff', 'end')}" in text
    assert f"#define OFF_SHINFO_GSO_SEGS {btf.offsetof('skb_shared_info', 'gso_segs')}" in text
    assert "#define SKB_END_IS_OFFSET 1" in text  # 64-bit: `end` is an offset from `head`


@needs_btf
@pytest.mark.parametrize("has_err", [True, False])
def test_raw_tracepoint_text(has_err):
    text = rt.bpf_text("raw_tracepoint", loss_probes=False, has_err=has_err, max_flows=123, ring_pages=16)
    for event in ("tcp_retransmit_skb", "tcp_retransmit_synack", "inet_sock_set_state"):
        assert f"RAW_TRACEPOINT_PROBE({event})" in text
    assert "TRACEPOINT_PROBE(tcp," not in text and "TRACEPOINT_PROBE(sock," not in text and "args->" not in text
    assert "BPF_RINGBUF_OUTPUT(events, 16);" in text and "events.ringbuf_output(e" in text
    assert "perf_submit" not in text and "kprobe__" not in text
    assert ("int err = (int)ctx->args[2];" in text) is has_err  # err is the third argument since 6.12
    btf = running_kernel_btf()
    for struct, member, macro in (
        ("sock_common", "skc_state", "OFF_SKC_STATE"), ("sock_common", "skc_num", "OFF_SKC_NUM"),
        ("sock_common", "skc_dport", "OFF_SKC_DPORT"), ("sock_common", "skc_v6_daddr", "OFF_SKC_V6_DADDR"),
        ("sk_buff", "end", "OFF_SKB_END"),
    ):
        assert f"#define {macro} {btf.offsetof(struct, member)}" in text
    assert f"#define SK_PROTOCOL_BYTE {btf.member('sock', 'sk_protocol').offset}" in text
    assert text.count("static __always_inline void sock_endpoints") == 1


@needs_btf
def test_raw_tracepoint_text_with_loss_probes():
    text = rt.bpf_text("raw_tracepoint", loss_probes=True)
    assert "int kprobe__tcp_send_loss_probe" in text and "RAW_TRACEPOINT_PROBE(tcp_retransmit_skb)" in text
    assert text.count("static __always_inline void sock_endpoints") == 1


class _Btf:
    def __init__(self, location):
        self.location = location

    def member(self, struct, path):
        return self.location


def test_sk_protocol_as_u16_or_as_a_bitfield():
    """sk_protocol became a u16 in 5.6; before, an 8-bit bitfield inside a word (raw tracepoints: 4.17+)."""
    u16 = rt.sk_protocol_defines(_Btf(MemberLocation(offset=532, size=2, bitfield_bits=0, bit_offset=532 * 8)))
    assert u16.splitlines() == ["#define SK_PROTOCOL_BYTE 532", "#define SK_PROTOCOL_SHIFT 0", "#define SK_PROTOCOL_MASK 0xffff"]
    bits = rt.sk_protocol_defines(_Btf(MemberLocation(offset=0x1f0, size=4, bitfield_bits=8, bit_offset=0x1f0 * 8 + 12)))
    assert bits.splitlines() == ["#define SK_PROTOCOL_BYTE 497", "#define SK_PROTOCOL_SHIFT 4", "#define SK_PROTOCOL_MASK 0xff"]
    assert "offsetof(struct sock, sk_protocol)" in rt.sk_protocol_defines(None)


@needs_btf
def test_tracepoint_text_with_loss_probes():
    text = rt.bpf_text("tracepoint", loss_probes=True)
    assert "int kprobe__tcp_send_loss_probe" in text
    assert "static __always_inline void sock_endpoints" in text and "#define OFF_SKC_STATE" in text
    assert "kprobe__tcp_retransmit_skb" not in text  # the tracepoint still sees R events


@needs_btf
@pytest.mark.parametrize("loss_probes", [False, True])
def test_kprobe_text(loss_probes):
    text = rt.bpf_text("kprobe", loss_probes=loss_probes)
    for function in (
        "kprobe__tcp_retransmit_skb", "kprobe__tcp_rtx_synack", "kprobe__tcp_set_state",
        "kprobe__inet_csk_listen_start", "kretprobe__inet_csk_clone_lock",
    ):
        assert f"int {function}(" in text
    assert ("kprobe__tcp_send_loss_probe" in text) is loss_probes
    assert "BPF_PERF_OUTPUT(events);" in text and "events.perf_submit(ctx, e" in text
    assert "TRACEPOINT_PROBE" not in text and "ringbuf" not in text
    assert text.count("static __always_inline void sock_endpoints") == 1


@needs_btf
@pytest.mark.parametrize("source", ["raw_tracepoint", "tracepoint", "kprobe"])
def test_kernel_structs_are_read_by_offset_only(source):
    """BCC compiles against other headers: only our own structs and tracepoint args use `->`."""
    text = rt.bpf_text(source, loss_probes=True)
    pointers = set(re.findall(r"\b(\w+)->", text))
    assert pointers <= {"args", "ctx", "e", "f", "info", "c"}, pointers


def test_skb_end_without_btf_asks_the_headers():
    text = rt.skb_end_define(None)
    assert "#ifdef NET_SKBUFF_DATA_USES_OFFSET" in text and "#define SKB_END_IS_OFFSET 1" in text


def test_note_names_what_is_missing(monkeypatch):
    monkeypatch.setattr(kernel, "tracepoint_exists", lambda category, event: True)
    monkeypatch.setattr(kernel, "kprobe_exists", lambda function: False)
    monkeypatch.setattr(kernel, "kprobes_supported", lambda: False)
    probe = rt.RetransmitsProbe()
    source = probe.select()
    assert source.name == "raw_tracepoint" and probe.base_source == "raw_tracepoint" and probe.kinds == "RS"
    assert probe.note == "no L events: kprobe:tcp_send_loss_probe unavailable, this kernel has no kprobes"


def test_loss_probes_when_the_kernel_has_them(monkeypatch):
    monkeypatch.setattr(kernel, "tracepoint_exists", lambda category, event: True)
    monkeypatch.setattr(kernel, "kprobe_exists", lambda function: True)
    probe = rt.RetransmitsProbe()
    assert probe.select().name == "raw_tracepoint" and probe.kinds == "RSL" and probe.note is None


def test_forced_perf_tracepoint_source(monkeypatch):
    monkeypatch.setattr(kernel, "tracepoint_exists", lambda category, event: True)
    monkeypatch.setattr(kernel, "kprobe_exists", lambda function: False)
    probe = rt.RetransmitsProbe(forced_source="tracepoint")
    assert probe.select().name == "tracepoint" and "TRACEPOINT_PROBE(tcp, tcp_retransmit_skb)" in probe.program_text()


def test_without_the_tracepoints_only_kprobes_remain(monkeypatch):
    monkeypatch.setattr(kernel, "tracepoint_exists", lambda category, event: False)
    monkeypatch.setattr(kernel, "kprobe_exists", lambda function: True)
    assert rt.RetransmitsProbe().select().name == "kprobe"


def test_forced_kprobe_source(monkeypatch):
    monkeypatch.setattr(kernel, "tracepoint_exists", lambda category, event: True)
    monkeypatch.setattr(kernel, "kprobe_exists", lambda function: True)
    probe = rt.RetransmitsProbe(forced_source="kprobe")
    assert probe.select().name == "kprobe" and probe.base_source == "kprobe"


# -- counters ------------------------------------------------------------------------


def test_parse_counters_and_deltas():
    before = rt.parse_counters(SNMP, NETSTAT)
    assert before == {
        "OutSegs": 1000, "RetransSegs": 17, "TCPLossProbes": 2, "TCPFastRetrans": 11,
        "TCPSlowStartRetrans": 3, "TCPTimeouts": 1, "TCPSynRetrans": 4,
    }
    after = dict(before, RetransSegs=27, OutSegs=3000)
    deltas = rt.counter_deltas(before, after)
    assert list(deltas) == ["RetransSegs", "OutSegs", "TCPFastRetrans", "TCPSlowStartRetrans", "TCPTimeouts",
                            "TCPLossProbes", "TCPSynRetrans"]
    assert deltas["RetransSegs"] == 10 and deltas["OutSegs"] == 2000 and deltas["TCPTimeouts"] == 0
    assert rt.counter_deltas({}, after) == {}


def test_read_counters_from_this_namespace():
    values = rt.read_counters()
    assert values["OutSegs"] >= values["RetransSegs"] >= 0


# -- owners ----------------------------------------------------------------------------


def test_owner_from_the_sockets_birth_wins():
    owners = SocketOwners()
    owners.note(0xA, 999, "other")
    assert rt.resolve_owner(42, "curl", 0xA, 5, 9, owners) == rt.Owned(42, "curl")


def test_owner_from_socket_io_only_for_the_same_socket():
    owners = SocketOwners()
    owners.note(0xA, 7, "iperf3")
    assert rt.resolve_owner(0, "", 0xA, 0, None, owners) == rt.Owned(7, "iperf3")  # born before we watched
    assert rt.resolve_owner(0, "", 0xA, 5, 5, owners) == rt.Owned(7, "iperf3")  # accepted, no newer socket
    assert rt.resolve_owner(0, "", 0xA, 5, 8, owners) == rt.UNKNOWN  # address reused since: never guess
    assert rt.resolve_owner(0, "", 0xA, 0, 8, owners) == rt.UNKNOWN
    assert rt.resolve_owner(0, "", 0xB, 0, None, owners) == rt.UNKNOWN


# -- decoding ---------------------------------------------------------------------------


def v4(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET, text).ljust(16, b"\0")


def v6(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6, text)


def comm(text: str) -> bytes:
    return text.encode().ljust(16, b"\0")


def raw_flow(sk, lport, rport, state, events, segments, last, owner_sk, born, pid, laddr, raddr, family, kind, name):
    key = rt._FLOW_KEY.pack(sk, lport, rport, state)
    value = rt._FLOW_VAL.pack(events, segments, 1, last, owner_sk, born, pid, 0, laddr, raddr, family, kind, comm(name))
    return rt.decode_flow(key, value)


def raw_event(ts, sk, owner_sk, born, laddr, raddr, lport, rport, family, state, kind, segs, pid, name):
    return rt.decode_event(
        rt._EVENT.pack(ts, sk, owner_sk, born, laddr, raddr, lport, rport, family, state, kind, segs, pid, 0, comm(name))
        + b"\0" * 4  # the C struct's tail padding
    )


def test_build_snapshot_resolves_owners_and_addresses():
    owners = SocketOwners()
    owners.note(0x20, 300, "nginx")
    flows = [
        raw_flow(0x10, 40000, 5201, 1, 3, 36, 2_000, 0x10, 100, 42, v4("10.0.0.1"), v4("10.0.0.2"), socket.AF_INET, 1, "iperf3"),
        raw_flow(0x30, 8080, 33000, 3, 2, 2, 3_000, 0x20, 0, 0, v6("fd00::1"), v6("fd00::2"), socket.AF_INET6, 2, ""),
        raw_flow(0x40, 443, 50000, 1, 1, 50, 2_500, 0x40, 7, 0, v6("::ffff:10.0.0.9"), v6("::ffff:10.0.0.8"), socket.AF_INET6, 1, ""),
    ]
    events = [
        raw_event(3_000, 0x30, 0x20, 0, v6("fd00::1"), v6("fd00::2"), 8080, 33000, socket.AF_INET6, 3, 2, 1, 0, ""),
        raw_event(2_000, 0x10, 0x10, 100, v4("10.0.0.1"), v4("10.0.0.2"), 40000, 5201, socket.AF_INET, 2, 1, 12, 42, "iperf3"),
    ]
    births = {0x10: 100, 0x40: 9}  # 0x40 was reused after its events: its owner is unknown
    snap = rt.build_snapshot(
        flows, events, births.get, owners, rt.monotonic_to_wall(10_000, 1000.0), "tracepoint", "RS",
        {"RetransSegs": 88}, lost=1, dropped=2, failed=3,
    )
    assert [f.segments for f in snap.flows] == [50, 36, 2]  # by segments
    reused, iperf, synack = snap.flows
    assert (iperf.pid, iperf.comm, iperf.family, iperf.laddr, iperf.raddr, iperf.state) == (
        42, "iperf3", 4, "10.0.0.1", "10.0.0.2", "ESTABLISHED")
    assert iperf.last_seen == pytest.approx(1000.0 - 8e-6)
    assert (synack.pid, synack.comm, synack.family, synack.laddr, synack.state) == (300, "nginx", 6, "fd00::1", "SYN_RECV")
    assert (reused.pid, reused.comm, reused.family, reused.laddr) == (None, "-", 4, "10.0.0.9")
    assert [e.kind for e in snap.events] == ["R", "S"]  # oldest first
    assert snap.events[0].state == "SYN_SENT" and snap.events[0].segments == 12 and snap.events[0].pid == 42
    assert snap.events[1].pid == 300
    assert (snap.lost_events, snap.dropped, snap.failed, snap.kinds) == (1, 2, 3, "RS")


def test_struct_formats_match_their_c_layout():
    # sizes of the C structs (u64 alignment pads `event` by 4 at the end)
    assert (rt._FLOW_KEY.size, rt._FLOW_VAL.size, rt._SOCK_INFO.size) == (16, 112, 32)
    assert (rt._EVENT.size + 7) // 8 * 8 == 104


# -- the model ---------------------------------------------------------------------------


def test_snapshot_record_round_trip_and_rate():
    flow = RetransmitFlow(None, "-", 4, "10.0.0.1", 1, "10.0.0.2", 2, "SYN_SENT", 2, 2, 5.5)
    snap = RetransmitsSnapshot("tracepoint", 0, (flow,), (), {"RetransSegs": 5, "OutSegs": 500}, "RS", 0, 0)
    record = snap.to_record()
    assert record["flows"][0]["pid"] is None and record["flows"][0]["comm"] == "-"
    assert RetransmitsSnapshot.from_record(record) == snap
    assert snap.rate == 0.01
    assert RetransmitsSnapshot("tracepoint", 0, counters={"OutSegs": 0}).rate is None


def test_flow_merge_keeps_the_known_owner():
    known = RetransmitFlow(7, "curl", 4, "a", 1, "b", 2, "ESTABLISHED", 1, 10, 1.0)
    later = RetransmitFlow(None, "-", 4, "a", 1, "b", 2, "ESTABLISHED", 2, 5, 2.0)
    merged = known.merge(later)
    assert (merged.pid, merged.comm, merged.events, merged.segments, merged.last_seen) == (7, "curl", 3, 15, 2.0)


@pytest.mark.root
def test_map_layouts_as_the_kernel_built_them():
    probe = rt.RetransmitsProbe()
    probe.select()
    probe.start()
    try:
        bpf = probe._bpf
        assert ctypes.sizeof(bpf["flows"].Key) == rt._FLOW_KEY.size
        assert ctypes.sizeof(bpf["flows"].Leaf) == rt._FLOW_VAL.size
        assert ctypes.sizeof(bpf["socks"].Leaf) == rt._SOCK_INFO.size
        snap = probe.poll(1.0)["retransmits"]
        assert snap.source == "raw_tracepoint" and set(snap.counters) == set(rt.COUNTER_NAMES)
        assert {name.decode() for name in bpf.funcs} >= {
            "raw_tracepoint__tcp_retransmit_skb", "raw_tracepoint__tcp_retransmit_synack",
            "raw_tracepoint__inet_sock_set_state",
        }
        assert snap.missed is None or snap.missed >= 0
    finally:
        probe.close()
