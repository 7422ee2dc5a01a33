"""Pure pieces of the kernel matrix: the probe filter, the kprobe send hook, the VM summary."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from nettop.cli import chosen_probes
from nettop.errors import NettopError
from nettop.probes.registry import build_probes
from nettop.probes.socket_io import KPROBE, KPROBE_BEFORE_6_6, SocketIoProbe, bpf_text


def test_chosen_probes_keeps_order_and_rejects_unknown_names():
    probes = build_probes()
    assert chosen_probes(probes, None) == probes
    names = f"{probes[-1].name},{probes[0].name}"
    assert [p.name for p in chosen_probes(probes, names)] == [probes[0].name, probes[-1].name]
    with pytest.raises(NettopError, match="no probe named nosuch"):
        chosen_probes(probes, "nosuch")


def test_kprobe_route_prefers_sock_sendmsg_internals():
    """__sock_sendmsg first: where it exists, user sends skip sock_sendmsg."""
    sources = [s for s in SocketIoProbe.sources if s.name == "kprobe"]
    assert sources == [KPROBE, KPROBE_BEFORE_6_6]
    assert [h.target for h in KPROBE.hooks] == ["__sock_sendmsg", "sock_recvmsg"]
    assert [h.target for h in KPROBE_BEFORE_6_6.hooks] == ["sock_sendmsg", "sock_recvmsg"]


@pytest.mark.parametrize("send", ["__sock_sendmsg", "sock_sendmsg"])
def test_kprobe_text_hooks_one_send_function(send):
    text = bpf_text("kprobe", send_function=send)
    assert f"attached by SocketIoProbe.start() to {send} and sock_recvmsg" in text
    # attached explicitly (with enough kretprobe instances), never auto-attached by name
    assert "kprobe__" not in text
    assert text.count("int on_send_") == text.count("int on_recv_") == 2  # entry and return: no double counting
    assert "log2_slot(" in text and "bpf_log2l(ret)" not in text


def test_vm_summary_lists_outcomes_and_sources(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("summary", Path(__file__).parent / "vm" / "summary.py")
    summary = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(summary)
    (tmp_path / "junit.xml").write_text(
        '<testsuites><testsuite><testcase classname="tests.test_a" name="test_x" time="3.5">'
        "<system-out>nettop sources: sizes=kprobe tcp=kprobe\n</system-out></testcase>"
        '<testcase classname="tests.test_a" name="test_y" time="0.1"><skipped message="kernel without kprobes"/>'
        "</testcase></testsuite></testsuites>"
    )
    (tmp_path / "pytest.log").write_text("...\n===== 1 passed, 1 skipped in 4.00s =====\n")
    assert summary.main(tmp_path) == 0
    out = capsys.readouterr().out
    assert "PASSED" in out and "test_a::test_x  [sizes=kprobe tcp=kprobe]" in out
    assert "SKIPPED kernel without kprobes" in out
    assert out.rstrip().endswith("vm: 1 passed, 1 skipped in 4.00s")
