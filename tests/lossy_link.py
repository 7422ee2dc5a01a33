"""Two test hosts joined by their own veth pair, with random loss into the receiver.

Built on tests/netns.py: each side is a test host (so it is torn down with it); the
link between them is 10.202.<a>.1 (sender) <-> 10.202.<a>.2 (receiver). The receiving
namespace drops a fraction of incoming packets for one port with iptables' statistic
match, so the sender's namespace retransmits, and its counters count only this traffic.
"""

from __future__ import annotations

import subprocess
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Iterator

from netns import TestHost, test_host


@dataclass
class LossyLink:
    sender: TestHost
    receiver: TestHost
    sender_ip: str
    receiver_ip: str

    def counters(self, host: TestHost) -> str:
        """/proc/net/snmp and /proc/net/netstat of a host's namespace, concatenated."""
        return host.run("cat", "/proc/net/snmp", "/proc/net/netstat").stdout

    def set_loss(self, port: int, probability: float) -> None:
        self.receiver.run("iptables", "-F", "INPUT")
        if probability > 0:
            self.receiver.run(
                "iptables", "-A", "INPUT", "-p", "tcp", "--dport", str(port), "-m", "statistic",
                "--mode", "random", "--probability", f"{probability:g}", "-j", "DROP",
            )


@contextmanager
def lossy_link() -> Iterator[LossyLink]:
    with ExitStack() as stack:
        sender = stack.enter_context(test_host())
        receiver = stack.enter_context(test_host())
        a, b = f"ntl{sender.index}s", f"ntl{sender.index}r"
        subprocess.run(["ip", "link", "add", a, "type", "veth", "peer", "name", b], check=True)
        subprocess.run(["ip", "link", "set", a, "netns", sender.name], check=True)
        subprocess.run(["ip", "link", "set", b, "netns", receiver.name], check=True)
        link = LossyLink(sender, receiver, f"10.202.{sender.index}.1", f"10.202.{sender.index}.2")
        sender.run("ip", "addr", "add", f"{link.sender_ip}/24", "dev", a)
        receiver.run("ip", "addr", "add", f"{link.receiver_ip}/24", "dev", b)
        sender.run("ip", "link", "set", a, "up")
        receiver.run("ip", "link", "set", b, "up")
        yield link  # the namespaces' deletion removes the link with them
