"""Kernel bytes to text: the decoders every probe shares."""

from __future__ import annotations

import socket

from nettop.probes.addresses import format_endpoint, kernel_text


def test_kernel_text_stops_at_the_first_nul_and_replaces_bad_bytes():
    assert kernel_text(b"iperf3\0old-name\0") == "iperf3"
    assert kernel_text(b"\xffx\0") == "\ufffdx"
    assert kernel_text(b"full-sixteen-chr") == "full-sixteen-chr"  # no NUL: the whole array


def test_ipv4_mapped_endpoints_read_as_ipv4():
    mapped = socket.inet_pton(socket.AF_INET6, "::ffff:10.0.0.2")
    assert format_endpoint(socket.AF_INET6, mapped) == (4, "10.0.0.2")
    assert format_endpoint(socket.AF_INET, socket.inet_aton("10.0.0.1") + bytes(12)) == (4, "10.0.0.1")
    assert format_endpoint(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, "fd00::1")) == (6, "fd00::1")
