"""Netlink requests and answers read with struct: what nettop's own decoders share.

pyroute2 decodes every attribute of every answer in pure Python; nettop's pollers read
only what they show, from the raw bytes (sock_diag's TCP dumps and lookups, rtnetlink's
qdisc dump). This module frames the messages; each caller decodes its own bodies.

Layouts: include/uapi/linux/netlink.h (struct nlmsghdr, struct nlattr).
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from typing import Any, Callable, Container, Iterator

NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3

HEADER = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
ATTRIBUTE = struct.Struct("=HH")  # length, type
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED and NLA_F_NET_BYTEORDER
_ERROR = struct.Struct("=i")


def message(kind: int, flags: int, sequence: int, body: bytes) -> bytes:
    return HEADER.pack(HEADER.size + len(body), kind, flags, sequence, 0) + body


def attributes(data: memoryview, offset: int = 0) -> Iterator[tuple[int, memoryview]]:
    """(type, payload) of each attribute from `offset` on (after a message's fixed struct,
    or in a nested attribute's payload)."""
    while offset + ATTRIBUTE.size <= len(data):
        length, kind = ATTRIBUTE.unpack_from(data, offset)
        if length < ATTRIBUTE.size:
            return
        yield kind & NLA_TYPE_MASK, data[offset + ATTRIBUTE.size: offset + length]
        offset += (length + 3) & ~3


class Refused(OSError):
    """The kernel answered a request with an error (NLMSG_ERROR)."""


class NetlinkSocket:
    """One netlink socket and its request numbers; `name` says which in errors."""

    def __init__(self, protocol: int, name: str) -> None:
        self.name = name
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, protocol)
        self.sock.bind((0, 0))
        self.sequence = 0
        self._buffer = bytearray(1 << 16)

    def next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence

    def dump(self, request: bytes, answer_kinds: Container[int],
             decode: Callable[[memoryview], Any]) -> Iterator[Any]:
        """Send a dump request numbered self.sequence; `decode(body)` of each answer of the
        given types until DONE (a None from it is left out). The body is a view of the
        receive buffer, valid only during the call."""
        self.sock.send(request)
        while True:
            for kind, sequence, body in self.received():
                if sequence != self.sequence:
                    continue
                if kind == NLMSG_DONE:
                    return
                if kind == NLMSG_ERROR:
                    error = -_ERROR.unpack_from(body)[0]
                    raise Refused(error, f"{self.name}: {os.strerror(error)}")
                if kind in answer_kinds and (answer := decode(body)) is not None:
                    yield answer

    def received(self, flags: int = 0) -> list[tuple[int, int, memoryview]]:
        """One datagram's netlink messages: (type, sequence, body). The bodies are views of the
        receive buffer, valid until the next receive."""
        size = self.sock.recv_into(self._buffer, 0, flags)
        view = memoryview(self._buffer)[:size]
        messages = []
        offset = 0
        while offset + HEADER.size <= size:
            length, kind, _flags, sequence, _port = HEADER.unpack_from(view, offset)
            if length < HEADER.size:
                raise OSError(errno.EPROTO, f"{self.name}: a malformed netlink message")
            messages.append((kind, sequence, view[offset + HEADER.size: offset + length]))
            offset += (length + 3) & ~3
        return messages

    def close(self) -> None:
        self.sock.close()
