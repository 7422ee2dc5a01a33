"""BTF-typed tracepoints (libbpf's tp_btf, Linux 5.5 and later), which BCC compiles but
cannot load.

Why: a raw tracepoint's arguments are bare numbers, so every skb field it reads is a
bpf_probe_read_kernel helper call (~45 ns each here: a netif_receive_skb program reading
skb->dev and skb->len in one such read took 152-163 ns an event with bpf_stats on, the same
program reading them as plain loads 110-115 ns, of which ~70 ns is what bpf_stats adds to
an empty one). A BTF-typed tracepoint's arguments carry their kernel types, so the verifier
lets a field be read with one load (made fault-safe by the JIT) at the offset the running
kernel's BTF gives. The C is the same as for a raw tracepoint otherwise: arguments by
TP_PROTO, in a u64 array.

BCC 0.26's Python binding of bcc_func_load has no expected-attach-type argument, so the
kernel cannot tell such a program from an fentry one and refuses it. So BCC compiles the
text (its maps are created and their fds written into the instructions), and this module
loads each function with the bpf syscall and attaches it by its event: BPF_RAW_TRACEPOINT_OPEN
with no name, the program's attach_btf_id (the id of the kernel's btf_trace_<event> typedef)
saying where.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct
from typing import Any

from nettop.btf import Btf
from nettop.errors import ProbeUnavailable

#: C function name of the program for an event: no BCC prefix, so BCC does not attach it
PREFIX = "tp_btf__"

#: What a BTF-typed program's C needs: its handler's head, a field of a typed argument read
#: as a load (at an offset from the running kernel's BTF), and the GSO segments of a typed
#: skb (the shared info, at head + end, is not typed: one helper read, timing.shinfo_packets).
HANDLER_C = f"\n#define TP_BTF_PROBE(event) int {PREFIX}##event(u64 *ctx)\n" + r"""#define BTF_FIELD(object, off, type) (*(type *)((u8 *)(object) + (off)))

static __always_inline u32 typed_skb_packets(void *skb)
{
    return shinfo_packets(BTF_FIELD(skb, OFF_SKB_HEAD, u64), BTF_FIELD(skb, OFF_SKB_END, u32));
}
"""

_SYS_BPF = {"x86_64": 321, "aarch64": 280}
_BPF_PROG_LOAD = 5
_BPF_RAW_TRACEPOINT_OPEN = 17
_PROG_TYPE_TRACING = 26
_TRACE_RAW_TP = 23
# union bpf_attr, BPF_PROG_LOAD, up to attach_btf_id: prog_type, insn_cnt, insns, license,
# log_level, log_size, log_buf, kern_version, prog_flags, prog_name, prog_ifindex,
# expected_attach_type, prog_btf_fd, func_info_rec_size, func_info, func_info_cnt,
# line_info_rec_size, line_info, line_info_cnt, attach_btf_id
_PROG_LOAD = struct.Struct("<IIQQIIQII16sIIIIQIIQII")
_RAW_TP_OPEN = struct.Struct("<QI4x")  # name (0: by the program's attach_btf_id), prog_fd
_ATTR_SIZE = 144
_LOG_SIZE = 1 << 16

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def as_btf_typed(raw_handlers: str) -> str:
    """Raw tracepoint handlers (RAW_TRACEPOINT_PROBE, ctx->args[i]) as BTF-typed ones. The
    context is the same u64 array of TP_PROTO arguments, but declared as one: BCC rewrites
    every load through a pointer taken from a struct bpf_raw_tracepoint_args into a
    bpf_probe_read_kernel, the cost these programs exist to avoid."""
    return raw_handlers.replace("RAW_TRACEPOINT_PROBE(", "TP_BTF_PROBE(").replace("ctx->args[", "ctx[")


def event_name(target: str) -> str:
    """"net:net_dev_queue" -> "net_dev_queue": what the kernel and BCC name it by."""
    return target.split(":", 1)[-1]


def btf_type_name(target: str) -> str:
    """The kernel's typedef of the tracepoint's prototype, which a BTF-typed program attaches by."""
    return "btf_trace_" + event_name(target)


def function_name(target: str) -> str:
    return PREFIX + event_name(target)


def _bpf(command: int, attr: ctypes.Array) -> int:
    number = _SYS_BPF.get(platform.machine())
    if number is None:
        raise ProbeUnavailable(f"BTF-typed tracepoints: no bpf syscall number known for {platform.machine()}")
    return _libc.syscall(number, command, attr, len(attr))


def _load(insns: int, size: int, name: str, btf_id: int, log: ctypes.Array | None) -> int:
    license = ctypes.c_char_p(b"GPL")
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    _PROG_LOAD.pack_into(
        attr, 0, _PROG_TYPE_TRACING, size // 8, insns, ctypes.cast(license, ctypes.c_void_p).value or 0,
        1 if log is not None else 0, len(log) if log is not None else 0, ctypes.addressof(log) if log is not None else 0,
        0, 0, name.encode()[:15], 0, _TRACE_RAW_TP, 0, 0, 0, 0, 0, 0, 0, btf_id,
    )
    return _bpf(_BPF_PROG_LOAD, attr)


def verifier_reason(log: str) -> str:
    """The verifier's own complaint: the last line before its closing statistics."""
    lines = [line for line in log.splitlines() if line.strip()]
    while lines and (lines[-1].startswith("processed ") or lines[-1].startswith("verification time")):
        lines.pop()
    return lines[-1].strip() if lines else "no verifier log"


def attach(bpf: Any, event: str, btf: Btf) -> int:
    """Load the compiled function for `event` ("net:net_dev_queue") and attach it; the
    link's fd (closing it detaches). The program joins bpf.funcs, so BCC closes it."""
    from bcc import BPF, lib

    btf_id = btf.typedef_id(btf_type_name(event))
    if btf_id is None:
        raise ProbeUnavailable(f"no {btf_type_name(event)} in the kernel's BTF")
    name = function_name(event).encode()
    start, size = lib.bpf_function_start(bpf.module, name), lib.bpf_function_size(bpf.module, name)
    if not start:
        raise ProbeUnavailable(f"BPF text has no function {name.decode()}")
    prog_fd = _load(start, size, event_name(event), btf_id, None)
    if prog_fd < 0:
        log = ctypes.create_string_buffer(_LOG_SIZE)
        prog_fd = _load(start, size, event_name(event), btf_id, log)
        if prog_fd < 0:
            error = os.strerror(ctypes.get_errno())
            raise ProbeUnavailable(
                f"BTF-typed tracepoint {event}: load failed: {error}: {verifier_reason(log.value.decode(errors='replace'))}"
            )
    bpf.funcs[name] = BPF.Function(bpf, name, prog_fd)
    return open_link(prog_fd, event)


def open_link(prog_fd: int, event: str) -> int:
    """Attach a loaded BTF-typed program to the event its attach_btf_id names; the link's fd.
    (bench/alternation.py re-attaches loaded programs with it.)"""
    link = ctypes.create_string_buffer(_RAW_TP_OPEN.size)
    _RAW_TP_OPEN.pack_into(link, 0, 0, prog_fd)
    link_fd = _bpf(_BPF_RAW_TRACEPOINT_OPEN, link)
    if link_fd < 0:
        raise ProbeUnavailable(f"BTF-typed tracepoint {event}: attach failed: {os.strerror(ctypes.get_errno())}")
    return link_fd


def attach_all(bpf: Any, events: tuple[str, ...], links: list[int]) -> None:
    """attach() each event, appending each link to `links` as it is made (so the caller's
    close() detaches those already attached when a later one fails)."""
    from nettop.btf import running_kernel_btf

    btf = running_kernel_btf()
    if btf is None:
        raise ProbeUnavailable("BTF-typed tracepoints need the kernel's BTF (/sys/kernel/btf/vmlinux)")
    for event in events:
        links.append(attach(bpf, event, btf))
