"""UDP transport for the runner (RFC 3261 §18): one datagram = one message."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable

log = logging.getLogger("sip.aio.udp")

RECV_BUFFER = 8 << 20  # bursts of re-registrations after a restart arrive faster than we read


class UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, tuple[str, int], UdpProtocol], None]) -> None:
        self._on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None
        self.local: tuple[str, int] = ("0.0.0.0", 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  (uvloop's class is not a subclass)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            for size in (RECV_BUFFER, RECV_BUFFER // 4, 1 << 20):
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
                    break
                except OSError:
                    continue
            self.local = sock.getsockname()[:2]

    def backlog(self) -> int | None:
        """Bytes waiting in the kernel's receive queue (Linux /proc/net/udp ``rx_queue``; None elsewhere).

        Requests wait there, unseen by the event loop, when the server falls behind: with a large buffer they
        grow seconds old while the loop itself never runs late."""
        sock = self.transport.get_extra_info("socket") if self.transport is not None else None
        if sock is None:
            return None
        try:
            inode = str(os.fstat(sock.fileno()).st_ino)
            table = "/proc/net/udp6" if sock.family == socket.AF_INET6 else "/proc/net/udp"
            with open(table, encoding="ascii") as f:
                for line in f:
                    fields = line.split()
                    if len(fields) > 9 and fields[9] == inode:
                        return int(fields[4].split(":")[1], 16)
        except (OSError, ValueError, IndexError):
            return None
        return None

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._on_datagram(data, addr, self)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and friends: the transaction layer times out on its own.
        log.debug("UDP error on %s: %s", self.local, exc)

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, addr)


async def open_udp(
    host: str, port: int, on_datagram: Callable[[bytes, tuple[str, int], UdpProtocol], None]
) -> UdpProtocol:
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    _, protocol = await loop.create_datagram_endpoint(
        lambda: UdpProtocol(on_datagram), local_addr=(host, port), family=family
    )
    return protocol
