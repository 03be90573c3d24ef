"""RTP packets (RFC 3550 §5.1) and RFC 4571 framing of RTP over TCP (a 2-byte big-endian length per packet).

Sans-IO. ``parse`` raises ``RtpError`` on anything that is not a well-formed RTP version-2 packet; the receiver
counts those and goes on.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

RTP_VERSION = 2
HEADER = struct.Struct("!BBHII")  # V/P/X/CC, M/PT, sequence, timestamp, SSRC
MAX_TCP_FRAME = 65535  # RFC 4571: the length field is 16 bits


class RtpError(ValueError):
    """Bytes that are not an RTP packet (or a TCP stream whose framing is lost)."""


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: tuple[int, bytes] | None = None  # (profile-defined 16 bits, data whose length is a multiple of 4)
    padding: int = 0  # padding bytes that followed the payload (RFC 3550 §5.1 P bit)

    def to_bytes(self) -> bytes:
        """Serialise (RFC 3550 §5.1). Padding is not re-emitted: it carries nothing."""
        if not 0 <= self.payload_type <= 127 or len(self.csrcs) > 15:
            raise ValueError("payload type must be 0-127 and at most 15 CSRCs")
        first = (RTP_VERSION << 6) | (0x10 if self.extension else 0) | len(self.csrcs)
        second = (0x80 if self.marker else 0) | self.payload_type
        parts = [HEADER.pack(first, second, self.sequence & 0xFFFF, self.timestamp & 0xFFFFFFFF,
                             self.ssrc & 0xFFFFFFFF)]
        parts.extend(struct.pack("!I", c) for c in self.csrcs)
        if self.extension:
            profile, data = self.extension
            if len(data) % 4:
                raise ValueError("RTP header extension data must be a multiple of 4 bytes")
            parts.append(struct.pack("!HH", profile, len(data) // 4) + data)
        parts.append(self.payload)
        return b"".join(parts)


def build(payload_type: int, sequence: int, timestamp: int, ssrc: int, payload: bytes, marker: bool = False) -> bytes:
    """A plain RTP packet (no CSRC, no extension): the fast path of the packetizer and the forwarder."""
    return HEADER.pack(0x80, (0x80 if marker else 0) | payload_type, sequence & 0xFFFF,
                       timestamp & 0xFFFFFFFF, ssrc & 0xFFFFFFFF) + payload


def parse(data: bytes) -> RtpPacket:
    """Parse one RTP packet. Raises RtpError with the reason."""
    if len(data) < HEADER.size:
        raise RtpError(f"{len(data)} bytes is shorter than an RTP header")
    first, second, seq, ts, ssrc = HEADER.unpack_from(data)
    if first >> 6 != RTP_VERSION:
        raise RtpError(f"RTP version {first >> 6}, expected 2")
    offset = HEADER.size
    cc = first & 0x0F
    if len(data) < offset + 4 * cc:
        raise RtpError("packet shorter than its CSRC list")
    csrcs = struct.unpack_from(f"!{cc}I", data, offset) if cc else ()
    offset += 4 * cc
    extension = None
    if first & 0x10:
        if len(data) < offset + 4:
            raise RtpError("packet shorter than its header extension")
        profile, words = struct.unpack_from("!HH", data, offset)
        end = offset + 4 + 4 * words
        if len(data) < end:
            raise RtpError("packet shorter than its header extension")
        extension = (profile, bytes(data[offset + 4:end]))
        offset = end
    end = len(data)
    padding = 0
    if first & 0x20:
        padding = data[-1]
        if padding == 0 or offset + padding > end:
            raise RtpError(f"bad RTP padding count {padding}")
        end -= padding
    return RtpPacket(second & 0x7F, seq, ts, ssrc, bytes(data[offset:end]), bool(second & 0x80), tuple(csrcs),
                     extension, padding)


def rewrite_ssrc(data: bytes, ssrc: int) -> bytes:
    """The same packet with another SSRC (the forwarder: each consumer gets the SSRC it was given)."""
    if len(data) < HEADER.size:
        raise RtpError("too short for RTP")
    return data[:8] + struct.pack("!I", ssrc & 0xFFFFFFFF) + data[12:]


def seq_delta(a: int, b: int) -> int:
    """Signed distance from sequence number b to a, modulo 2^16 (RFC 3550 App. A.1): -32768..32767."""
    return ((a - b + 0x8000) & 0xFFFF) - 0x8000


# ------------------------------------------------------------------------------------------- RFC 4571


def frame(packet: bytes) -> bytes:
    """Prefix one RTP packet with its 16-bit length (RFC 4571 §2)."""
    if len(packet) > MAX_TCP_FRAME:
        raise ValueError(f"RTP packet of {len(packet)} bytes does not fit RFC 4571's 16-bit length")
    return struct.pack("!H", len(packet)) + packet


class Rfc4571Decoder:
    """Splits a TCP byte stream into RTP packets. Bounded: holds at most one partial frame (≤ 65,537 bytes)."""

    def __init__(self, min_packet: int = HEADER.size) -> None:
        self._buffer = bytearray()
        self._min = min_packet

    def feed(self, data: bytes) -> list[bytes]:
        """Return the complete packets now available. Raises RtpError when the framing is lost (a length shorter
        than an RTP header, or a frame that does not start like RTP v2): the connection cannot be resynchronised
        reliably, so the caller closes it."""
        self._buffer += data
        out: list[bytes] = []
        buf = self._buffer
        pos = 0
        while len(buf) - pos >= 2:
            length = (buf[pos] << 8) | buf[pos + 1]
            if length < self._min:
                raise RtpError(f"RFC 4571 frame length {length} is shorter than an RTP header")
            if len(buf) - pos >= 3 and buf[pos + 2] >> 6 != RTP_VERSION:
                raise RtpError("RFC 4571 frame does not start with an RTP version-2 header")
            if len(buf) - pos - 2 < length:
                break
            out.append(bytes(buf[pos + 2:pos + 2 + length]))
            pos += 2 + length
        if pos:
            del buf[:pos]
        return out

    @property
    def pending(self) -> int:
        return len(self._buffer)
