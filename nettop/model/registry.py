"""Pane key -> snapshot type, for reading recordings back."""

from __future__ import annotations

from nettop.model.tcp import TcpSnapshot

SNAPSHOT_TYPES: dict[str, type] = {
    "tcp": TcpSnapshot,
}
