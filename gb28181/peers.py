"""A device's stored address and the transport ``Peer`` it names: the one conversion the platform's parts share
(devices are stored as ``ip:port`` / ``[v6]:port`` with their transport, requests go to a ``Peer``)."""

from __future__ import annotations

from sip.events import Peer


def peer_address(peer: Peer) -> str:
    """``ip:port`` (``[v6]:port``), the same text ``str(peer)`` carries after its transport: how addresses are
    stored."""
    return str(peer).split(":", 1)[1]


def peer_of(transport: str, address: str) -> Peer:
    """The Peer for a stored ``ip:port`` / ``[v6]:port`` address (UDP when the transport is not known)."""
    host, _, port = address.rpartition(":")
    return Peer(transport or "UDP", host.strip("[]"), int(port))
