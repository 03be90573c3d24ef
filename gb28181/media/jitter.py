"""Sans-IO receive-side RTP bookkeeping: a bounded reorder buffer with loss counting (RFC 3550 App. A.1 sequence
arithmetic) and the SSRC policy of a per-session port (spec digest §13, quirks 16 and 17).

No clock: a packet that never comes is declared lost when the buffer is full (capacity = how much jitter, in
packets, we wait out), or when the stream ends (``flush``).
"""

from __future__ import annotations

from dataclasses import dataclass

from gb28181.media.rtp import RtpPacket, seq_delta

RESYNC_GAP = 3000  # a jump larger than this (either way) is a restarted sender, not loss


@dataclass
class ReorderStats:
    received: int = 0  # packets offered (after the SSRC check)
    delivered: int = 0
    lost: int = 0  # sequence numbers skipped for good
    duplicates: int = 0
    late: int = 0  # arrived after their slot was given up
    reordered: int = 0  # arrived out of order but in time
    resyncs: int = 0


class ReorderBuffer:
    """``push(packet)`` returns the packets now deliverable, in sequence order."""

    def __init__(self, capacity: int = 32, warmup: int | None = None) -> None:
        if not 1 <= capacity <= 1024:
            raise ValueError("reorder capacity must be 1-1024 packets")
        self.capacity = capacity
        # packets held before the first delivery, so that a stream whose very first packets arrive swapped
        # starts at the lowest sequence number instead of declaring the earlier ones late
        self.warmup = min(capacity, 4) if warmup is None else max(1, min(warmup, capacity))
        self._started = False
        self.stats = ReorderStats()
        self._expected: int | None = None
        self._held: dict[int, RtpPacket] = {}

    def push(self, packet: RtpPacket) -> list[RtpPacket]:
        self.stats.received += 1
        seq = packet.sequence
        if self._expected is None:
            self._expected = seq
        delta = seq_delta(seq, self._expected)
        if not self._started and -RESYNC_GAP <= delta < 0:
            self._expected, delta = seq, 0  # still warming up: an earlier packet moves the start back
        if abs(delta) > RESYNC_GAP:
            out = self.flush()
            self.stats.resyncs += 1
            self._expected = seq
            delta = 0
        else:
            out = []
        if delta < 0:
            self.stats.late += 1
            return out
        if seq in self._held:
            self.stats.duplicates += 1
            return out
        if delta == 0 and self._held:
            self.stats.reordered += 1  # it arrived after a later packet (it fills a gap)
        self._held[seq] = packet
        if not self._started:
            if len(self._held) < self.warmup:
                return out
            self._started = True
        out += self._drain()
        while len(self._held) > self.capacity:  # bounded: each pass skips one missing packet
            self.stats.lost += 1
            self._expected = (self._expected + 1) & 0xFFFF
            out += self._drain()
        return out

    def _drain(self) -> list[RtpPacket]:
        out = []
        for _ in range(len(self._held)):
            packet = self._held.pop(self._expected, None)  # type: ignore[arg-type]
            if packet is None:
                break
            out.append(packet)
            self._expected = (packet.sequence + 1) & 0xFFFF
        self.stats.delivered += len(out)
        return out

    def flush(self) -> list[RtpPacket]:
        """Deliver everything held, in order, counting the holes as lost (end of stream)."""
        self._started = True
        out: list[RtpPacket] = []
        for _ in range(self.capacity + 1):
            if not self._held:
                break
            gap = min(seq_delta(s, self._expected) for s in self._held)  # type: ignore[arg-type]
            self.stats.lost += gap
            self._expected = (self._expected + gap) & 0xFFFF  # type: ignore[operator]
            out += self._drain()
        return out

    @property
    def held(self) -> int:
        return len(self._held)


@dataclass
class SsrcPolicy:
    """Which packets on a session's port belong to the session.

    The stream is identified by its port; the SSRC only guards against a second sender on that port. The expected
    SSRC (the answer's ``y=``) and 0 (Dahua cameras, quirk 17) are accepted silently; any other SSRC is accepted too
    when it is the first one seen (the device chose its own: quirk 16), logged once by the caller. Once a stream is
    locked to an SSRC, packets with another one are foreign and dropped.
    """

    expected: int | None
    locked: int | None = None
    mismatch_reported: bool = False
    foreign: int = 0

    def accept(self, ssrc: int) -> tuple[bool, bool]:
        """(accept the packet, report a mismatch now — true at most once)."""
        if self.locked is None:
            self.locked = ssrc
            mismatch = self.expected is not None and ssrc not in (self.expected, 0) and not self.mismatch_reported
            self.mismatch_reported = self.mismatch_reported or mismatch
            return True, mismatch
        if ssrc == self.locked:
            return True, False
        self.foreign += 1
        return False, False
