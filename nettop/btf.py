"""Minimal reader for Linux kernel BTF type information.

Our BPF programs read kernel struct fields directly, so their offsets must
come from the running kernel rather than from installed headers, which may
belong to a different kernel version. The kernel publishes its own layout
as BTF in /sys/kernel/btf/vmlinux; this module parses just enough of it to
answer "where is field X of struct Y", using only the standard library.
"""

from __future__ import annotations

import functools
import os
import struct
import sys
from array import array
from dataclasses import dataclass

__all__ = ["BtfError", "MemberLocation", "Btf", "running_kernel_btf", "VMLINUX_BTF"]

VMLINUX_BTF = "/sys/kernel/btf/vmlinux"

_MAGIC = 0xEB9F
_HEADER = struct.Struct("<HBBIIIII")

_INT, _PTR, _ARRAY, _STRUCT, _UNION, _ENUM, _FWD, _TYPEDEF = 1, 2, 3, 4, 5, 6, 7, 8
_VOLATILE, _CONST, _RESTRICT, _FUNC, _FUNC_PROTO, _VAR, _DATASEC = 9, 10, 11, 12, 13, 14, 15
_FLOAT, _DECL_TAG, _TYPE_TAG, _ENUM64 = 16, 17, 18, 19

_KIND_NAMES = {
    _INT: "int", _PTR: "pointer", _ARRAY: "array", _STRUCT: "struct", _UNION: "union",
    _ENUM: "enum", _FWD: "forward declaration", _TYPEDEF: "typedef", _VOLATILE: "volatile",
    _CONST: "const", _RESTRICT: "restrict", _FUNC: "function", _FUNC_PROTO: "function prototype",
    _VAR: "variable", _DATASEC: "datasec", _FLOAT: "float", _DECL_TAG: "decl tag",
    _TYPE_TAG: "type tag", _ENUM64: "enum64",
}

# Trailing data after the 3-word btf_type header, in 32-bit words: (fixed, per vlen item).
_TRAILER_WORDS = {
    _INT: (1, 0), _PTR: (0, 0), _ARRAY: (3, 0), _STRUCT: (0, 3), _UNION: (0, 3),
    _ENUM: (0, 2), _FWD: (0, 0), _TYPEDEF: (0, 0), _VOLATILE: (0, 0), _CONST: (0, 0),
    _RESTRICT: (0, 0), _FUNC: (0, 0), _FUNC_PROTO: (0, 2), _VAR: (1, 0), _DATASEC: (0, 3),
    _FLOAT: (0, 0), _DECL_TAG: (1, 0), _TYPE_TAG: (0, 0), _ENUM64: (0, 3),
}
_MODIFIERS = frozenset({_TYPEDEF, _VOLATILE, _CONST, _RESTRICT, _TYPE_TAG})
_SIZED = frozenset({_INT, _STRUCT, _UNION, _ENUM, _ENUM64, _FLOAT, _DATASEC})
_COMPOSITE = frozenset({_STRUCT, _UNION})
_POINTER_SIZE = 8
_MAX_CHAIN = 64


class BtfError(Exception):
    """Raised for missing, malformed or unanswerable BTF lookups."""


@dataclass(frozen=True)
class MemberLocation:
    """Where a (possibly nested) member lives inside its outermost struct."""

    offset: int
    size: int
    bitfield_bits: int
    bit_offset: int


@dataclass(frozen=True)
class _Member:
    name: str
    type_id: int
    bit_offset: int
    bitfield_bits: int


class Btf:
    """Parsed BTF blob.

    Construction does a single pass that records where each type starts and
    indexes named structs/unions; members are decoded only when asked for,
    which keeps loading the ~100k-type vmlinux blob fast.
    """

    _load_cache: dict[str, Btf] = {}

    def __init__(self, words: array, starts: array, strings: bytes, composites: dict[str, int]):
        self._words = words
        self._starts = starts
        self._strings = strings
        self._composites = composites
        self._members: dict[int, tuple[_Member, ...]] = {}
        self._typedefs: dict[str, int] | None = None

    @classmethod
    def load(cls, path: str = VMLINUX_BTF) -> Btf:
        """Read and parse ``path``, reusing an earlier parse of the same path."""
        cached = cls._load_cache.get(path)
        if cached is not None:
            return cached
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise BtfError(f"no BTF at {path}") from None
        except OSError as e:
            raise BtfError(f"cannot read BTF at {path}: {e.strerror}") from None
        btf = cls.from_bytes(data)
        cls._load_cache[path] = btf
        return btf

    @classmethod
    def from_bytes(cls, data: bytes) -> Btf:
        """Parse a complete (non-split) little-endian BTF blob."""
        if len(data) < _HEADER.size:
            raise BtfError(f"BTF data too short ({len(data)} bytes)")
        magic, version, _flags, hdr_len, type_off, type_len, str_off, str_len = _HEADER.unpack_from(data)
        if magic != _MAGIC:
            if magic == 0x9FEB:
                raise BtfError("big-endian BTF is not supported")
            raise BtfError(f"bad BTF magic 0x{magic:04x}")
        if version != 1:
            raise BtfError(f"unsupported BTF version {version}")
        if hdr_len < _HEADER.size or hdr_len > len(data):
            raise BtfError(f"bad BTF header length {hdr_len}")
        types_begin, strings_begin = hdr_len + type_off, hdr_len + str_off
        if types_begin + type_len > len(data) or strings_begin + str_len > len(data):
            raise BtfError("BTF data truncated")
        if type_len % 4 or types_begin % 4:
            raise BtfError("BTF type section is misaligned")

        words = array("I")
        words.frombytes(data[types_begin:types_begin + type_len])
        if sys.byteorder != "little":
            words.byteswap()
        strings = bytes(data[strings_begin:strings_begin + str_len])
        starts, composites = cls._scan(words, strings)
        return cls(words, starts, strings, composites)

    @staticmethod
    def _scan(words: array, strings: bytes) -> tuple[array, dict[str, int]]:
        """Walk every type once so later lookups can jump straight to a type id."""
        starts = array("I", [0])
        append = starts.append
        trailer = _TRAILER_WORDS
        composite_name_offs: list[tuple[int, int]] = []
        n = len(words)
        i = 0
        type_id = 0
        while i < n:
            if i + 3 > n:
                raise BtfError("BTF type section truncated")
            info = words[i + 1]
            kind = (info >> 24) & 0x1F
            try:
                fixed, per_item = trailer[kind]
            except KeyError:
                raise BtfError(f"unknown BTF kind {kind} at type id {type_id + 1}") from None
            type_id += 1
            append(i)
            if kind == _STRUCT or kind == _UNION:
                name_off = words[i]
                if name_off:
                    composite_name_offs.append((name_off, type_id))
            i += 3 + fixed + per_item * (info & 0xFFFF)
        if i != n:
            raise BtfError("BTF type section truncated")

        composites: dict[str, int] = {}
        for name_off, tid in composite_name_offs:
            composites.setdefault(_cstr(strings, name_off), tid)
        return starts, composites

    def has_struct(self, name: str) -> bool:
        """True if a named struct or union called ``name`` exists."""
        return name in self._composites

    def typedef_id(self, name: str) -> int | None:
        """Type id of the typedef called ``name`` (a BTF-typed tracepoint attaches by the id
        of its btf_trace_<event>); scanned once, on first use."""
        if self._typedefs is None:
            self._typedefs = {}
            for type_id in range(1, len(self._starts)):
                if self._kind(type_id) == _TYPEDEF:
                    self._typedefs.setdefault(self._name(type_id), type_id)
        return self._typedefs.get(name)

    def struct_size(self, name: str) -> int:
        return self._words[self._starts[self._composite_id(name)] + 2]

    def member(self, struct: str, path: str) -> MemberLocation:
        """Locate a dotted member path; anonymous structs/unions are searched transparently."""
        type_id = self._composite_id(struct)
        parts = path.split(".")
        if not all(parts):
            raise BtfError(f"bad member path {path!r}")
        bit_offset = 0
        found: _Member | None = None
        for depth, part in enumerate(parts):
            if found is not None:
                type_id = self._resolve(found.type_id)
                if self._kind(type_id) not in _COMPOSITE:
                    walked = ".".join(parts[:depth])
                    raise BtfError(f"struct {struct} member {walked} is not a struct or union")
            hit = self._find(type_id, part)
            if hit is None:
                if depth == 0:
                    raise BtfError(f"struct {struct} has no member {part}")
                raise BtfError(f"struct {struct} has no member {path} ({self._describe(type_id)} has no member {part})")
            found, rel = hit
            bit_offset += rel
        assert found is not None
        return MemberLocation(
            offset=bit_offset // 8,
            size=self.type_size(found.type_id),
            bitfield_bits=found.bitfield_bits,
            bit_offset=bit_offset,
        )

    def offsetof(self, struct: str, path: str) -> int:
        """Byte offset of a member; refuses bitfields that do not start on a byte."""
        loc = self.member(struct, path)
        if loc.bit_offset % 8:
            raise BtfError(f"struct {struct} member {path} is a bitfield at bit {loc.bit_offset}, not byte aligned")
        return loc.offset

    def type_size(self, type_id: int) -> int:
        """Byte size of a type, following typedefs and qualifiers."""
        type_id = self._resolve(type_id)
        kind = self._kind(type_id)
        base = self._starts[type_id]
        if kind in _SIZED:
            return self._words[base + 2]
        if kind == _PTR:
            return _POINTER_SIZE
        if kind == _ARRAY:
            nelems = self._words[base + 5]
            return nelems * self.type_size(self._words[base + 3]) if nelems else 0
        raise BtfError(f"type id {type_id} ({self._describe(type_id)}) has no size")

    def _composite_id(self, name: str) -> int:
        try:
            return self._composites[name]
        except KeyError:
            raise BtfError(f"no struct {name} in BTF") from None

    def _kind(self, type_id: int) -> int:
        if type_id == 0:
            return 0
        self._check_id(type_id)
        return (self._words[self._starts[type_id] + 1] >> 24) & 0x1F

    def _check_id(self, type_id: int) -> None:
        if not 0 < type_id < len(self._starts):
            raise BtfError(f"BTF type id {type_id} out of range")

    def _resolve(self, type_id: int) -> int:
        """Skip typedef/const/volatile/restrict/type_tag links to the underlying type."""
        for _ in range(_MAX_CHAIN):
            if self._kind(type_id) not in _MODIFIERS:
                return type_id
            type_id = self._words[self._starts[type_id] + 2]
        raise BtfError(f"BTF type chain too long at type id {type_id}")

    def _name(self, type_id: int) -> str:
        return _cstr(self._strings, self._words[self._starts[type_id]])

    def _describe(self, type_id: int) -> str:
        if type_id == 0:
            return "void"
        name = self._name(type_id)
        return f"{_KIND_NAMES.get(self._kind(type_id), 'type')} {name or '(anon)'}"

    def _decode_members(self, type_id: int) -> tuple[_Member, ...]:
        cached = self._members.get(type_id)
        if cached is not None:
            return cached
        words = self._words
        base = self._starts[type_id]
        info = words[base + 1]
        kind_flag = info >> 31
        members = []
        for k in range(info & 0xFFFF):
            name_off, member_type, raw = words[base + 3 + 3 * k: base + 6 + 3 * k]
            if kind_flag:
                bit_offset, bits = raw & 0xFFFFFF, raw >> 24
            else:
                bit_offset, bits = self._legacy_bitfield(member_type, raw)
            members.append(_Member(_cstr(self._strings, name_off), member_type, bit_offset, bits))
        result = tuple(members)
        self._members[type_id] = result
        return result

    def _legacy_bitfield(self, member_type: int, bit_offset: int) -> tuple[int, int]:
        """Without kind_flag, bitfields are encoded in the member's INT type itself."""
        if self._kind(member_type) != _INT:
            return bit_offset, 0
        base = self._starts[member_type]
        encoding = self._words[base + 3]
        nr_bits, int_offset = encoding & 0xFF, (encoding >> 16) & 0xFF
        if int_offset == 0 and nr_bits == 8 * self._words[base + 2]:
            return bit_offset, 0
        return bit_offset + int_offset, nr_bits

    def _find(self, type_id: int, name: str, depth: int = 0) -> tuple[_Member, int] | None:
        """Find ``name`` in a struct/union, descending into anonymous members."""
        if depth > _MAX_CHAIN:
            raise BtfError(f"anonymous member nesting too deep in type id {type_id}")
        members = self._decode_members(type_id)
        for m in members:
            if m.name == name:
                return m, m.bit_offset
        for m in members:
            if m.name:
                continue
            inner = self._resolve(m.type_id)
            if self._kind(inner) in _COMPOSITE:
                hit = self._find(inner, name, depth + 1)
                if hit is not None:
                    return hit[0], m.bit_offset + hit[1]
        return None


def _cstr(strings: bytes, off: int) -> str:
    if off == 0:
        return ""
    if off >= len(strings):
        raise BtfError(f"BTF string offset {off} out of range")
    end = strings.find(b"\0", off)
    if end < 0:
        raise BtfError(f"unterminated BTF string at offset {off}")
    return strings[off:end].decode("utf-8", "replace")


@functools.cache
def running_kernel_btf() -> Btf | None:
    """The running kernel's BTF, or None when the kernel does not expose it."""
    if not os.path.exists(VMLINUX_BTF):
        return None
    return Btf.load(VMLINUX_BTF)
