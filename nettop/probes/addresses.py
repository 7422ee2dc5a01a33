"""Raw kernel bytes to text (addresses, and the fixed-size names the kernel NUL-terminates),
shared by every probe that reports endpoints or process and device names."""

from __future__ import annotations

import functools
import ipaddress
import socket

AF_INET = socket.AF_INET
AF_INET6 = socket.AF_INET6


@functools.lru_cache(maxsize=65536)
def format_endpoint(family: int, raw: bytes) -> tuple[int, str]:
    """(4 or 6, text) for an address; IPv4-mapped IPv6 (dual-stack sockets) becomes IPv4.

    Cached: socket_io formats two addresses for each of up to 16,384 sockets every interval,
    and they repeat (the same few local addresses, the busy remote hosts)."""
    if family == AF_INET:
        return 4, socket.inet_ntop(AF_INET, raw[:4])
    address = ipaddress.IPv6Address(bytes(raw[:16]))
    if address.ipv4_mapped is not None:
        return 4, str(address.ipv4_mapped)
    return 6, str(address)


@functools.lru_cache(maxsize=4096)
def kernel_text(raw: bytes) -> str:
    """A NUL-terminated kernel char array (comm, ifname) as text; undecodable bytes replaced.

    Cached: socket_io decodes a name for each of up to 16,384 sockets every interval, and a
    few names recur."""
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")
