"""Tests for nettop.btf: a synthetic blob for portability, the real kernel for truth."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess

import pytest

from nettop.btf import VMLINUX_BTF, Btf, BtfError, MemberLocation, running_kernel_btf

INT, PTR, ARRAY, STRUCT, UNION, ENUM, FWD, TYPEDEF = 1, 2, 3, 4, 5, 6, 7, 8
VOLATILE, CONST, RESTRICT, FUNC, FUNC_PROTO, VAR, DATASEC = 9, 10, 11, 12, 13, 14, 15
FLOAT, DECL_TAG, TYPE_TAG, ENUM64 = 16, 17, 18, 19


class BtfBuilder:
    """Assembles a BTF blob type by type, so tests state layouts explicitly."""

    def __init__(self) -> None:
        self.types: list[int] = []
        self.strings = bytearray(b"\0")
        self.count = 0

    def s(self, name: str) -> int:
        if not name:
            return 0
        off = len(self.strings)
        self.strings += name.encode() + b"\0"
        return off

    def add(self, kind: int, name: str = "", vlen: int = 0, size_or_type: int = 0,
            trailer: tuple[int, ...] = (), kind_flag: bool = False) -> int:
        info = (int(kind_flag) << 31) | (kind << 24) | vlen
        self.types += [self.s(name), info, size_or_type, *trailer]
        self.count += 1
        return self.count

    def int_(self, name: str, size: int, bits: int | None = None, bit_off: int = 0) -> int:
        bits = size * 8 if bits is None else bits
        return self.add(INT, name, 0, size, ((bit_off << 16) | bits,))

    def composite(self, kind: int, name: str, size: int,
                  members: list[tuple[str, int, int]], kind_flag: bool = False) -> int:
        trailer: list[int] = []
        for mname, mtype, moff in members:
            trailer += [self.s(mname), mtype, moff]
        return self.add(kind, name, len(members), size, tuple(trailer), kind_flag)

    def blob(self, magic: int = 0xEB9F, version: int = 1) -> bytes:
        types = struct.pack(f"<{len(self.types)}I", *self.types)
        hdr_len = 24
        header = struct.pack("<HBBIIIII", magic, version, 0, hdr_len,
                             0, len(types), len(types), len(self.strings))
        return header + types + bytes(self.strings)


def bitfield(bits: int, bit_offset: int) -> int:
    return (bits << 24) | bit_offset


@pytest.fixture(scope="module")
def synthetic() -> bytes:
    b = BtfBuilder()
    t_int = b.int_("int", 4)
    t_uchar = b.int_("unsigned char", 1)
    t_ushort = b.int_("unsigned short", 2)
    t_u32 = b.add(TYPEDEF, "u32", size_or_type=t_int)
    t_const_u32 = b.add(CONST, size_or_type=t_u32)
    t_name = b.add(ARRAY, trailer=(t_uchar, t_int, 16))
    t_halves = b.composite(STRUCT, "", 4, [("lo", t_ushort, 0), ("hi", t_ushort, 16)])
    t_word = b.composite(UNION, "", 4, [("whole", t_u32, 0), ("", t_halves, 0)])
    t_inner = b.composite(STRUCT, "inner", 8, [("p", t_int, 0), ("q", t_int, 32)])
    t_ptr = b.add(PTR, size_or_type=t_inner)
    b.composite(STRUCT, "outer", 40, [
        ("id", t_const_u32, 0),
        ("", t_word, 32),
        ("flags", t_int, bitfield(3, 64)),
        ("mode", t_int, bitfield(5, 67)),
        ("full", t_uchar, bitfield(8, 72)),
        ("name", t_name, 96),
        ("in", t_inner, 224),
        ("next", t_ptr, 256),
    ], kind_flag=True)

    # One of every other kind, so a walker that mis-sizes any of them desyncs
    # before reaching the struct below.
    b.add(ENUM, "colour", 2, 4, (b.s("RED"), 0, b.s("GREEN"), 1))
    b.add(ENUM64, "big", 1, 8, (b.s("HUGE"), 1, 2))
    b.add(FWD, "opaque")
    t_volatile = b.add(VOLATILE, size_or_type=t_int)
    b.add(RESTRICT, size_or_type=t_ptr)
    proto = b.add(FUNC_PROTO, "", 2, t_int, (b.s("a"), t_int, b.s("b"), t_ptr))
    b.add(FUNC, "do_thing", 0, proto)
    var = b.add(VAR, "counter", 0, t_int, (1,))
    b.add(DATASEC, ".data", 1, 4, (var, 0, 4))
    b.add(FLOAT, "double", 0, 8)
    b.add(DECL_TAG, "tag", 0, var, (0xFFFFFFFF,))
    t_tagged = b.add(TYPE_TAG, "user", 0, t_int)
    t_grid = b.add(ARRAY, trailer=(t_name, t_int, 3))
    t_legacy_bits = b.int_("int", 4, bits=3, bit_off=2)
    b.composite(STRUCT, "tail", 64, [
        ("v", t_volatile, 0),
        ("tagged", t_tagged, 32),
        ("grid", t_grid, 64),
        ("legacy", t_legacy_bits, 448),
    ])
    return b.blob()


@pytest.fixture(scope="module")
def btf(synthetic: bytes) -> Btf:
    return Btf.from_bytes(synthetic)


def test_struct_lookup(btf: Btf) -> None:
    assert btf.has_struct("outer") and btf.has_struct("inner") and btf.has_struct("tail")
    assert not btf.has_struct("missing")
    assert btf.struct_size("outer") == 40
    assert btf.struct_size("inner") == 8


def test_plain_members_resolve_modifiers(btf: Btf) -> None:
    assert btf.member("outer", "id") == MemberLocation(offset=0, size=4, bitfield_bits=0, bit_offset=0)
    assert btf.member("outer", "name") == MemberLocation(offset=12, size=16, bitfield_bits=0, bit_offset=96)
    assert btf.member("outer", "in") == MemberLocation(offset=28, size=8, bitfield_bits=0, bit_offset=224)
    assert btf.member("outer", "next") == MemberLocation(offset=32, size=8, bitfield_bits=0, bit_offset=256)


def test_anonymous_members_are_transparent(btf: Btf) -> None:
    assert btf.member("outer", "whole") == MemberLocation(offset=4, size=4, bitfield_bits=0, bit_offset=32)
    assert btf.member("outer", "lo") == MemberLocation(offset=4, size=2, bitfield_bits=0, bit_offset=32)
    assert btf.member("outer", "hi") == MemberLocation(offset=6, size=2, bitfield_bits=0, bit_offset=48)
    assert btf.offsetof("outer", "hi") == 6


def test_dotted_path(btf: Btf) -> None:
    assert btf.member("outer", "in.q") == MemberLocation(offset=32, size=4, bitfield_bits=0, bit_offset=256)
    assert btf.offsetof("outer", "in.p") == 28


def test_kind_flag_bitfields(btf: Btf) -> None:
    assert btf.member("outer", "flags") == MemberLocation(offset=8, size=4, bitfield_bits=3, bit_offset=64)
    assert btf.member("outer", "mode") == MemberLocation(offset=8, size=4, bitfield_bits=5, bit_offset=67)
    assert btf.offsetof("outer", "flags") == 8
    assert btf.offsetof("outer", "full") == 9
    with pytest.raises(BtfError, match="not byte aligned"):
        btf.offsetof("outer", "mode")


def test_walk_survives_every_kind(btf: Btf) -> None:
    assert btf.struct_size("tail") == 64
    assert btf.member("tail", "v").size == 4
    assert btf.member("tail", "tagged") == MemberLocation(offset=4, size=4, bitfield_bits=0, bit_offset=32)
    assert btf.member("tail", "grid") == MemberLocation(offset=8, size=48, bitfield_bits=0, bit_offset=64)


def test_legacy_int_encoded_bitfield(btf: Btf) -> None:
    assert btf.member("tail", "legacy") == MemberLocation(offset=56, size=4, bitfield_bits=3, bit_offset=450)


def test_lookup_errors(btf: Btf) -> None:
    with pytest.raises(BtfError, match="^no struct missing in BTF$"):
        btf.member("missing", "x")
    with pytest.raises(BtfError, match="^no struct missing in BTF$"):
        btf.struct_size("missing")
    with pytest.raises(BtfError, match="^struct outer has no member nope$"):
        btf.member("outer", "nope")
    with pytest.raises(BtfError, match="struct outer has no member in.nope"):
        btf.member("outer", "in.nope")
    with pytest.raises(BtfError, match="not a struct or union"):
        btf.member("outer", "id.x")
    with pytest.raises(BtfError, match="bad member path"):
        btf.member("outer", "in..p")


def test_bad_magic(synthetic: bytes) -> None:
    with pytest.raises(BtfError, match="bad BTF magic 0x1234"):
        Btf.from_bytes(b"\x34\x12" + synthetic[2:])
    with pytest.raises(BtfError, match="big-endian"):
        Btf.from_bytes(b"\xeb\x9f" + synthetic[2:])


@pytest.mark.parametrize("cut", [0, 10, 24, 60])
def test_truncated_data(synthetic: bytes, cut: int) -> None:
    with pytest.raises(BtfError):
        Btf.from_bytes(synthetic[:cut])


def test_type_section_ending_mid_type(synthetic: bytes) -> None:
    hdr = bytearray(synthetic[:24])
    type_len = struct.unpack_from("<I", hdr, 12)[0]
    struct.pack_into("<I", hdr, 12, type_len - 8)
    with pytest.raises(BtfError, match="truncated"):
        Btf.from_bytes(bytes(hdr) + synthetic[24:])


def test_unknown_kind() -> None:
    b = BtfBuilder()
    b.add(31, "weird")
    with pytest.raises(BtfError, match="unknown BTF kind 31"):
        Btf.from_bytes(b.blob())


def test_load_missing_file(tmp_path) -> None:
    missing = tmp_path / "vmlinux"
    with pytest.raises(BtfError, match=f"^no BTF at {re.escape(str(missing))}$"):
        Btf.load(str(missing))


def test_load_from_file_is_cached(tmp_path, synthetic: bytes) -> None:
    path = tmp_path / "vmlinux"
    path.write_bytes(synthetic)
    first = Btf.load(str(path))
    assert Btf.load(str(path)) is first
    assert first.offsetof("outer", "hi") == 6


needs_kernel_btf = pytest.mark.skipif(
    not os.path.exists(VMLINUX_BTF), reason=f"{VMLINUX_BTF} not present (kernel built without BTF?)"
)


@pytest.fixture(scope="module")
def kernel() -> Btf:
    return Btf.load()


@needs_kernel_btf
def test_kernel_load_is_cached(kernel: Btf) -> None:
    assert Btf.load() is kernel
    assert running_kernel_btf() is kernel


# Values observed on the 6.18 kernel this project is developed against; they
# differ from what the (6.1) installed headers give.
KERNEL_618_OFFSETS = {
    ("sock_common", "skc_daddr"): 0,
    ("sock_common", "skc_rcv_saddr"): 4,
    ("sock_common", "skc_dport"): 12,
    ("sock_common", "skc_num"): 14,
    ("sock_common", "skc_family"): 16,
    ("sock_common", "skc_state"): 18,
    ("sock_common", "skc_v6_daddr"): 56,
    ("sock_common", "skc_v6_rcv_saddr"): 72,
    ("tcp_sock", "bytes_acked"): 1824,
    ("tcp_sock", "bytes_received"): 1752,
    ("tcp_sock", "srtt_us"): 1680,
    ("tcp_sock", "total_retrans"): 2200,
}


@needs_kernel_btf
@pytest.mark.skipif(not os.uname().release.startswith("6.18."), reason="expected offsets are for kernel 6.18")
@pytest.mark.parametrize(("struct_name", "path"), list(KERNEL_618_OFFSETS))
def test_kernel_known_offsets(kernel: Btf, struct_name: str, path: str) -> None:
    assert kernel.offsetof(struct_name, path) == KERNEL_618_OFFSETS[(struct_name, path)]


@needs_kernel_btf
def test_kernel_member_sizes_and_paths(kernel: Btf) -> None:
    assert kernel.member("sock_common", "skc_daddr").size == 4
    assert kernel.member("sock_common", "skc_dport").size == 2
    assert kernel.member("sock_common", "skc_v6_daddr").size == 16
    assert kernel.member("tcp_sock", "bytes_acked").size == 8
    via_sock = kernel.offsetof("sock", "__sk_common.skc_v6_daddr")
    assert via_sock == kernel.offsetof("sock_common", "skc_v6_daddr")
    nested = kernel.offsetof("tcp_sock", "inet_conn.icsk_inet.sk.__sk_common.skc_dport")
    assert nested == kernel.offsetof("sock_common", "skc_dport")


BPFTOOL_STRUCTS = ("tcp_sock", "sock", "sock_common", "inet_sock", "inet_connection_sock")
_STRUCT_LINE = re.compile(r"^\[\d+\] STRUCT '(\w+)' size=(\d+) vlen=\d+$")
_MEMBER_LINE = re.compile(r"^\t'([^']*)' type_id=\d+ bits_offset=(\d+)(?: bitfield_size=(\d+))?$")


@pytest.fixture(scope="module")
def bpftool_layouts(tmp_path_factory) -> dict[str, tuple[int, list[tuple[str, int, int]]]]:
    """Struct sizes and direct members as bpftool reports them."""
    bpftool = shutil.which("bpftool")
    if bpftool is None:
        pytest.skip("bpftool not on PATH")
    dump = tmp_path_factory.mktemp("bpftool") / "vmlinux.txt"
    with dump.open("w") as out:
        proc = subprocess.run([bpftool, "btf", "dump", "file", VMLINUX_BTF],
                              stdout=out, stderr=subprocess.PIPE, text=True, timeout=120)
    if proc.returncode != 0:
        pytest.skip(f"bpftool failed: {proc.stderr.strip()[:200]}")

    layouts: dict[str, tuple[int, list[tuple[str, int, int]]]] = {}
    current: list[tuple[str, int, int]] | None = None
    with dump.open() as lines:
        for line in lines:
            line = line.rstrip("\n")
            if current is not None:
                m = _MEMBER_LINE.match(line)
                if m:
                    current.append((m[1], int(m[2]), int(m[3] or 0)))
                    continue
                current = None
            s = _STRUCT_LINE.match(line)
            if s and s[1] in BPFTOOL_STRUCTS and s[1] not in layouts:
                current = []
                layouts[s[1]] = (int(s[2]), current)
    return layouts


@needs_kernel_btf
@pytest.mark.parametrize("struct_name", BPFTOOL_STRUCTS)
def test_kernel_matches_bpftool(kernel: Btf, bpftool_layouts, struct_name: str) -> None:
    size, members = bpftool_layouts[struct_name]
    assert kernel.struct_size(struct_name) == size
    named = [m for m in members if m[0] != "(anon)"]
    assert len(named) > 3
    for name, bits_offset, bitfield_size in named:
        loc = kernel.member(struct_name, name)
        assert (loc.bit_offset, loc.bitfield_bits) == (bits_offset, bitfield_size), name
