"""The media backend interface the INVITE layer talks to (ARCHITECTURE.md: ``gb28181/media/``).

A backend opens an RTP receive port per session before the INVITE goes out (its port goes into our SDP offer),
learns the answer's SSRC and, for tcp-active, the device's address after the 200 OK, reports "no media" through a
callback, forwards a received stream to further consumers (cascade relay), and frees everything on close. The
embedded receiver (``receiver.EmbeddedBackend``) implements it with its own sockets; a ZLMediaKit client maps the
same calls onto openRtpServer / connectRtpServer / closeRtpServer / getRtpInfo / startSendRtp.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from gb28181.sdp import TCP_ACTIVE, TCP_PASSIVE, TRANSPORTS, UDP

__all__ = ["TCP_ACTIVE", "TCP_PASSIVE", "UDP", "ForwardSpec", "MediaBackend", "MediaError", "ReceiverSpec",
           "ReceiverStats", "parse_port_range"]


class MediaError(RuntimeError):
    """A media operation that cannot be done (no free port, unknown handle, connect refused); says why."""


@dataclass(frozen=True)
class ReceiverSpec:
    transport: str = UDP  # UDP | TCP_PASSIVE (we listen) | TCP_ACTIVE (we connect, after the 200 OK)
    ssrc: int | None = None  # expected SSRC (our y=); the answer's may replace it (expect_ssrc)
    output: str | None = None  # file the PS stream is written to (RTP stripped); None: no file
    no_media_timeout: float = 10.0  # seconds without a packet (from open, or from the last one) -> on_no_media
    reorder_capacity: int = 32  # packets of jitter waited out before a gap counts as loss
    label: str = ""  # for log lines (session id, channel)

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}")
        if self.no_media_timeout <= 0:
            raise ValueError("no_media_timeout must be positive")


@dataclass(frozen=True)
class ForwardSpec:
    """Send a received stream on (relay): to host:port over UDP, or TCP where we connect (tcp-active) or listen
    (tcp-passive: host/port are ignored; the consumer connects to the port ``forward`` returns)."""

    ssrc: int  # the SSRC this consumer was given in its 200 OK
    transport: str = UDP
    host: str = ""
    port: int = 0

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}")
        if self.transport != TCP_PASSIVE and not (self.host and 0 < self.port <= 65535):
            raise ValueError("a UDP or tcp-active forward needs host and port")


@dataclass
class ReceiverStats:
    port: int
    transport: str
    expected_ssrc: int | None
    ssrc: int | None = None  # the SSRC the stream is locked to (first seen)
    packets: int = 0  # accepted RTP packets
    bytes: int = 0  # their payload bytes (what reaches the file)
    lost: int = 0
    late: int = 0
    duplicates: int = 0
    reordered: int = 0
    foreign: int = 0  # packets from another SSRC, dropped
    malformed: int = 0  # datagrams / frames that were not RTP
    connected: bool = False  # TCP: a media connection is up
    first_packet: float | None = None  # loop time
    last_packet: float | None = None
    no_media: bool = False  # the no-media callback fired
    forwards: int = 0
    forwarded_packets: int = 0
    forward_dropped: int = 0  # packets a forward could not send (not connected yet, or its buffer full)


NoMediaCallback = Callable[[str, ReceiverStats], None]


@runtime_checkable
class MediaBackend(Protocol):
    async def open_receiver(self, spec: ReceiverSpec,
                            on_no_media: NoMediaCallback | None = None) -> tuple[int, str]:
        """Allocate a port and start receiving; returns (port for our SDP, handle)."""
        ...

    def expect_ssrc(self, handle: str, ssrc: int) -> None:
        """The SSRC the device's 200 OK announced (DECISIONS.md: it wins over ours)."""
        ...

    async def connect(self, handle: str, host: str, port: int) -> None:
        """tcp-active: connect to the device's media address from the 200 OK."""
        ...

    def stats(self, handle: str) -> ReceiverStats: ...

    async def forward(self, handle: str, spec: ForwardSpec) -> tuple[int, str]:
        """Start relaying to a consumer; returns (our local port, forward handle)."""
        ...

    async def stop_forward(self, handle: str, forward: str) -> None: ...

    async def close(self, handle: str) -> ReceiverStats:
        """Stop receiving, flush, close the file and every forward, free the port; final stats."""
        ...

    async def aclose(self) -> None:
        """Close every session (platform shutdown)."""
        ...


def parse_port_range(text: str) -> tuple[int, int]:
    """``[media] rtp_ports = "30000-30500"`` -> (30000, 30500). Raises ValueError with the reason."""
    first, sep, last = str(text).partition("-")
    if not sep or not first.strip().isdigit() or not last.strip().isdigit():
        raise ValueError(f"rtp_ports {text!r}: expected FIRST-LAST, e.g. 30000-30500")
    lo, hi = int(first), int(last)
    if not 1024 <= lo <= hi <= 65535:
        raise ValueError(f"rtp_ports {text!r}: need 1024 <= FIRST <= LAST <= 65535")
    return lo, hi
