"""Sending a voice broadcast (spec digest §7.11): G.711 A-law in 20 ms RTP packets paced in real time, over UDP
or TCP (RFC 4571 framing; either side opening the connection, RFC 4145), as PCMA (payload type 8, RFC 3551) or
wrapped in an audio-only MPEG-PS (payload type 96, GB/T 28181 App. C: stream type 0x90).

``rtp_packets`` is pure; ``AudioSender`` owns one socket and the pacing loop (IO lives in gb28181/media/).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable

from gb28181.media import ps, rtp

PTIME = 0.020  # s of audio per packet
SAMPLES = 160  # A-law bytes (8 kHz samples) per packet
SILENCE = 0xD5  # A-law of 0
PCMA, PS = 8, 96
MAX_CATCH_UP = 50  # packets sent at once when the loop fell behind (1 s); beyond that the schedule restarts


def rtp_packets(alaw: bytes, payload: int, ssrc: int, first_seq: int = 0, first_ts: int = 0) -> list[bytes]:
    """The whole file as RTP packets: 160 samples each (the last padded with silence), marker on the first.
    PCMA: timestamps at 8 kHz. PS: each frame in its own pack (pack header, system header and PSM on the first,
    as a keyframe would have them), PTS and RTP timestamps at 90 kHz."""
    out = []
    step = SAMPLES if payload == PCMA else 1800
    psm = ps.program_stream_map([(ps.STREAM_TYPES["g711a"], ps.AUDIO_ID)])
    system = ps.system_header(False, True)
    for n, at in enumerate(range(0, len(alaw), SAMPLES)):
        frame = alaw[at:at + SAMPLES]
        if len(frame) < SAMPLES:
            frame += bytes([SILENCE]) * (SAMPLES - len(frame))
        ts = (first_ts + n * step) & 0xFFFFFFFF
        if payload != PCMA:
            pts = n * 1800 + 3600
            head = ps.pack_header(pts - 3600) + (system + psm if n == 0 else b"")
            frame = head + b"".join(ps.pes_packets(ps.AUDIO_ID, frame, pts))
        out.append(rtp.build(payload, (first_seq + n) & 0xFFFF, ts, ssrc, frame, marker=n == 0))
    return out


class AudioSender:
    """One broadcast's media socket. ``open`` binds (and, tcp-passive, listens) and returns our port for the SDP;
    ``run`` connects or accepts, then sends every packet at its time; it returns at the end and raises OSError or
    TimeoutError when the connection fails. ``transport`` is named from our side (DECISIONS.md)."""

    def __init__(self, transport: str, host: str, remote: tuple[str, int], connect_timeout: float = 10.0) -> None:
        self.transport = transport
        self.host = host
        self.remote = remote
        self.connect_timeout = connect_timeout
        self.sock: socket.socket | None = None
        self.port = 0
        self.dropped = 0  # UDP packets a full socket buffer refused

    def open(self) -> int:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM if self.transport == "udp" else socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.bind((self.host, 0))
            if self.transport == "tcp-passive":
                sock.listen(1)
        except OSError:
            sock.close()
            raise
        self.sock = sock
        self.port = sock.getsockname()[1]
        return self.port

    async def run(self, packets: list[bytes], on_sent: Callable[[bytes], None], clock: Callable[[], float]) -> None:
        """Send ``packets`` one per PTIME from now (``clock`` is the loop's monotonic time)."""
        loop = asyncio.get_running_loop()
        sock = self.sock
        if sock is None:
            raise OSError("the media socket is not open")
        if self.transport == "tcp-passive":
            conn, _ = await asyncio.wait_for(loop.sock_accept(sock), self.connect_timeout)
            sock.close()
            conn.setblocking(False)
            self.sock = sock = conn
        elif self.transport == "tcp-active":
            await asyncio.wait_for(loop.sock_connect(sock, self.remote), self.connect_timeout)
        start = clock()
        n = 0
        total = len(packets)
        for _ in range(total + 1):  # bounded: every turn sends at least one packet until the end
            if n >= total:
                return
            now = clock()
            due = start + n * PTIME
            if due > now:
                await asyncio.sleep(due - now)
                now = clock()
            behind = int((now - start) / PTIME) - n + 1
            if behind > MAX_CATCH_UP:  # the machine stalled: do not burst a second of audio at the device
                start = now - n * PTIME
                behind = 1
            batch = packets[n:n + max(1, behind)]
            if self.transport == "udp":
                for packet in batch:
                    try:
                        sock.sendto(packet, self.remote)
                    except (BlockingIOError, InterruptedError):
                        self.dropped += 1
                    on_sent(packet)
            else:
                await loop.sock_sendall(sock, b"".join(rtp.frame(p) for p in batch))
                for packet in batch:
                    on_sent(packet)
            n += len(batch)

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None
