"""Pane key -> snapshot type, for reading recordings back."""

from __future__ import annotations

from nettop.model.queues import QueuesSnapshot
from nettop.model.retransmits import RetransmitsSnapshot
from nettop.model.sizes import SizesSnapshot
from nettop.model.sockets import SocketsSnapshot
from nettop.model.tcp import TcpSnapshot
from nettop.model.wifi import WifiSnapshot

SNAPSHOT_TYPES: dict[str, type] = {
    "tcp": TcpSnapshot,
    "sizes": SizesSnapshot,
    "queues": QueuesSnapshot,
    "retransmits": RetransmitsSnapshot,
    "sockets": SocketsSnapshot,
    "wifi": WifiSnapshot,
}
