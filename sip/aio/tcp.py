"""TCP transport for the runner (RFC 3261 §18.3): listener, client connections, idle timeout.

Connections are keyed by the remote address so a device's own connection is reused for everything we
send it (GB/T 28181 §9.1.1 f: NAT'd devices register over TCP and keep that connection).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

log = logging.getLogger("sip.aio.tcp")

HIGH_WATER = 4 << 20  # bytes queued for a slow reader before we give up on the connection
# TCP keepalive probes find half-open connections (a peer that vanished without FIN): first probe after
# KEEPIDLE s of silence, then every KEEPINTVL s; KEEPCNT unanswered probes and the kernel resets it.
KEEPIDLE, KEEPINTVL, KEEPCNT = 120, 15, 4


class TcpConnection(asyncio.Protocol):
    def __init__(
        self,
        on_data: Callable[[bytes, TcpConnection], None],
        on_made: Callable[[TcpConnection], None],
        on_lost: Callable[[TcpConnection], None],
    ) -> None:
        self._on_data = on_data
        self._on_made = on_made
        self._on_lost = on_lost
        self.transport: asyncio.Transport | None = None
        self.remote: tuple[str, int] = ("", 0)
        self.local: tuple[str, int] = ("", 0)
        self.last_activity = 0.0
        self.started: float | None = None  # when the unfinished message now held began to arrive
        self.inbound = False  # accepted by our listener (not a connection we opened)
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  (uvloop's class is not a subclass)
        self.remote = transport.get_extra_info("peername")[:2]
        self.local = transport.get_extra_info("sockname")[:2]
        self.last_activity = asyncio.get_running_loop().time()
        _keepalive(transport.get_extra_info("socket"))
        self._on_made(self)

    def data_received(self, data: bytes) -> None:
        self.last_activity = asyncio.get_running_loop().time()
        self._on_data(data, self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._on_lost(self)

    def send(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if transport.get_write_buffer_size() > HIGH_WATER:
            log.warning("closing TCP connection to %s: %d bytes unsent", self.remote, transport.get_write_buffer_size())
            transport.abort()
            return
        self.last_activity = asyncio.get_running_loop().time()
        transport.write(data)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        """Close at once, dropping unsent data (a peer we refuse or give up on)."""
        if self.transport is not None:
            self.transport.abort()


def _keepalive(sock: socket.socket | None) -> None:
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if hasattr(socket, "TCP_KEEPIDLE"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, KEEPIDLE)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, KEEPINTVL)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, KEEPCNT)
    except OSError as exc:  # not a TCP socket (tests' fakes) or options unsupported
        log.debug("TCP keepalive not set: %s", exc)
