"""PS over RTP (GB/T 28181 App. C; RFC 3550): cut each PS pack into RTP packets of payload type 96 with a 90 kHz
timestamp, the marker bit on the last packet of a frame. Sans-IO; the sequence number runs on across frames."""

from __future__ import annotations

from gb28181.media import rtp

DEFAULT_MAX_PAYLOAD = 1400  # keeps RTP + UDP + IP under a 1500-byte MTU


class RtpPacketizer:
    def __init__(self, ssrc: int, payload_type: int = 96, max_payload: int = DEFAULT_MAX_PAYLOAD,
                 first_sequence: int = 0) -> None:
        if not 100 <= max_payload <= 65535 - rtp.HEADER.size:
            raise ValueError("max_payload must be between 100 and 65523 bytes")
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.max_payload = max_payload
        self.sequence = first_sequence & 0xFFFF

    def packetize(self, ps_pack: bytes, timestamp: int) -> list[bytes]:
        """RTP packets carrying one frame's PS bytes (every packet has the frame's timestamp)."""
        out = []
        chunks = range(0, max(len(ps_pack), 1), self.max_payload)
        last = len(chunks) - 1
        for i, pos in enumerate(chunks):
            out.append(rtp.build(self.payload_type, self.sequence, timestamp, self.ssrc,
                                 ps_pack[pos:pos + self.max_payload], marker=i == last))
            self.sequence = (self.sequence + 1) & 0xFFFF
        return out
