"""Test hosts in network namespaces, joined to the root namespace by a veth pair.

Used by the tests, the benches and the demo recorder (scripts/record_demo.py).

Each host gets 10.201.<index>.2/24 and fd00:201:<index>::2/64; the root-namespace end of
its veth is .1 / ::1. Everything a host creates is removed on exit, even after a failure.
Traffic in tests goes only to these hosts or to loopback, bounded in time.
"""

from __future__ import annotations

import os
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator


def sh(*cmd: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, capture_output=True, text=True, **kwargs)


@dataclass
class TestHost:
    name: str
    index: int
    host_if: str
    ns_if: str
    host_ip: str
    ip: str
    host_ip6: str
    ip6: str
    processes: list[subprocess.Popen] = field(default_factory=list)

    def run(self, *cmd: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        return sh("ip", "netns", "exec", self.name, *cmd, check=check, **kwargs)

    def pin_neighbours(self) -> None:
        """Permanent IPv4 neighbour entries at both ends: the first datagram leaves at once,
        with no ARP exchange to wait for or to count."""
        host_mac = Path(f"/sys/class/net/{self.host_if}/address").read_text().strip()
        ns_mac = self.run("cat", f"/sys/class/net/{self.ns_if}/address").stdout.strip()
        sh("ip", "neigh", "replace", self.ip, "lladdr", ns_mac, "dev", self.host_if, "nud", "permanent")
        self.run("ip", "neigh", "replace", self.host_ip, "lladdr", host_mac, "dev", self.ns_if, "nud", "permanent")

    def popen(self, *cmd: str, **kwargs) -> subprocess.Popen:
        kwargs.setdefault("stdout", subprocess.DEVNULL)
        kwargs.setdefault("stderr", subprocess.DEVNULL)
        process = subprocess.Popen(["ip", "netns", "exec", self.name, *cmd], **kwargs)
        self.processes.append(process)
        return process


def _free_index() -> int:
    taken = set(sh("ip", "netns", "list").stdout.split())
    for index in range(1, 250):
        if f"nettop-t{index}" not in taken and not os.path.exists(f"/sys/class/net/ntv{index}h"):
            return index
    raise RuntimeError("no free test host index")


@contextmanager
def test_host(index: int | None = None) -> Iterator[TestHost]:
    index = index or _free_index()
    while sh("ip", "netns", "add", f"nettop-t{index}", check=False).returncode != 0:
        index = _free_index()  # another test run took it first
    host = TestHost(
        name=f"nettop-t{index}",
        index=index,
        host_if=f"ntv{index}h",
        ns_if=f"ntv{index}n",
        host_ip=f"10.201.{index}.1",
        ip=f"10.201.{index}.2",
        host_ip6=f"fd00:201:{index}::1",
        ip6=f"fd00:201:{index}::2",
    )
    try:
        sh("ip", "link", "add", host.host_if, "type", "veth", "peer", "name", host.ns_if)
        sh("ip", "link", "set", host.ns_if, "netns", host.name)
        sh("ip", "addr", "add", f"{host.host_ip}/24", "dev", host.host_if)
        sh("ip", "-6", "addr", "add", f"{host.host_ip6}/64", "dev", host.host_if, "nodad")
        sh("ip", "link", "set", host.host_if, "up")
        host.run("ip", "addr", "add", f"{host.ip}/24", "dev", host.ns_if)
        host.run("ip", "-6", "addr", "add", f"{host.ip6}/64", "dev", host.ns_if, "nodad")
        host.run("ip", "link", "set", host.ns_if, "up")
        host.run("ip", "link", "set", "lo", "up")
        yield host
    finally:
        for process in host.processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        sh("ip", "link", "del", host.host_if, check=False)
        sh("ip", "netns", "del", host.name, check=False)


def wait_for_port(host: TestHost | None, port: int, timeout: float = 5.0) -> None:
    """Wait until something listens on a TCP port (in the host's namespace, or here)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cmd = ("ss", "-Htln", f"sport = :{port}")
        out = host.run(*cmd).stdout if host else sh(*cmd).stdout
        if out.strip():
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on port {port} within {timeout}s")
