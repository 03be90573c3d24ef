"""A simulated device's media session, sans-IO: the stream a Play, Playback or Download INVITE asked for.

GB/T 28181-2016 §9.2 (live), §9.8 (playback), §9.9 (download), App. B (MANSRTSP), App. C (PS over RTP), App. G
(SDP, y= SSRC), A.2.5.4 (MediaStatus 121 at the end of a file). Spec digest §10.

The session is a state machine held as a table (``TABLE``); the driver (runtime.py) owns the socket and asks
``due(now)`` for the RTP packets whose time has come and ``next_due()`` for when to ask again. Time is passed in.
The clip (a few seconds of H.264) is muxed frame by frame into GB-style PS packs (gb28181.media.ps) and cut into
RTP (gb28181.media.packetizer). Live streams loop the clip; playback and download stream ``duration`` seconds of
"recording" (the clip looped) and then end, which the device reports with a MediaStatus 121 MESSAGE.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from gb28181.media.h264 import AccessUnit
from gb28181.media.packetizer import RtpPacketizer
from gb28181.media.ps import PsMuxer
from gb28181.sdp import DOWNLOAD, PLAY, PLAYBACK

FPS = 25
TICKS_PER_FRAME = 90000 // FPS  # 90 kHz RTP / PES clock
MAX_BURST = 50  # frames sent per call at most (a late driver catches up in bounded steps)
SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)  # App. B: the speeds a device must support
MAX_DOWNLOAD_SPEED = 16


class Phase(enum.Enum):
    ANSWERED = "answered"  # 200 OK sent, waiting for the ACK
    STREAMING = "streaming"
    PAUSED = "paused"
    ENDED = "ended"


class Ev(enum.Enum):
    ACK = "ack"
    PLAY = "play"  # MANSRTSP PLAY (resume, seek, scale)
    PAUSE = "pause"  # MANSRTSP PAUSE
    EOF = "eof"  # the last frame of a playback/download went out
    BYE = "bye"  # BYE, MANSRTSP TEARDOWN, the media connection lost, or the ACK never came


# (phase, event) -> next phase; pairs not listed are ignored (an INFO PLAY on a live stream, a second ACK).
TABLE: dict[tuple[Phase, Ev], Phase] = {
    (Phase.ANSWERED, Ev.ACK): Phase.STREAMING,
    (Phase.ANSWERED, Ev.BYE): Phase.ENDED,
    (Phase.STREAMING, Ev.PAUSE): Phase.PAUSED,
    (Phase.STREAMING, Ev.PLAY): Phase.STREAMING,
    (Phase.STREAMING, Ev.EOF): Phase.ENDED,
    (Phase.STREAMING, Ev.BYE): Phase.ENDED,
    (Phase.PAUSED, Ev.PLAY): Phase.STREAMING,
    (Phase.PAUSED, Ev.PAUSE): Phase.PAUSED,
    (Phase.PAUSED, Ev.BYE): Phase.ENDED,
}


class MansrtspError(ValueError):
    pass


@dataclass(frozen=True)
class Rtsp:
    """One MANSRTSP request (App. B): method, CSeq, Scale, Range start (None: ``now`` or absent)."""

    method: str
    cseq: int
    scale: float | None = None
    range_start: float | None = None


def parse_mansrtsp(body: bytes) -> Rtsp:
    """``PLAY RTSP/1.0`` / ``CSeq: n`` / ``Scale: 2.0`` / ``Range: npt=100-`` (spec digest §10.5)."""
    text = body.decode("utf-8", "replace").replace("\r\n", "\n").strip()
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    if not lines:
        raise MansrtspError("empty MANSRTSP body")
    parts = lines[0].split()
    if len(parts) < 2 or not parts[1].upper().startswith("RTSP/"):
        raise MansrtspError(f"not a MANSRTSP request line: {lines[0][:60]!r}")
    method = parts[0].upper()
    if method not in ("PLAY", "PAUSE", "TEARDOWN"):
        raise MansrtspError(f"unknown MANSRTSP method {method!r}")
    fields = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            fields[name.strip().lower()] = value.strip()
    try:
        cseq = int(fields.get("cseq", "0"))
        scale = float(fields["scale"]) if "scale" in fields else None
    except ValueError as exc:
        raise MansrtspError(f"bad CSeq or Scale: {exc}") from exc
    if scale is not None and not 0 < scale <= max(SCALES):
        raise MansrtspError(f"Scale {scale} not supported (0 < Scale <= {max(SCALES)}; no reverse play)")
    start = None
    rng = fields.get("range", "")
    if rng:
        npt = rng.partition("=")[2] if "=" in rng else rng
        first = npt.partition("-")[0].strip()
        if first and first != "now":
            try:
                start = float(first)
            except ValueError as exc:
                raise MansrtspError(f"bad Range {rng!r}") from exc
            if start < 0:
                raise MansrtspError(f"bad Range {rng!r}")
    return Rtsp(method, cseq, scale, start)


@dataclass
class MediaSession:
    """One stream from the device: what to send, where, how fast, and where it is."""

    kind: str  # Play | Playback | Download
    transport: str  # the device's side: udp | tcp-active (we connect) | tcp-passive (we listen)
    remote: tuple[str, int]  # the platform's media address from the offer
    ssrc: int  # the RTP SSRC (int of y=; 0 for the ssrc-zero quirk)
    clip: list[AccessUnit]
    duration: float = 0.0  # seconds of recording for Playback/Download (0 for live)
    speed: float = 1.0  # Download: a=downloadspeed
    channel_id: str = ""
    phase: Phase = Phase.ANSWERED
    scale: float = 1.0  # Playback: MANSRTSP Scale
    frame: int = 0  # position in the stream, in frames since its start
    frames_sent: int = 0
    packets_sent: int = 0
    end_reported: bool = False  # MediaStatus 121 queued
    _next_at: float | None = None
    _anchor: tuple[float, int] = (0.0, 0)  # (time, frame) the pace counts from: no drift from adding up 1/rate
    _muxer: PsMuxer = field(default_factory=PsMuxer)
    _rtp: RtpPacketizer | None = None

    def __post_init__(self) -> None:
        if self.kind not in (PLAY, PLAYBACK, DOWNLOAD):
            raise ValueError(f"session kind must be Play, Playback or Download, not {self.kind!r}")
        if not self.clip:
            raise ValueError("empty media clip")
        self._rtp = RtpPacketizer(self.ssrc)
        self.speed = min(max(self.speed, 1.0), MAX_DOWNLOAD_SPEED)

    @property
    def history(self) -> bool:
        return self.kind != PLAY

    @property
    def total_frames(self) -> int | None:
        return round(self.duration * FPS) if self.history else None

    @property
    def rate(self) -> float:
        """Frames per second of wall time: 25 live, x Scale on playback, x downloadspeed on download."""
        if self.kind == DOWNLOAD:
            return FPS * self.speed
        if self.kind == PLAYBACK:
            return FPS * self.scale
        return float(FPS)

    def fire(self, event: Ev, now: float) -> bool:
        """Apply ``event``; False when the table has no transition for it (the event is ignored)."""
        nxt = TABLE.get((self.phase, event))
        if nxt is None:
            return False
        self.phase = nxt
        if nxt == Phase.STREAMING and (event == Ev.ACK or self._next_at is None):
            self._restart_pace(now)  # the first frame (or the one after a pause) at once
        elif nxt != Phase.STREAMING:
            self._next_at = None
        return True

    def control(self, req: Rtsp, now: float) -> bool:
        """A MANSRTSP request on a playback/download (live streams cannot be controlled: False)."""
        if not self.history or self.phase in (Phase.ANSWERED, Phase.ENDED):
            return False
        if req.method == "TEARDOWN":
            return self.fire(Ev.BYE, now)
        if req.method == "PAUSE":
            return self.fire(Ev.PAUSE, now)
        if req.scale is not None:
            self.scale = req.scale
        if req.range_start is not None:
            total = self.total_frames or 0
            n = min(round(req.range_start * FPS), total)
            self.frame = n - n % FPS  # from the key frame at or before it (the clip has one each second)
        fired = self.fire(Ev.PLAY, now)
        if fired and (req.scale is not None or req.range_start is not None):
            self._restart_pace(now)  # the new pace or position starts with the next frame, now
        return fired

    def _restart_pace(self, now: float) -> None:
        self._anchor = (now, self.frame)
        self._next_at = now

    def next_due(self) -> float | None:
        return self._next_at if self.phase == Phase.STREAMING else None

    def due(self, now: float) -> list[bytes]:
        """RTP packets of every frame due by ``now`` (at most MAX_BURST frames); may fire EOF."""
        out: list[bytes] = []
        for _ in range(MAX_BURST):
            if self.phase != Phase.STREAMING or self._next_at is None or self._next_at > now:
                break
            total = self.total_frames
            if total is not None and self.frame >= total:
                self.fire(Ev.EOF, now)
                break
            out += self._frame_packets(self.frame)
            self.frame += 1
            self.frames_sent += 1
            self._next_at = self._anchor[0] + (self.frame - self._anchor[1]) / self.rate
        self.packets_sent += len(out)
        return out

    def _frame_packets(self, n: int) -> list[bytes]:
        au = self.clip[n % len(self.clip)]
        pts = n * TICKS_PER_FRAME + 3600  # PTS never below the SCR (ps.PsMuxer leads by 40 ms)
        pack = self._muxer.mux_video(au.data, pts, au.keyframe)
        assert self._rtp is not None
        return self._rtp.packetize(pack, pts & 0xFFFFFFFF)

    @property
    def ended(self) -> bool:
        return self.phase == Phase.ENDED

    @property
    def reached_end(self) -> bool:
        """A history stream that sent its last frame (MediaStatus 121 is due)."""
        total = self.total_frames
        return self.ended and total is not None and self.frame >= total
