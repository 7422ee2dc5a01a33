"""Every probe nettop runs, in one place, so the app, `record` and `doctor` agree."""

from __future__ import annotations

from dataclasses import dataclass

from nettop.probes.base import Probe
from nettop.probes.netdev import NetdevProbe
from nettop.probes.owners import SocketOwners
from nettop.probes.qdisc_latency import QdiscLatencyProbe
from nettop.probes.retransmits import RetransmitsProbe
from nettop.probes.socket_io import DEFAULT_MAX_SOCKETS, SocketIoProbe
from nettop.probes.tcp_info import TcpInfoProbe
from nettop.probes.wifi_scan import WifiScanProbe


@dataclass(frozen=True)
class ProbeOptions:
    max_sockets: int = DEFAULT_MAX_SOCKETS
    force_source: str | None = None  # e.g. "kprobe": test the fallback on kernels that have both


def build_probes(options: ProbeOptions = ProbeOptions()) -> list[Probe]:
    """Probes in poll order: socket_io first, so the socket owners it learns this interval
    are known to the probes polled after it."""
    owners = SocketOwners()
    return [
        SocketIoProbe(options.force_source, options.max_sockets, owners),
        NetdevProbe(options.force_source),
        RetransmitsProbe(options.force_source, owners),
        TcpInfoProbe(),
        QdiscLatencyProbe(options.force_source),
        WifiScanProbe(options.force_source),
    ]
