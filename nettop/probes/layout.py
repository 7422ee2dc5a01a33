"""Kernel struct field offsets for BPF text, from the running kernel's BTF.

BCC compiles against whatever headers are installed, and on a kernel without matching
headers `offsetof()` is silently wrong (BCC's tcplife prints garbage here for that reason).
So BPF programs never dereference kernel structs by C member access: they read bytes at
offsets emitted as #defines by this module. Without BTF the headers' offsetof() is the
only choice left, and `describe()` says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from nettop.btf import Btf, BtfError, running_kernel_btf
from nettop.errors import ProbeUnavailable


@dataclass(frozen=True)
class Field:
    macro: str  # e.g. "OFF_SKC_DADDR"
    struct: str  # e.g. "sock_common"
    path: str  # e.g. "skc_daddr"


SOCK_ADDRESS_FIELDS = (
    Field("OFF_SKC_DADDR", "sock_common", "skc_daddr"),
    Field("OFF_SKC_RCV_SADDR", "sock_common", "skc_rcv_saddr"),
    Field("OFF_SKC_DPORT", "sock_common", "skc_dport"),
    Field("OFF_SKC_NUM", "sock_common", "skc_num"),
    Field("OFF_SKC_FAMILY", "sock_common", "skc_family"),
    Field("OFF_SKC_V6_DADDR", "sock_common", "skc_v6_daddr"),
    Field("OFF_SKC_V6_RCV_SADDR", "sock_common", "skc_v6_rcv_saddr"),
)


def offset_defines(fields: tuple[Field, ...], btf: Btf | None = None) -> str:
    """`#define` lines for each field: BTF numbers when the kernel has BTF."""
    btf = btf if btf is not None else running_kernel_btf()
    lines = []
    for f in fields:
        if btf is None:
            lines.append(f"#define {f.macro} offsetof(struct {f.struct}, {f.path})")
            continue
        try:
            lines.append(f"#define {f.macro} {btf.offsetof(f.struct, f.path)}")
        except BtfError as exc:
            raise ProbeUnavailable(f"kernel BTF: {exc}") from exc
    return "\n".join(lines)


def describe() -> str:
    return "offsets from kernel BTF" if running_kernel_btf() is not None else "offsets from headers (no BTF)"
